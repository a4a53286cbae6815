import { businessDateOf, businessDayRange, type RefundReason } from '../../protocol/index.js';
import type { Refund } from '../refunds/refund-machine.js';
import type { RefundAsk, RefundAskResult, RefundWriteEvent } from './store.js';

/**
 * What `requestRefund` decides, the same on every store: a store reads the rows inside its
 * transaction (with its own locks), these functions decide. Keeping the rules here is what makes the
 * SQLite and PostgreSQL answers to one ask the same.
 */

/** The paying attempt as a refund ask reads it; merchantId is its box's when the attempt names none (before schema 5). */
export interface AskedPayment {
  state: string;
  amount: number;
  charged: number | null;
  wallet: string | null;
  channel: string | null;
  merchantId: string | null;
}

/** The figures the checks compare, read in the same transaction. */
export interface AskFigures {
  /** The box used this refundRef already, on a refund not refused. */
  refUsed: boolean;
  /** Of the payment: REFUNDED and PENDING refunds (fen). */
  refunded: number;
  pending: number;
  /** The store's daily limit (null or undefined: none), and its holding refunds created on the ask's Beijing day. */
  limit: number | null | undefined;
  storeDay: number;
}

/** A known refund id: the recorded refund, or a conflict when the ask names another payment, amount or currency. */
export function answerKnown(known: Refund, ask: RefundAsk): RefundAskResult {
  const same = known.outTradeNo === ask.outTradeNo && known.amount === ask.amount && known.currency === ask.currency;
  return { kind: same ? 'existing' : 'conflict', refund: known };
}

/** The Beijing business day [from, to) whose holding refunds count against a store's limit for an ask at `at`. */
export function limitDayOf(at: number): { from: number; to: number } {
  return businessDayRange(businessDateOf(at));
}

/** The refund to record for an ask: PENDING, or REFUSED with the first reason that applies. */
export function decideRefund(ask: RefundAsk, sender: { merchantId: string; storeId: string }, payment: AskedPayment | undefined, figures: AskFigures): Refund {
  const ours = payment !== undefined && payment.merchantId === sender.merchantId;
  const refund: Refund = {
    refundId: ask.refundId,
    deviceId: ask.deviceId,
    merchantId: sender.merchantId,
    storeId: sender.storeId,
    outTradeNo: ask.outTradeNo,
    refundRef: ask.refundRef,
    // Another merchant's payment lends the refund nothing of its own.
    wallet: ours ? ((payment.wallet as Refund['wallet']) ?? null) : null,
    channel: ours ? (payment.channel ?? payment.wallet ?? null) : null,
    amount: ask.amount,
    saleTotal: ours ? (payment.charged ?? payment.amount) : null,
    currency: ask.currency,
    state: 'PENDING',
    reason: null,
    message: null,
    createdAt: ask.at,
    updatedAt: ask.at,
    finalAt: null,
    tries: 0,
    nextAt: null,
    inFlight: false,
    callSeq: 0,
    flagged: false,
    version: 1,
  };
  // A register's refundRef is used once per box, even after the box pruned its record of it.
  const reason = figures.refUsed ? 'REFUND_CONFLICT' : payment === undefined ? 'SALE_UNKNOWN' : refusal(refund, payment, ours, figures);
  return reason ? { ...refund, state: 'REFUSED', reason, finalAt: ask.at } : refund;
}

/** The refund_events row a created refund starts its history with (from no state): taken, or refused and why. */
export function creationEvent(r: Refund): RefundWriteEvent {
  return { event: 'request', note: r.state === 'REFUSED' ? `refused ${r.reason} (ref ${r.refundRef})` : `taken (ref ${r.refundRef})` };
}

function refusal(r: Refund, payment: AskedPayment, ours: boolean, f: AskFigures): RefundReason | null {
  if (!ours) return 'NOT_THIS_MERCHANT';
  if (payment.state !== 'SUCCESS') return 'SALE_NOT_PAID';
  if (r.amount > r.saleTotal! - f.refunded - f.pending) return 'EXCEEDS_REMAINING';
  if (f.limit === null || f.limit === undefined) return null;
  return f.storeDay + r.amount > f.limit ? 'DAILY_LIMIT' : null;
}
