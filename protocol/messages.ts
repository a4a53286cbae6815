import { z } from 'zod';
import { ErrorCode, ProtocolError } from './errors.js';
import * as f from './fields.js';
import type { DownKind, UpKind } from './topics.js';

/** Every MQTT message: protocol version, a message id (for dedup and error replies) and a timestamp. */
const envelope = { v: f.version, id: f.messageId, ts: f.timestamp };
const money = { outTradeNo: f.outTradeNo, saleId: f.saleId, amount: f.amount, currency: f.currency };

// ── device → cloud ──────────────────────────────────────────────────────────────────────────────
export const PayMessage = z.strictObject({
  ...envelope,
  ...money,
  saleRef: f.saleRef,
  code: f.paymentCode,
  wallet: f.wallet,
});
export const CancelMessage = z.strictObject({
  ...envelope,
  ...money,
  reason: z.enum(['CASHIER_CANCEL', 'DEADLINE', 'RECOVERY_CANCEL']),
});
/** Carries the money fields so a query for an attempt the cloud never saw can still record a full tombstone. */
export const QueryMessage = z.strictObject({ ...envelope, ...money });
/** The box confirms it has durably applied a final result; the cloud stops re-sending it. */
export const AckMessage = z.strictObject({ ...envelope, outTradeNo: f.outTradeNo, state: f.finalState });
export const PortState = z.enum(['open', 'reopening', 'closed', 'absent']);
export const DeviceStatus = z.strictObject({
  firmware: z.string().min(1).max(32),
  uptimeS: z.number().int().nonnegative(),
  outboxDepth: z.number().int().nonnegative(),
  pendingAttempts: z.number().int().nonnegative(),
  scanner: PortState,
  ecr: PortState,
});
export const HeartbeatMessage = z.strictObject({ ...envelope, status: DeviceStatus });
/**
 * The box's MQTT last will is a HeartbeatMessage with this id, published by the broker on
 * `up/heartbeat` when the box vanishes without a clean DISCONNECT: the cloud marks it offline.
 */
export const OFFLINE_WILL_ID = 'offline-will';

// ── cloud → device ──────────────────────────────────────────────────────────────────────────────
export const ResultMessage = z.strictObject({
  ...envelope,
  ...money,
  state: f.attemptState,
  reason: f.resultReason.optional(),
  wallet: f.wallet.optional(),
  message: f.shortText.optional(),
});
export const ProgressMessage = z.strictObject({
  ...envelope,
  outTradeNo: f.outTradeNo,
  stage: z.enum(['USERPAYING', 'QUERYING', 'REVERSING', 'REFUNDING']),
  message: f.shortText.optional(),
});
export const ErrorMessage = z.strictObject({
  ...envelope,
  code: f.errorCode,
  message: f.shortText,
  /** Id of the message that caused it, when it could be read. */
  refId: f.messageId.optional(),
  outTradeNo: f.outTradeNo.optional(),
});
export const CommandMessage = z.strictObject({
  ...envelope,
  command: z.enum(['reboot', 'resync', 'unpair']),
});

export type PayMessage = z.infer<typeof PayMessage>;
export type CancelMessage = z.infer<typeof CancelMessage>;
export type QueryMessage = z.infer<typeof QueryMessage>;
export type AckMessage = z.infer<typeof AckMessage>;
export type HeartbeatMessage = z.infer<typeof HeartbeatMessage>;
export type DeviceStatus = z.infer<typeof DeviceStatus>;
export type PortState = z.infer<typeof PortState>;
export type ResultMessage = z.infer<typeof ResultMessage>;
export type ProgressMessage = z.infer<typeof ProgressMessage>;
export type ErrorMessage = z.infer<typeof ErrorMessage>;
export type CommandMessage = z.infer<typeof CommandMessage>;

export const UP_SCHEMAS = {
  pay: PayMessage,
  cancel: CancelMessage,
  query: QueryMessage,
  ack: AckMessage,
  heartbeat: HeartbeatMessage,
} as const satisfies Record<UpKind, z.ZodType>;
export const DOWN_SCHEMAS = {
  result: ResultMessage,
  progress: ProgressMessage,
  error: ErrorMessage,
  command: CommandMessage,
} as const satisfies Record<DownKind, z.ZodType>;

export type UpMessage<K extends UpKind = UpKind> = z.infer<(typeof UP_SCHEMAS)[K]>;
export type DownMessage<K extends DownKind = DownKind> = z.infer<(typeof DOWN_SCHEMAS)[K]>;

/** Larger payloads are refused before JSON.parse: no legitimate message comes near it. */
export const MAX_PAYLOAD_BYTES = 4096;

/** Size check, JSON parse and schema check in one place, with an error a person can read. */
export function decodeJson<S extends z.ZodType>(schema: S, payload: Buffer | string, what: string): z.infer<S> {
  const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, `${what} is ${bytes} bytes; at most ${MAX_PAYLOAD_BYTES} are allowed`);
  }
  let json: unknown;
  try {
    json = JSON.parse(payload.toString());
  } catch {
    throw new ProtocolError(ErrorCode.BAD_JSON, `${what} is not valid JSON`);
  }
  return validate(schema, json, what);
}

export function validate<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const isObj = typeof value === 'object' && value !== null;
  if (isObj && 'v' in value && value.v !== 1) {
    throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `${what}: v must be 1 (this is protocol v1), got ${JSON.stringify(value.v)?.slice(0, 20)}`);
  }
  throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `${what} is invalid: ${describeIssues(res.error)}`);
}

/** "amount: amount must be whole minor units (fen), not a decimal; code: Required" — bounded length. */
export function describeIssues(err: z.ZodError): string {
  const text = err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(message)'}: ${i.message}`)
    .join('; ');
  return text.length > 180 ? `${text.slice(0, 180)}…` : text;
}

export function decodeUp<K extends UpKind>(kind: K, payload: Buffer | string): UpMessage<K> {
  return decodeJson(UP_SCHEMAS[kind], payload, `up/${kind} message`) as UpMessage<K>;
}
export function decodeDown<K extends DownKind>(kind: K, payload: Buffer | string): DownMessage<K> {
  return decodeJson(DOWN_SCHEMAS[kind], payload, `down/${kind} message`) as DownMessage<K>;
}
/** Message id from a payload that failed validation, so the error reply can point at it. */
export function salvageMessageId(payload: Buffer | string): string | undefined {
  if (payload.length > MAX_PAYLOAD_BYTES) return undefined;
  try {
    const v = JSON.parse(payload.toString()) as { id?: unknown };
    const r = f.messageId.safeParse(v?.id);
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}
