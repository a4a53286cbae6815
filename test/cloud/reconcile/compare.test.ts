import { describe, expect, it } from 'vitest';
import type { Attempt } from '../../../cloud/payments/transaction.js';
import type { BillRow } from '../../../cloud/reconcile/bill-rows.js';
import { compare, reconcileRefundNo, type Finding } from '../../../cloud/reconcile/compare.js';
import { businessDay } from '../../../cloud/reconcile/day.js';

/**
 * compare.ts on hand-built rows: every kind of finding, the netting over charge / refund / reverse
 * rows, the day's edges (Beijing midnight), and what is none of a channel's business.
 */
const DAY = businessDay('2026-01-01')!;
const NOON = DAY.start + 12 * 3_600_000;
const CH = 'wechat';

function row(kind: BillRow['kind'], outTradeNo: string, amount: number, patch: Partial<BillRow> = {}): BillRow {
  return { channel: CH, wallet: 'wechat', outTradeNo, walletTradeNo: `wx-${outTradeNo}`, kind, amount, at: NOON, merchantId: 'M1', ...patch };
}

function att(outTradeNo: string, patch: Partial<Attempt> = {}): Attempt {
  return {
    outTradeNo, deviceId: outTradeNo.slice(0, outTradeNo.lastIndexOf('-')), merchantId: 'M1', channel: CH, saleId: `sale-${outTradeNo}`, saleRef: null,
    amount: 1234, currency: 'CNY', wallet: 'wechat', state: 'SUCCESS', reason: null, createdAt: NOON - 5_000, updatedAt: NOON,
    payAt: NOON, deadlineAt: null, nextAt: null, step: null, inFlight: null, callSeq: 1, tries: 0, cancelReason: null,
    gatewayTradeNo: `wx-${outTradeNo}`, charged: 1234, walletPaidAt: NOON, buyerPaid: 1234, discount: 0, flag: null, ackedState: 'SUCCESS', version: 3,
    ...patch,
  };
}

const run = (rows: BillRow[], attempts: Attempt[]) => compare({ channel: CH, day: DAY, rows, attempts });
const brief = (f: Finding) => ({ kind: f.kind, outTradeNo: f.outTradeNo, amount: f.amount, state: f.state });

describe('compare: both sides agree', () => {
  it('a SUCCESS paid on the day and charged once for its amount is ok, and nothing else is said', () => {
    expect(run([row('charge', 'sbA-1', 1234)], [att('sbA-1')])).toEqual({ findings: [], ok: 1 });
  });

  it('an attempt that failed here and was never charged, or charged and reversed / refunded by us, is ok', () => {
    const r = run(
      [row('charge', 'sbA-2', 1234), row('reverse', 'sbA-2', 1234), row('charge', 'sbA-3', 1234), row('refund', 'sbA-3', 1234, { refundNo: 'sbA-3-R' })],
      [att('sbA-1', { state: 'FAILED', walletPaidAt: null }), att('sbA-2', { state: 'REVERSED' }), att('sbA-3', { state: 'REFUNDED' })],
    );
    expect(r).toEqual({ findings: [], ok: 3 });
  });

  it("a refund today of an earlier day's sale that this cloud refunded is ok (only the refund row is on today's bill)", () => {
    const earlier = att('sbA-1', { state: 'REFUNDED', createdAt: DAY.start - 86_400_000, walletPaidAt: DAY.start - 86_000_000 });
    expect(run([row('refund', 'sbA-1', 1234, { refundNo: 'sbA-1-R' })], [earlier])).toEqual({ findings: [], ok: 1 });
  });

  it("the reconciliation's own refund (…-RC) of a charge nobody kept settles it: ok", () => {
    expect(run([row('charge', 'sbA-1', 1234), row('refund', 'sbA-1', 1234, { refundNo: reconcileRefundNo('sbA-1') })], [att('sbA-1', { state: 'FAILED' })])).toEqual({ findings: [], ok: 1 });
  });

  it('no attempt here, charged and reversed there on the same day: nothing stays, nothing to say', () => {
    expect(run([row('charge', 'sbZ-1', 500), row('reverse', 'sbZ-1', 500)], [])).toEqual({ findings: [], ok: 1 });
  });

  it('an empty bill and no attempts: nothing at all', () => {
    expect(run([], [])).toEqual({ findings: [], ok: 0 });
  });
});

describe('compare: charged_not_success', () => {
  for (const state of ['FAILED', 'CANCELLED', 'REVERSED'] as const) {
    it(`charged there, ${state} here: the net kept there is the finding's amount`, () => {
      const r = run([row('charge', 'sbA-1', 1234)], [att('sbA-1', { state })]);
      expect(r.findings.map(brief)).toEqual([{ kind: 'charged_not_success', outTradeNo: 'sbA-1', amount: 1234, state }]);
      expect(r.findings[0]).toMatchObject({ merchantId: 'M1', here: 1234, there: { walletTradeNo: 'wx-sbA-1', charges: [1234], refunds: [], reversed: 0, net: 1234 } });
      expect(r.ok).toBe(0);
    });
  }

  it('nets charge, refunds and reversals per outTradeNo: 1000 charged, 300 refunded → 700 kept', () => {
    const r = run([row('charge', 'sbA-1', 1000), row('refund', 'sbA-1', 300, { refundNo: 'sbA-1-RC' })], [att('sbA-1', { state: 'FAILED', amount: 1000 })]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'charged_not_success', outTradeNo: 'sbA-1', amount: 700, state: 'FAILED' }]);
  });

  it('no attempt of this channel: the finding names the merchant the bill names, and no state', () => {
    const r = run([row('charge', 'sbZ-1', 800, { merchantId: 'M7' })], []);
    expect(r.findings).toEqual([expect.objectContaining({ kind: 'charged_not_success', outTradeNo: 'sbZ-1', amount: 800, state: null, merchantId: 'M7', here: null })]);
    expect(r.findings[0]!.detail).toContain('no attempt');
  });

  it('an attempt still in progress here (a day later) is said to be, so nobody acts on it as on a finished one', () => {
    for (const state of ['PAYING', 'REFUND_PENDING', 'REVERSE_PENDING'] as const) {
      const [f] = run([row('charge', 'sbA-1', 1234)], [att('sbA-1', { state })]).findings;
      expect(f).toMatchObject({ kind: 'charged_not_success', state, amount: 1234 });
      expect(f!.detail).toContain('still working');
    }
  });
});

describe('compare: success_not_charged', () => {
  it('SUCCESS here, paid on the day, absent from the bill', () => {
    const r = run([], [att('sbA-1')]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'success_not_charged', outTradeNo: 'sbA-1', amount: 1234, state: 'SUCCESS' }]);
    expect(r.findings[0]!.there).toBeNull();
    expect(r.ok).toBe(0);
  });

  it('SUCCESS here, charged and reversed there: netted to nothing', () => {
    const r = run([row('charge', 'sbA-1', 1234), row('reverse', 'sbA-1', 1234)], [att('sbA-1')]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'success_not_charged', outTradeNo: 'sbA-1', amount: 1234, state: 'SUCCESS' }]);
  });

  it('SUCCESS with no wallet time is expected on the day it was created', () => {
    expect(run([], [att('sbA-1', { walletPaidAt: null })]).findings.map((f) => f.kind)).toEqual(['success_not_charged']);
  });
});

describe("compare: the day's edges (Beijing midnight)", () => {
  it('created at 23:59:59 the day before, paid 00:00:01 on the day: matched with its charge, ok', () => {
    const early = att('sbA-1', { createdAt: DAY.start - 1_000, walletPaidAt: DAY.start + 1_000 });
    expect(run([row('charge', 'sbA-1', 1234, { at: DAY.start + 1_000 })], [early])).toEqual({ findings: [], ok: 1 });
  });

  it('created at 23:59:59 on the day, paid after midnight: it is the next bill\'s, not missing from this one', () => {
    const late = att('sbA-1', { createdAt: DAY.end - 1_000, walletPaidAt: DAY.end + 2_000 });
    expect(run([], [late])).toEqual({ findings: [], ok: 0 });
  });

  it("the day before's SUCCESS (in the margin) is not expected in this bill", () => {
    expect(run([], [att('sbA-1', { createdAt: DAY.start - 30_000, walletPaidAt: DAY.start - 20_000 })])).toEqual({ findings: [], ok: 0 });
  });

  it('the first and the last second of the day are on the day', () => {
    expect(run([], [att('sbA-1', { walletPaidAt: DAY.start }), att('sbA-2', { walletPaidAt: DAY.end - 1 })]).findings.map((f) => f.outTradeNo)).toEqual(['sbA-1', 'sbA-2']);
  });
});

describe('compare: amount_mismatch', () => {
  it('both say charged, for different amounts: the amount is what the wallet kept', () => {
    const r = run([row('charge', 'sbA-1', 1221)], [att('sbA-1')]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'amount_mismatch', outTradeNo: 'sbA-1', amount: 1221, state: 'SUCCESS' }]);
    expect(r.findings[0]!.detail).toBe('12.34 here, 12.21 charged there');
  });
});

describe('compare: refunds on one side only', () => {
  it('SUCCESS here, a refund there this cloud did not make (a merchant portal refund)', () => {
    const r = run([row('charge', 'sbA-1', 1234), row('refund', 'sbA-1', 500, { refundNo: 'PORTAL-9' })], [att('sbA-1')]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'refund_only_there', outTradeNo: 'sbA-1', amount: 500, state: 'SUCCESS' }]);
    expect(r.findings[0]!.detail).toContain('PORTAL-9');
  });

  it("SUCCESS here, a refund today of an earlier day's charge", () => {
    const earlier = att('sbA-1', { createdAt: DAY.start - 86_400_000, walletPaidAt: DAY.start - 86_000_000 });
    expect(run([row('refund', 'sbA-1', 1234, { refundNo: 'PORTAL-1' })], [earlier]).findings.map((f) => f.kind)).toEqual(['refund_only_there']);
  });

  it('a refund of an order unknown here', () => {
    const r = run([row('refund', 'sbZ-1', 300, { refundNo: 'X1' })], []);
    expect(r.findings.map(brief)).toEqual([{ kind: 'refund_only_there', outTradeNo: 'sbZ-1', amount: 300, state: null }]);
  });

  it('REFUNDED here, the bill still keeps the money', () => {
    const r = run([row('charge', 'sbA-1', 1234)], [att('sbA-1', { state: 'REFUNDED' })]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'refund_only_here', outTradeNo: 'sbA-1', amount: 1234, state: 'REFUNDED' }]);
  });
});

describe('compare: duplicate', () => {
  it('one outTradeNo charged twice in the bill: the extra charge is the amount; FAILED here it is also kept for nothing', () => {
    const r = run([row('charge', 'sbA-1', 1234), row('charge', 'sbA-1', 1234)], [att('sbA-1', { state: 'FAILED' })]);
    expect(r.findings.map(brief)).toEqual([
      { kind: 'charged_not_success', outTradeNo: 'sbA-1', amount: 2468, state: 'FAILED' },
      { kind: 'duplicate', outTradeNo: 'sbA-1', amount: 1234, state: 'FAILED' },
    ]);
  });

  it('charged twice, SUCCESS once here: a duplicate, not also an amount mismatch', () => {
    expect(run([row('charge', 'sbA-1', 1234), row('charge', 'sbA-1', 1234)], [att('sbA-1')]).findings.map((f) => f.kind)).toEqual(['duplicate']);
  });

  it('two SUCCESS attempts for one sale: the later one is the duplicate, naming the first', () => {
    const first = att('sbA-1', { saleId: 'S9', createdAt: NOON - 9_000 });
    const second = att('sbA-2', { saleId: 'S9', createdAt: NOON - 1_000 });
    const r = run([row('charge', 'sbA-1', 1234), row('charge', 'sbA-2', 1234)], [second, first]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'duplicate', outTradeNo: 'sbA-2', amount: 1234, state: 'SUCCESS' }]);
    expect(r.findings[0]!.detail).toContain('sbA-1');
    expect(r.ok).toBe(1);
  });

  it('the same saleId on two boxes, two sales of one box, or a FAILED second try are not duplicates', () => {
    const r = run(
      [row('charge', 'sbA-1', 1234), row('charge', 'sbB-1', 1234), row('charge', 'sbA-2', 1234)],
      [att('sbA-1', { saleId: 'S1' }), att('sbB-1', { saleId: 'S1' }), att('sbA-2', { saleId: 'S2' }), att('sbA-3', { saleId: 'S2', state: 'FAILED', walletPaidAt: null })],
    );
    expect(r).toEqual({ findings: [], ok: 4 });
  });

  it("a sale's second SUCCESS paid the day before is that day's finding, not this one's", () => {
    const first = att('sbA-1', { saleId: 'S9', createdAt: DAY.start - 60_000, walletPaidAt: DAY.start - 59_000 });
    const second = att('sbA-2', { saleId: 'S9', createdAt: DAY.start - 30_000, walletPaidAt: DAY.start - 29_000 });
    expect(run([], [first, second]).findings).toEqual([]);
  });
});

describe("compare: another channel's rows and attempts are not this channel's business", () => {
  it("attempts of another channel are neither expected nor matched; another channel's rows are ignored", () => {
    const other = att('sbA-1', { channel: 'alipay', wallet: 'alipay' });
    const r = run([row('charge', 'sbA-1', 1234), row('charge', 'sbA-9', 999, { channel: 'alipay' })], [other, att('sbA-2', { channel: 'alipay', wallet: 'alipay' })]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'charged_not_success', outTradeNo: 'sbA-1', amount: 1234, state: null }]);
    expect(r.ok).toBe(0);
  });
});

describe('compare: several at once', () => {
  it('findings come ordered by outTradeNo, and ok counts every other order looked at', () => {
    const r = run(
      [row('charge', 'sbA-3', 1234), row('charge', 'sbA-1', 1234), row('charge', 'sbA-4', 1234), row('charge', 'sbA-5', 1000)],
      [att('sbA-1', { state: 'FAILED' }), att('sbA-2'), att('sbA-3'), att('sbA-4'), att('sbA-5'), att('sbA-6', { state: 'FAILED', walletPaidAt: null })],
    );
    expect(r.findings.map((f) => `${f.outTradeNo}:${f.kind}`)).toEqual(['sbA-1:charged_not_success', 'sbA-2:success_not_charged', 'sbA-5:amount_mismatch']);
    expect(r.ok).toBe(3);
  });
});
