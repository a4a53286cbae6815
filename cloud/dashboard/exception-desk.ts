import { needsWork, type Attempt } from '../payments/transaction.js';
import type { Refund } from '../refunds/refund-machine.js';
import type { CloudStore, OperatorActionRow } from '../store/store.js';

/**
 * What needs a person: attempts still being undone (REVERSE_PENDING, REFUND_PENDING) past the
 * threshold, attempts flagged AMOUNT_MISMATCH, and the register's refunds the wallet declined
 * (FAILED) or that stay PENDING past refundFlagAfterMs (flagged). An item an operator marked
 * resolved leaves the desk while its state stays the one it was resolved in; if it moves (a pending
 * reverse that later fails over to a refund), it is back.
 */
export type DeskKind = 'attempt' | 'refund';
export type DeskReason = 'REVERSE_PENDING' | 'REFUND_PENDING' | 'AMOUNT_MISMATCH' | 'REFUND_FAILED' | 'REFUND_FLAGGED';
export type NowAction = 'query_now' | 'retry_now';

export interface DeskItem {
  kind: DeskKind;
  /** outTradeNo or refundId. */
  id: string;
  /** The payment it belongs to (its timeline). */
  outTradeNo: string;
  deviceId: string;
  reasons: DeskReason[];
  /** The state it is in; a resolution holds while this stays. */
  state: string;
  since: number;
  amount: number;
  currency: string;
  /** The latest words about it: the wallet's message, the attempt's reason. */
  detail: string;
  /** What "now" does for it, when anything can be done now. */
  now: { action: NowAction; label: string } | null;
  /** Why nothing can be done now, when nothing can. */
  nowBlocked: string | null;
  /** The latest resolution, when it holds. */
  resolution: OperatorActionRow | null;
}

/**
 * What the machine's resume does with this attempt next, as the button says it: a query (still
 * paying, or verifying before a refund), a reverse, or a refund. Null with why when nothing can start now.
 */
export function attemptNow(a: Attempt): { now: DeskItem['now']; blocked: string | null } {
  if (a.inFlight) return { now: null, blocked: `a ${a.inFlight} call is out` };
  if (!needsWork(a)) return { now: null, blocked: 'nothing is left for the cloud to do' };
  if (a.state === 'PAYING' || a.state === 'CREATED' || a.step === 'poll' || a.step === 'verify' || a.step === 'late_check') return { now: { action: 'query_now', label: 'Query the wallet now' }, blocked: null };
  if (a.state === 'REFUND_PENDING' || a.step === 'refund') return { now: { action: 'retry_now', label: 'Retry the refund now' }, blocked: null };
  return { now: { action: 'retry_now', label: 'Retry the reverse now' }, blocked: null };
}

export function refundNow(r: Refund): { now: DeskItem['now']; blocked: string | null } {
  if (r.state !== 'PENDING') return { now: null, blocked: `${r.state}: final; the register must ask for a new refund` };
  if (r.inFlight) return { now: null, blocked: 'a wallet call is out' };
  return { now: { action: 'retry_now', label: 'Ask the wallet again now' }, blocked: null };
}

export function attemptItem(a: Attempt, reasons: DeskReason[]): DeskItem {
  const n = attemptNow(a);
  return {
    kind: 'attempt', id: a.outTradeNo, outTradeNo: a.outTradeNo, deviceId: a.deviceId, reasons, state: a.state, since: a.createdAt,
    amount: a.charged ?? a.amount, currency: a.currency, detail: [a.reason, a.flag ? `the sale is ${a.amount}, the wallet charged ${a.charged ?? '?'}` : null].filter(Boolean).join('; '),
    now: n.now, nowBlocked: n.blocked, resolution: null,
  };
}

export function refundItem(r: Refund): DeskItem {
  const n = refundNow(r);
  return {
    kind: 'refund', id: r.refundId, outTradeNo: r.outTradeNo, deviceId: r.deviceId, reasons: [r.state === 'FAILED' ? 'REFUND_FAILED' : 'REFUND_FLAGGED'], state: r.state, since: r.createdAt,
    amount: r.amount, currency: r.currency, detail: [r.reason, r.message].filter(Boolean).join(': '), now: n.now, nowBlocked: n.blocked, resolution: null,
  };
}

/** How many of the latest resolutions the desk shows under "resolved": the rest are found by search. */
export const RESOLVED_SHOWN = 50;

/**
 * What waits on the desk, oldest first (the overview counts it). The store leaves out what an
 * operator resolved in its current state, so this reads what is open, however many were resolved
 * over the years.
 */
export async function openDeskItems(store: CloudStore, now: number, thresholdMs: number): Promise<DeskItem[]> {
  const open = { unresolved: true } as const;
  const [reversing, refunding, mismatched, failed, flagged] = await Promise.all([
    store.listAttempts({ state: 'REVERSE_PENDING', ...open }),
    store.listAttempts({ state: 'REFUND_PENDING', ...open }),
    store.listAttempts({ flag: 'AMOUNT_MISMATCH', ...open }),
    store.listRefunds({ state: 'FAILED', ...open }),
    store.listRefunds({ state: 'PENDING', flagged: true, ...open }),
  ]);
  const attempts = new Map<string, DeskItem>();
  const add = (a: Attempt, reason: DeskReason) => {
    const item = attempts.get(a.outTradeNo) ?? attemptItem(a, []);
    item.reasons.push(reason);
    attempts.set(a.outTradeNo, item);
  };
  const old = (a: Attempt) => a.createdAt <= now - thresholdMs;
  reversing.filter(old).forEach((a) => add(a, 'REVERSE_PENDING'));
  refunding.filter(old).forEach((a) => add(a, 'REFUND_PENDING'));
  mismatched.forEach((a) => add(a, 'AMOUNT_MISMATCH'));
  return [...attempts.values(), ...[...failed, ...flagged].map(refundItem)].sort((x, y) => x.since - y.since);
}

/** The desk page: what is open, and the subjects of the latest RESOLVED_SHOWN resolutions that still hold. */
export async function deskItems(store: CloudStore, now: number, thresholdMs: number): Promise<{ open: DeskItem[]; resolved: DeskItem[] }> {
  const [open, recent] = await Promise.all([openDeskItems(store, now, thresholdMs), store.listOperatorActions({ action: 'resolve', newestFirst: true, limit: RESOLVED_SHOWN })]);
  // Latest first: the first resolution met for a subject is its latest.
  const latest = new Map<string, OperatorActionRow>();
  for (const r of recent) if (!latest.has(`${r.subjectKind}:${r.subjectId}`)) latest.set(`${r.subjectKind}:${r.subjectId}`, r);
  const resolved = await Promise.all(
    [...latest.values()].map(async (r): Promise<DeskItem | undefined> => {
      const item = await subjectItem(store, r.subjectKind as DeskKind, r.subjectId);
      return item && item.reasons.length > 0 && item.state === r.subjectState ? { ...item, resolution: r } : undefined;
    }),
  );
  return { open, resolved: resolved.filter((i): i is DeskItem => i !== undefined) };
}

/** One item as it stands now (after an action), with its resolution if it holds; undefined when it no longer exists. */
export async function deskItem(store: CloudStore, kind: DeskKind, id: string): Promise<DeskItem | undefined> {
  const item = await subjectItem(store, kind, id);
  if (!item) return undefined;
  const resolutions = await store.listOperatorActions({ action: 'resolve', subjectKind: kind, subjectIds: [id], newestFirst: true, limit: 1 });
  const r = resolutions[0];
  return { ...item, resolution: r && r.subjectState === item.state ? r : null };
}

/** The attempt or refund as a desk item, without its resolution. */
async function subjectItem(store: CloudStore, kind: DeskKind, id: string): Promise<DeskItem | undefined> {
  if (kind === 'attempt') {
    const a = await store.getAttempt(id);
    if (!a) return undefined;
    const reasons: DeskReason[] = [...(a.state === 'REVERSE_PENDING' || a.state === 'REFUND_PENDING' ? [a.state] : []), ...(a.flag ? ['AMOUNT_MISMATCH' as const] : [])];
    return attemptItem(a, reasons);
  }
  const r = await store.getRefund(id);
  return r ? refundItem(r) : undefined;
}
