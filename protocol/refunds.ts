import { z } from 'zod';
import type { Unknown } from './fields.js';

/**
 * A refund the cash register asks for, as box, cloud and register name it. The box makes the refund
 * id and journals it before anything is sent; the same id is the wallet's refund number
 * (WeChat out_refund_no, Alipay out_request_no), so a refund asked twice is one refund everywhere.
 *
 *   box: REQUESTED ──up/refund──▶ cloud: PENDING ──wallet refund (+ refund query) until final──▶ REFUNDED | FAILED
 *                                   └──refused before any wallet call (not paid, too much, limit…)──▶ REFUSED
 *
 * Money leaves the merchant only in REFUNDED. FAILED (the wallet declined) and REFUSED (the cloud
 * would not ask the wallet) move nothing.
 */
export const REFUND_STATES = ['PENDING', 'REFUNDED', 'FAILED', 'REFUSED'] as const;
export type RefundState = (typeof REFUND_STATES)[number];
export const FINAL_REFUND_STATES = ['REFUNDED', 'FAILED', 'REFUSED'] as const satisfies readonly RefundState[];
export type FinalRefundState = (typeof FINAL_REFUND_STATES)[number];

/** A state read as UNKNOWN (a newer cloud's) is never final: the box asks again. */
export function isFinalRefund(state: RefundState | Unknown): state is FinalRefundState {
  return (FINAL_REFUND_STATES as readonly string[]).includes(state);
}

/** Why a refund was refused or failed. */
export const REFUND_REASONS = [
  /** The cloud has no payment with that outTradeNo. */
  'SALE_UNKNOWN',
  /** The payment is not (or no longer) charged: nothing to give back. */
  'SALE_NOT_PAID',
  /** The payment belongs to another merchant. */
  'NOT_THIS_MERCHANT',
  /** More than what remains of the payment after its other refunds. */
  'EXCEEDS_REMAINING',
  /** Over the store's daily refund limit. */
  'DAILY_LIMIT',
  /** The refund id is known with another payment or amount. */
  'REFUND_CONFLICT',
  /** The wallet declined the refund. */
  'DECLINED',
  /** The cloud could not take the refund message at all (an older cloud without refunds, or a refused message). */
  'CLOUD_REFUSED',
] as const;
export type RefundReason = (typeof REFUND_REASONS)[number];

/** `<deviceId>-r<seq>`: fits the wallets' 64-character refund numbers and never looks like an outTradeNo. */
export const REFUND_ID_PATTERN = /^([A-Za-z0-9_-]{1,30})-r(\d{1,20})$/;
export const refundId = z.string().max(64, 'refundId must be at most 64 characters').regex(REFUND_ID_PATTERN, 'refundId must be <deviceId>-r<seq>');
export function makeRefundId(device: string, seq: number): string {
  return refundId.parse(`${device}-r${seq}`);
}

const count = z.number().int().nonnegative();
const fen = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/**
 * One wallet's figures of a business day: paid sales and refunds, counted and summed (fen). The
 * net is paid minus refunded. `wallet` is read as a plain name: a newer side may count a wallet
 * this one does not know, and a total is still a total.
 */
export const WalletTotals = z.strictObject({
  wallet: z.string().min(1).max(16),
  paidCount: count,
  paidAmount: fen,
  refundCount: count,
  refundAmount: fen,
});
export type WalletTotals = z.infer<typeof WalletTotals>;
