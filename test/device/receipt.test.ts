import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, decodeDown, type Receipt, type ResultReason, type AttemptState } from '../../protocol/index.js';
import { JOURNAL_FILE, Journal, MIGRATIONS, SCHEMA_VERSION } from '../../device/journal.js';
import { step, type Attempt, type Book, type Effect, type PaymentEvent } from '../../device/payment.js';
import { ALIPAY, RULES, T0, attempt, bookWithAttempt, ecrLines, only, run, scan, sends } from './payment-fixtures.js';
import { useTempDirs } from './temp-dir.js';

/**
 * Protocol v2 on the box: the wallet's receipt on a final result is kept with the attempt (journal
 * v3), survives a restart and is written on the cash register's PAID line; AMOUNT_MISMATCH closes
 * the sale NOT_PAID at once. The state machine stays pure: these are plain steps.
 */
const tempDir = useTempDirs();
const RECEIPT: Receipt = { walletTradeNo: '4200002946202611251234567890', paidAt: T0 + 80, total: 1234, buyerPaid: 1200, discount: 34 };

/** A result as the box reads it off the wire (decodeDown), with a receipt or without. */
function wireResult(a: Pick<Attempt, 'outTradeNo' | 'saleId' | 'amount'>, state: AttemptState, reason?: ResultReason, receipt?: unknown, v: number = PROTOCOL_VERSION): PaymentEvent {
  const msg = { v, id: `r-${a.outTradeNo}-${state}`, ts: T0, outTradeNo: a.outTradeNo, saleId: a.saleId, amount: a.amount, currency: 'CNY', state, ...(reason ? { reason } : {}), ...(receipt !== undefined ? { receipt } : {}) };
  return { type: 'result', message: decodeDown('result', JSON.stringify(msg)) };
}

const saved = (effects: Effect[]) => only(effects, 'saveAttempt').map((e) => e.attempt);
const results = (effects: Effect[]) => ecrLines(effects).filter((l) => l.type === 'result');

describe('the receipt on the box', () => {
  it('a paid result with a receipt: kept with the attempt, journaled in the same step, and on the PAID line', () => {
    const b = bookWithAttempt();
    const r = step(b, wireResult(attempt(b), 'SUCCESS', 'PAID', RECEIPT), T0 + 100);
    expect(attempt(r.book).receipt).toEqual(RECEIPT);
    expect(saved(r.effects)).toEqual([expect.objectContaining({ state: 'SUCCESS', receipt: RECEIPT })]);
    expect(results(r.effects)).toEqual([
      {
        type: 'result',
        v: 2,
        seq: 3,
        ref: 'R1',
        outcome: 'PAID',
        amount: 1234,
        currency: 'CNY',
        outTradeNo: 'box1-1',
        wallet: 'wechat',
        walletTradeNo: RECEIPT.walletTradeNo,
        paidAt: RECEIPT.paidAt,
        buyerPaid: 1200,
        discount: 34,
      },
    ]);
    expect(sends(r.effects, 'ack')).toHaveLength(1);
  });

  it('only what the wallet said goes on the line', () => {
    const b = bookWithAttempt();
    const r = step(b, wireResult(attempt(b), 'SUCCESS', 'PAID', { walletTradeNo: 'W-1', total: 1234 }), T0 + 100);
    const line = results(r.effects)[0]!;
    expect(line).toMatchObject({ outcome: 'PAID', walletTradeNo: 'W-1' });
    for (const k of ['paidAt', 'buyerPaid', 'discount']) expect(line).not.toHaveProperty(k);
  });

  it('without a receipt (a v1 cloud, or one dropped as malformed) the result applies all the same, with no receipt fields', () => {
    for (const [label, ev] of [
      ['no receipt', (a: Attempt) => wireResult(a, 'SUCCESS', 'PAID', undefined, 1)],
      ['a malformed receipt', (a: Attempt) => wireResult(a, 'SUCCESS', 'PAID', { walletTradeNo: '', total: -1 })],
      ['a receipt that is not an object', (a: Attempt) => wireResult(a, 'SUCCESS', 'PAID', 'R-1')],
    ] as const) {
      const b = bookWithAttempt();
      const r = step(b, ev(attempt(b)), T0 + 100);
      expect(attempt(r.book).state, label).toBe('SUCCESS');
      expect(attempt(r.book), label).not.toHaveProperty('receipt');
      expect(results(r.effects), label).toEqual([{ type: 'result', v: 2, seq: 3, ref: 'R1', outcome: 'PAID', amount: 1234, currency: 'CNY', outTradeNo: 'box1-1', wallet: 'wechat' }]);
      expect(sends(r.effects, 'ack'), label).toHaveLength(1);
    }
  });

  it('a re-sent result keeps the receipt, and brings one the attempt lacked (journaled, acked again)', () => {
    const b = bookWithAttempt();
    const paidNoReceipt = step(b, wireResult(attempt(b), 'SUCCESS', 'PAID'), T0 + 100).book;
    const again = step(paidNoReceipt, wireResult(attempt(b), 'SUCCESS', 'PAID', RECEIPT), T0 + 200);
    expect(attempt(again.book).receipt).toEqual(RECEIPT);
    expect(saved(again.effects)).toEqual([expect.objectContaining({ state: 'SUCCESS', receipt: RECEIPT })]);
    expect(sends(again.effects, 'ack')).toHaveLength(1);
    expect(results(again.effects)).toEqual([]); // the line was written once; the register is not told twice
    const plain = step(again.book, wireResult(attempt(b), 'SUCCESS', 'PAID'), T0 + 300);
    expect(attempt(plain.book).receipt).toEqual(RECEIPT);
    expect(saved(plain.effects)).toEqual([]);
  });

  it('a refunded duplicate keeps its receipt when the REFUNDED result has none', () => {
    const b = bookWithAttempt();
    const paid = step(b, wireResult(attempt(b), 'SUCCESS', 'PAID', RECEIPT), T0 + 100).book;
    const refunded = step(paid, wireResult(attempt(b), 'REFUNDED', 'DUPLICATE_PAYMENT'), T0 + 200);
    expect(attempt(refunded.book)).toMatchObject({ state: 'REFUNDED', receipt: RECEIPT });
  });

  it('a SUCCESS whose receipt shows another total is still the truth (the state decides), and support is told', () => {
    const b = bookWithAttempt();
    const r = step(b, wireResult(attempt(b), 'SUCCESS', 'PAID', { ...RECEIPT, total: 1243 }), T0 + 100);
    expect(attempt(r.book).state).toBe('SUCCESS');
    expect(results(r.effects)).toEqual([expect.objectContaining({ outcome: 'PAID' })]);
    expect(only(r.effects, 'log')).toContainEqual(expect.objectContaining({ level: 'error', fields: expect.objectContaining({ total: 1243, amount: 1234, code: 'ATTEMPT_CONFLICT' }) }));
  });
});

describe('AMOUNT_MISMATCH on the box', () => {
  const mismatch = (a: Attempt, v: number = PROTOCOL_VERSION) => wireResult(a, 'FAILED', 'AMOUNT_MISMATCH', { walletTradeNo: 'W-9', total: 1243 }, v);

  it('FAILED with AMOUNT_MISMATCH: NOT_PAID with that reason at once, the sale closed, acked, the receipt kept', () => {
    const b = bookWithAttempt();
    const r = step(b, mismatch(attempt(b)), T0 + 100);
    expect(ecrLines(r.effects)).toEqual([{ type: 'result', v: 2, seq: 3, ref: 'R1', outcome: 'NOT_PAID', amount: 1234, currency: 'CNY', reason: 'AMOUNT_MISMATCH', outTradeNo: 'box1-1' }]);
    const sale = r.book.sales[attempt(b).saleId]!;
    expect(sale).toMatchObject({ state: 'NOT_PAID', endReason: 'AMOUNT_MISMATCH', reported: false });
    expect(attempt(r.book)).toMatchObject({ state: 'FAILED', reason: 'AMOUNT_MISMATCH', receipt: { walletTradeNo: 'W-9', total: 1243 } });
    expect(sends(r.effects, 'ack').map((e) => e.message)).toEqual([expect.objectContaining({ state: 'FAILED' })]);
    expect(sends(r.effects, 'cancel')).toEqual([]);
    expect(only(r.effects, 'display').map((d) => d.screen.screen)).toEqual(['扣款金额不符，正在退回；本单未收款']);
    // The sale is over: a code scanned now pays nothing.
    const later = step(r.book, scan(ALIPAY), T0 + 200);
    expect(sends(later.effects, 'pay')).toEqual([]);
  });

  it('while the cashier is cancelling: NOT_PAID, reason AMOUNT_MISMATCH (not CASHIER_CANCEL)', () => {
    const b = bookWithAttempt();
    const cancelling = step(b, { type: 'ecrCancel', ref: 'R1' }, T0 + 50).book;
    const r = step(cancelling, mismatch(attempt(b)), T0 + 100);
    expect(results(r.effects)).toEqual([expect.objectContaining({ outcome: 'NOT_PAID', reason: 'AMOUNT_MISMATCH', outTradeNo: 'box1-1' })]);
  });

  it('an attempt still open on the same sale is cancelled first; NOT_PAID when it is final', () => {
    // Two attempts in flight for one sale cannot be made by scanning; a restored journal can hold them.
    const b = bookWithAttempt();
    const first = attempt(b);
    const second: Attempt = { ...first, outTradeNo: 'box1-2', wallet: 'alipay', state: 'PAYING' };
    const book: Book = { ...b, attempts: { ...b.attempts, [second.outTradeNo]: second } };
    const r = step(book, mismatch(first), T0 + 100);
    expect(sends(r.effects, 'cancel').map((e) => e.message)).toEqual([expect.objectContaining({ outTradeNo: 'box1-2', reason: 'RECOVERY_CANCEL' })]);
    expect(results(r.effects)).toEqual([]);
    const done = step(r.book, wireResult(second, 'REVERSED', 'RECOVERY_CANCEL'), T0 + 200);
    expect(results(done.effects)).toEqual([expect.objectContaining({ outcome: 'NOT_PAID', reason: 'AMOUNT_MISMATCH' })]);
  });

  it('the same charge told to a v1 box (FAILED, no reason): a failed attempt, another code may be scanned', () => {
    const b = bookWithAttempt();
    const r = step(b, wireResult(attempt(b), 'FAILED', undefined, undefined, 1), T0 + 100);
    expect(ecrLines(r.effects)).toEqual([expect.objectContaining({ type: 'progress', stage: 'ATTEMPT_FAILED', outTradeNo: 'box1-1' })]);
    expect(r.book.sales[attempt(b).saleId]!.state).toBe('OPEN');
  });
});

describe('the receipt in the journal', () => {
  it('survives a restart: the book loaded again has it, and the PAID line written after the restart carries it', () => {
    const dir = tempDir();
    let j = Journal.open(dir);
    let b: Book = { ...j.loadBook('box1', RULES, T0), online: true };
    const persist = (effects: Effect[]) => j.transaction(() => effects.forEach((e) => (e.kind === 'send' || e.kind === 'withdrawPay' ? undefined : j.persist(e))));
    for (const [e, now] of [
      [{ type: 'ecrSale', ref: 'R1', amount: 1234, currency: 'CNY' }, T0],
      [{ type: 'scan', code: { wallet: 'wechat', code: '134567890123456789' } }, T0 + 1],
    ] as [PaymentEvent, number][]) {
      const r = step(b, e, now);
      persist(r.effects);
      b = r.book;
    }
    // The result arrives; the PAID line cannot be written (the register's port is down), then the box restarts.
    const paid = step(b, wireResult(attempt(b), 'SUCCESS', 'PAID', RECEIPT), T0 + 100);
    persist(paid.effects);
    j.close();

    j = Journal.open(dir);
    const again = j.loadBook('box1', RULES, T0 + 10_000);
    expect(again.attempts['box1-1']).toMatchObject({ state: 'SUCCESS', receipt: RECEIPT });
    expect(j.loadAttempt('box1-1', T0 + 10_000)?.attempts[0]?.receipt).toEqual(RECEIPT);
    const line = results(step(again, { type: 'ecrReady' }, T0 + 10_001).effects);
    expect(line).toEqual([expect.objectContaining({ outcome: 'PAID', outTradeNo: 'box1-1', walletTradeNo: RECEIPT.walletTradeNo, paidAt: RECEIPT.paidAt, buyerPaid: 1200, discount: 34 })]);
    j.close();
  });

  it('an attempt without a receipt loads without one; optional parts the wallet did not give stay absent', () => {
    const dir = tempDir();
    const j = Journal.open(dir);
    const book = run({ ...j.loadBook('box1', RULES, T0), online: true }, [
      [{ type: 'ecrSale', ref: 'R1', amount: 1234, currency: 'CNY' }, T0],
      [{ type: 'scan', code: { wallet: 'wechat', code: '134567890123456789' } }, T0 + 1],
    ]);
    j.transaction(() => book.effects.forEach((e) => (e.kind === 'send' ? undefined : j.persist(e))));
    expect(j.loadBook('box1', RULES, T0).attempts['box1-1']).not.toHaveProperty('receipt');
    const r = step(book.book, wireResult(attempt(book.book), 'SUCCESS', 'PAID', { walletTradeNo: 'W-1', total: 1234 }), T0 + 5);
    j.transaction(() => r.effects.forEach((e) => (e.kind === 'send' ? undefined : j.persist(e))));
    expect(j.loadBook('box1', RULES, T0).attempts['box1-1']!.receipt).toEqual({ walletTradeNo: 'W-1', total: 1234 });
    j.close();
  });

  it('migrates a schema-2 journal (a box before protocol v2): its attempts are kept, with no receipt', () => {
    const dir = tempDir();
    const raw = new Database(join(dir, JOURNAL_FILE));
    raw.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2);');
    raw.exec(MIGRATIONS[0]!);
    raw.exec(MIGRATIONS[1]!);
    raw.prepare("INSERT INTO sales VALUES ('box1-s1','R1',1234,'CNY','PAID',NULL,'box1-1',1,2,3,1)").run();
    raw.prepare("INSERT INTO attempts VALUES ('box1-1','box1-s1','R1',1234,'CNY','wechat','SUCCESS','PAID',1,2,3)").run();
    raw.close();
    const j = Journal.open(dir);
    expect(j.schemaVersion()).toBe(SCHEMA_VERSION);
    const a = j.loadAttempt('box1-1', T0)!.attempts[0]!;
    expect(a).toMatchObject({ outTradeNo: 'box1-1', state: 'SUCCESS', reason: 'PAID' });
    expect(a).not.toHaveProperty('receipt');
    j.close();
  });
});
