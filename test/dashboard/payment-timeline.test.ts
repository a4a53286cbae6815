import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { paymentView, timeline, type PaymentView } from '../../cloud/dashboard/payment-timeline.js';
import type { Refund } from '../../cloud/refunds/refund-machine.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import type { RefundEventRow } from '../../cloud/store/store.js';
import { tempDir } from '../cloud/harness.js';
import { attempt, write } from '../conformance/store.js';

/**
 * A payment's timeline for support: each register refund's recorded transitions (refund_events) in
 * place of what its row alone could say, merged with the attempt's and the operators', oldest first;
 * a refund recorded before that history existed still shows what its row says.
 */
function refund(refundId: string, patch: Partial<Refund> = {}): Refund {
  return {
    refundId, deviceId: 'sbA', merchantId: 'M1', storeId: 'S1', outTradeNo: 'sbA-1', refundRef: `RF-${refundId}`, wallet: 'wechat', channel: 'wechat',
    amount: 300, saleTotal: 1_000, currency: 'CNY', state: 'PENDING', reason: null, message: null, createdAt: 10, updatedAt: 10, finalAt: null,
    tries: 0, nextAt: null, inFlight: false, callSeq: 0, flagged: false, version: 1, ...patch,
  };
}

let seq = 0;
const event = (refundId: string, at: number, e: string, from: RefundEventRow['fromState'], to: RefundEventRow['toState'], note: string): RefundEventRow => ({
  seq: ++seq, refundId, outTradeNo: 'sbA-1', at, event: e, fromState: from, toState: to, note,
});

describe('the payment timeline', () => {
  const view: PaymentView = {
    attempt: attempt('sbA-1', { state: 'SUCCESS' }),
    events: [
      { seq: 1, outTradeNo: 'sbA-1', at: 1, event: 'pay', fromState: null, toState: 'PAYING', note: 'pay sent' },
      { seq: 2, outTradeNo: 'sbA-1', at: 2, event: 'gateway', fromState: 'PAYING', toState: 'SUCCESS', note: 'paid' },
    ],
    refunds: [
      refund('sbA-r1', { state: 'REFUNDED', tries: 1, finalAt: 21, updatedAt: 21, flagged: true }),
      // Recorded before refund_events: no history, only its row.
      refund('sbA-r0', { amount: 100, state: 'FAILED', reason: 'DECLINED', message: 'NOTENOUGH', createdAt: 5, updatedAt: 6, finalAt: 6 }),
    ],
    refundEvents: [
      event('sbA-r1', 10, 'request', null, 'PENDING', 'taken (ref RF-sbA-r1)'),
      event('sbA-r1', 11, 'start', 'PENDING', 'PENDING', 'taken: refund'),
      event('sbA-r1', 12, 'outcome', 'PENDING', 'PENDING', 'refund retry_later (SYSTEMERROR): again in 60000 ms (1); pending 2 ms: flagged for an operator'),
      event('sbA-r1', 20, 'operator', 'PENDING', 'PENDING', 'retry now: made due at once by an operator'),
      event('sbA-r1', 20, 'tick', 'PENDING', 'PENDING', 'tick: retry'),
      event('sbA-r1', 21, 'outcome', 'PENDING', 'REFUNDED', 'refunded'),
    ],
    findings: [],
    actions: [
      { id: 1, at: 20, operator: 'alice', action: 'retry_now', subjectKind: 'refund', subjectId: 'sbA-r1', subjectState: 'PENDING', note: 'merchant on the phone', outcome: 'done' },
    ],
  };

  it('shows every transition of a refund with its note, in order among the attempt’s and the operators’', () => {
    expect(timeline(view).map((e) => [e.at, e.kind, e.what, e.detail])).toEqual([
      [1, 'event', '— → PAYING', 'pay: pay sent'],
      [2, 'event', 'PAYING → SUCCESS', 'gateway: paid'],
      [5, 'refund', 'register refund sbA-r0 asked (1.00 CNY)', 'ref RF-sbA-r0'],
      [6, 'refund', 'register refund sbA-r0 FAILED', 'DECLINED: NOTENOUGH'],
      [10, 'refund', 'register refund sbA-r1 asked (3.00 CNY): — → PENDING', 'request: taken (ref RF-sbA-r1)'],
      [11, 'refund', 'register refund sbA-r1: PENDING → PENDING', 'start: taken: refund'],
      [12, 'refund', 'register refund sbA-r1: PENDING → PENDING', 'outcome: refund retry_later (SYSTEMERROR): again in 60000 ms (1); pending 2 ms: flagged for an operator'],
      [20, 'refund', 'register refund sbA-r1: PENDING → PENDING', 'operator: retry now: made due at once by an operator'],
      [20, 'refund', 'register refund sbA-r1: PENDING → PENDING', 'tick: tick: retry'],
      [20, 'operator', 'alice: retry now sbA-r1', 'done — merchant on the phone'],
      [21, 'refund', 'register refund sbA-r1: PENDING → REFUNDED', 'outcome: refunded'],
    ]);
  });

  it('a refund with a history is not also summed up from its row (no second "asked", no "still PENDING")', () => {
    const pending = { ...view, refunds: [refund('sbA-r1', { tries: 1, flagged: true, updatedAt: 12 })], refundEvents: view.refundEvents.slice(0, 3), actions: [] };
    const whats = timeline(pending).map((e) => e.what);
    expect(whats.filter((w) => w.includes('sbA-r1'))).toEqual([
      'register refund sbA-r1 asked (3.00 CNY): — → PENDING',
      'register refund sbA-r1: PENDING → PENDING',
      'register refund sbA-r1: PENDING → PENDING',
    ]);
    // Without its history the same refund is summed up from its row, flag and all.
    expect(timeline({ ...pending, refundEvents: [] }).map((e) => e.what)).toContain('register refund sbA-r1 still PENDING (flagged)');
  });
});

describe('paymentView', () => {
  let dir: string;
  let remove: () => void;
  let store: SqliteStore;
  beforeEach(() => {
    ({ dir, remove } = tempDir());
    store = new SqliteStore(join(dir, 'timeline.db'));
  });
  afterEach(async () => {
    await store.close();
    remove();
  });

  it("reads the payment's refund history from the store: the request and each write that carried an event", async () => {
    await store.addMerchant('M1', {}, 1);
    await store.createPairingCode({ code: 'TLCODE0001', merchantId: 'M1', storeId: 'S1', createdAt: 1, expiresAt: 1_000 });
    await store.redeemPairingCode('TLCODE0001', 'hw-a', 2, { deviceId: 'sbA', secretHash: 'h', firmware: '1.0.0' });
    await store.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS', step: null, inFlight: null, charged: 100 }), 0)]);
    const r = (await store.requestRefund({ refundId: 'sbA-r1', deviceId: 'sbA', refundRef: 'RF1', outTradeNo: 'sbA-1', amount: 40, currency: 'CNY', at: 10 })).refund;
    await store.writeRefund({ ...r, state: 'FAILED', reason: 'DECLINED', message: 'NOTENOUGH', finalAt: 11, updatedAt: 11 }, 1, undefined, { event: 'outcome', note: 'the wallet declined: NOTENOUGH (balance)' });
    const v = (await paymentView(store, 'sbA-1'))!;
    expect(v.refundEvents.map((e) => [e.event, e.fromState, e.toState])).toEqual([
      ['request', null, 'PENDING'],
      ['outcome', 'PENDING', 'FAILED'],
    ]);
    expect(timeline(v).filter((e) => e.kind === 'refund').map((e) => [e.at, e.what, e.detail])).toEqual([
      [10, 'register refund sbA-r1 asked (0.40 CNY): — → PENDING', 'request: taken (ref RF1)'],
      [11, 'register refund sbA-r1: PENDING → FAILED', 'outcome: the wallet declined: NOTENOUGH (balance)'],
    ]);
  });
});
