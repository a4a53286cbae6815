import { describe, expect, it } from 'vitest';
import { ECR_CAPABILITIES, ECR_VERSION, EcrOutboundV2 } from '../../protocol/index.js';
import { ECR_SEQ_BLOCK, step, type Book, type Effect, type PaymentEvent } from '../../device/payment.js';
import { T0, attempt, bookWithAttempt, ecrLines, onlineBook, only, result, run, sale, scan, sends } from './payment-fixtures.js';

/** ECR protocol v2 in the pure payment machine: numbered lines, hello, lookup, and refs that are never reopened. */

const lookup = (ref = 'R1'): PaymentEvent => ({ type: 'ecrLookup', ref });
const cancel = (ref = 'R1'): PaymentEvent => ({ type: 'ecrCancel', ref });

/** R1 paid by box1-1: WAITING_CODE (1), PAYING (2), result PAID (3). */
function paidBook(): Book {
  const b = bookWithAttempt();
  return step(b, result(attempt(b), 'SUCCESS', 'PAID'), T0 + 20).book;
}

/** R1 cancelled before any code: WAITING_CODE (1), result NOT_PAID (2). */
function notPaidBook(): { book: Book; effects: Effect[] } {
  return run(onlineBook(), [
    [sale(), T0],
    [cancel(), T0 + 5],
  ]);
}

/** Nothing that could open a sale or move money: no sale or attempt saved, nothing sent, no sale number taken. */
function expectNoMoney(before: Book, r: { book: Book; effects: Effect[] }): void {
  expect(only(r.effects, 'saveAttempt')).toEqual([]);
  expect(only(r.effects, 'send')).toEqual([]);
  expect(only(r.effects, 'saveSeq')).toEqual([]);
  expect(r.book.nextSaleSeq).toBe(before.nextSaleSeq);
  expect(Object.keys(r.book.sales)).toEqual(Object.keys(before.sales));
  for (const [id, s] of Object.entries(before.sales)) expect(r.book.sales[id]!.state).toBe(s.state);
}

describe('ECR v2 numbering (seq)', () => {
  it('every line carries v 2 and the next seq, in order; the numbers are reserved in the journal in blocks', () => {
    const r = run(onlineBook(), [
      [sale(), T0],
      [scan(), T0 + 1],
    ]);
    const lines = ecrLines(r.effects);
    expect(lines.map((l) => [l.type, l.v, l.seq])).toEqual([
      ['progress', ECR_VERSION, 1],
      ['progress', ECR_VERSION, 2],
    ]);
    for (const l of lines) expect(EcrOutboundV2.safeParse(l).success).toBe(true);
    // The first line reserved a block, journaled in the same step as the line; the second needed no write.
    expect(only(r.effects, 'saveEcrSeq')).toEqual([{ kind: 'saveEcrSeq', reservedTo: 1 + ECR_SEQ_BLOCK }]);
    const first = step(onlineBook(), sale(), T0).effects;
    expect(first.findIndex((e) => e.kind === 'saveEcrSeq')).toBeLessThan(first.findIndex((e) => e.kind === 'ecr'));
    expect(r.book).toMatchObject({ nextEcrSeq: 3, ecrSeqReservedTo: 1 + ECR_SEQ_BLOCK });
  });

  it('a used-up block reserves the next one in the step that needs it', () => {
    let b = onlineBook();
    const reservations: number[] = [];
    const seqs: number[] = [];
    for (let i = 0; i < ECR_SEQ_BLOCK * 2 + 1; i++) {
      const r = step(b, { type: 'ecrHello', firmware: 'fw' }, T0 + i);
      b = r.book;
      reservations.push(...only(r.effects, 'saveEcrSeq').map((e) => e.reservedTo));
      seqs.push(...ecrLines(r.effects).map((l) => l.seq));
    }
    expect(seqs).toEqual(Array.from({ length: ECR_SEQ_BLOCK * 2 + 1 }, (_, i) => i + 1));
    expect(reservations).toEqual([1 + ECR_SEQ_BLOCK, 1 + 2 * ECR_SEQ_BLOCK, 1 + 3 * ECR_SEQ_BLOCK]);
  });

  it("a sale's result line keeps its seq: journaled with the sale, and written again with the same seq when it never got out", () => {
    const b = bookWithAttempt();
    const r = step(b, result(attempt(b), 'SUCCESS', 'PAID'), T0 + 20);
    const [line] = ecrLines(r.effects);
    expect(line).toMatchObject({ type: 'result', seq: 3, outcome: 'PAID' });
    const sale1 = r.book.sales[attempt(b).saleId]!;
    expect(sale1).toMatchObject({ state: 'PAID', resultSeq: 3, reported: false });
    expect(only(r.effects, 'saveSale').map((e) => e.sale.resultSeq)).toEqual([3]);
    // The port was down: when it is back the same line goes out, same seq, while new lines go on counting.
    const again = step(r.book, { type: 'ecrReady' }, T0 + 30);
    expect(ecrLines(again.effects)).toEqual([line]);
    const hello = step(again.book, { type: 'ecrHello', firmware: 'fw' }, T0 + 31);
    expect(ecrLines(hello.effects)[0]!.seq).toBe(4);
  });
});

describe('ECR v2 hello', () => {
  it('answers one line: its ECR version, the firmware, the device and exactly what it supports; nothing else changes', () => {
    const b = bookWithAttempt();
    const r = step(b, { type: 'ecrHello', firmware: 'scanbox-device/9.9.9', registerVersion: 2, name: 'POS-3' }, T0 + 5);
    expect(ecrLines(r.effects)).toEqual([{ type: 'hello', v: ECR_VERSION, seq: 3, deviceId: 'box1', firmware: 'scanbox-device/9.9.9', capabilities: [...ECR_CAPABILITIES] }]);
    expect(ECR_CAPABILITIES).toEqual(['sale', 'cancel', 'hello', 'lookup', 'refund', 'totals']);
    expect(only(r.effects, 'log')).toEqual([expect.objectContaining({ msg: 'cash register said hello', fields: { registerVersion: 2, name: 'POS-3' } })]);
    expectNoMoney(b, r);
    expect(only(r.effects, 'display')).toEqual([]);
  });
});

describe('ECR v2 lookup', () => {
  it('an unknown ref → SALE_UNKNOWN naming it', () => {
    const r = step(onlineBook(), lookup('NOPE'), T0);
    expect(ecrLines(r.effects)).toEqual([{ type: 'error', v: 2, seq: 1, ref: 'NOPE', code: 'SALE_UNKNOWN', message: 'no sale with ref NOPE' }]);
  });

  it('a sale not final → its current stage, flagged as a lookup answer', () => {
    const open = step(onlineBook(), sale(), T0).book;
    expect(ecrLines(step(open, lookup(), T0 + 1).effects)).toEqual([expect.objectContaining({ type: 'progress', ref: 'R1', stage: 'WAITING_CODE', lookup: true, seq: 2 })]);
    const paying = bookWithAttempt();
    expect(ecrLines(step(paying, lookup(), T0 + 2).effects)).toEqual([expect.objectContaining({ type: 'progress', stage: 'PAYING', outTradeNo: 'box1-1', lookup: true })]);
    const cancelling = step(paying, cancel(), T0 + 3).book;
    expect(cancelling.sales[attempt(paying).saleId]!.state).toBe('CANCELLING');
    const r = step(cancelling, lookup(), T0 + 4);
    expect(ecrLines(r.effects)).toEqual([expect.objectContaining({ type: 'progress', stage: 'CANCELLING', lookup: true })]);
    expectNoMoney(cancelling, r);
  });

  it("a final sale → its result line again: same content, lookup: true, the original line's seq; no screen, reported unchanged", () => {
    const b = bookWithAttempt();
    const paid = step(b, result(attempt(b), 'SUCCESS', 'PAID'), T0 + 20);
    const original = ecrLines(paid.effects)[0]!;
    const r = step(paid.book, lookup(), T0 + 30);
    expect(ecrLines(r.effects)).toEqual([{ ...original, lookup: true }]);
    expect(only(r.effects, 'display')).toEqual([]);
    expect(only(r.effects, 'saveSale')).toEqual([]);
    expect(only(r.effects, 'saveEcrSeq')).toEqual([]);
    expect(r.book.nextEcrSeq).toBe(paid.book.nextEcrSeq);
    expectNoMoney(paid.book, r);

    const np = notPaidBook();
    const notPaidLine = ecrLines(np.effects).find((l) => l.type === 'result')!;
    expect(notPaidLine).toMatchObject({ outcome: 'NOT_PAID', reason: 'CASHIER_CANCEL', seq: 2 });
    expect(ecrLines(step(np.book, lookup(), T0 + 9).effects)).toEqual([{ ...notPaidLine, lookup: true }]);
  });

  it('a sale finished before ECR v2 (no resultSeq) is numbered on its first lookup, journaled, and keeps that number', () => {
    const np = notPaidBook().book;
    const [id, s] = Object.entries(np.sales)[0]!;
    const { resultSeq: _gone, ...old } = s;
    const before: Book = { ...np, sales: { [id]: old } };
    const first = step(before, lookup(), T0 + 9);
    const line = ecrLines(first.effects)[0]!;
    expect(line).toMatchObject({ type: 'result', outcome: 'NOT_PAID', lookup: true, seq: before.nextEcrSeq });
    expect(only(first.effects, 'saveSale')).toEqual([expect.objectContaining({ sale: expect.objectContaining({ resultSeq: line.seq, state: 'NOT_PAID' }) })]);
    const second = step(first.book, lookup(), T0 + 10);
    expect(ecrLines(second.effects)).toEqual([line]);
  });
});

describe('a ref already used is never reopened', () => {
  it('a sale for a NOT_PAID ref is answered with its earlier outcome (a lookup answer), never a new sale — online, offline or with another sale open', () => {
    const np = notPaidBook();
    const notPaidLine = ecrLines(np.effects).find((l) => l.type === 'result')!;
    const answer = { ...notPaidLine, lookup: true };
    for (const [label, book] of [
      ['online', np.book],
      ['offline', { ...np.book, online: false }],
      ['another sale open', step(np.book, sale('R2', 500), T0 + 10).book],
    ] as const) {
      const r = step(book, sale('R1', 1234), T0 + 20);
      expect(ecrLines(r.effects), label).toEqual([answer]);
      expectNoMoney(book, r);
      expect(only(r.effects, 'display'), label).toEqual([]);
      // The same ref with another amount is the same used ref.
      expect(ecrLines(step(book, sale('R1', 99), T0 + 20).effects), label).toEqual([answer]);
    }
    // A scan after it finds no sale waiting: nothing can be charged for R1.
    const after = step(np.book, sale('R1', 1234), T0 + 20).book;
    const s = step(after, scan(), T0 + 21);
    expect(sends(s.effects, 'pay')).toEqual([]);
  });

  it('a PAID ref still answers SALE_ALREADY_PAID, and cancel of a closed ref says so', () => {
    const paid = paidBook();
    const r = step(paid, sale('R1', 1234), T0 + 30);
    expect(ecrLines(r.effects)).toEqual([expect.objectContaining({ type: 'error', code: 'SALE_ALREADY_PAID', ref: 'R1', v: 2, seq: 4 })]);
    expectNoMoney(paid, r);
    expect(ecrLines(step(notPaidBook().book, cancel(), T0 + 30).effects)).toEqual([expect.objectContaining({ type: 'error', code: 'SALE_UNKNOWN', message: expect.stringContaining('NOT_PAID') })]);
  });
});

describe('a line the box could not read', () => {
  it('is answered with a numbered error line carrying the readable ref, and logged; nothing else changes', () => {
    const b = bookWithAttempt();
    const r = step(b, { type: 'ecrBadLine', code: 'SCHEMA_INVALID', message: 'line is invalid: amount: x', ref: 'R9' }, T0 + 5);
    expect(ecrLines(r.effects)).toEqual([{ type: 'error', v: 2, seq: 3, ref: 'R9', code: 'SCHEMA_INVALID', message: 'line is invalid: amount: x' }]);
    expect(only(r.effects, 'log')).toEqual([expect.objectContaining({ level: 'warn', msg: 'bad line from the cash register', fields: { code: 'SCHEMA_INVALID', reason: 'line is invalid: amount: x' } })]);
    expectNoMoney(b, r);
    expect(r.book.sales).toEqual(b.sales);
    expect(r.book.attempts).toEqual(b.attempts);
  });
});
