import { z } from 'zod';
import { CURRENCIES, DEFAULT_MAX_MINOR } from './money.js';
import { WALLETS } from './payment-code.js';
import { ATTEMPT_STATES, FINAL_STATES, RESULT_REASONS, V1_RESULT_REASONS } from './states.js';
import { DEVICE_ID_PATTERN } from './topics.js';
import { ERROR_CODES } from './errors.js';

/**
 * Field schemas shared by MQTT messages, ECR lines, pairing bodies and export records.
 *
 * The MQTT protocol version this side speaks: the `v` of every up/ message the box sends (its
 * announcement) and of the newest down/ shapes the cloud has (protocol/README.md "Evolution rules").
 * v2 added the wallet's receipt and the reason AMOUNT_MISMATCH to down/result; v3 added refunds and
 * the day's totals (up/refund, up/totals, down/refund, down/totals). Pairing bodies (HTTP) have their
 * own version, `PAIRING_VERSION` in pairing.ts.
 */
export const PROTOCOL_VERSION = 3 as const;

/** `v` on sending: exactly version `n` (a sender builds exactly the shape of its version). */
export function versionLiteral<const N extends number>(n: N) {
  return z.literal(n, { error: `v must be ${n} (this is protocol v${n})` });
}
export const version = versionLiteral(PROTOCOL_VERSION);
/** What a peer that announces nothing speaks, and the oldest shape a cloud may ever have to send. */
export const MIN_PROTOCOL_VERSION = 1 as const;
const NEWER_VERSION = 'v must be a protocol version: a whole number ≥ 1';
/** `v` on receipt: a newer peer's message is read by the fields this side knows, which keep their meaning. */
export const readVersion = z.number({ error: NEWER_VERSION }).int(NEWER_VERSION).min(MIN_PROTOCOL_VERSION, NEWER_VERSION);

/**
 * What a reader makes of an enum value it does not know (a newer peer's). It is never a success and
 * never final: every consumer handles it explicitly (README "Evolution rules").
 */
export const UNKNOWN = 'UNKNOWN' as const;
export type Unknown = typeof UNKNOWN;
/** An enum a newer peer may extend, read tolerantly: a known value, or any other short string as UNKNOWN. */
export function tolerant<T extends z.ZodEnum>(known: T) {
  return z.union([known, z.string().min(1).max(64).transform((): Unknown => UNKNOWN)]);
}
export const messageId = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'id must be 1–64 of A-Z a-z 0-9 _ . : -');
/** Milliseconds since the epoch. */
export const timestamp = z.number().int('ts must be whole milliseconds').positive().max(8.64e15);
export const deviceId = z.string().regex(DEVICE_ID_PATTERN, 'deviceId must be 1–64 of A-Z a-z 0-9 _ -');

/**
 * `<deviceId>-<seq>`. WeChat Pay caps out_trade_no at 32 characters (Alipay at 64), so the whole
 * key must fit in 32: device ids are issued short for that reason.
 */
export const OUT_TRADE_NO_PATTERN = /^([A-Za-z0-9_-]{1,30})-(\d{1,20})$/;
/** The box an attempt belongs to: outTradeNo is `<deviceId>-<seq>` (for log lines that only know the outTradeNo). */
export function deviceIdOf(outTradeNo: string): string {
  return OUT_TRADE_NO_PATTERN.exec(outTradeNo)?.[1] ?? outTradeNo;
}
export const outTradeNo = z.string().max(32, 'outTradeNo must be at most 32 characters').regex(OUT_TRADE_NO_PATTERN, 'outTradeNo must be <deviceId>-<seq>');
export const saleId = z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'saleId must be 1–64 of A-Z a-z 0-9 _ . : -');
/** The cash register's own reference for a sale: printable, short. */
export const saleRef = z.string().min(1, 'ref must not be empty').max(64, 'ref must be at most 64 characters').regex(/^[\x21-\x7e]+$/, 'ref must be printable ASCII without spaces');
export const amount = z
  .number({ error: 'amount must be a number of minor units (fen)' })
  .int('amount must be whole minor units (fen), not a decimal')
  .positive('amount must be greater than 0')
  .max(DEFAULT_MAX_MINOR, `amount must be at most ${DEFAULT_MAX_MINOR} minor units`);
export const currency = z.enum(CURRENCIES, { error: 'currency must be CNY' });
export const wallet = z.enum(WALLETS);
export const attemptState = z.enum(ATTEMPT_STATES);
export const finalState = z.enum(FINAL_STATES);
export const resultReason = z.enum(RESULT_REASONS);
export const resultReasonV1 = z.enum(V1_RESULT_REASONS);
export const errorCode = z.enum(ERROR_CODES);
/** The wallet's own id for a payment (WeChat Pay's transaction_id, Alipay's trade_no). */
export const walletTradeNo = z.string().min(1, 'walletTradeNo must not be empty').max(64, 'walletTradeNo must be at most 64 characters');
/** A part of a charge that may be zero (what the buyer paid, a discount): whole minor units, never negative. */
export const minorUnits = z
  .number({ error: 'must be a number of minor units (fen)' })
  .int('must be whole minor units (fen), not a decimal')
  .nonnegative('must not be negative');
/** Payment codes are classified separately; the schema only bounds the field. */
export const paymentCode = z.string().regex(/^\d{1,32}$/, 'code must be 1–32 digits');
export const shortText = z.string().max(200, 'text must be at most 200 characters');

export function makeOutTradeNo(device: string, seq: number): string {
  return outTradeNo.parse(`${device}-${seq}`);
}
