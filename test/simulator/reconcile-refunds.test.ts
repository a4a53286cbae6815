import { describe, expect, it } from 'vitest';
import type { CloudRefundRecord, DeviceRefundRecord } from '../../protocol/index.js';
import { reconcile, type ReconcileInput } from '../../simulator/reconcile/reconcile.js';
import { cleanWorld } from './reconcile-fixtures.js';

/** boxA-1 (1000, SUCCESS) partly refunded at the register: 300 by boxA-r1, as every record should tell it. */
const T = 1_767_225_700_000;
const cloudRefund = (patch: Partial<CloudRefundRecord> = {}): CloudRefundRecord => ({
  refundId: 'boxA-r1', deviceId: 'boxA', refundRef: 'RF1', outTradeNo: 'boxA-1', amount: 300, currency: 'CNY', state: 'REFUNDED', reason: null, createdAt: T, updatedAt: T + 1, ...patch,
});
const boxRefund = (patch: Partial<DeviceRefundRecord> = {}): DeviceRefundRecord => ({
  refundId: 'boxA-r1', refundRef: 'RF1', saleRef: 'RboxA-s1', outTradeNo: 'boxA-1', amount: 300, currency: 'CNY', state: 'REFUNDED', reason: null, createdAt: T, updatedAt: T + 2, ...patch,
});

function world(opts: { ledgerRefunds?: Array<[string, number]>; cloud?: CloudRefundRecord[]; box?: DeviceRefundRecord[] } = {}): ReconcileInput {
  const w = cleanWorld();
  const seq = w.ledger.length;
  const refunds = (opts.ledgerRefunds ?? [['boxA-r1', 300]]).map(([refundNo, amount], i) => ({ seq: seq + i + 1, at: T + i, outTradeNo: 'boxA-1', kind: 'refund' as const, amount, currency: 'CNY' as const, refundNo }));
  return { ...w, ledger: [...w.ledger, ...refunds], cloudRefunds: opts.cloud ?? [cloudRefund()], deviceRefunds: [opts.box ?? [boxRefund()], []] };
}

const kinds = (input: ReconcileInput) => reconcile(input).mismatches.map((m) => m.kind);

describe('reconciliation of the registers’ refunds', () => {
  it('a partial refund told the same way by ledger, cloud and box reconciles: the SUCCESS keeps its amount, the totals net it out', () => {
    const r = reconcile(world());
    expect(r.mismatches).toEqual([]);
    expect(r.totals).toMatchObject({ refunds: 1, refunded: 1, refundedAmount: 300, ledgerNet: r.totals.paidSalesAmount - 300 });
  });

  it('a refund id refunded twice at the gateway is a DOUBLE_REFUND', () => {
    expect(kinds(world({ ledgerRefunds: [['boxA-r1', 300], ['boxA-r1', 300]] }))).toContain('DOUBLE_REFUND');
  });

  it('one register refund made into two refund ids is a DOUBLE_REFUND', () => {
    const box = [boxRefund(), boxRefund({ refundId: 'boxA-r2' })];
    const cloud = [cloudRefund(), cloudRefund({ refundId: 'boxA-r2' })];
    expect(kinds(world({ ledgerRefunds: [['boxA-r1', 300], ['boxA-r2', 300]], cloud, box }))).toContain('DOUBLE_REFUND');
  });

  it('REFUNDED in the cloud but never at the gateway, or at the gateway but unknown to the cloud, disagrees', () => {
    expect(kinds(world({ ledgerRefunds: [] }))).toContain('REFUND_DISAGREES');
    expect(kinds(world({ cloud: [] , box: [] }))).toContain('REFUND_DISAGREES');
  });

  it('a box and the cloud that ended a refund differently disagree; one still open is not final', () => {
    expect(kinds(world({ box: [boxRefund({ state: 'NOT_REFUNDED', reason: 'DECLINED' })] }))).toEqual(['REFUND_DISAGREES']);
    expect(kinds(world({ box: [boxRefund({ state: 'REQUESTED' })] }))).toEqual(['REFUND_NOT_FINAL']);
    expect(kinds(world({ cloud: [cloudRefund({ state: 'PENDING' })], ledgerRefunds: [], box: [boxRefund({ state: 'PENDING' })] }))).toContain('REFUND_NOT_FINAL');
  });

  it('a refund the cloud refused the message of (an older cloud) is fine on the box alone', () => {
    expect(kinds(world({ ledgerRefunds: [], cloud: [], box: [boxRefund({ state: 'NOT_REFUNDED', reason: 'CLOUD_REFUSED' })] }))).toEqual([]);
  });
});
