import {
  ErrorCode,
  isFinalRefund,
  makeRefundId,
  UNKNOWN,
  type Currency,
  type DownMessage,
  type EcrLineBody,
  type RefundReason,
  type Wallet,
} from '../protocol/index.js';
import type { Attempt, Sale } from './payment.js';
import type { Step } from './step.js';

/**
 * Refunds the cash register asks for, on the box: pure handlers on the payment machine's step (see
 * payment.ts). The refund id is made and journaled in the same step that queues its up/refund, so a
 * refund exists on the box before anyone else hears of it, and the same id goes to the cloud and
 * the wallet: asked twice, after any crash, it is still one refund. The cloud decides (the remaining
 * amount across every box, the store's limit, the wallet); the box refuses only what it can already
 * see is wrong, and tells the register exactly once how each refund ended.
 *
 *   REQUESTED ──down/refund PENDING──▶ PENDING ──▶ REFUNDED | NOT_REFUNDED (refused, or the wallet declined)
 */
export type BoxRefundState = 'REQUESTED' | 'PENDING' | 'REFUNDED' | 'NOT_REFUNDED';
export const BOX_REFUND_STATES = ['REQUESTED', 'PENDING', 'REFUNDED', 'NOT_REFUNDED'] as const satisfies readonly BoxRefundState[];

export interface Refund {
  refundId: string;
  /** The register's reference: used once. */
  refundRef: string;
  /** The sale refunded, when it is this box's (a refund by outTradeNo of another box's sale has none). */
  saleId: string | null;
  saleRef: string | null;
  /** The attempt that paid the sale. */
  outTradeNo: string;
  amount: number;
  currency: Currency;
  wallet: Wallet | null;
  state: BoxRefundState;
  reason: RefundReason | null;
  /** As the cloud last said: refunded of the payment so far, and what remains. */
  refundedTotal: number | null;
  remaining: number | null;
  createdAt: number;
  updatedAt: number;
  /** When to ask the cloud again (re-send up/refund). Not journaled: a restart asks at once. */
  nextCheckAt: number;
  /** The register has been sent this refund's final line. */
  reported: boolean;
  /** The `seq` of its one refund_result line, given when it becomes final. */
  resultSeq?: number;
}

export const FINAL_BOX_REFUND_STATES = ['REFUNDED', 'NOT_REFUNDED'] as const satisfies readonly BoxRefundState[];

export function isFinalBoxRefund(r: Refund): boolean {
  return (FINAL_BOX_REFUND_STATES as readonly string[]).includes(r.state);
}

export interface RefundAsked {
  ref?: string;
  outTradeNo?: string;
  refundRef: string;
  amount: number;
  currency: Currency;
}

/** The down/error codes by which a cloud says it could not take a refund message at all. */
const REFUSING_CODES: readonly string[] = [ErrorCode.TOPIC_INVALID, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.SCHEMA_INVALID, ErrorCode.FORBIDDEN];

// ── the register asks ─────────────────────────────────────────────────────────────────────────────

export function onEcrRefund(t: Step, e: RefundAsked): void {
  const known = Object.values(t.book.refunds).find((r) => r.refundRef === e.refundRef);
  if (known) return sameRefund(known, e) ? answerRefund(t, known) : refuseLine(t, e, ErrorCode.REFUND_CONFLICT, `refund ${e.refundRef} was already asked for ${known.amount} of ${known.saleRef ?? known.outTradeNo}; use a new refundRef`);
  const target = targetOf(t, e);
  if ('code' in target) return refuseLine(t, e, target.code, target.message);
  if (!t.book.online) return refuseLine(t, e, ErrorCode.OFFLINE, 'box is offline: refund refused; retry when the box is online');
  createRefund(t, e, target);
}

interface Target {
  sale: Sale | null;
  payer: Attempt | null;
  outTradeNo: string;
}

/** The sale a refund line names, checked as far as the box can see; another box's sale goes to the cloud as it is. */
function targetOf(t: Step, e: RefundAsked): Target | { code: ErrorCode; message: string } {
  const sale = e.ref !== undefined ? t.saleByRef(e.ref) : Object.values(t.book.sales).find((s) => s.paidBy === e.outTradeNo);
  if (!sale) {
    if (e.ref !== undefined) return { code: ErrorCode.SALE_UNKNOWN, message: `no sale with ref ${e.ref}` };
    const attempt = t.book.attempts[e.outTradeNo!];
    if (attempt) return { code: ErrorCode.SALE_NOT_PAID, message: `${e.outTradeNo} did not pay its sale` };
    return { sale: null, payer: null, outTradeNo: e.outTradeNo! };
  }
  if (sale.state !== 'PAID' || !sale.paidBy) return { code: ErrorCode.SALE_NOT_PAID, message: `sale ${sale.ref} is not paid (${sale.state}): nothing to refund` };
  if (e.outTradeNo !== undefined && e.outTradeNo !== sale.paidBy) return { code: ErrorCode.REFUND_CONFLICT, message: `sale ${sale.ref} was paid by ${sale.paidBy}, not ${e.outTradeNo}` };
  const left = sale.amount - refundsOf(t, sale).reduce((sum, r) => sum + (r.state === 'NOT_REFUNDED' ? 0 : r.amount), 0);
  if (e.amount > left) return { code: ErrorCode.REFUND_EXCEEDS_REMAINING, message: `refund of ${e.amount} is more than the ${left} that remains of sale ${sale.ref}` };
  return { sale, payer: t.book.attempts[sale.paidBy] ?? null, outTradeNo: sale.paidBy };
}

function refundsOf(t: Step, sale: Sale): Refund[] {
  return Object.values(t.book.refunds).filter((r) => r.saleId === sale.saleId);
}

function sameRefund(r: Refund, e: RefundAsked): boolean {
  return r.amount === e.amount && (e.ref === undefined || e.ref === r.saleRef) && (e.outTradeNo === undefined || e.outTradeNo === r.outTradeNo);
}

function refuseLine(t: Step, e: RefundAsked, code: ErrorCode, message: string): void {
  t.log('warn', 'refund refused by the box', { code, reason: message, refundRef: e.refundRef, ...(e.outTradeNo ? { outTradeNo: e.outTradeNo } : {}) });
  t.ecr({ type: 'error', ...(e.ref === undefined ? {} : { ref: e.ref }), code, message: message.slice(0, 200) });
}

function createRefund(t: Step, e: RefundAsked, target: Target): void {
  const refundId = makeRefundId(t.book.deviceId, t.book.nextRefundSeq);
  t.book.nextRefundSeq += 1;
  t.effects.push({ kind: 'saveRefundSeq', nextRefundSeq: t.book.nextRefundSeq });
  const refund: Refund = {
    ...{ refundId, refundRef: e.refundRef, saleId: target.sale?.saleId ?? null, saleRef: target.sale?.ref ?? null, outTradeNo: target.outTradeNo },
    ...{ amount: e.amount, currency: e.currency, wallet: target.payer?.wallet ?? null, state: 'REQUESTED', reason: null, refundedTotal: null, remaining: null },
    ...{ createdAt: t.now, updatedAt: t.now, nextCheckAt: t.now + t.book.rules.recheckMs, reported: false },
  };
  t.book.refunds[refundId] = refund;
  t.effects.push({ kind: 'saveRefund', refund, from: null, cause: 'ecr refund' });
  sendRefund(t, refund);
  t.ecr(progressBody(refund, 'refund sent; waiting for the wallet'));
  t.log('info', 'refund requested', { outTradeNo: refund.outTradeNo, refundId, refundRef: refund.refundRef, amount: refund.amount, ...(refund.saleRef ? { saleRef: refund.saleRef } : {}) });
}

/** Also how the box asks how a refund went: the cloud answers every up/refund with its state. */
function sendRefund(t: Step, r: Refund): void {
  const { refundId, refundRef, outTradeNo, amount, currency } = r;
  t.send('refund', refundId, { refundId, refundRef, outTradeNo, amount, currency }, `refund-${refundId}-${t.now}`);
}

type RefundProgressBody = Extract<EcrLineBody, { type: 'refund_progress' }>;
type RefundResultBody = Extract<EcrLineBody, { type: 'refund_result' }>;

function about(r: Refund) {
  return { ...(r.saleRef ? { ref: r.saleRef } : {}), refundRef: r.refundRef, outTradeNo: r.outTradeNo, amount: r.amount, currency: r.currency };
}

function progressBody(r: Refund, message: string, lookup = false): RefundProgressBody {
  return { type: 'refund_progress', ...about(r), refundId: r.refundId, stage: 'REFUNDING', message, ...(lookup ? { lookup: true as const } : {}) };
}

function resultBody(r: Refund): RefundResultBody {
  return {
    type: 'refund_result',
    ...about(r),
    refundId: r.refundId,
    outcome: r.state === 'REFUNDED' ? 'REFUNDED' : 'NOT_REFUNDED',
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.refundedTotal !== null ? { refundedTotal: r.refundedTotal } : {}),
    ...(r.remaining !== null ? { remaining: r.remaining } : {}),
  };
}

/** The same refund line again: its state, never a second refund. */
function answerRefund(t: Step, r: Refund): void {
  if (!isFinalBoxRefund(r)) return t.ecr(progressBody(r, 'refund in progress; waiting for the wallet', true));
  const { refund, seq } = resultSeqOf(t, r);
  t.ecr({ ...resultBody(refund), lookup: true as const }, { seq });
}

function resultSeqOf(t: Step, r: Refund): { refund: Refund; seq: number } {
  if (r.resultSeq !== undefined) return { refund: r, seq: r.resultSeq };
  const seq = t.nextEcrSeq();
  return { refund: t.setRefund(r, { resultSeq: seq }, `refund line numbered ${seq}`), seq };
}

/** The one refund_result line per refund (written again after a restart only if it never got out, with its first `seq`). */
function reportRefund(t: Step, r: Refund): void {
  const { refund, seq } = resultSeqOf(t, r);
  t.ecr(resultBody(refund), { seq, refundFinalFor: refund.refundId });
}

// ── the cloud answers ─────────────────────────────────────────────────────────────────────────────

export function onRefundResult(t: Step, m: DownMessage<'refund'>): void {
  const r = t.book.refunds[m.refundId];
  const log = { outTradeNo: m.outTradeNo, refundId: m.refundId };
  if (!r) return t.log('warn', 'refund result for a refund this box does not know; ignored', { ...log, code: ErrorCode.REFUND_UNKNOWN });
  if (m.outTradeNo !== r.outTradeNo || m.amount !== r.amount || m.currency !== r.currency) {
    return t.log('error', 'refund result does not match the journaled refund; ignored', { ...log, code: ErrorCode.ATTEMPT_CONFLICT, got: { outTradeNo: m.outTradeNo, amount: m.amount } });
  }
  if (m.state === UNKNOWN) return t.log('warn', 'refund result with a state this box does not know; asked again later', { ...log, code: ErrorCode.UNSUPPORTED_VERSION });
  const figures = { refundedTotal: m.refundedTotal ?? r.refundedTotal, remaining: m.remaining ?? r.remaining };
  if (isFinalBoxRefund(r)) {
    const same = (r.state === 'REFUNDED') === (m.state === 'REFUNDED') && isFinalRefund(m.state);
    if (!same) t.log('error', 'cloud refund result contradicts a final refund; ignored', { ...log, code: ErrorCode.ATTEMPT_CONFLICT, have: r.state, got: m.state });
    return;
  }
  if (m.state === 'PENDING') {
    if (r.state === 'REQUESTED') t.setRefund(r, { state: 'PENDING', ...figures }, 'cloud took the refund');
    return;
  }
  const reason = m.reason === undefined || m.reason === UNKNOWN ? null : m.reason;
  finish(t, r, m.state === 'REFUNDED' ? 'REFUNDED' : 'NOT_REFUNDED', reason, figures, `cloud refund ${m.state}`);
}

function finish(t: Step, r: Refund, state: 'REFUNDED' | 'NOT_REFUNDED', reason: RefundReason | null, figures: Pick<Refund, 'refundedTotal' | 'remaining'>, cause: string): void {
  const next = t.setRefund(r, { state, reason, ...figures, reported: false, resultSeq: t.nextEcrSeq() }, cause);
  reportRefund(t, next);
  t.log(state === 'REFUNDED' ? 'info' : 'warn', 'refund final', { outTradeNo: r.outTradeNo, refundId: r.refundId, state, reason });
}

/**
 * The cloud could not take the refund message (an older cloud without refunds answers TOPIC_INVALID):
 * nothing reached a wallet, so a refund it never took is closed NOT_REFUNDED at once. One it took
 * (PENDING) is never closed by an error: only its result decides.
 */
export function onRefundRefused(t: Step, m: DownMessage<'error'>): boolean {
  const refundId = /^refund-(.+)-\d+$/.exec(m.refId ?? '')?.[1];
  const r = refundId ? t.book.refunds[refundId] : undefined;
  if (!r) return false;
  if (r.state === 'REQUESTED' && REFUSING_CODES.includes(m.code)) finish(t, r, 'NOT_REFUNDED', 'CLOUD_REFUSED', { refundedTotal: r.refundedTotal, remaining: r.remaining }, `cloud refused the refund message: ${m.code}`);
  return true;
}

export function onEcrRefundDelivered(t: Step, refundId: string): void {
  const r = t.book.refunds[refundId];
  if (r && !r.reported) t.setRefund(r, { reported: true }, 'refund line written to the cash register');
}

// ── time, links and the register's port ──────────────────────────────────────────────────────────

/** Ask again about every open refund that is due (all of them after a reconnect: `force`). */
export function recheckRefunds(t: Step, force = false): void {
  if (!t.book.online) return;
  for (const r of Object.values(t.book.refunds)) {
    if (isFinalBoxRefund(r) || (!force && t.now < r.nextCheckAt)) continue;
    t.book.refunds[r.refundId] = { ...r, nextCheckAt: t.now + t.recheckDelay(r.createdAt) };
    sendRefund(t, r);
  }
}

/** The register's port is (back) up: every final refund line it has not been sent. */
export function reportUnreportedRefunds(t: Step): void {
  for (const r of Object.values(t.book.refunds)) if (isFinalBoxRefund(r) && !r.reported) reportRefund(t, r);
}

export function nextRefundWake(refunds: Record<string, Refund>, online: boolean): number {
  let next = Number.POSITIVE_INFINITY;
  if (online) for (const r of Object.values(refunds)) if (!isFinalBoxRefund(r)) next = Math.min(next, r.nextCheckAt);
  return next;
}
