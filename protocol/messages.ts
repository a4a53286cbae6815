import { z } from 'zod';
import { ErrorCode, ProtocolError } from './errors.js';
import * as f from './fields.js';
import type { DownKind, UpKind } from './topics.js';
import { V1_RESULT_REASONS } from './states.js';
import { businessDate } from './business-day.js';
import { REFUND_REASONS, REFUND_STATES, refundId, WalletTotals } from './refunds.js';
import { DOCTOR_BOUNDS, DoctorCheckResult } from './doctor.js';

/**
 * Two schemas per message. The strict one (`PayMessage`, …, `UP_SCHEMAS`, `DOWN_SCHEMAS`) is the
 * sending contract: `encodeUp` / `encodeDown` refuse anything it refuses. The reader derived from it
 * (`UP_READERS`, `DOWN_READERS`) is what `decodeUp` / `decodeDown` apply: unknown fields dropped,
 * `v` any version ≥ 1, and the enums a newer peer may extend read as `UNKNOWN` when unknown. Money
 * fields stay strict on receipt: an unreadable amount is a refused message, never a guess.
 */

/** Every MQTT message: protocol version, a message id (for dedup and error replies) and a timestamp. */
const envelope = { v: f.version, id: f.messageId, ts: f.timestamp };
/** The envelope of a frozen v1 shape. */
const envelopeV1 = { v: f.versionLiteral(1), id: f.messageId, ts: f.timestamp };
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
/**
 * v3. Give back `amount` of the payment `outTradeNo` (the attempt that paid the sale). `refundId` is
 * the idempotency key end to end: the same refund sent again (after a restart, or to ask how it
 * went) is answered with its state, never made twice. `refundRef` is the cash register's reference.
 */
export const RefundMessage = z.strictObject({
  ...envelope,
  refundId,
  refundRef: f.saleRef,
  outTradeNo: f.outTradeNo,
  amount: f.amount,
  currency: f.currency,
});
/** v3. The box's figures of a business day, as the cloud has them; answered on down/totals with `refId` = this id. */
export const TotalsRequest = z.strictObject({ ...envelope, date: businessDate });
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
 * v3. The box's doctor report, the answer to a down/command `doctor` (`refId` = the command's id): its
 * checks run inside the running agent, as `scanbox-device doctor --json` prints them. Each check is
 * bounded (protocol/doctor.ts says why); the box shortens details and fixes until the whole message
 * fits in MAX_PAYLOAD_BYTES. Sent QoS 1 but not through the payment outbox: a lost report is asked again.
 */
export const DoctorReportMessage = z.strictObject({
  ...envelope,
  refId: f.messageId,
  firmware: DeviceStatus.shape.firmware,
  checks: z.array(DoctorCheckResult).min(1).max(DOCTOR_BOUNDS.checks),
});
/**
 * The box's MQTT last will is a HeartbeatMessage with this id, published by the broker on
 * `up/heartbeat` when the box vanishes without a clean DISCONNECT: the cloud marks it offline.
 */
export const OFFLINE_WILL_ID = 'offline-will';

// ── cloud → device ──────────────────────────────────────────────────────────────────────────────
/**
 * The wallet's receipt of a payment (v2): its own trade number, when it took the money, the total it
 * charged (`total`, the sale's amount when it is paid; another amount is AMOUNT_MISMATCH), and how
 * that total split into what the buyer paid and a discount, when the wallet says so.
 */
export const Receipt = z.strictObject({
  walletTradeNo: f.walletTradeNo,
  paidAt: f.timestamp.optional(),
  total: f.amount,
  buyerPaid: f.minorUnits.optional(),
  discount: f.minorUnits.optional(),
});
export const ResultMessage = z.strictObject({
  ...envelope,
  ...money,
  state: f.attemptState,
  reason: f.resultReason.optional(),
  wallet: f.wallet.optional(),
  message: f.shortText.optional(),
  /** v2: present when the wallet reported a payment for this attempt, whatever its state now. */
  receipt: Receipt.optional(),
});
/** down/result as protocol v1 has it, frozen: no receipt, the v1 reasons only. */
export const ResultMessageV1 = z.strictObject({
  ...envelopeV1,
  ...money,
  state: f.attemptState,
  reason: f.resultReasonV1.optional(),
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
/**
 * v3. Where a refund stands. Sent when it is taken (PENDING) or refused, when it becomes final, and
 * as the answer to every up/refund for it. `refundedTotal` is what has been refunded of the payment
 * so far (this refund included when REFUNDED); `remaining` what may still be refunded.
 */
export const RefundResultMessage = z.strictObject({
  ...envelope,
  refundId,
  outTradeNo: f.outTradeNo,
  amount: f.amount,
  currency: f.currency,
  state: z.enum(REFUND_STATES),
  reason: z.enum(REFUND_REASONS).optional(),
  refundedTotal: f.minorUnits.optional(),
  remaining: f.minorUnits.optional(),
  message: f.shortText.optional(),
});
/** v3. The answer to up/totals: the box's paid sales and refunds of the day per wallet, as the cloud recorded them. */
export const TotalsMessage = z.strictObject({
  ...envelope,
  refId: f.messageId,
  date: businessDate,
  currency: f.currency,
  wallets: z.array(WalletTotals).max(16),
  /** When the cloud counted (epoch ms). */
  asOf: f.timestamp,
});
/** `doctor` (v3): run the checks and answer on up/doctor. */
export const Command = z.enum(['reboot', 'resync', 'unpair', 'doctor']);
/** The protocol version each command came with: a cloud sends a command only to a box that announced at least that. */
export const COMMAND_SINCE = { reboot: 1, resync: 1, unpair: 1, doctor: 3 } as const satisfies Record<z.infer<typeof Command>, number>;
export const CommandMessage = z.strictObject({
  ...envelope,
  command: Command,
});
/** down/command as v1 and v2 have it, frozen: without `doctor`. */
const CommandMessageV2 = CommandMessage.extend({ command: z.enum(['reboot', 'resync', 'unpair']) });

export type PayMessage = z.infer<typeof PayMessage>;
export type CancelMessage = z.infer<typeof CancelMessage>;
export type QueryMessage = z.infer<typeof QueryMessage>;
export type AckMessage = z.infer<typeof AckMessage>;
export type HeartbeatMessage = z.infer<typeof HeartbeatMessage>;
export type DeviceStatus = z.infer<typeof DeviceStatus>;
export type PortState = z.infer<typeof PortState>;
export type Receipt = z.infer<typeof Receipt>;
export type ResultMessage = z.infer<typeof ResultMessage>;
export type ResultMessageV1 = z.infer<typeof ResultMessageV1>;
export type ProgressMessage = z.infer<typeof ProgressMessage>;
export type ErrorMessage = z.infer<typeof ErrorMessage>;
export type CommandMessage = z.infer<typeof CommandMessage>;
export type RefundMessage = z.infer<typeof RefundMessage>;
export type TotalsRequest = z.infer<typeof TotalsRequest>;
export type RefundResultMessage = z.infer<typeof RefundResultMessage>;
export type TotalsMessage = z.infer<typeof TotalsMessage>;
export type DoctorReportMessage = z.infer<typeof DoctorReportMessage>;

export const UP_SCHEMAS = {
  pay: PayMessage,
  cancel: CancelMessage,
  query: QueryMessage,
  ack: AckMessage,
  heartbeat: HeartbeatMessage,
  refund: RefundMessage,
  totals: TotalsRequest,
  doctor: DoctorReportMessage,
} as const satisfies Record<UpKind, z.ZodType>;
export const DOWN_SCHEMAS = {
  result: ResultMessage,
  progress: ProgressMessage,
  error: ErrorMessage,
  command: CommandMessage,
  refund: RefundResultMessage,
  totals: TotalsMessage,
} as const satisfies Record<DownKind, z.ZodType>;

/** A version's shapes: a kind it does not have (refund, totals and doctor before v3) is absent. */
export type UpShapes = { readonly [K in UpKind]?: z.ZodType };
export type DownShapes = { readonly [K in DownKind]?: z.ZodType };

/** An older version's shape of a message unchanged since: today's with `v` exactly that version. */
function asVersion<S extends Record<string, z.ZodObject>>(n: number, shapes: S): { [K in keyof S]: z.ZodType } {
  return Object.fromEntries(Object.entries(shapes).map(([k, shape]) => [k, shape.extend({ v: f.versionLiteral(n) })])) as unknown as { [K in keyof S]: z.ZodType };
}
const { refund: _upRefund, totals: _upTotals, doctor: _upDoctor, ...UP_SCHEMAS_V2 } = UP_SCHEMAS;
const { refund: _downRefund, totals: _downTotals, command: _command, ...DOWN_SCHEMAS_V2_REST } = DOWN_SCHEMAS;
const DOWN_SCHEMAS_V2 = { ...DOWN_SCHEMAS_V2_REST, command: CommandMessageV2 };

/**
 * The up/ shapes of each protocol version this box can send: its own, and v1 for a cloud released
 * before tolerant reading, which refuses any `v` but 1 (the box falls back for that connection).
 * v1 and v2 have no refund, totals or doctor: a box speaking v1 to an old cloud cannot send them.
 */
export const UP_SHAPES: Readonly<Record<number, UpShapes>> = { 1: asVersion(1, UP_SCHEMAS_V2), 2: asVersion(2, UP_SCHEMAS_V2), 3: UP_SCHEMAS };

/**
 * The down/ shapes of each protocol version this side can send. A box is sent the newest one not
 * newer than it announced; a version's shapes are never changed while a box of it may be in the field.
 * v2 added the result's `receipt` and the reason AMOUNT_MISMATCH; v3 added down/refund, down/totals
 * and the command `doctor`.
 */
export const DOWN_SHAPES: Readonly<Record<number, DownShapes>> = {
  1: { ...asVersion(1, { progress: ProgressMessage, error: ErrorMessage, command: CommandMessageV2 }), result: ResultMessageV1 },
  2: asVersion(2, DOWN_SCHEMAS_V2),
  3: DOWN_SCHEMAS,
};

/** `v` is the version a message is sent in; its shape is checked against that version's when encoded. */
export type AnyVersion<T> = T extends unknown ? Omit<T, 'v'> & { v: number } : never;
/** What a sender builds: the strict schema of the newest version (the box's own). */
export type UpToSend<K extends UpKind = UpKind> = z.infer<(typeof UP_SCHEMAS)[K]>;
/** What the cloud builds: the newest shape; `encodeDown` sets `v` to the version the box reads. */
export type DownToSend<K extends DownKind = DownKind> = AnyVersion<z.infer<(typeof DOWN_SCHEMAS)[K]>>;

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
  refund: z.object({ ...RefundMessage.shape, ...read }),
  totals: z.object({ ...TotalsRequest.shape, ...read }),
  /** A check with fields this cloud does not know is read by the ones it knows. */
  doctor: z.object({ ...DoctorReportMessage.shape, ...read, checks: z.array(z.object(DoctorCheckResult.shape)).min(1).max(DOCTOR_BOUNDS.checks) }),
} as const satisfies Record<UpKind, z.ZodType>;
/**
 * The receipt as the box reads it: unknown fields dropped; a receipt it cannot read is dropped whole,
 * and the result still applies (the state alone decides the money, never its receipt).
 */
const readReceipt = z.object(Receipt.shape).optional().catch(undefined);
/** The box's readers. An UNKNOWN result state is neither success nor final: the attempt stays open. */
export const DOWN_READERS = {
  result: z
    .object({
      ...ResultMessage.shape,
      ...read,
      state: f.tolerant(f.attemptState),
      reason: f.tolerant(f.resultReason).optional(),
      wallet: f.tolerant(f.wallet).optional(),
      receipt: readReceipt,
    })
    // A dropped receipt leaves no `receipt: undefined` behind.
    .transform(({ receipt, ...rest }): typeof rest & { receipt?: Receipt } => (receipt === undefined ? rest : { ...rest, receipt })),
  progress: z.object({ ...ProgressMessage.shape, ...read, stage: f.tolerant(ProgressStage) }),
  error: z.object({ ...ErrorMessage.shape, ...read, code: f.tolerant(f.errorCode) }),
  command: z.object({ ...CommandMessage.shape, ...read, command: f.tolerant(Command) }),
  /** An UNKNOWN refund state is never final: the box asks again. An unknown reason is dropped. */
  refund: z.object({
    ...RefundResultMessage.shape,
    ...read,
    state: f.tolerant(z.enum(REFUND_STATES)),
    reason: f.tolerant(z.enum(REFUND_REASONS)).optional(),
  }),
  /** A wallet's figures with fields this box does not know are read by the ones it knows. */
  totals: z.object({ ...TotalsMessage.shape, ...read, wallets: z.array(z.object(WalletTotals.shape)).max(16) }),
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

/**
 * The box speaks its own version (`version`, PROTOCOL_VERSION unless it fell back to v1 for an old
 * cloud); `msg.v` must be that version. The cloud reads any newer one by the fields it knows.
 */
export function encodeUp<K extends UpKind>(kind: K, msg: UpToSend<K> | AnyVersion<UpToSend<K>>, version: number = f.PROTOCOL_VERSION): string {
  const what = `up/${kind} v${version} message`;
  const shape = UP_SHAPES[version]?.[kind];
  if (!shape) throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `${what}: protocol v${version} has no up/${kind}`);
  return serialise(validate(shape, msg, what), what);
}

/** An encoded up/ message again, in the shape of `version` (the same fields, `v` set to it). */
export function reencodeUp<K extends UpKind>(kind: K, payload: string, version: number): string {
  const msg = decodeJson(z.looseObject({}), payload, `up/${kind} message`);
  return encodeUp(kind, { ...msg, v: version } as AnyVersion<UpToSend<K>>, version);
}

/** The newest shape version in `shapes` that a box speaking `boxVersion` reads. */
export function downShapeVersion(boxVersion: number, shapes: Readonly<Record<number, DownShapes>> = DOWN_SHAPES): number {
  const fits = Object.keys(shapes)
    .map(Number)
    .filter((v) => v <= boxVersion);
  if (fits.length === 0) throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `no down/ shape for a box that speaks protocol v${boxVersion}`);
  return Math.max(...fits);
}

/**
 * A result in the shape of the version a box speaking `boxVersion` reads, `v` set to it. What that
 * version does not have is left out, never guessed: for v1 the receipt, and a reason v1 does not
 * have (AMOUNT_MISMATCH): the state alone (FAILED, REVERSED, …) tells a v1 box that nothing is paid.
 * The cloud builds every result through this, so `encodeDown` never refuses one for its version.
 */
export function resultForVersion(msg: DownToSend<'result'>, boxVersion: number, shapes: Readonly<Record<number, DownShapes>> = DOWN_SHAPES): DownToSend<'result'> {
  const v = downShapeVersion(boxVersion, shapes);
  // v2 is the newest result shape: nothing to leave out. A later version adds its own case here.
  if (v >= 2) return { ...msg, v };
  const { receipt: _receipt, reason, ...rest } = msg;
  const v1Reason = reason !== undefined && (V1_RESULT_REASONS as readonly string[]).includes(reason);
  return { ...rest, v, ...(v1Reason ? { reason } : {}) };
}

/** A receipt's parts as recorded (null: the wallet did not say). */
export interface ReceiptParts {
  walletTradeNo: string | null;
  total: number | null;
  paidAt?: number | null;
  buyerPaid?: number | null;
  discount?: number | null;
}
/**
 * The receipt to send, from what the wallet reported: none without a trade number and a total it
 * can send; an optional part it cannot send is left out. A receipt never keeps a result from leaving.
 */
export function receiptOf(parts: ReceiptParts): Receipt | undefined {
  const walletTradeNo = f.walletTradeNo.safeParse(parts.walletTradeNo);
  const total = f.amount.safeParse(parts.total);
  if (!walletTradeNo.success || !total.success) return undefined;
  const paidAt = f.timestamp.safeParse(parts.paidAt);
  const buyerPaid = f.minorUnits.safeParse(parts.buyerPaid);
  const discount = f.minorUnits.safeParse(parts.discount);
  return {
    walletTradeNo: walletTradeNo.data,
    ...(paidAt.success ? { paidAt: paidAt.data } : {}),
    total: total.data,
    ...(buyerPaid.success ? { buyerPaid: buyerPaid.data } : {}),
    ...(discount.success ? { discount: discount.data } : {}),
  };
}

/**
 * Validate against the shape of the version the box reads, with `v` set to that version, so the
 * cloud never sends a box a field or value newer than it announced.
 */
export function encodeDown<K extends DownKind>(kind: K, msg: DownToSend<K>, boxVersion: number = f.MIN_PROTOCOL_VERSION, shapes: Readonly<Record<number, DownShapes>> = DOWN_SHAPES): string {
  const v = downShapeVersion(boxVersion, shapes);
  const what = `down/${kind} v${v} message`;
  const shape = shapes[v]![kind];
  if (!shape) throw new ProtocolError(ErrorCode.UNSUPPORTED_VERSION, `${what}: a box that speaks protocol v${boxVersion} has no down/${kind}`);
  return serialise(validate(shape, { ...msg, v }, what), what);
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
