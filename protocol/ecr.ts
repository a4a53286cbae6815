import { z } from 'zod';
import * as f from './fields.js';

/**
 * The cash register (ECR) line protocol on the box's second serial port: one JSON object per line,
 * terminated by LF (CR and CRLF are accepted on input). The box answers every line it cannot accept
 * with an `error` line and keeps going. The full spec, with examples: protocol/ECR.md.
 *
 * Versions: v1 (no `v`, no `seq`) had `sale` and `cancel` in, `progress`, `result` and `error` out.
 * v2 (`ECR_VERSION`) numbers every box → register line (`v: 2`, `seq`) and adds `hello` and `lookup`.
 * The box reads the register's lines tolerantly (fields it does not know are ignored; a line
 * without `v` is a v1 line, read as before) and writes exactly the v2 shapes (`EcrOutboundV2`).
 */
export const MAX_ECR_LINE_BYTES = 1024;

/** The ECR line protocol version this box speaks: the `v` of every line it writes. Not the MQTT protocol version. */
export const ECR_VERSION = 2 as const;
/** What the register may ask of this box, as its `hello` answer lists it: exactly the inbound line types it handles. */
export const ECR_CAPABILITIES = ['sale', 'cancel', 'hello', 'lookup'] as const;
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
export const EcrInbound = z.discriminatedUnion('type', [EcrSale, EcrCancel, EcrHello, EcrLookup], {
  error: 'type must be "sale", "cancel", "hello" or "lookup"',
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
/** Every line a register may read from a v1 or a v2 box. */
export const EcrOutbound = z.discriminatedUnion('type', [EcrProgress, EcrResult, EcrError, EcrHelloReply]);

// ── box → ECR, as this box writes them: exactly v2 ──────────────────────────────────────────────

const v2 = { v: z.literal(ECR_VERSION, { error: `v must be ${ECR_VERSION}` }), seq: ecrSeq };
export const EcrProgressV2 = EcrProgress.extend(v2);
export const EcrResultV2 = EcrResult.extend(v2);
export const EcrErrorV2 = EcrError.extend(v2);
export const EcrHelloReplyV2 = EcrHelloReply.extend({ ...v2, capabilities: z.array(z.enum(ECR_CAPABILITIES)) });
export const EcrOutboundV2 = z.discriminatedUnion('type', [EcrProgressV2, EcrResultV2, EcrErrorV2, EcrHelloReplyV2]);

export type EcrSale = z.infer<typeof EcrSale>;
export type EcrCancel = z.infer<typeof EcrCancel>;
export type EcrHello = z.infer<typeof EcrHello>;
export type EcrLookup = z.infer<typeof EcrLookup>;
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
