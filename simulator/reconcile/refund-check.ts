import { REFUND_ID_PATTERN, type CloudRefundRecord, type DeviceRefundRecord } from '../../protocol/index.js';
import type { LedgerEntry } from '../gateway/ledger.js';
import type { Mismatch } from './reconcile.js';

/**
 * The refunds the cash registers asked for, told three ways: the gateway's ledger (a refund entry
 * under the refund id), the cloud's refunds and each box's journal. Every refund id is refunded at
 * most once, every final REFUNDED refund is on the ledger with its amount and nothing else is, and
 * each box ends up agreeing with the cloud on how each of its refunds ended.
 */
export interface RefundInput {
  ledger: readonly LedgerEntry[];
  cloudRefunds: readonly CloudRefundRecord[];
  deviceRefunds: readonly DeviceRefundRecord[];
}

/** What the register's refunds took back per outTradeNo, by the cloud's account (REFUNDED only). */
export function refundedByCloud(cloudRefunds: readonly CloudRefundRecord[]): Map<string, number> {
  const by = new Map<string, number>();
  for (const r of cloudRefunds) if (r.state === 'REFUNDED') by.set(r.outTradeNo, (by.get(r.outTradeNo) ?? 0) + r.amount);
  return by;
}

export function checkRefunds(input: RefundInput, mismatches: Mismatch[]): { refunds: number; refunded: number; refundedAmount: number } {
  const onLedger = new Map<string, LedgerEntry[]>();
  for (const e of input.ledger) {
    if (e.kind !== 'refund' || !e.refundNo || !REFUND_ID_PATTERN.test(e.refundNo)) continue;
    onLedger.set(e.refundNo, [...(onLedger.get(e.refundNo) ?? []), e]);
  }
  const cloud = new Map(input.cloudRefunds.map((r) => [r.refundId, r]));
  for (const [refundNo, entries] of onLedger) {
    const at = { outTradeNo: entries[0]!.outTradeNo, detail: '' };
    if (entries.length > 1) mismatches.push({ kind: 'DOUBLE_REFUND', ...at, detail: `refund ${refundNo} is on the gateway ledger ${entries.length} times` });
    const c = cloud.get(refundNo);
    const amount = entries.reduce((sum, e) => sum + e.amount, 0);
    if (!c) mismatches.push({ kind: 'REFUND_DISAGREES', ...at, detail: `refund ${refundNo} (${amount}) on the gateway ledger is unknown to the cloud` });
    else if (c.state !== 'REFUNDED' || c.amount !== amount) mismatches.push({ kind: 'REFUND_DISAGREES', ...at, detail: `refund ${refundNo}: cloud ${c.state} ${c.amount}, gateway refunded ${amount}` });
  }
  for (const c of input.cloudRefunds) {
    const at = { outTradeNo: c.outTradeNo };
    if (c.state === 'PENDING') mismatches.push({ kind: 'REFUND_NOT_FINAL', ...at, detail: `cloud refund ${c.refundId} is still PENDING` });
    if (c.state === 'REFUNDED' && !onLedger.has(c.refundId)) mismatches.push({ kind: 'REFUND_DISAGREES', ...at, detail: `cloud says refund ${c.refundId} is REFUNDED; the gateway never refunded it` });
  }
  checkBoxes(input, cloud, mismatches);
  const refunded = input.cloudRefunds.filter((r) => r.state === 'REFUNDED');
  return { refunds: input.cloudRefunds.length, refunded: refunded.length, refundedAmount: refunded.reduce((sum, r) => sum + r.amount, 0) };
}

/** Every box refund is final, known to the cloud (unless the cloud refused the message), and ended the same way. */
function checkBoxes(input: RefundInput, cloud: Map<string, CloudRefundRecord>, mismatches: Mismatch[]): void {
  const refs = new Map<string, string>();
  for (const d of input.deviceRefunds) {
    const at = { outTradeNo: d.outTradeNo };
    const c = cloud.get(d.refundId);
    if (d.state === 'REQUESTED' || d.state === 'PENDING') mismatches.push({ kind: 'REFUND_NOT_FINAL', ...at, detail: `box refund ${d.refundId} is still ${d.state}` });
    else if (!c) {
      if (d.reason !== 'CLOUD_REFUSED') mismatches.push({ kind: 'REFUND_DISAGREES', ...at, detail: `box refund ${d.refundId} (${d.state}) is unknown to the cloud` });
    } else if ((d.state === 'REFUNDED') !== (c.state === 'REFUNDED')) {
      mismatches.push({ kind: 'REFUND_DISAGREES', ...at, detail: `refund ${d.refundId}: box ${d.state}, cloud ${c.state}` });
    }
    const key = `${d.refundId.replace(REFUND_ID_PATTERN, '$1')}\u0000${d.refundRef}`;
    const other = refs.get(key);
    if (other) mismatches.push({ kind: 'DOUBLE_REFUND', ...at, detail: `register refund ${d.refundRef} became two refunds: ${other} and ${d.refundId}` });
    refs.set(key, d.refundId);
  }
}
