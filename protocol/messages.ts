import { z } from 'zod';
import { ErrorCode, ProtocolError } from './errors.js';
import * as f from './fields.js';
import type { DownKind, UpKind } from './topics.js';

/**
 * Two schemas per message. The strict one (`PayMessage`, …, `UP_SCHEMAS`, `DOWN_SCHEMAS`) is the
 * sending contract: `encodeUp` / `encodeDown` refuse anything it refuses. The reader derived from it
 * (`UP_READERS`, `DOWN_READERS`) is what `decodeUp` / `decodeDown` apply: unknown fields dropped,
 * `v` any version ≥ 1, and the enums a newer peer may extend read as `UNKNOWN` when unknown. Money
 * fields stay strict on receipt: an unreadable amount is a refused message, never a guess.
 */

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
export const CancelReason = z.enum(['CASHIER_CANCEL', 'DEADLINE', 'RECOVERY_CANCEL']);
export const CancelMessage = z.strictObject({
  ...envelope,
  ...money,
  reason: CancelReason,
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
export const ProgressStage = z.enum(['USERPAYING', 'QUERYING', 'REVERSING', 'REFUNDING']);
export const ProgressMessage = z.strictObject({
  ...envelope,
  outTradeNo: f.outTradeNo,
  stage: ProgressStage,
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
export const Command = z.enum(['reboot', 'resync', 'unpair']);
export const CommandMessage = z.strictObject({
  ...envelope,
  command: Command,
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

/** What a sender builds: exactly the strict schema. */
export type UpToSend<K extends UpKind = UpKind> = z.infer<(typeof UP_SCHEMAS)[K]>;
export type DownToSend<K extends DownKind = DownKind> = z.infer<(typeof DOWN_SCHEMAS)[K]>;

// ── reading: tolerant ───────────────────────────────────────────────────────────────────────────
const read = { v: f.readVersion };
const readStatus = z.object({ ...DeviceStatus.shape, scanner: f.tolerant(PortState), ecr: f.tolerant(PortState) });

/**
 * The cloud's readers. A pay's wallet stays strict: the cloud cannot route a wallet it does not
 * know, so such a pay is refused (SCHEMA_INVALID) before anything is charged.
 */
export const UP_READERS = {
  pay: z.object({ ...PayMessage.shape, ...read }),
  cancel: z.object({ ...CancelMessage.shape, ...read, reason: f.tolerant(CancelReason) }),
  query: z.object({ ...QueryMessage.shape, ...read }),
  ack: z.object({ ...AckMessage.shape, ...read, state: f.tolerant(f.finalState) }),
  heartbeat: z.object({ ...HeartbeatMessage.shape, ...read, status: readStatus }),
} as const satisfies Record<UpKind, z.ZodType>;
/** The box's readers. An UNKNOWN result state is neither success nor final: the attempt stays open. */
export const DOWN_READERS = {
  result: z.object({
    ...ResultMessage.shape,
    ...read,
    state: f.tolerant(f.attemptState),
    reason: f.tolerant(f.resultReason).optional(),
    wallet: f.tolerant(f.wallet).optional(),
  }),
  progress: z.object({ ...ProgressMessage.shape, ...read, stage: f.tolerant(ProgressStage) }),
  error: z.object({ ...ErrorMessage.shape, ...read, code: f.tolerant(f.errorCode) }),
  command: z.object({ ...CommandMessage.shape, ...read, command: f.tolerant(Command) }),
} as const satisfies Record<DownKind, z.ZodType>;

/** A message as read: what `decodeUp` / `decodeDown` return. Tolerant enum fields may hold UNKNOWN. */
export type UpMessage<K extends UpKind = UpKind> = z.infer<(typeof UP_READERS)[K]>;
export type DownMessage<K extends DownKind = DownKind> = z.infer<(typeof DOWN_READERS)[K]>;

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
  // A v this schema does not read (v ≠ 1 for a strict one, v < 1 or not whole for a reader).
  const versionIssue = res.error.issues.find((i) => i.path.length === 1 && i.path[0] === 'v');
  if (isObj && 'v' in value && versionIssue) {
    throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `${what}: ${versionIssue.message}, got ${JSON.stringify(value.v)?.slice(0, 20)}`);
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

/** Tolerant: a newer box's message is read by the fields this cloud knows. */
export function decodeUp<K extends UpKind>(kind: K, payload: Buffer | string): UpMessage<K> {
  return decodeJson(UP_READERS[kind], payload, `up/${kind} message`) as UpMessage<K>;
}
/** Tolerant: a newer cloud's message is read by the fields this box knows. */
export function decodeDown<K extends DownKind>(kind: K, payload: Buffer | string): DownMessage<K> {
  return decodeJson(DOWN_READERS[kind], payload, `down/${kind} message`) as DownMessage<K>;
}

// ── sending: strict ─────────────────────────────────────────────────────────────────────────────

/** The box speaks its own version; the cloud reads any newer one by the fields it knows. */
export function encodeUp<K extends UpKind>(kind: K, msg: UpToSend<K>): string {
  return serialise(validate(UP_SCHEMAS[kind], msg, `up/${kind} message`), `up/${kind} message`);
}

export type DownShapes = { readonly [K in DownKind]: z.ZodType };
/**
 * The down/ shapes of each protocol version this side can send. A box is sent the newest one not
 * newer than it announced; v2 joins this table the day a v2 shape exists.
 */
export const DOWN_SHAPES: Readonly<Record<number, DownShapes>> = { 1: DOWN_SCHEMAS };

/** The newest shape version in `shapes` that a box speaking `boxVersion` reads. */
export function downShapeVersion(boxVersion: number, shapes: Readonly<Record<number, DownShapes>> = DOWN_SHAPES): number {
  const fits = Object.keys(shapes)
    .map(Number)
    .filter((v) => v <= boxVersion);
  if (fits.length === 0) throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `no down/ shape for a box that speaks protocol v${boxVersion}`);
  return Math.max(...fits);
}

/**
 * Validate against the shape of the version the box reads, with `v` set to that version, so the
 * cloud never sends a box a field or value newer than it announced.
 */
export function encodeDown<K extends DownKind>(kind: K, msg: DownToSend<K>, boxVersion: number = f.MIN_PROTOCOL_VERSION, shapes: Readonly<Record<number, DownShapes>> = DOWN_SHAPES): string {
  const v = downShapeVersion(boxVersion, shapes);
  const what = `down/${kind} v${v} message`;
  return serialise(validate(shapes[v]![kind], { ...msg, v }, what), what);
}

/** A receiver refuses anything over MAX_PAYLOAD_BYTES, so a sender never produces it. */
function serialise(msg: unknown, what: string): string {
  const text = JSON.stringify(msg);
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_PAYLOAD_BYTES) throw new ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, `${what} would be ${bytes} bytes; at most ${MAX_PAYLOAD_BYTES} are allowed`);
  return text;
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
