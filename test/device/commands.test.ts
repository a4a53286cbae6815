import { describe, expect, it } from 'vitest';
import { UNKNOWN } from '../../protocol/index.js';
import { decideCommand, readUnpairMark, refusesRefund, refusesSale, unpairProgress } from '../../device/commands.js';
import type { Book } from '../../device/payment.js';
import type { Refund } from '../../device/refund.js';
import { attempt, bookWithAttempt, onlineBook, result, run, sale, T0 } from './payment-fixtures.js';

/** The pure part of the cloud's commands on the box (device/commands.ts); books are made by the real payment step. */

const ecrDelivered = (book: Book, ref: string): Book => {
  const s = Object.values(book.sales).find((x) => x.ref === ref)!;
  return run(book, [[{ type: 'ecrDelivered', saleId: s.saleId }, T0 + 50]]).book;
};

describe('decideCommand', () => {
  const idle = { unpairing: false, lastHandled: null };
  it.each([
    ['resync', idle, { kind: 'resync' }],
    ['reboot', idle, { kind: 'reboot' }],
    ['unpair', idle, { kind: 'unpair' }],
    ['resync', { unpairing: true, lastHandled: null }, { kind: 'resync' }],
    ['reboot', { unpairing: true, lastHandled: null }, { kind: 'ignore', level: 'info' }],
    ['unpair', { unpairing: true, lastHandled: null }, { kind: 'ignore', level: 'info' }],
    ['reboot', { unpairing: false, lastHandled: 'cmd-1' }, { kind: 'ignore', level: 'info' }],
    [UNKNOWN, idle, { kind: 'ignore', level: 'warn' }],
  ] as const)('%s while %o → %o', (command, state, want) => {
    expect(decideCommand(command, 'cmd-1', state)).toMatchObject(want);
  });

  it('a command another id than the last one carried out is carried out', () => {
    expect(decideCommand('reboot', 'cmd-2', { unpairing: false, lastHandled: 'cmd-1' })).toEqual({ kind: 'reboot' });
  });

  it("an unknown command keeps the agent's words for it (read by support tools and tests)", () => {
    expect(decideCommand(UNKNOWN, 'cmd-1', { unpairing: false, lastHandled: null })).toMatchObject({ why: 'cloud command not supported by this agent; ignored' });
  });
});

describe('unpairProgress', () => {
  it('an empty book and an empty outbox: done at once', () => {
    expect(unpairProgress(onlineBook(), 0)).toEqual({ openAttempts: [], openRefunds: [], openSales: [], toClose: [], unreported: [], outboxDepth: 0, done: true });
  });

  it('a payment in flight: waited for, its sale is not closed', () => {
    const p = unpairProgress(bookWithAttempt(), 1);
    expect(p).toMatchObject({ openAttempts: ['box1-1'], openSales: ['R1'], toClose: [], done: false });
  });

  it('a sale waiting for a code (nothing in flight) is to be closed', () => {
    const b = run(onlineBook(), [[sale('W1'), T0]]).book;
    expect(unpairProgress(b, 0)).toMatchObject({ openAttempts: [], openSales: ['W1'], toClose: ['W1'], done: false });
  });

  it('a sale whose attempt failed waits for another code: it is to be closed', () => {
    const b0 = bookWithAttempt();
    const b = run(b0, [[result(attempt(b0), 'FAILED', 'INSUFFICIENT_FUNDS'), T0 + 10]]).book;
    expect(unpairProgress(b, 0)).toMatchObject({ openAttempts: [], toClose: ['R1'], done: false });
  });

  it('an attempt cancelling after its deadline is still open; its sale (waiting for a new code) is to be closed', () => {
    const b = run(bookWithAttempt(), [[{ type: 'tick' }, T0 + 61_000]]).book;
    expect(attempt(b).state).toBe('CANCELLING');
    expect(unpairProgress(b, 1)).toMatchObject({ openAttempts: ['box1-1'], toClose: ['R1'], done: false });
  });

  it('paid, but the result line not written or the ack not delivered: not done; both: done', () => {
    const b0 = bookWithAttempt();
    const paid = run(b0, [[result(attempt(b0), 'SUCCESS', 'PAID'), T0 + 10]]).book;
    expect(unpairProgress(paid, 0)).toMatchObject({ openAttempts: [], openSales: [], unreported: ['R1'], done: false });
    const told = ecrDelivered(paid, 'R1');
    expect(unpairProgress(told, 1)).toMatchObject({ unreported: [], outboxDepth: 1, done: false });
    expect(unpairProgress(told, 0).done).toBe(true);
  });

  it('a refund the register asked for is money in flight too: waited for until final, and until its result line is written', () => {
    const refund = (state: Refund['state'], reported: boolean): Book => {
      const r: Refund = {
        ...{ refundId: 'box1-r1', refundRef: 'RF1', saleId: null, saleRef: null, outTradeNo: 'box9-1', amount: 100, currency: 'CNY', wallet: 'wechat' },
        ...{ state, reason: null, refundedTotal: null, remaining: null, createdAt: T0, updatedAt: T0, nextCheckAt: T0, reported },
      };
      return { ...onlineBook(), refunds: { [r.refundId]: r } };
    };
    expect(unpairProgress(refund('PENDING', false), 0)).toMatchObject({ openRefunds: ['box1-r1'], done: false });
    expect(unpairProgress(refund('REFUNDED', false), 0)).toMatchObject({ openRefunds: [], unreported: ['RF1'], done: false });
    expect(unpairProgress(refund('NOT_REFUNDED', true), 0)).toMatchObject({ openRefunds: [], unreported: [], done: true });
  });

  it('an attempt the cloud is still reversing (REVERSE_PENDING) keeps the unpair waiting', () => {
    const b0 = run(bookWithAttempt(), [[{ type: 'ecrCancel', ref: 'R1' }, T0 + 5]]).book;
    const b = run(b0, [[result(attempt(b0), 'REVERSE_PENDING'), T0 + 10]]).book;
    expect(attempt(b).state).toBe('REVERSE_PENDING');
    expect(unpairProgress(b, 0)).toMatchObject({ openAttempts: ['box1-1'], openSales: ['R1'], toClose: [], done: false });
  });
});

describe('refusesSale', () => {
  it('refuses a ref the box has no sale for, answers one it has (open or final) as always', () => {
    const b = bookWithAttempt();
    expect(refusesSale(b, 'NEW-1')).toBe(true);
    expect(refusesSale(b, 'R1')).toBe(false);
  });
});

describe('refusesRefund', () => {
  it('refuses a new refund while unpairing; a refund line it already took is answered as always', () => {
    const b = bookWithAttempt();
    const withRefund = { ...b, refunds: { 'box1-r1': { refundRef: 'RF-1' } as Book['refunds'][string] } };
    expect(refusesRefund(withRefund, 'RF-2')).toBe(true);
    expect(refusesRefund(withRefund, 'RF-1')).toBe(false);
  });
});

describe('readUnpairMark', () => {
  it("reads this box's mark; another identity's, a partial one or garbage is no unpair", () => {
    const mark = { id: 'cmd-1', deviceId: 'box1', deadline: T0 };
    expect(readUnpairMark(JSON.stringify(mark), 'box1')).toEqual(mark);
    expect(readUnpairMark(JSON.stringify(mark), 'box2')).toBeNull();
    expect(readUnpairMark(JSON.stringify({ id: 'cmd-1', deviceId: 'box1' }), 'box1')).toBeNull();
    expect(readUnpairMark('{not json', 'box1')).toBeNull();
    expect(readUnpairMark(null, 'box1')).toBeNull();
  });
});
