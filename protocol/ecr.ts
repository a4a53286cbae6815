import { z } from 'zod';
import * as f from './fields.js';

/**
 * The cash register (ECR) line protocol on the box's second serial port: one JSON object per line,
 * terminated by LF (CR and CRLF are accepted on input). The box answers every line it cannot accept
 * with an `error` line and keeps going.
 */
export const MAX_ECR_LINE_BYTES = 1024;

// ECR → box
export const EcrSale = z.strictObject({ type: z.literal('sale'), ref: f.saleRef, amount: f.amount, currency: f.currency });
export const EcrCancel = z.strictObject({ type: z.literal('cancel'), ref: f.saleRef });
export const EcrInbound = z.discriminatedUnion('type', [EcrSale, EcrCancel], {
  error: 'type must be "sale" or "cancel"',
});

// box → ECR
export const EcrStage = z.enum([
  'WAITING_CODE', // show your payment code
  'PAYING', // code accepted, asking the wallet
  'WAITING_PASSWORD', // customer must confirm on the phone (USERPAYING)
  'ATTEMPT_FAILED', // this code failed; another may be scanned
  'CANCELLING', // cashier cancelled or deadline passed; waiting for the cloud to confirm
]);
export const EcrProgress = z.strictObject({
  type: z.literal('progress'),
  ref: f.saleRef,
  stage: EcrStage,
  outTradeNo: f.outTradeNo.optional(),
  message: f.shortText,
});
/**
 * Sent once per sale, only when its outcome is final: PAID, or NOT_PAID with the reason. A PAID line
 * carries the wallet's receipt when the cloud sent one, so the cash register can print it: the
 * wallet's trade number, when it took the money, and what the buyer paid and the discount when the
 * wallet said so (their total is the line's `amount`).
 */
export const EcrResult = z.strictObject({
  type: z.literal('result'),
  ref: f.saleRef,
  outcome: z.enum(['PAID', 'NOT_PAID']),
  amount: f.amount,
  currency: f.currency,
  outTradeNo: f.outTradeNo.optional(),
  wallet: f.wallet.optional(),
  reason: f.resultReason.optional(),
  walletTradeNo: f.walletTradeNo.optional(),
  paidAt: f.timestamp.optional(),
  buyerPaid: f.minorUnits.optional(),
  discount: f.minorUnits.optional(),
});
export const EcrError = z.strictObject({
  type: z.literal('error'),
  ref: f.saleRef.optional(),
  code: f.errorCode,
  message: f.shortText,
});
export const EcrOutbound = z.discriminatedUnion('type', [EcrProgress, EcrResult, EcrError]);

export type EcrSale = z.infer<typeof EcrSale>;
export type EcrCancel = z.infer<typeof EcrCancel>;
export type EcrInbound = z.infer<typeof EcrInbound>;
export type EcrStage = z.infer<typeof EcrStage>;
export type EcrProgress = z.infer<typeof EcrProgress>;
export type EcrResult = z.infer<typeof EcrResult>;
export type EcrError = z.infer<typeof EcrError>;
export type EcrOutbound = z.infer<typeof EcrOutbound>;
