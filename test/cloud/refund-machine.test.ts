import { describe, expect, it } from 'vitest';
import { FINAL_REFUND_STATES } from '../../protocol/index.js';
import type { RefundOutcome } from '../../cloud/gateway/gateway.js';
import { refundTransition, refundWakeAt, type Refund, type RefundContext, type RefundEvent } from '../../cloud/refunds/refund-machine.js';

/** The refund machine alone: no store, no clock, no network — every event from every state. */
const T0 = 1_000_000;
const config = { retryMs: 1_000, retryMaxMs: 8_000, flagAfterMs: 600_000 };
const ctx = (now = T0, random = () => 0.5): RefundContext => ({ now, config, random });

function refund(patch: Partial<Refund> = {}): Refund {
  return {
    refundId: 'sbA-r1', deviceId: 'sbA', merchantId: 'M1', storeId: 'S1', outTradeNo: 'sbA-7', refundRef: 'RF1', wallet: 'wechat', channel: 'wechat-a',
    amount: 300, saleTotal: 1_000, currency: 'CNY', state: 'PENDING', reason: null, message: null, createdAt: T0, updatedAt: T0, finalAt: null,
    tries: 0, nextAt: null, inFlight: false, callSeq: 0, flagged: false, version: 1, ...patch,
  };
}
const out = (seq: number, outcome: RefundOutcome): RefundEvent => ({ type: 'outcome', seq, outcome });
const REFUNDED: RefundOutcome = { kind: 'refunded', refundNo: 'sbA-r1' };
const FAILED: RefundOutcome = { kind: 'failed', reason: 'DECLINED', message: 'NOTENOUGH' };
const UNKNOWN: RefundOutcome = { kind: 'unknown', code: 'TIMEOUT', message: 'refund timed out after 10000 ms' };
const RETRY: RefundOutcome = { kind: 'retry_later', message: 'please retry' };
const calling = (seq: number, patch: Partial<Refund> = {}) => refund({ inFlight: true, callSeq: seq, ...patch });

describe('refund machine: a PENDING refund', () => {
  it('taken: calls the wallet with the refund id as refund number, the payment’s channel, merchant and total', () => {
    const t = refundTransition(refund(), { type: 'start' }, ctx());
    expect(t.changed).toBe(true);
    expect(t.refund).toMatchObject({ state: 'PENDING', inFlight: true, callSeq: 1, nextAt: null });
    expect(t.effects).toEqual([
      { type: 'gateway', seq: 1, req: { outTradeNo: 'sbA-7', wallet: 'wechat', merchant: 'M1', channel: 'wechat-a', refundNo: 'sbA-r1', amount: 300, total: 1_000, currency: 'CNY' } },
    ]);
  });

  it('a payment recorded before channels refunds on its wallet’s channel; a total unknown is the amount', () => {
    const t = refundTransition(refund({ channel: null, saleTotal: null }), { type: 'start' }, ctx());
    expect(t.effects[0]).toMatchObject({ req: { channel: 'wechat', total: 300 } });
  });

  it('refunded → REFUNDED, final now, the box is told', () => {
    const t = refundTransition(calling(1, { message: 'unknown (TIMEOUT)' }), out(1, REFUNDED), ctx(T0 + 5));
    expect(t.refund).toMatchObject({ state: 'REFUNDED', reason: null, inFlight: false, nextAt: null, finalAt: T0 + 5, updatedAt: T0 + 5, message: null });
    expect(t.effects).toEqual([{ type: 'result' }]);
  });

  it('failed → FAILED (DECLINED) with the wallet’s words, final now, the box is told', () => {
    const t = refundTransition(calling(1), out(1, FAILED), ctx(T0 + 5));
    expect(t.refund).toMatchObject({ state: 'FAILED', reason: 'DECLINED', message: 'NOTENOUGH', inFlight: false, nextAt: null, finalAt: T0 + 5 });
    expect(t.effects).toEqual([{ type: 'result' }]);
  });

  it.each([
    ['unknown', UNKNOWN],
    ['retry_later', RETRY],
  ] as const)('%s → still PENDING, the same refund number again after a growing, capped backoff', (_, o) => {
    const delays: number[] = [];
    let r = calling(1);
    for (let i = 0; i < 6; i++) {
      const t = refundTransition(r, out(r.callSeq, o), ctx(T0 + 1_000, () => 0.999));
      expect(t.refund).toMatchObject({ state: 'PENDING', inFlight: false, tries: i + 1, finalAt: null });
      expect(t.effects).toEqual([]);
      expect(t.refund.message).toContain(o.kind);
      delays.push(t.refund.nextAt! - (T0 + 1_000));
      // The retry is due: the same request again, with the next seq.
      const tick = refundTransition(t.refund, { type: 'tick' }, ctx(t.refund.nextAt!));
      expect(tick.effects).toEqual([{ type: 'gateway', seq: r.callSeq + 1, req: expect.objectContaining({ refundNo: 'sbA-r1', amount: 300 }) }]);
      r = tick.refund;
    }
    // Full jitter near its top: just under 1 s, 2 s, 4 s, then the 8 s cap.
    expect(delays).toEqual([999, 1_998, 3_996, 7_992, 7_992, 7_992]);
  });

  it('an outcome of another call (stale seq), or when no call is out, changes nothing', () => {
    for (const [r, e] of [
      [calling(2), out(1, REFUNDED)],
      [refund({ callSeq: 2, nextAt: T0 + 10 }), out(2, REFUNDED)],
    ] as const) {
      const t = refundTransition(r, e, ctx());
      expect(t).toMatchObject({ changed: false, effects: [], refund: r });
    }
  });

  it('tick: nothing while a call is out, nothing before the retry is due, the call when it is', () => {
    expect(refundTransition(calling(1), { type: 'tick' }, ctx(T0 + 10))).toMatchObject({ changed: false, effects: [] });
    const waiting = refund({ callSeq: 1, tries: 1, nextAt: T0 + 500 });
    expect(refundTransition(waiting, { type: 'tick' }, ctx(T0 + 499))).toMatchObject({ changed: false, effects: [] });
    expect(refundTransition(waiting, { type: 'tick' }, ctx(T0 + 500)).effects).toEqual([{ type: 'gateway', seq: 2, req: expect.objectContaining({ refundNo: 'sbA-r1' }) }]);
  });

  it('resumed after a restart with a call out: that call is retired (its late answer is stale) and the refund is asked again', () => {
    const t = refundTransition(calling(3), { type: 'start' }, ctx(T0 + 100));
    expect(t.refund).toMatchObject({ inFlight: true, callSeq: 5 });
    expect(t.effects).toEqual([{ type: 'gateway', seq: 5, req: expect.objectContaining({ refundNo: 'sbA-r1' }) }]);
    expect(refundTransition(t.refund, out(3, REFUNDED), ctx(T0 + 200))).toMatchObject({ changed: false });
    expect(refundTransition(t.refund, out(5, REFUNDED), ctx(T0 + 200)).refund.state).toBe('REFUNDED');
  });

  it('resumed while waiting for a retry: it keeps waiting; resumed past it: asked at once', () => {
    const waiting = refund({ callSeq: 1, tries: 1, nextAt: T0 + 500 });
    expect(refundTransition(waiting, { type: 'start' }, ctx(T0 + 10))).toMatchObject({ changed: false, effects: [] });
    expect(refundTransition(waiting, { type: 'start' }, ctx(T0 + 500)).effects).toEqual([{ type: 'gateway', seq: 2, req: expect.anything() }]);
  });
});

describe('refund machine: flagged for an operator', () => {
  const late = T0 + config.flagAfterMs;

  it('pending flagAfterMs: flagged once (the flag effect), and still retried', () => {
    const t = refundTransition(calling(4, { tries: 3 }), out(4, UNKNOWN), ctx(late));
    expect(t.refund).toMatchObject({ state: 'PENDING', flagged: true, tries: 4 });
    expect(t.effects).toEqual([{ type: 'flag' }]);
    const again = refundTransition(t.refund, { type: 'tick' }, ctx(t.refund.nextAt!));
    expect(again.effects).toEqual([{ type: 'gateway', seq: 5, req: expect.anything() }]);
    const more = refundTransition(again.refund, out(5, UNKNOWN), ctx(t.refund.nextAt! + 1));
    expect(more.effects).toEqual([]);
    expect(more.refund.flagged).toBe(true);
  });

  it('not before flagAfterMs', () => {
    const t = refundTransition(calling(1), out(1, UNKNOWN), ctx(late - 1));
    expect(t.refund.flagged).toBe(false);
    expect(t.effects).toEqual([]);
  });

  it('a tick at the flag time flags a refund waiting for a long retry, without calling early', () => {
    const waiting = refund({ callSeq: 1, tries: 9, nextAt: late + 30_000 });
    expect(refundWakeAt(waiting, config)).toBe(late);
    const t = refundTransition(waiting, { type: 'tick' }, ctx(late));
    expect(t.refund).toMatchObject({ flagged: true, nextAt: late + 30_000, inFlight: false });
    expect(t.effects).toEqual([{ type: 'flag' }]);
    expect(refundWakeAt(t.refund, config)).toBe(late + 30_000);
  });

  it('a refund resumed long after it was taken is flagged as it is asked again', () => {
    const t = refundTransition(calling(1), { type: 'start' }, ctx(late + 1));
    expect(t.effects.map((e) => e.type)).toEqual(['flag', 'gateway']);
  });

  it('a wallet that refunds at last ends it, flagged or not', () => {
    const t = refundTransition(calling(7, { flagged: true }), out(7, REFUNDED), ctx(late + 5));
    expect(t.refund).toMatchObject({ state: 'REFUNDED', flagged: true });
    expect(t.effects).toEqual([{ type: 'result' }]);
  });
});

describe('refund machine: final refunds', () => {
  const events: RefundEvent[] = [{ type: 'start' }, { type: 'tick' }, out(1, REFUNDED), out(1, FAILED), out(1, UNKNOWN), out(1, RETRY)];
  it.each(FINAL_REFUND_STATES)('%s: every event changes nothing and calls nobody', (state) => {
    for (const e of events) {
      const r = refund({ state, finalAt: T0, callSeq: 1, inFlight: state !== 'REFUSED', reason: state === 'REFUSED' ? 'EXCEEDS_REMAINING' : null });
      expect(refundTransition(r, e, ctx(T0 + config.flagAfterMs * 2)), `${state} ${e.type}`).toEqual({ refund: r, changed: false, effects: [], note: expect.any(String) });
      expect(refundWakeAt(r, config)).toBeNull();
    }
  });
});

describe('refund machine: when to wake', () => {
  it('a call out: never (its own timeout answers); waiting: its retry or its flag, whichever is first', () => {
    expect(refundWakeAt(calling(1), config)).toBeNull();
    expect(refundWakeAt(refund({ nextAt: T0 + 5 }), config)).toBe(T0 + 5);
    expect(refundWakeAt(refund({ nextAt: null }), config)).toBe(T0 + config.flagAfterMs);
    expect(refundWakeAt(refund({ nextAt: null, flagged: true }), config)).toBeNull();
  });
});
