import { businessDateOf, OUT_TRADE_NO_PATTERN, REFUND_ID_PATTERN } from '../../protocol/index.js';
import type { Attempt } from '../payments/transaction.js';
import type { Refund } from '../refunds/refund-machine.js';
import type { AttemptEventRow, CloudStore, OperatorActionRow, ReconcileFindingRow, RefundEventRow } from '../store/store.js';
import { money } from './format.js';

/**
 * A payment as support needs it when a merchant calls: the attempt, every transition of it (the
 * append-only attempt_events), the register's refunds of it and every transition of those (the
 * append-only refund_events: each wallet answer and retry), what the morning reconciliation found
 * about it, and what operators did — merged into one timeline, oldest first.
 */
export interface PaymentView {
  attempt: Attempt;
  events: AttemptEventRow[];
  refunds: Refund[];
  refundEvents: RefundEventRow[];
  findings: ReconcileFindingRow[];
  actions: OperatorActionRow[];
}

export type TimelineKind = 'event' | 'refund' | 'finding' | 'operator';
export interface TimelineEntry {
  at: number;
  kind: TimelineKind;
  what: string;
  detail: string;
}

const DAY = 86_400_000;

export async function paymentView(store: CloudStore, outTradeNo: string): Promise<PaymentView | undefined> {
  const attempt = await store.getAttempt(outTradeNo);
  if (!attempt) return undefined;
  const [events, refunds, refundEvents, findings] = await Promise.all([
    store.attemptEvents(outTradeNo),
    store.listRefunds({ outTradeNo }),
    store.refundEvents(outTradeNo),
    findingsOf(store, attempt),
  ]);
  const actions = await store.listOperatorActions({ subjectIds: [outTradeNo, ...refunds.map((r) => r.refundId)] });
  return { attempt, events, refunds, refundEvents, findings, actions };
}

/**
 * The reconciliation keys its findings by bill day and channel: a payment is on the bill of the
 * Beijing day it was paid (the wallet's time), or made — or, near midnight, the day after.
 */
async function findingsOf(store: CloudStore, a: Attempt): Promise<ReconcileFindingRow[]> {
  const channel = a.channel ?? a.wallet;
  if (!channel) return [];
  const days = new Set([a.createdAt, a.createdAt + DAY, ...(a.walletPaidAt ? [a.walletPaidAt] : [])].map(businessDateOf));
  const lists = await Promise.all([...days].map((d) => store.listReconcileFindings(d, channel)));
  return lists.flat().filter((f) => f.outTradeNo === a.outTradeNo);
}

/** One transition of a register refund; its creation says how much was asked. */
function refundEventEntry(e: RefundEventRow, r: Refund | undefined): TimelineEntry {
  const asked = e.event === 'request' && r ? ` asked (${money(r.amount, r.currency)})` : '';
  return { at: e.at, kind: 'refund', what: `register refund ${e.refundId}${asked}: ${e.fromState ?? '—'} → ${e.toState}`, detail: `${e.event}: ${e.note}` };
}

/**
 * A refund recorded before refund_events (SQLite schema 13, PostgreSQL 3) has no history: what its
 * row says — asked, final, or where it stands — is all there is to show.
 */
function refundRowEntries(r: Refund): TimelineEntry[] {
  return [
    { at: r.createdAt, kind: 'refund', what: `register refund ${r.refundId} asked (${money(r.amount, r.currency)})`, detail: `ref ${r.refundRef}` },
    ...(r.finalAt !== null ? [{ at: r.finalAt, kind: 'refund' as const, what: `register refund ${r.refundId} ${r.state}`, detail: [r.reason, r.message].filter(Boolean).join(': ') }] : []),
    ...(r.state === 'PENDING' ? [{ at: r.updatedAt, kind: 'refund' as const, what: `register refund ${r.refundId} still PENDING${r.flagged ? ' (flagged)' : ''}`, detail: `${r.tries} tries; ${r.message ?? ''}` }] : []),
  ];
}

export function timeline(v: PaymentView): TimelineEntry[] {
  const refunds = new Map(v.refunds.map((r) => [r.refundId, r]));
  const withHistory = new Set(v.refundEvents.map((e) => e.refundId));
  const entries: TimelineEntry[] = [
    ...v.events.map((e): TimelineEntry => ({ at: e.at, kind: 'event', what: `${e.fromState ?? '—'} → ${e.toState}`, detail: `${e.event}: ${e.note}` })),
    ...v.refundEvents.map((e) => refundEventEntry(e, refunds.get(e.refundId))),
    ...v.refunds.filter((r) => !withHistory.has(r.refundId)).flatMap(refundRowEntries),
    ...v.findings.map((f): TimelineEntry => ({ at: f.foundAt, kind: 'finding', what: `reconciliation ${f.billDate}: ${f.kind} (${f.status})`, detail: [f.detail, f.action].filter(Boolean).join(' — ') })),
    ...v.actions.map((a): TimelineEntry => ({ at: a.at, kind: 'operator', what: `${a.operator}: ${a.action.replace('_', ' ')} ${a.subjectKind === 'refund' ? a.subjectId : ''}`.trim(), detail: [a.outcome, a.note].filter(Boolean).join(' — ') })),
  ];
  // Stable: equal times keep the order above (a transition before the refund it led to).
  return entries.map((e, i) => ({ e, i })).sort((x, y) => x.e.at - y.e.at || x.i - y.i).map((x) => x.e);
}

/** What a merchant may quote: an outTradeNo, a register refund id, the register's sale reference, or the wallet's transaction id. */
export async function findPayments(store: CloudStore, query: string): Promise<{ attempts: Attempt[]; by: string }> {
  const q = query.trim().slice(0, 128);
  if (!q) return { attempts: [], by: '' };
  if (OUT_TRADE_NO_PATTERN.test(q)) {
    const a = await store.getAttempt(q);
    if (a) return { attempts: [a], by: 'outTradeNo' };
  }
  if (REFUND_ID_PATTERN.test(q)) {
    const r = await store.getRefund(q);
    const a = r && (await store.getAttempt(r.outTradeNo));
    if (a) return { attempts: [a], by: 'register refund id' };
  }
  const byRef = await store.listAttempts({ saleRef: q, limit: 100 });
  if (byRef.length) return { attempts: byRef, by: 'sale reference' };
  return { attempts: await store.listAttempts({ gatewayTradeNo: q, limit: 100 }), by: 'wallet transaction id' };
}
