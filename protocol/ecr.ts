import { z } from 'zod';
import * as f from './fields.js';
import { businessDate } from './business-day.js';
import { REFUND_REASONS, WalletTotals } from './refunds.js';

/**
 * The cash register (ECR) line protocol on the box's second serial port: one JSON object per line,
 * terminated by LF (CR and CRLF are accepted on input). The box answers every line it cannot accept
 * with an `error` line and keeps going. The full spec, with examples: protocol/ECR.md.
 *
 * Versions: v1 (no `v`, no `seq`) had `sale` and `cancel` in, `progress`, `result` and `error` out.
 * v2 (`ECR_VERSION`) numbers every box → register line (`v: 2`, `seq`) and adds `hello` and `lookup`,
 * then `refund` and `totals` (a register checks `capabilities` before sending them).
 * The box reads the register's lines tolerantly (fields it does not know are ignored; a line
 * without `v` is a v1 line, read as before) and writes exactly the v2 shapes (`EcrOutboundV2`).
 */
export const MAX_ECR_LINE_BYTES = 1024;

/** The ECR line protocol version this box speaks: the `v` of every line it writes. Not the MQTT protocol version. */
export const ECR_VERSION = 2 as const;
/** What the register may ask of this box, as its `hello` answer lists it: exactly the inbound line types it handles. */
export const ECR_CAPABILITIES = ['sale', 'cancel', 'hello', 'lookup', 'refund', 'totals'] as const;
export type EcrCapability = (typeof ECR_CAPABILITIES)[number];

/**
 * A box → register line's number: one counter per box, journaled, so it never repeats across
 * restarts and power cuts (it may jump forward after one). A `result` line keeps the number it was
 * first given: written again (it may not have got out) or repeated as a lookup answer, it carries
 * that same `seq`, so the register can tell a repeat from a new line.
 */
export const ecrSeq = z.number({ error: 'seq must be a whole number ≥ 1' }).int('seq must be a whole number ≥ 1').positive('seq must be a whole number ≥ 1').max(Number.MAX_SAFE_INTEGER);

// ── ECR → box (read tolerantly: unknown fields are dropped; `v` absent = v1) ─────────────────────

const registerVersion = { v: f.readVersion.optional() };
export const EcrSale = z.object({ type: z.literal('sale'), ...registerVersion, ref: f.saleRef, amount: f.amount, currency: f.currency });
export const EcrCancel = z.object({ type: z.literal('cancel'), ...registerVersion, ref: f.saleRef });
/** The register introduces itself (after every start of its own); the box answers with one `hello` line. */
export const EcrHello = z.object({
  type: z.literal('hello'),
  ...registerVersion,
  name: z.string().max(64, 'name must be at most 64 characters').optional(),
});
/** What became of a sale: its result again (a lookup answer), its current stage, or SALE_UNKNOWN. */
export const EcrLookup = z.object({ type: z.literal('lookup'), ...registerVersion, ref: f.saleRef });
/**
 * Give back `amount` of a paid sale: the sale is named by the register's `ref` (a sale of this box)
 * or by the `outTradeNo` printed on its receipt (a sale paid at another box of the store). The
 * `refundRef` is the register's own reference of the refund and is used once: the same refund line
 * again is answered with that refund's state, never made twice.
 */
export const EcrRefund = z
  .object({
    type: z.literal('refund'),
    ...registerVersion,
    ref: f.saleRef.optional(),
    outTradeNo: f.outTradeNo.optional(),
    refundRef: f.saleRef,
    amount: f.amount,
    currency: f.currency,
  })
  .refine((l) => l.ref !== undefined || l.outTradeNo !== undefined, { message: 'a refund names its sale: ref or outTradeNo', path: ['ref'] });
/** The day's takings (a Beijing business day, default today): from the cloud, or from the box's journal when offline. */
export const EcrTotals = z.object({ type: z.literal('totals'), ...registerVersion, date: businessDate.optional() });
export const EcrInbound = z.discriminatedUnion('type', [EcrSale, EcrCancel, EcrHello, EcrLookup, EcrRefund, EcrTotals], {
  error: 'type must be "sale", "cancel", "hello", "lookup", "refund" or "totals"',
});

// ── box → ECR, as a register reads them (a v1 box's lines have no `v` and no `seq`) ──────────────

const numbered = { v: f.readVersion.optional(), seq: ecrSeq.optional() };
/** Marks a line that answers a `lookup` (or a `sale` for a ref already used), not news of a change. */
const lookupFlag = { lookup: z.literal(true).optional() };

export const EcrStage = z.enum([
  'WAITING_CODE', // show your payment code
  'PAYING', // code accepted, asking the wallet
  'WAITING_PASSWORD', // customer must confirm on the phone (USERPAYING)
  'ATTEMPT_FAILED', // this code failed; another may be scanned
  'CANCELLING', // cashier cancelled or deadline passed; waiting for the cloud to confirm
]);
export const EcrProgress = z.strictObject({
  type: z.literal('progress'),
  ...numbered,
  ref: f.saleRef,
  stage: EcrStage,
  outTradeNo: f.outTradeNo.optional(),
  message: f.shortText,
  ...lookupFlag,
});
/**
 * Sent once per sale, only when its outcome is final: PAID, or NOT_PAID with the reason. A PAID line
 * carries the wallet's receipt when the cloud sent one, so the cash register can print it: the
 * wallet's trade number, when it took the money, and what the buyer paid and the discount when the
 * wallet said so (their total is the line's `amount`). A lookup answer repeats it with `lookup: true`
 * and the original line's `seq`.
 */
export const EcrResult = z.strictObject({
  type: z.literal('result'),
  ...numbered,
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
  ...lookupFlag,
});
export const EcrError = z.strictObject({
  type: z.literal('error'),
  ...numbered,
  ref: f.saleRef.optional(),
  code: f.errorCode,
  message: f.shortText,
});
/** The box's answer to `hello` (v2 only): its ECR version (`v`), firmware and what it can do. */
export const EcrHelloReply = z.strictObject({
  type: z.literal('hello'),
  ...numbered,
  /** Never present: typed so that every box line can be filtered by `ref` without narrowing first. */
  ref: z.undefined().optional(),
  deviceId: f.deviceId.optional(),
  firmware: z.string().min(1).max(64),
  /** Read as plain names: a newer box may list capabilities this reader does not know. */
  capabilities: z.array(z.string().min(1).max(32)).max(32),
});
const refundAbout = {
  /** The sale's ref when the refund named it (or the box knows it). */
  ref: f.saleRef.optional(),
  refundRef: f.saleRef,
  outTradeNo: f.outTradeNo.optional(),
  amount: f.amount,
  currency: f.currency,
};
/** A refund is taken and on its way to the wallet (sent once when it is made; a repeated refund line gets it again with `lookup`). */
export const EcrRefundProgress = z.strictObject({
  type: z.literal('refund_progress'),
  ...numbered,
  ...refundAbout,
  refundId: z.string().min(1).max(64),
  stage: z.enum(['REFUNDING']),
  message: f.shortText,
  ...lookupFlag,
});
/**
 * Sent once per refund, when it is final: REFUNDED (the money went back to the customer's wallet) or
 * NOT_REFUNDED with the reason (the cloud refused it, or the wallet declined). A repeated refund line
 * is answered with it again (`lookup: true`, the original `seq`).
 */
export const EcrRefundResult = z.strictObject({
  type: z.literal('refund_result'),
  ...numbered,
  ...refundAbout,
  refundId: z.string().min(1).max(64).optional(),
  outcome: z.enum(['REFUNDED', 'NOT_REFUNDED']),
  reason: z.enum(REFUND_REASONS).optional(),
  /** What has been refunded of the sale so far, this refund included when REFUNDED. */
  refundedTotal: f.minorUnits.optional(),
  /** What may still be refunded of the sale. */
  remaining: f.minorUnits.optional(),
  ...lookupFlag,
});
/** A wallet's figures on the register's totals line: the net is paid minus refunded (it may be negative). */
export const EcrWalletTotals = WalletTotals.extend({ net: z.number().int() });
/**
 * The day's takings per wallet. `confirmed`: counted by the cloud (authoritative); false: counted
 * from this box's journal while the cloud could not be asked — it may miss a result still on its way.
 */
export const EcrTotalsReply = z.strictObject({
  type: z.literal('totals'),
  ...numbered,
  ref: z.undefined().optional(),
  date: businessDate,
  confirmed: z.boolean(),
  currency: f.currency,
  wallets: z.array(EcrWalletTotals).max(16),
});
/** Every line a register may read from a v1 or a v2 box. */
export const EcrOutbound = z.discriminatedUnion('type', [EcrProgress, EcrResult, EcrError, EcrHelloReply, EcrRefundProgress, EcrRefundResult, EcrTotalsReply]);

// ── box → ECR, as this box writes them: exactly v2 ──────────────────────────────────────────────

const v2 = { v: z.literal(ECR_VERSION, { error: `v must be ${ECR_VERSION}` }), seq: ecrSeq };
export const EcrProgressV2 = EcrProgress.extend(v2);
export const EcrResultV2 = EcrResult.extend(v2);
export const EcrErrorV2 = EcrError.extend(v2);
export const EcrHelloReplyV2 = EcrHelloReply.extend({ ...v2, capabilities: z.array(z.enum(ECR_CAPABILITIES)) });
export const EcrRefundProgressV2 = EcrRefundProgress.extend(v2);
export const EcrRefundResultV2 = EcrRefundResult.extend(v2);
export const EcrTotalsReplyV2 = EcrTotalsReply.extend(v2);
export const EcrOutboundV2 = z.discriminatedUnion('type', [EcrProgressV2, EcrResultV2, EcrErrorV2, EcrHelloReplyV2, EcrRefundProgressV2, EcrRefundResultV2, EcrTotalsReplyV2]);

export type EcrSale = z.infer<typeof EcrSale>;
export type EcrCancel = z.infer<typeof EcrCancel>;
export type EcrHello = z.infer<typeof EcrHello>;
export type EcrLookup = z.infer<typeof EcrLookup>;
export type EcrRefund = z.infer<typeof EcrRefund>;
export type EcrTotals = z.infer<typeof EcrTotals>;
export type EcrRefundProgress = z.infer<typeof EcrRefundProgress>;
export type EcrRefundResult = z.infer<typeof EcrRefundResult>;
export type EcrTotalsReply = z.infer<typeof EcrTotalsReply>;
export type EcrWalletTotals = z.infer<typeof EcrWalletTotals>;
export type EcrInbound = z.infer<typeof EcrInbound>;
export type EcrStage = z.infer<typeof EcrStage>;
export type EcrProgress = z.infer<typeof EcrProgress>;
export type EcrResult = z.infer<typeof EcrResult>;
export type EcrError = z.infer<typeof EcrError>;
export type EcrHelloReply = z.infer<typeof EcrHelloReply>;
export type EcrOutbound = z.infer<typeof EcrOutbound>;
export type EcrProgressV2 = z.infer<typeof EcrProgressV2>;
export type EcrResultV2 = z.infer<typeof EcrResultV2>;
export type EcrErrorV2 = z.infer<typeof EcrErrorV2>;
export type EcrHelloReplyV2 = z.infer<typeof EcrHelloReplyV2>;
export type EcrOutboundV2 = z.infer<typeof EcrOutboundV2>;
/** A v2 line before the box numbers it (the payment machine stamps `v` and `seq`). */
export type EcrLineBody = EcrOutboundV2 extends infer L ? (L extends EcrOutboundV2 ? Omit<L, 'v' | 'seq'> : never) : never;

/**
 * Whether a box line is one a register of `version` may be sent: v2 lines exactly as `EcrOutboundV2`;
 * to a v1 register (one that never said it reads v2) the v1 shape, without `v`, `seq` or `lookup`.
 */
export function isEcrLineFor(version: number, line: unknown): boolean {
  if (version >= ECR_VERSION) return EcrOutboundV2.safeParse(line).success;
  const l = line as Record<string, unknown>;
  return EcrOutbound.safeParse(line).success && l.v === undefined && l.seq === undefined && l.lookup === undefined;
}
