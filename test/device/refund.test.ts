import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type RefundResultMessage, type TotalsMessage } from '../../protocol/index.js';
import { step, type Book, type PaymentEvent } from '../../device/payment.js';
import { TOTALS_WAIT_MS } from '../../device/totals.js';
import { DEVICE, T0, bookWithAttempt, ecrLines, only, result, run, sends, attempt } from './payment-fixtures.js';

/** A book where sale R1 (1234 fen) is PAID by box1-1, its result line written. */
function paidBook(): Book {
  const b = bookWithAttempt();
  const a = attempt(b);
  const paid = run(b, [[result(a, 'SUCCESS', 'PAID'), T0 + 2]]).book;
  const saleId = a.saleId;
  return run(paid, [[{ type: 'ecrDelivered', saleId }, T0 + 3]]).book;
}

const refund = (amount: number, refundRef = 'RF1', extra: { ref?: string; outTradeNo?: string } = { ref: 'R1' }): PaymentEvent => ({ type: 'ecrRefund', refundRef, amount, currency: 'CNY', ...extra });

function cloudSays(refundId: string, state: RefundResultMessage['state'], more: Partial<RefundResultMessage> = {}, amount = 500): PaymentEvent {
  return { type: 'refundResult', message: { v: PROTOCOL_VERSION, id: `c-${refundId}-${state}`, ts: T0, refundId, outTradeNo: 'box1-1', amount, currency: 'CNY', state, ...more } };
}

describe('a refund from the register', () => {
  it('is journaled with its id before up/refund is queued, in one step, and the register hears it is on its way', () => {
    const { book, effects } = run(paidBook(), [[refund(500), T0 + 10]]);
    const kinds = effects.map((e) => e.kind);
    expect(kinds.indexOf('saveRefundSeq')).toBeLessThan(kinds.indexOf('send'));
    expect(kinds.indexOf('saveRefund')).toBeLessThan(kinds.indexOf('send'));
    const [send] = sends(effects, 'refund');
    expect(send?.message).toMatchObject({ refundId: `${DEVICE}-r1`, refundRef: 'RF1', outTradeNo: 'box1-1', amount: 500, currency: 'CNY', v: PROTOCOL_VERSION });
    expect(ecrLines(effects)).toEqual([expect.objectContaining({ type: 'refund_progress', ref: 'R1', refundRef: 'RF1', refundId: `${DEVICE}-r1`, stage: 'REFUNDING' })]);
    expect(book.refunds[`${DEVICE}-r1`]?.state).toBe('REQUESTED');
    expect(book.nextRefundSeq).toBe(2);
  });

  it('ends REFUNDED once, with the figures, on a numbered line the register keeps; a repeated cloud answer writes nothing', () => {
    const asked = run(paidBook(), [[refund(500), T0 + 10]]).book;
    const id = `${DEVICE}-r1`;
    const pending = run(asked, [[cloudSays(id, 'PENDING'), T0 + 11]]);
    expect(pending.book.refunds[id]?.state).toBe('PENDING');
    expect(ecrLines(pending.effects)).toEqual([]);
    const done = run(pending.book, [[cloudSays(id, 'REFUNDED', { refundedTotal: 500, remaining: 734 }), T0 + 12]]);
    const lines = ecrLines(done.effects);
    expect(lines).toEqual([expect.objectContaining({ type: 'refund_result', outcome: 'REFUNDED', refundedTotal: 500, remaining: 734, amount: 500 })]);
    expect(only(done.effects, 'ecr')[0]?.refundFinalFor).toBe(id);
    const again = run(done.book, [[cloudSays(id, 'REFUNDED', { refundedTotal: 500, remaining: 734 }), T0 + 13]]);
    expect(ecrLines(again.effects)).toEqual([]);
  });

  it('the same refund line again is answered with its state (the original seq once final), never sent twice', () => {
    const id = `${DEVICE}-r1`;
    const b = run(paidBook(), [
      [refund(500), T0 + 10],
      [cloudSays(id, 'REFUNDED'), T0 + 11],
    ]);
    const firstSeq = ecrLines(b.effects).find((l) => l.type === 'refund_result')!.seq;
    const again = run(b.book, [[refund(500), T0 + 20]]);
    expect(sends(again.effects)).toEqual([]);
    expect(ecrLines(again.effects)).toEqual([expect.objectContaining({ type: 'refund_result', seq: firstSeq, lookup: true })]);
    const conflicting = run(b.book, [[refund(400), T0 + 21]]);
    expect(ecrLines(conflicting.effects)).toEqual([expect.objectContaining({ type: 'error', code: 'REFUND_CONFLICT' })]);
  });

  it('two partials up to the paid amount pass; one more fen is refused by the box before anything is sent', () => {
    const b = run(paidBook(), [
      [refund(600, 'RF1'), T0 + 10],
      [refund(634, 'RF2'), T0 + 11],
    ]);
    expect(sends(b.effects, 'refund')).toHaveLength(2);
    const over = run(b.book, [[refund(1, 'RF3'), T0 + 12]]);
    expect(sends(over.effects)).toEqual([]);
    expect(ecrLines(over.effects)).toEqual([expect.objectContaining({ type: 'error', code: 'REFUND_EXCEEDS_REMAINING' })]);
    expect(Object.keys(over.book.refunds)).toHaveLength(2);
  });

  it('a refund that ended NOT_REFUNDED gives its amount back to what remains', () => {
    const id = `${DEVICE}-r1`;
    const b = run(paidBook(), [
      [refund(1234, 'RF1'), T0 + 10],
      [cloudSays(id, 'FAILED', { reason: 'DECLINED' }, 1234), T0 + 11],
      [refund(1234, 'RF2'), T0 + 12],
    ]);
    expect(ecrLines(b.effects).map((l) => l.type)).toEqual(['refund_progress', 'refund_result', 'refund_progress']);
    expect(ecrLines(b.effects)[1]).toMatchObject({ outcome: 'NOT_REFUNDED', reason: 'DECLINED' });
  });

  it.each([
    ['offline', (b: Book) => ({ ...b, online: false }), refund(100), 'OFFLINE'],
    ['an unknown sale', (b: Book) => b, refund(100, 'RF1', { ref: 'NOPE' }), 'SALE_UNKNOWN'],
    ['a sale not paid', (b: Book) => run(b, [[{ type: 'ecrSale', ref: 'R2', amount: 300, currency: 'CNY' }, T0 + 5]]).book, refund(100, 'RF1', { ref: 'R2' }), 'SALE_NOT_PAID'],
    ['another payment of the sale', (b: Book) => b, refund(100, 'RF1', { ref: 'R1', outTradeNo: 'box1-9' }), 'REFUND_CONFLICT'],
  ] as const)('%s is refused at once with a clear error; nothing is journaled or sent', (_what, prep, line, code) => {
    const { book, effects } = run(prep(paidBook()), [[line, T0 + 10]]);
    expect(sends(effects)).toEqual([]);
    expect(only(effects, 'saveRefund')).toEqual([]);
    expect(ecrLines(effects)).toEqual([expect.objectContaining({ type: 'error', code })]);
    expect(Object.keys(book.refunds)).toEqual([]);
  });

  it("another box's sale (by outTradeNo) goes to the cloud, which decides", () => {
    const { effects } = run(paidBook(), [[refund(100, 'RF9', { outTradeNo: 'box7-3' }), T0 + 10]]);
    expect(sends(effects, 'refund')[0]?.message).toMatchObject({ outTradeNo: 'box7-3', amount: 100 });
  });

  it('is asked about again while open (re-sent with the same id), and at once after a reconnect', () => {
    const b = run(paidBook(), [[refund(500), T0 + 10]]).book;
    const due = run(b, [[{ type: 'tick' }, T0 + 10 + 15_000]]);
    expect(sends(due.effects, 'refund').map((s) => (s.message as { refundId: string }).refundId)).toEqual([`${DEVICE}-r1`]);
    const reconnect = run({ ...b, online: false }, [[{ type: 'linkUp' }, T0 + 20]]);
    expect(sends(reconnect.effects, 'refund')).toHaveLength(1);
  });

  it("an older cloud's refusal of the message closes a refund it never took NOT_REFUNDED CLOUD_REFUSED; a taken one stays open", () => {
    const b = run(paidBook(), [[refund(500), T0 + 10]]);
    const refId = (sends(b.effects, 'refund')[0]!.message as { id: string }).id;
    const err = (code: string): PaymentEvent => ({ type: 'cloudError', message: { v: 2, id: 'c-e', ts: T0, code: code as never, message: 'x', refId } });
    const refused = run(b.book, [[err('TOPIC_INVALID'), T0 + 11]]);
    expect(ecrLines(refused.effects)).toEqual([expect.objectContaining({ type: 'refund_result', outcome: 'NOT_REFUNDED', reason: 'CLOUD_REFUSED' })]);
    const taken = run(b.book, [
      [cloudSays(`${DEVICE}-r1`, 'PENDING'), T0 + 11],
      [err('TOPIC_INVALID'), T0 + 12],
    ]);
    expect(taken.book.refunds[`${DEVICE}-r1`]?.state).toBe('PENDING');
    const transient = run(b.book, [[err('INTERNAL'), T0 + 11]]);
    expect(transient.book.refunds[`${DEVICE}-r1`]?.state).toBe('REQUESTED');
  });

  it('a final refund is never changed by a contradicting answer, and an UNKNOWN state changes nothing', () => {
    const id = `${DEVICE}-r1`;
    const b = run(paidBook(), [
      [refund(500), T0 + 10],
      [cloudSays(id, 'REFUNDED'), T0 + 11],
    ]).book;
    const contra = run(b, [[cloudSays(id, 'FAILED'), T0 + 12]]);
    expect(contra.book.refunds[id]?.state).toBe('REFUNDED');
    expect(only(contra.effects, 'log').some((l) => l.level === 'error')).toBe(true);
    const open = run(paidBook(), [[refund(500), T0 + 10]]).book;
    const unknown = step(open, { type: 'refundResult', message: { ...(cloudSays(id, 'PENDING') as { message: RefundResultMessage }).message, state: 'UNKNOWN' as never } }, T0 + 11);
    expect(unknown.book.refunds[id]?.state).toBe('REQUESTED');
  });

  it('a final line that could not be written is written again when the port is back, with its seq; delivered, it is not', () => {
    const id = `${DEVICE}-r1`;
    const b = run(paidBook(), [
      [refund(500), T0 + 10],
      [cloudSays(id, 'REFUNDED'), T0 + 11],
    ]);
    const seq = ecrLines(b.effects).at(-1)!.seq;
    const ready = run(b.book, [[{ type: 'ecrReady' }, T0 + 12]]);
    expect(ecrLines(ready.effects)).toEqual([expect.objectContaining({ type: 'refund_result', seq })]);
    const delivered = run(b.book, [
      [{ type: 'ecrRefundDelivered', refundId: id }, T0 + 12],
      [{ type: 'ecrReady' }, T0 + 13],
    ]);
    expect(ecrLines(delivered.effects)).toEqual([]);
  });
});

describe('totals for the register', () => {
  const local = [{ wallet: 'wechat', paidCount: 1, paidAmount: 1234, refundCount: 0, refundAmount: 0 }];
  const cloud = [{ wallet: 'wechat', paidCount: 2, paidAmount: 2000, refundCount: 1, refundAmount: 500 }];
  const totalsFromCloud = (refId: string, date = '2023-11-15'): PaymentEvent => ({
    type: 'totals',
    message: { v: PROTOCOL_VERSION, id: 'c-t', ts: T0, refId, date, currency: 'CNY', wallets: cloud, asOf: T0 } satisfies TotalsMessage,
  });

  it("online: asks the cloud and writes its figures, confirmed, with the net", () => {
    const asked = run(paidBook(), [[{ type: 'ecrTotals', date: '2023-11-15', local }, T0 + 10]]);
    const [send] = sends(asked.effects, 'totals');
    const refId = (send!.message as { id: string }).id;
    const answered = run(asked.book, [[totalsFromCloud(refId), T0 + 11]]);
    expect(ecrLines(answered.effects)).toEqual([expect.objectContaining({ type: 'totals', confirmed: true, date: '2023-11-15', wallets: [{ ...cloud[0], net: 1500 }] })]);
    // the wait is over: no second answer when the deadline passes
    expect(ecrLines(run(answered.book, [[{ type: 'tick' }, T0 + 10 + TOTALS_WAIT_MS]]).effects)).toEqual([]);
  });

  it("offline, or no answer in time, or the link drops: the journal's figures, unconfirmed, exactly once", () => {
    const offline = run({ ...paidBook(), online: false }, [[{ type: 'ecrTotals', date: '2023-11-15', local }, T0 + 10]]);
    expect(sends(offline.effects)).toEqual([]);
    expect(ecrLines(offline.effects)).toEqual([expect.objectContaining({ type: 'totals', confirmed: false, wallets: [{ ...local[0], net: 1234 }] })]);
    const asked = run(paidBook(), [[{ type: 'ecrTotals', date: '2023-11-15', local }, T0 + 10]]);
    const late = run(asked.book, [[{ type: 'tick' }, T0 + 10 + TOTALS_WAIT_MS]]);
    expect(ecrLines(late.effects)).toEqual([expect.objectContaining({ type: 'totals', confirmed: false })]);
    const refId = (sends(asked.effects, 'totals')[0]!.message as { id: string }).id;
    expect(ecrLines(run(late.book, [[totalsFromCloud(refId), T0 + 20_000]]).effects)).toEqual([]);
    const dropped = run(asked.book, [[{ type: 'linkDown' }, T0 + 11]]);
    expect(ecrLines(dropped.effects)).toEqual([expect.objectContaining({ type: 'totals', confirmed: false })]);
  });
});

describe('property: whatever the register asks and the cloud answers, in any order', () => {
  it('the box never has more of a sale out on refund than was paid, and never two refunds for one refundRef', async () => {
    const fc = (await import('fast-check')).default;
    const ask = fc.record({ kind: fc.constant('ask' as const), ref: fc.integer({ min: 1, max: 4 }), amount: fc.integer({ min: 1, max: 1300 }) });
    const answer = fc.record({ kind: fc.constant('answer' as const), n: fc.integer({ min: 1, max: 6 }), state: fc.constantFrom('PENDING', 'REFUNDED', 'FAILED', 'REFUSED') });
    const other = fc.constantFrom({ kind: 'tick' as const }, { kind: 'linkDown' as const }, { kind: 'linkUp' as const });
    fc.assert(
      fc.property(fc.array(fc.oneof(ask, answer, other), { maxLength: 40 }), (ops) => {
        let book = paidBook();
        let now = T0 + 100;
        for (const op of ops) {
          now += 1_000;
          let e: PaymentEvent;
          if (op.kind === 'ask') e = refund(op.amount, `RF${op.ref}`);
          else if (op.kind === 'answer') {
            const r = book.refunds[`${DEVICE}-r${op.n}`];
            e = cloudSays(`${DEVICE}-r${op.n}`, op.state as RefundResultMessage['state'], {}, r?.amount ?? 1);
          } else e = { type: op.kind };
          book = step(book, e, now).book;
          const out = Object.values(book.refunds).filter((r) => r.state !== 'NOT_REFUNDED').reduce((sum, r) => sum + r.amount, 0);
          expect(out).toBeLessThanOrEqual(1234);
          const refs = Object.values(book.refunds).map((r) => r.refundRef);
          expect(new Set(refs).size).toBe(refs.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});
