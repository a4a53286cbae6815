import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { nextWakeAt, step, type PaymentEvent } from '../../device/payment.js';
import {
  ALIPAY,
  RULES,
  T0,
  attempt,
  bookWithAttempt,
  ecrLines,
  onlineBook,
  only,
  result,
  run,
  sale,
  scan,
  sends,
} from './payment-fixtures.js';

const results = (effects: Parameters<typeof ecrLines>[0]) => ecrLines(effects).filter((l) => l.type === 'result');

describe('payment state machine: the normal sale', () => {
  it('journals the attempt and queues the pay in the same step, then pays the sale once', () => {
    const s1 = step(onlineBook(), sale(), T0);
    expect(ecrLines(s1.effects)).toEqual([expect.objectContaining({ type: 'progress', stage: 'WAITING_CODE', ref: 'R1' })]);
    expect(only(s1.effects, 'display')[0]!.screen.screen).toBe('请出示付款码 ¥12.34');

    const s2 = step(s1.book, scan(), T0 + 10);
    const saved = only(s2.effects, 'saveAttempt');
    expect(saved).toHaveLength(1);
    expect(saved[0]!.attempt).toMatchObject({ outTradeNo: 'box1-1', state: 'CREATED', deadline: T0 + 10 + RULES.paymentDeadlineMs });
    const pay = sends(s2.effects, 'pay');
    expect(pay).toHaveLength(1);
    expect(pay[0]!.message).toMatchObject({ outTradeNo: 'box1-1', amount: 1234, currency: 'CNY', code: '134567890123456789', wallet: 'wechat' });
    // The journal effect comes before the send: the shell commits both in one transaction.
    expect(s2.effects.findIndex((e) => e.kind === 'saveAttempt')).toBeLessThan(s2.effects.findIndex((e) => e.kind === 'send'));

    const s3 = step(s2.book, { type: 'paySent', outTradeNo: 'box1-1' }, T0 + 11);
    expect(attempt(s3.book).state).toBe('PAYING');

    const s4 = step(s3.book, result(attempt(s3.book), 'SUCCESS', 'PAID'), T0 + 20);
    expect(attempt(s4.book).state).toBe('SUCCESS');
    expect(s4.book.sales[attempt(s4.book).saleId]!.state).toBe('PAID');
    expect(results(s4.effects)).toEqual([{ type: 'result', v: 2, seq: 3, ref: 'R1', outcome: 'PAID', amount: 1234, currency: 'CNY', outTradeNo: 'box1-1', wallet: 'wechat' }]);
    expect(sends(s4.effects, 'ack').map((e) => e.message)).toEqual([expect.objectContaining({ outTradeNo: 'box1-1', state: 'SUCCESS' })]);

    // The cloud re-sends an unacked result: ack again, change nothing, tell the ECR nothing.
    const s5 = step(s4.book, result(attempt(s4.book), 'SUCCESS', 'PAID', T0 + 30), T0 + 30);
    expect(results(s5.effects)).toEqual([]);
    expect(only(s5.effects, 'saveAttempt')).toEqual([]);
    expect(sends(s5.effects, 'ack')).toHaveLength(1);
  });

  it('shows "waiting for password" on USERPAYING, then pays', () => {
    const b = bookWithAttempt();
    const a = attempt(b);
    const prog: PaymentEvent = { type: 'progress', message: { v: PROTOCOL_VERSION, id: 'p1', ts: T0, outTradeNo: a.outTradeNo, stage: 'USERPAYING' } };
    const r = run(b, [
      [prog, T0 + 100],
      [result(a, 'SUCCESS'), T0 + 5_000],
    ]);
    expect(ecrLines(r.effects).map((l) => (l.type === 'progress' ? l.stage : l.type))).toEqual(['WAITING_PASSWORD', 'result']);
    expect(only(r.effects, 'display').map((d) => d.screen.screen)).toEqual(['等待用户输入密码', '支付成功 ¥12.34']);
  });

  it('a definitive failure lets the customer scan another code for the same sale', () => {
    const b = bookWithAttempt();
    const r = run(b, [
      [result(attempt(b), 'FAILED', 'INSUFFICIENT_FUNDS'), T0 + 100],
      [scan(ALIPAY), T0 + 2_000],
      [result({ outTradeNo: 'box1-2', saleId: attempt(b).saleId, amount: 1234 }, 'SUCCESS'), T0 + 3_000],
    ]);
    expect(ecrLines(r.effects)).toEqual([
      expect.objectContaining({ type: 'progress', stage: 'ATTEMPT_FAILED', outTradeNo: 'box1-1' }),
      expect.objectContaining({ type: 'progress', stage: 'PAYING', outTradeNo: 'box1-2' }),
      expect.objectContaining({ type: 'result', outcome: 'PAID', outTradeNo: 'box1-2', wallet: 'alipay' }),
    ]);
    expect(only(r.effects, 'display')[0]!.screen.screen).toContain('余额不足');
  });
});

describe('payment state machine: refusals that never touch money', () => {
  it('offline: a new sale and a new scan are refused at once with OFFLINE', () => {
    const offline = step(onlineBook(), { type: 'linkDown' }, T0).book;
    const s1 = step(offline, sale(), T0 + 1);
    expect(ecrLines(s1.effects)).toEqual([expect.objectContaining({ type: 'error', code: 'OFFLINE', ref: 'R1' })]);
    expect(Object.keys(s1.book.sales)).toEqual([]);

    const opened = step(onlineBook(), sale(), T0).book;
    const down = step(opened, { type: 'linkDown' }, T0 + 1).book;
    const s2 = step(down, scan(), T0 + 2);
    expect(sends(s2.effects)).toEqual([]);
    expect(only(s2.effects, 'saveAttempt')).toEqual([]);
    expect(ecrLines(s2.effects)).toEqual([expect.objectContaining({ type: 'error', code: 'OFFLINE' })]);
    expect(only(s2.effects, 'display')[0]!.screen.screen).toContain('网络未连接');
  });

  it('a scan with no sale waiting, or while a payment is in flight, creates no attempt', () => {
    const none = step(onlineBook(), scan(), T0);
    expect(only(none.effects, 'display')[0]!.screen.screen).toBe('请先在收银机上输入金额');
    expect(only(none.effects, 'log')[0]!.fields).toMatchObject({ code: 'NO_SALE_WAITING' });
    const busy = step(bookWithAttempt(), scan(ALIPAY), T0 + 5);
    expect(sends(busy.effects)).toEqual([]);
    expect(only(busy.effects, 'log')[0]!.fields).toMatchObject({ code: 'SALE_BUSY' });
  });

  it('ECR sale lines: repeat is idempotent, another amount or another sale is busy, a paid ref is refused', () => {
    const b = step(onlineBook(), sale('R1', 100), T0).book;
    expect(ecrLines(step(b, sale('R1', 100), T0 + 1).effects)).toEqual([expect.objectContaining({ type: 'progress', stage: 'WAITING_CODE' })]);
    expect(ecrLines(step(b, sale('R1', 200), T0 + 1).effects)).toEqual([expect.objectContaining({ type: 'error', code: 'SALE_BUSY' })]);
    expect(ecrLines(step(b, sale('R2', 100), T0 + 1).effects)).toEqual([expect.objectContaining({ type: 'error', code: 'SALE_BUSY', ref: 'R2' })]);
    const paid = run(bookWithAttempt(), [[result(attempt(bookWithAttempt()), 'SUCCESS'), T0 + 5]]).book;
    expect(ecrLines(step(paid, sale('R1', 1234), T0 + 9).effects)).toEqual([expect.objectContaining({ type: 'error', code: 'SALE_ALREADY_PAID' })]);
    expect(ecrLines(step(paid, { type: 'ecrCancel', ref: 'R1' }, T0 + 9).effects)).toEqual([expect.objectContaining({ type: 'error', code: 'SALE_ALREADY_PAID' })]);
    expect(ecrLines(step(paid, { type: 'ecrCancel', ref: 'NOPE' }, T0 + 9).effects)).toEqual([expect.objectContaining({ type: 'error', code: 'SALE_UNKNOWN' })]);
  });

  it('scanner noise shows "scan again" only while waiting for a code', () => {
    const waiting = step(onlineBook(), sale(), T0).book;
    const noise: PaymentEvent = { type: 'scanRejected', code: 'CODE_NOT_DIGITS', message: 'x' };
    expect(only(step(waiting, noise, T0 + 1).effects, 'display')).toHaveLength(1);
    expect(only(step(bookWithAttempt(), noise, T0 + 2).effects, 'display')).toHaveLength(0);
    expect(only(step(waiting, { type: 'scanRejected', code: 'DUPLICATE_SCAN', message: 'x' }, T0 + 1).effects, 'display')).toHaveLength(0);
  });
});

describe('payment state machine: giving up', () => {
  it('device deadline: cancels (withdrawing an undelivered pay) and keeps the attempt open until the cloud confirms', () => {
    const b = bookWithAttempt();
    const a = attempt(b);
    expect(nextWakeAt(b)).toBe(Math.min(a.deadline, a.nextCheckAt));
    const early = step(b, { type: 'tick' }, a.deadline - 1);
    expect(only(early.effects, 'saveAttempt')).toEqual([]);
    const late = step(early.book, { type: 'tick' }, a.deadline);
    expect(attempt(late.book).state).toBe('CANCELLING');
    expect(only(late.effects, 'withdrawPay')).toEqual([{ kind: 'withdrawPay', outTradeNo: 'box1-1' }]);
    expect(sends(late.effects, 'cancel').map((e) => e.message)).toEqual([expect.objectContaining({ reason: 'DEADLINE', outTradeNo: 'box1-1' })]);
    expect(ecrLines(late.effects)).toEqual([expect.objectContaining({ type: 'progress', stage: 'CANCELLING' })]);
    expect(late.book.sales[a.saleId]!.state).toBe('OPEN');

    // The customer re-scans while the old attempt is still CANCELLING: allowed.
    const again = step(late.book, scan(ALIPAY), a.deadline + 10);
    expect(sends(again.effects, 'pay')).toHaveLength(1);
    // The old one is reversed: the sale stays open, the ECR hears nothing final.
    const rev = step(again.book, result(a, 'REVERSED', 'DEADLINE'), a.deadline + 20);
    expect(results(rev.effects)).toEqual([]);
    expect(rev.book.sales[a.saleId]!.state).toBe('OPEN');
  });

  it('a paying attempt past its deadline is cancelled without withdrawing (the pay already left)', () => {
    const b = step(bookWithAttempt(), { type: 'paySent', outTradeNo: 'box1-1' }, T0 + 2).book;
    const late = step(b, { type: 'tick' }, attempt(b).deadline + 5);
    expect(only(late.effects, 'withdrawPay')).toEqual([]);
    expect(sends(late.effects, 'cancel')).toHaveLength(1);
  });

  it('cashier cancel with nothing in flight closes the sale NOT_PAID at once', () => {
    const b = step(onlineBook(), sale(), T0).book;
    const r = step(b, { type: 'ecrCancel', ref: 'R1' }, T0 + 1);
    expect(results(r.effects)).toEqual([expect.objectContaining({ outcome: 'NOT_PAID', reason: 'CASHIER_CANCEL' })]);
    expect(sends(r.effects)).toEqual([]);
  });

  it('cashier cancel mid-payment: told at once, final word only when the cloud confirms REVERSED', () => {
    const b = bookWithAttempt();
    const a = attempt(b);
    const c = step(b, { type: 'ecrCancel', ref: 'R1' }, T0 + 100);
    expect(ecrLines(c.effects)).toEqual([expect.objectContaining({ type: 'progress', stage: 'CANCELLING' })]);
    expect(sends(c.effects, 'cancel').map((e) => e.message)).toEqual([expect.objectContaining({ reason: 'CASHIER_CANCEL' })]);
    expect(results(c.effects)).toEqual([]);
    const again = step(c.book, { type: 'ecrCancel', ref: 'R1' }, T0 + 101);
    expect(sends(again.effects)).toEqual([]);
    const rev = step(c.book, result(a, 'REVERSED', 'CASHIER_CANCEL'), T0 + 200);
    expect(results(rev.effects)).toEqual([expect.objectContaining({ outcome: 'NOT_PAID', reason: 'CASHIER_CANCEL', outTradeNo: 'box1-1' })]);
  });

  it('a success that lands after the cashier cancelled is the truth: PAID', () => {
    const b = bookWithAttempt();
    const c = step(b, { type: 'ecrCancel', ref: 'R1' }, T0 + 100).book;
    const r = step(c, result(attempt(b), 'SUCCESS', 'PAID'), T0 + 200);
    expect(results(r.effects)).toEqual([expect.objectContaining({ outcome: 'PAID' })]);
  });

  it('sale deadline closes an unpaid sale NOT_PAID with reason DEADLINE', () => {
    const b = step(onlineBook(), sale(), T0).book;
    expect(nextWakeAt(b)).toBe(T0 + RULES.saleDeadlineMs);
    const r = step(b, { type: 'tick' }, T0 + RULES.saleDeadlineMs);
    expect(results(r.effects)).toEqual([expect.objectContaining({ outcome: 'NOT_PAID', reason: 'DEADLINE' })]);
  });
});

describe('payment state machine: restart, reconnect, lost and odd messages', () => {
  it('restart withdraws every undelivered pay and never sends one; reconnect queries every open attempt', () => {
    const b = { ...bookWithAttempt(), online: false };
    const r = run(b, [
      [{ type: 'restart' }, T0 + 5],
      [{ type: 'linkUp' }, T0 + 6],
    ]);
    expect(only(r.effects, 'withdrawPay')).toEqual([{ kind: 'withdrawPay', outTradeNo: 'box1-1' }]);
    expect(sends(r.effects, 'pay')).toEqual([]);
    expect(sends(r.effects, 'query').map((e) => e.message)).toEqual([expect.objectContaining({ outTradeNo: 'box1-1' })]);
  });

  it('the cloud does not know the attempt: CANCELLED UNKNOWN_ATTEMPT (echoing the amount) is final; ATTEMPT_TOMBSTONED asks again', () => {
    const b = bookWithAttempt();
    const r = step(b, result(attempt(b), 'CANCELLED', 'UNKNOWN_ATTEMPT'), T0 + 10);
    expect(attempt(r.book).state).toBe('CANCELLED');
    expect(ecrLines(r.effects)).toEqual([expect.objectContaining({ stage: 'ATTEMPT_FAILED' })]);
    const tombstoned: PaymentEvent = { type: 'cloudError', message: { v: 1, id: 'e1', ts: T0, code: 'ATTEMPT_TOMBSTONED', message: 'tombstoned', outTradeNo: 'box1-1' } };
    expect(sends(step(b, tombstoned, T0 + 10).effects).map((x) => x.up)).toEqual(['query']);
    // An error code the cloud never sends about an attempt is logged and changes nothing.
    const unknown: PaymentEvent = { type: 'cloudError', message: { v: 1, id: 'e2', ts: T0, code: 'ATTEMPT_UNKNOWN', message: 'unknown', outTradeNo: 'box1-1' } };
    expect(step(b, unknown, T0 + 10).effects.map((x) => x.kind)).toEqual(['log']);
  });

  it('after a restart a still-paying attempt past its deadline is cancelled, not re-paid', () => {
    const b = step(bookWithAttempt(), { type: 'paySent', outTradeNo: 'box1-1' }, T0 + 2).book;
    const a = attempt(b);
    const r = run({ ...b, online: false }, [
      [{ type: 'restart' }, a.deadline + 1_000],
      [{ type: 'linkUp' }, a.deadline + 1_001],
      [result(a, 'PAYING'), a.deadline + 1_002],
      [{ type: 'tick' }, a.deadline + 1_003],
    ]);
    expect(sends(r.effects, 'pay')).toEqual([]);
    expect(sends(r.effects, 'cancel')).toHaveLength(1);
    expect(attempt(r.book).state).toBe('CANCELLING');
  });

  it('lost results are re-asked: a query every recheck interval while online, none while offline', () => {
    const b = bookWithAttempt();
    const a = attempt(b);
    expect(sends(step(b, { type: 'tick' }, a.nextCheckAt).effects, 'query')).toHaveLength(1);
    const off = step(b, { type: 'linkDown' }, T0 + 2).book;
    expect(sends(step(off, { type: 'tick' }, a.nextCheckAt).effects, 'query')).toHaveLength(0);
    expect(nextWakeAt(off)).toBe(a.deadline);
  });

  it('second success for one sale: PAID once, the duplicate is logged, its refund applied silently', () => {
    const b = bookWithAttempt();
    const a1 = attempt(b);
    const r = run(b, [
      [{ type: 'tick' }, a1.deadline],
      [scan(ALIPAY), a1.deadline + 1],
      [result({ ...a1, outTradeNo: 'box1-2' }, 'SUCCESS'), a1.deadline + 2],
      [result(a1, 'SUCCESS'), a1.deadline + 3],
      [result(a1, 'REFUNDED', 'DUPLICATE_PAYMENT'), a1.deadline + 4],
    ]);
    expect(results(r.effects)).toEqual([expect.objectContaining({ outcome: 'PAID', outTradeNo: 'box1-2' })]);
    expect(only(r.effects, 'log').some((l) => l.fields.code === 'DUPLICATE_PAYMENT')).toBe(true);
    expect(attempt(r.book).state).toBe('REFUNDED');
    expect(r.book.sales[a1.saleId]).toMatchObject({ state: 'PAID', paidBy: 'box1-2' });
  });

  it('REVERSED → REFUNDED is applied without telling the ECR again; REVERSED → SUCCESS is refused', () => {
    const b = step(bookWithAttempt(), { type: 'ecrCancel', ref: 'R1' }, T0 + 5).book;
    const a = attempt(b);
    const rev = step(b, result(a, 'REVERSED'), T0 + 6).book;
    const refund = step(rev, result(a, 'REFUNDED', 'LATE_SUCCESS'), T0 + 7);
    expect(attempt(refund.book).state).toBe('REFUNDED');
    expect(results(refund.effects)).toEqual([]);
    const bad = step(rev, result(a, 'SUCCESS'), T0 + 8);
    expect(attempt(bad.book).state).toBe('REVERSED');
    expect(sends(bad.effects)).toEqual([]);
    expect(only(bad.effects, 'log')[0]).toMatchObject({ level: 'error', fields: expect.objectContaining({ code: 'ATTEMPT_CONFLICT' }) });
  });

  it('a stale PAYING never moves a cancelling attempt back; REVERSE_PENDING moves it on', () => {
    const b = step(bookWithAttempt(), { type: 'ecrCancel', ref: 'R1' }, T0 + 5).book;
    const a = attempt(b);
    expect(attempt(step(b, result(a, 'PAYING'), T0 + 6).book).state).toBe('CANCELLING');
    expect(attempt(step(b, result(a, 'REVERSE_PENDING'), T0 + 6).book).state).toBe('REVERSE_PENDING');
  });

  it('a result whose amount or sale differs from the journal, or for an unknown attempt, is ignored', () => {
    const b = bookWithAttempt();
    const wrong = step(b, result({ ...attempt(b), amount: 1 }, 'SUCCESS'), T0 + 5);
    expect(attempt(wrong.book).state).toBe('CREATED');
    expect(only(wrong.effects, 'log')[0]!.fields).toMatchObject({ code: 'ATTEMPT_CONFLICT' });
    // Not-charged answers too: the cloud echoes the amount in every result, a tombstone's included.
    for (const state of ['CANCELLED', 'FAILED', 'REVERSED'] as const) {
      const r = step(b, result({ ...attempt(b), amount: 1 }, state), T0 + 5);
      expect(attempt(r.book).state, state).toBe('CREATED');
      expect(r.effects.map((x) => (x.kind === 'log' ? x.fields.code : x.kind)), state).toEqual(['ATTEMPT_CONFLICT']);
    }
    const unknown = step(b, result({ ...attempt(b), outTradeNo: 'box1-99' }, 'SUCCESS'), T0 + 5);
    expect(unknown.effects.filter((e) => e.kind !== 'log')).toEqual([]);
  });

  it('a result line the ECR never got is written when its port is back, and marked delivered', () => {
    const paid = run(bookWithAttempt(), [[result(attempt(bookWithAttempt()), 'SUCCESS'), T0 + 5]]).book;
    const saleId = attempt(paid).saleId;
    expect(paid.sales[saleId]!.reported).toBe(false);
    expect(results(step(paid, { type: 'ecrReady' }, T0 + 6).effects)).toHaveLength(1);
    const done = step(paid, { type: 'ecrDelivered', saleId }, T0 + 6).book;
    expect(results(step(done, { type: 'ecrReady' }, T0 + 7).effects)).toHaveLength(0);
  });

  it('memory stays bounded over many sales', () => {
    let b = onlineBook();
    for (let i = 0; i < 200; i++) {
      const t = T0 + i * 10;
      b = run(b, [
        [sale(`S${i}`, 100), t],
        [scan({ wallet: 'wechat', code: `1345678901234${String(i).padStart(5, '0')}` }), t + 1],
      ]).book;
      const a = attempt(b, `box1-${i + 1}`);
      b = run(b, [
        [result(a, 'SUCCESS'), t + 2],
        [{ type: 'ecrDelivered', saleId: a.saleId }, t + 3],
      ]).book;
    }
    expect(Object.keys(b.sales).length).toBeLessThanOrEqual(65);
    expect(b.nextAttemptSeq).toBe(201);
  });
});
