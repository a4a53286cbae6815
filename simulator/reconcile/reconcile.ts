import {
  isCharged,
  isFinal,
  type AttemptState,
  type CloudAttemptRecord,
  type CloudRefundRecord,
  type DeviceAttemptRecord,
  type DeviceRefundRecord,
} from '../../protocol/index.js';
import { checkRefunds, refundedByCloud } from './refund-check.js';
import { netCharged, type LedgerEntry } from '../gateway/ledger.js';
import { compareOutTradeNo, deviceIdOf } from '../out-trade-no.js';

/**
 * Reconciliation: the gateway's ledger (what happened to the money), the cloud's attempts and each
 * box's journal must tell one story. Pure: it reads the three exports and reports every place they
 * disagree, naming the outTradeNo (or saleId) and the kind of mismatch.
 */
export interface ReconcileInput {
  ledger: readonly LedgerEntry[];
  cloud: readonly CloudAttemptRecord[];
  /** One array per box journal. */
  devices: ReadonlyArray<readonly DeviceAttemptRecord[]>;
  /** The registers' refunds, as the cloud and the boxes have them (none: no refund was asked). */
  cloudRefunds?: readonly CloudRefundRecord[];
  deviceRefunds?: ReadonlyArray<readonly DeviceRefundRecord[]>;
}

export const MISMATCH_KINDS = [
  'NOT_FINAL_CLOUD',
  'NOT_FINAL_DEVICE',
  /** Charged on one side, not on the other. */
  'OUTCOME_DISAGREES',
  'AMOUNT_DISAGREES',
  /** The ledger's net charge is not what the cloud's final state says. */
  'LEDGER_DISAGREES',
  /** Money moved at the gateway for an attempt the cloud does not know. */
  'LOST_ATTEMPT',
  /** A box journaled an attempt the cloud does not know. */
  'UNKNOWN_TO_CLOUD',
  /** The cloud has an attempt its box's journal (which was supplied) does not. */
  'MISSING_ON_DEVICE',
  /** One sale paid more than once. */
  'DOUBLE_PAYMENT',
  /** Net money at the gateway differs from the sum of successful sales less the registers' refunds. */
  'TOTAL_DISAGREES',
  /** A register's refund: ledger, cloud and box do not tell the same story. */
  'REFUND_DISAGREES',
  'REFUND_NOT_FINAL',
  /** One refund id refunded twice at the gateway, or one register refund made into two. */
  'DOUBLE_REFUND',
] as const;
export type MismatchKind = (typeof MISMATCH_KINDS)[number];

export interface Mismatch {
  kind: MismatchKind;
  outTradeNo?: string;
  saleId?: string;
  detail: string;
}

export interface Note {
  outTradeNo: string;
  detail: string;
}

export interface AttemptRow {
  outTradeNo: string;
  saleId: string | null;
  amount: number | null;
  ledgerNet: number;
  cloud: AttemptState | null;
  device: AttemptState | null;
  problems: MismatchKind[];
}

export interface ReconcileReport {
  ok: boolean;
  rows: AttemptRow[];
  mismatches: Mismatch[];
  notes: Note[];
  totals: { attempts: number; sales: number; paidSales: number; paidSalesAmount: number; ledgerNet: number; refunds: number; refunded: number; refundedAmount: number };
}

export function reconcile(input: ReconcileInput): ReconcileReport {
  const net = netCharged(input.ledger);
  const cloud = new Map(input.cloud.map((r) => [r.outTradeNo, r]));
  const devices = new Map(input.devices.flat().map((r) => [r.outTradeNo, r]));
  const journaled = new Set([...devices.keys()].map(deviceIdOf));
  const mismatches: Mismatch[] = [];
  const notes: Note[] = [];

  const cloudRefunds = input.cloudRefunds ?? [];
  const refundedOf = refundedByCloud(cloudRefunds);
  for (const c of cloud.values()) {
    checkAttempt(c, devices.get(c.outTradeNo), journaled.has(c.deviceId), (net.get(c.outTradeNo) ?? 0) + (refundedOf.get(c.outTradeNo) ?? 0), mismatches, notes);
  }
  const refunds = checkRefunds({ ledger: input.ledger, cloudRefunds, deviceRefunds: (input.deviceRefunds ?? []).flat() }, mismatches);
  for (const [outTradeNo, amount] of net) {
    if (!cloud.has(outTradeNo)) mismatches.push({ kind: 'LOST_ATTEMPT', outTradeNo, detail: `on the gateway ledger (net ${amount}) but not in the cloud` });
  }
  for (const d of devices.values()) {
    if (!cloud.has(d.outTradeNo)) mismatches.push({ kind: 'UNKNOWN_TO_CLOUD', outTradeNo: d.outTradeNo, saleId: d.saleId, detail: `in a box journal (${d.state}) but not in the cloud` });
  }
  const sales = checkSales(input.cloud, net, mismatches);
  const ledgerNet = [...net.values()].reduce((a, b) => a + b, 0);
  if (ledgerNet !== sales.paidSalesAmount - refunds.refundedAmount) {
    mismatches.push({ kind: 'TOTAL_DISAGREES', detail: `gateway net charged ${ledgerNet}, successful sales total ${sales.paidSalesAmount}, registers refunded ${refunds.refundedAmount}` });
  }
  const rows = buildRows(cloud, devices, net, mismatches);
  return { ok: mismatches.length === 0, rows, mismatches, notes, totals: { attempts: rows.length, ...sales, ledgerNet, ...refunds } };
}

function checkAttempt(
  c: CloudAttemptRecord,
  d: DeviceAttemptRecord | undefined,
  hasJournal: boolean,
  ledgerNet: number,
  mismatches: Mismatch[],
  notes: Note[],
): void {
  const at = { outTradeNo: c.outTradeNo, saleId: c.saleId };
  if (!isFinal(c.state)) mismatches.push({ kind: 'NOT_FINAL_CLOUD', ...at, detail: `cloud state ${c.state}` });
  else {
    // `ledgerNet` counts the registers' refunds back in: a SUCCESS keeps its amount on the books.
    const expected = isCharged(c.state) ? c.amount : 0;
    if (ledgerNet !== expected) mismatches.push({ kind: 'LEDGER_DISAGREES', ...at, detail: `cloud ${c.state} means net ${expected}, gateway ledger nets ${ledgerNet}` });
  }
  if (!d) {
    if (hasJournal) mismatches.push({ kind: 'MISSING_ON_DEVICE', ...at, detail: `cloud ${c.state}, not in box ${c.deviceId}'s journal` });
    else notes.push({ outTradeNo: c.outTradeNo, detail: `no journal supplied for box ${c.deviceId}` });
    return;
  }
  if (d.amount !== c.amount) mismatches.push({ kind: 'AMOUNT_DISAGREES', ...at, detail: `cloud amount ${c.amount}, box amount ${d.amount}` });
  if (!isFinal(d.state)) return void mismatches.push({ kind: 'NOT_FINAL_DEVICE', ...at, detail: `box state ${d.state}` });
  if (!isFinal(c.state) || d.state === c.state) return;
  if (isCharged(c.state) !== isCharged(d.state)) {
    mismatches.push({ kind: 'OUTCOME_DISAGREES', ...at, detail: `cloud ${c.state}, box ${d.state}` });
  } else {
    // REVERSED / REFUNDED / CANCELLED all mean "not charged"; which one each side saw may differ.
    notes.push({ outTradeNo: c.outTradeNo, detail: `final states differ but both not charged: cloud ${c.state}, box ${d.state}` });
  }
}

/** At most one net successful payment per sale; returns the paid sales' count and total. */
function checkSales(cloud: readonly CloudAttemptRecord[], net: Map<string, number>, mismatches: Mismatch[]) {
  const bySale = new Map<string, CloudAttemptRecord[]>();
  for (const c of cloud) {
    const key = `${c.deviceId}\u0000${c.saleId}`;
    bySale.set(key, [...(bySale.get(key) ?? []), c]);
  }
  let paidSales = 0;
  let paidSalesAmount = 0;
  for (const attempts of bySale.values()) {
    const paid = attempts.filter((a) => a.state === 'SUCCESS' || (net.get(a.outTradeNo) ?? 0) > 0);
    const success = attempts.find((a) => a.state === 'SUCCESS');
    if (success) {
      paidSales += 1;
      paidSalesAmount += success.amount;
    }
    if (paid.length > 1) {
      const names = paid.map((a) => a.outTradeNo);
      const detail = `sale paid ${paid.length} times: ${names.join(', ')}`;
      for (const outTradeNo of names) mismatches.push({ kind: 'DOUBLE_PAYMENT', outTradeNo, saleId: paid[0]!.saleId, detail });
    }
  }
  return { sales: bySale.size, paidSales, paidSalesAmount };
}

function buildRows(
  cloud: Map<string, CloudAttemptRecord>,
  devices: Map<string, DeviceAttemptRecord>,
  net: Map<string, number>,
  mismatches: Mismatch[],
): AttemptRow[] {
  const ids = [...new Set([...cloud.keys(), ...devices.keys(), ...net.keys()])].sort(compareOutTradeNo);
  return ids.map((id) => {
    const c = cloud.get(id);
    const d = devices.get(id);
    return {
      outTradeNo: id,
      saleId: c?.saleId ?? d?.saleId ?? null,
      amount: c?.amount ?? d?.amount ?? null,
      ledgerNet: net.get(id) ?? 0,
      cloud: c?.state ?? null,
      device: d?.state ?? null,
      problems: [...new Set(mismatches.filter((m) => m.outTradeNo === id).map((m) => m.kind))],
    };
  });
}
