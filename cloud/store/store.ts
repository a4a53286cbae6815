import type { AttemptState, Wallet } from '../../protocol/index.js';
import type { HealthSummary } from '../gateway/channel-health.js';
import type { Attempt, AttemptFlag } from '../payments/transaction.js';
import type { Merchant, MerchantPatch } from '../merchants/merchant.js';
import type { Currency, DoctorCheckResult, RefundState } from '../../protocol/index.js';
import type { Refund } from '../refunds/refund-machine.js';

/**
 * What the cloud keeps, behind an interface small enough for a PostgreSQL implementation to
 * follow. Every method is async even though SQLite answers synchronously, so callers are already
 * written for a networked store. Money state lives here and only here: the services keep nothing
 * about an attempt in memory that a restart (or another worker) would need.
 */

export type DeviceStatus = 'active' | 'revoked';
export type Connectivity = 'online' | 'offline' | 'stale' | 'never';

export interface DeviceRow {
  deviceId: string;
  hardwareId: string;
  merchantId: string;
  storeId: string;
  status: DeviceStatus;
  connectivity: Connectivity;
  lastSeenAt: number | null;
  firmware: string | null;
  outboxDepth: number | null;
  /** Pending attempts as the box reported them in its last heartbeat. */
  pendingAttempts: number | null;
  pairedAt: number;
  revokedAt: number | null;
}

export interface DeviceAuth {
  secretHash: string;
  status: DeviceStatus;
  hardwareId: string;
  merchantId: string;
}

export interface PairingCodeRow {
  code: string;
  merchantId: string;
  storeId: string;
  createdAt: number;
  expiresAt: number;
}

export interface NewDevice {
  deviceId: string;
  secretHash: string;
  firmware: string | null;
}

export type RedeemRefusal = 'unknown' | 'expired' | 'used';
export type RedeemResult =
  | { ok: true; merchantId: string; storeId: string; revoked: string[] }
  | { ok: false; why: RedeemRefusal }
  /** The hardware id has an active box under another merchant, and the request did not prove it is that box. */
  | { ok: false; why: 'hardware_in_use'; deviceId: string; merchantId: string };

export interface FleetUpdate {
  deviceId: string;
  at: number;
  connectivity?: Connectivity;
  firmware?: string;
  outboxDepth?: number;
  pendingAttempts?: number;
}

/** An active box that is offline or stale, and when it was last heard from (epoch ms). */
export interface AwayBox {
  deviceId: string;
  merchantId: string;
  storeId: string;
  connectivity: 'offline' | 'stale';
  lastSeenAt: number;
}

/** The fleet in aggregate (active boxes only): how many by connectivity, and the away ones most recently seen first. */
export interface FleetSummary {
  counts: Record<Connectivity, number>;
  away: AwayBox[];
}

export interface AttemptEventRow {
  seq: number;
  outTradeNo: string;
  at: number;
  event: string;
  fromState: AttemptState | null;
  toState: AttemptState;
  note: string;
}

/**
 * One change of a register refund (the append-only refund_events): its creation by `requestRefund`
 * (`request`, from null), and every `writeRefund` that carried a RefundWriteEvent. `note` is the
 * refund machine's (the wallet's answer, the retry's delay) or, for a creation, what was asked or why
 * it was refused.
 */
export interface RefundEventRow {
  seq: number;
  refundId: string;
  outTradeNo: string;
  at: number;
  event: string;
  fromState: RefundState | null;
  toState: RefundState;
  note: string;
}

/**
 * What a refund write records in refund_events with the row, in the same transaction and only when
 * the write succeeds: the event that drove it (refund-machine.ts RefundEvent's type, or `operator`)
 * and the machine's note. The store fills in the rest — from the row it replaces, to the refund
 * written, at its `updatedAt` — so the history cannot disagree with the row.
 */
export interface RefundWriteEvent {
  event: string;
  note: string;
}

/** One flow's total in one minute (traffic_minutes), summed over the workers that added to it. */
export interface TrafficRow {
  minute: number;
  flow: string;
  count: number;
}

/**
 * A worker's hold on an attempt or a refund (several cloud workers on one store): until `until`
 * (epoch ms) only `owner` may drive it; after, any worker may take it over. `now` is the moment the
 * lease is taken or checked at, by the caller's clock (the store never reads one).
 */
export interface Lease {
  owner: string;
  now: number;
  until: number;
  /**
   * Take it whoever holds it. For the write that puts a wallet call out: the version check already
   * makes that write the only one of its step, and whoever has the call out must hold the attempt
   * (or, if it dies, its lease must run out for the call to be resumed by another).
   */
  force?: boolean;
}

/** One attempt's transition to write. `expectedVersion` 0 means "must not exist yet". */
export interface AttemptWrite {
  attempt: Attempt;
  expectedVersion: number;
  event: string;
  fromState: AttemptState | null;
  note: string;
  /** Claim the attempt's sale (deviceId + saleId) for this attempt's success, atomically. */
  claimSale: boolean;
  /**
   * Take (or renew) the attempt's lease in the same transaction as the write; the write is refused
   * (`leased`) while another owner's lease runs past `lease.now`. Without it the lease is neither
   * checked nor changed (one cloud process: no lease at all).
   */
  lease?: Lease;
}

export type WriteResult =
  | { ok: true; version: number }
  | { ok: false; why: 'version' }
  | { ok: false; why: 'sale_taken'; winner: string }
  /** Another worker drives this attempt until `until`. */
  | { ok: false; why: 'leased'; owner: string; until: number };

export interface AttemptFilter {
  state?: AttemptState;
  flag?: AttemptFlag;
  outTradeNo?: string;
  deviceId?: string;
  /**
   * The register's sale reference, the wallet's transaction id (the dashboard's search). Not indexed:
   * every attempt write sets every column, so an index would cost each payment; a search scans.
   */
  saleRef?: string;
  gatewayTradeNo?: string;
  /** Only attempts no operator marked resolved in the state they are in now (the exception desk). */
  unresolved?: boolean;
  limit?: number;
}

/** A channel's attempts created in [from, to) (epoch ms): the morning reconciliation's view of a day. */
export interface AttemptsCreated {
  channel: string;
  from: number;
  to: number;
}

export type ReconcileFindingStatus = 'open' | 'settled';

/**
 * One finding of the morning reconciliation (cloud/reconcile/), kept so that a second run knows
 * what the first found and did: keyed by (billDate, channel, outTradeNo, kind).
 */
export interface ReconcileFindingRow {
  /** The bill's business day, yyyy-MM-dd (Beijing). */
  billDate: string;
  channel: string;
  outTradeNo: string;
  /** compare.ts FINDING_KINDS. */
  kind: string;
  /** open: a person must look; settled: nothing is left to do. */
  status: ReconcileFindingStatus;
  merchantId: string | null;
  /** fen. */
  amount: number;
  detail: string;
  /** What a run did about it (a refund and its number, a query's answer). */
  action: string | null;
  foundAt: number;
  updatedAt: number;
}

/** An operator's channel decision: pinned for its wallets (the only channel their new payments use), or disabled. */
export interface ChannelOverride {
  channel: string;
  mode: 'pinned' | 'disabled';
  wallets: Wallet[];
  at: number;
}

/** A channel's breaker state and window figures, as a running cloud last wrote them. */
export interface ChannelStateRow {
  channel: string;
  summary: HealthSummary;
  at: number;
}

/** What an operator can tell a box from the CLI; the box's protocol has the same names (down/command). */
export type DeviceCommandName = 'reboot' | 'resync' | 'unpair' | 'doctor';
/**
 * How a command ended: `sent` (published on the box's down/command; the end of a reboot or resync),
 * `revoked` (an unpair: the box left, or its grace passed, and it was revoked), `dropped` (never sent:
 * the box was revoked by other means first).
 */
export type DeviceCommandOutcome = 'sent' | 'revoked' | 'dropped';

export interface DeviceCommandRow {
  /** The id of the down/command message (protocol messageId): the box dedups by it. */
  id: string;
  deviceId: string;
  command: DeviceCommandName;
  createdAt: number;
  /** First published to the box; null while queued. */
  sentAt: number | null;
  /** Nothing more to do; null while queued, and for an unpair until the box is revoked. */
  doneAt: number | null;
  outcome: DeviceCommandOutcome | null;
}

/** A box's doctor report (up/doctor) as the cloud keeps it: the latest of each box. */
export interface DoctorReportRow {
  deviceId: string;
  /** The `doctor` command it answers (its refId). */
  commandId: string;
  /** The report's own message id. */
  messageId: string;
  firmware: string;
  checks: DoctorCheckResult[];
  /** When the box sent it, by the box's clock (the message's ts). */
  sentAt: number;
  /** When the cloud took it, by the cloud's clock. */
  receivedAt: number;
}

/** A refund as the box asks for it (up/refund), for the store's atomic `requestRefund`. */
export interface RefundAsk {
  refundId: string;
  /** The sender: its merchant is the one the payment must belong to, its store the one whose limit counts. */
  deviceId: string;
  refundRef: string;
  /** The attempt that paid the sale. */
  outTradeNo: string;
  amount: number;
  currency: Currency;
  /** When it arrived: the refund's created time, and the Beijing day of its store's limit. */
  at: number;
}

/**
 * What `requestRefund` did: `created` — recorded now, PENDING, or REFUSED with its reason (kept, so a
 * re-send gets the same answer); `existing` — the refund id was known with this payment and amount:
 * the recorded refund, as it stands; `conflict` — the id was known with another payment or amount:
 * nothing changed, and `refund` is the recorded one.
 */
export type RefundAskResult = { kind: 'created' | 'existing' | 'conflict'; refund: Refund };

/** One payment's refunds so far (fen): what it charged, what is refunded, what is being refunded. */
export interface RefundBalance {
  charged: number;
  refunded: number;
  pending: number;
}

/** Every field narrows; none: every refund. Oldest first. */
export interface RefundFilter {
  state?: RefundState;
  flagged?: boolean;
  deviceId?: string;
  merchantId?: string;
  outTradeNo?: string;
  channel?: string;
  refundIds?: readonly string[];
  /** Final in [finalFrom, finalTo) (epoch ms). */
  finalFrom?: number;
  finalTo?: number;
  /** Only refunds no operator marked resolved in the state they are in now (the exception desk). */
  unresolved?: boolean;
  limit?: number;
}

/** Whose figures `dayFigures` counts: one box (its totals), or a merchant (the back office's report). */
export type FiguresScope = { deviceId: string } | { merchantId: string };

/**
 * One box's figures of one wallet over a range: SUCCESS attempts paid in it (the wallet's paid time,
 * else when the attempt was created) and the box's REFUNDED refunds final in it (fen).
 */
export interface DayFigures {
  storeId: string;
  deviceId: string;
  wallet: string;
  paidCount: number;
  paidAmount: number;
  refundCount: number;
  refundAmount: number;
}

/** A dashboard operator (cloud/dashboard/); `passwordHash` is what operator-password.ts makes (scrypt, its own salt). */
export interface OperatorRow {
  name: string;
  passwordHash: string;
  createdAt: number;
  updatedAt: number;
}

/** A dashboard session: the store keeps the SHA-256 of its id, never the id the browser holds. */
export interface OperatorSessionRow {
  idHash: string;
  operator: string;
  /** What the session's forms carry (hidden field, htmx header); compared in constant time. */
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
}

/** What an operator did from the dashboard (the exception desk, the boxes, pairing). */
export type OperatorActionName = 'query_now' | 'retry_now' | 'resolve' | 'revoke' | 'pairing_code' | 'ask_doctor';
/** What it was done to: a payment attempt (outTradeNo), a register refund (refundId), a box (deviceId), a store (`merchant/store`). */
export type OperatorSubjectKind = 'attempt' | 'refund' | 'device' | 'store';

export interface OperatorActionRow {
  id: number;
  at: number;
  operator: string;
  action: OperatorActionName;
  subjectKind: OperatorSubjectKind;
  subjectId: string;
  /** The subject's state when the action was taken (a resolution holds while the state stays). */
  subjectState: string | null;
  note: string;
  /** What came of it, in words: "done", "refused: a wallet call is out"… */
  outcome: string;
}

/** Every field narrows; none: every action. Oldest first. */
export interface OperatorActionFilter {
  subjectKind?: OperatorSubjectKind;
  subjectIds?: readonly string[];
  action?: OperatorActionName;
  /** The latest first (with `limit`: the latest N); oldest first otherwise. */
  newestFirst?: boolean;
  limit?: number;
}

export interface CloudStore {
  // merchants
  /** Adds a merchant; refuses (MERCHANT_EXISTS) one that exists. */
  addMerchant(merchantId: string, patch: MerchantPatch, now: number): Promise<Merchant>;
  /** Changes a merchant's fields (absent keeps, null clears); refuses (MERCHANT_UNKNOWN) one that does not exist. */
  updateMerchant(merchantId: string, patch: MerchantPatch, now: number): Promise<Merchant>;
  getMerchant(merchantId: string): Promise<Merchant | undefined>;
  listMerchants(): Promise<Merchant[]>;

  // pairing and devices
  /** Refuses (MERCHANT_UNKNOWN) a code for a merchant that was never added: a box must pay into a real account. */
  createPairingCode(row: PairingCodeRow): Promise<void>;
  /** A cheap look at a code before anything is issued for it; redeem checks again atomically. */
  checkPairingCode(code: string, now: number): Promise<RedeemRefusal | undefined>;
  /**
   * Atomically: check the code, mark it used, revoke the active devices of this hardware id, add the
   * device. Another merchant's device of the hardware id is revoked only when it is `provenDeviceId`
   * (the request held its secret); otherwise nothing changes and the answer is `hardware_in_use`.
   * Codes are kept only as hashes (a code is single-use and lives minutes: an unkeyed hash is enough).
   */
  redeemPairingCode(code: string, hardwareId: string, now: number, device: NewDevice, provenDeviceId?: string): Promise<RedeemResult>;
  getDeviceAuth(deviceId: string): Promise<DeviceAuth | undefined>;
  /** Replace a device's stored secret hash (a legacy hash rewritten after a successful login). */
  setSecretHash(deviceId: string, secretHash: string): Promise<void>;
  getDevice(deviceId: string): Promise<DeviceRow | undefined>;
  listDevices(): Promise<DeviceRow[]>;
  revokeDevice(deviceId: string, now: number): Promise<boolean>;
  /** Devices revoked after `since` (ms), so a running cloud can disconnect them. */
  revokedSince(since: number): Promise<{ deviceId: string; revokedAt: number }[]>;
  updateFleet(updates: FleetUpdate[]): Promise<void>;
  /** Mark online devices not heard from since `before` as stale; returns their ids. */
  markStale(before: number): Promise<string[]>;
  /** For /metrics at every scrape: the counts, and at most `awayLimit` away boxes (no row per online box). */
  fleetSummary(awayLimit: number): Promise<FleetSummary>;

  // attempts
  getAttempt(outTradeNo: string): Promise<Attempt | undefined>;
  /** All writes in one transaction (group commit); each succeeds or fails on its own. */
  writeAttempts(writes: AttemptWrite[]): Promise<WriteResult[]>;
  /** Attempts that still have work: not final, or a step still scheduled. */
  listActiveAttempts(): Promise<Attempt[]>;
  /** Final attempts whose result the device has not acknowledged yet. */
  listUnackedFinal(deviceId: string): Promise<Attempt[]>;
  listAttempts(filter: AttemptFilter): Promise<Attempt[]>;
  /** How many attempts are in `state`, and when the oldest of them was created (null: none); one aggregate query. */
  countAttempts(state: AttemptState): Promise<{ count: number; oldestCreatedAt: number | null }>;
  attemptEvents(outTradeNo: string): Promise<AttemptEventRow[]>;

  // several workers on one store: who drives which attempt and refund (leases)
  /**
   * Background work for `lease.owner`: up to `limit` attempts with work left (listActiveAttempts'
   * rule) that nobody holds — no lease, or one expired at `lease.now`, whoever's — oldest first,
   * leased until `lease.until` in the same transaction. Two workers claiming at once never get the
   * same attempt; one being written is skipped, not waited for. A worker's unexpired leases are not
   * answered again (it drives those already); a worker starting under the id of its previous life
   * releases that life's leases first (releaseLeases), then claims.
   */
  claimAttempts(lease: Lease, limit: number): Promise<Attempt[]>;
  /** The same for PENDING refunds (`writeRefund` takes a lease like an attempt write). */
  claimRefunds(lease: Lease, limit: number): Promise<Refund[]>;
  /** Extends to `lease.until` every lease `lease.owner` holds on attempts and refunds with work left (a worker's heartbeat). How many. */
  renewLeases(lease: Lease): Promise<number>;
  /** Gives up every lease of `owner` (a worker stopping cleanly): the others take its work over at once instead of at expiry. */
  releaseLeases(owner: string): Promise<void>;

  // the morning reconciliation
  /** A channel's attempts created in [from, to), oldest first. */
  listAttemptsCreated(range: AttemptsCreated): Promise<Attempt[]>;
  /** The findings recorded for one bill day and channel, by outTradeNo, then kind. */
  listReconcileFindings(billDate: string, channel: string): Promise<ReconcileFindingRow[]>;
  /** Adds or replaces findings by their key, all or none; a replaced finding keeps its first foundAt. */
  saveReconcileFindings(rows: ReconcileFindingRow[]): Promise<void>;

  // channels
  channelOverrides(): Promise<ChannelOverride[]>;
  /**
   * Pins a channel (replacing any other pin of one of its wallets), disables it, or (null) clears
   * what the operator said about it — in one transaction.
   */
  setChannelOverride(channel: string, override: { mode: 'pinned' | 'disabled'; wallets: Wallet[] } | null, now: number): Promise<void>;
  saveChannelStates(rows: ChannelStateRow[]): Promise<void>;
  channelStates(): Promise<ChannelStateRow[]>;

  // commands for boxes (`scanbox-cloud devices reboot|unpair`; the running cloud sends them)
  /**
   * Queues a command for an active box. Refuses a box that does not exist (NOT_PAIRED) or is revoked
   * (DEVICE_REVOKED). A command of the same name still open for the box is answered instead of a
   * second one (`created: false`): a repeated `reboot` reboots the box once.
   */
  addDeviceCommand(cmd: { id: string; deviceId: string; command: DeviceCommandName }, now: number): Promise<{ row: DeviceCommandRow; created: boolean }>;
  /** Commands not done yet (queued, or an unpair sent and waiting for its box to leave), oldest first. */
  openDeviceCommands(): Promise<DeviceCommandRow[]>;
  /**
   * The command went out on the box's down/command: the first time sets sentAt; a reboot or resync is
   * then done (outcome `sent`), an unpair stays open until `finishDeviceCommand`. False if it is done.
   */
  markDeviceCommandSent(id: string, now: number): Promise<boolean>;
  /**
   * Ends an open command. `revoked` also revokes its box (when still active) in the same transaction;
   * `dropped` changes only the command. False if it was already done (nothing changes).
   */
  finishDeviceCommand(id: string, now: number, outcome: 'revoked' | 'dropped'): Promise<boolean>;
  /** Every command of one box (or of all), oldest first. */
  listDeviceCommands(deviceId?: string): Promise<DeviceCommandRow[]>;

  // the box's doctor (`scanbox-cloud devices doctor`; the dashboard's box page)
  /**
   * Keeps the report as its box's latest, replacing the one before, when it answers a `doctor`
   * command queued for that box (`commandId`); otherwise nothing changes and the answer is false.
   */
  saveDoctorReport(report: DoctorReportRow): Promise<boolean>;
  /** The box's latest doctor report; undefined when it has sent none. */
  latestDoctorReport(deviceId: string): Promise<DoctorReportRow | undefined>;
  /** The latest report of every box that has one, by device id. */
  listDoctorReports(): Promise<DoctorReportRow[]>;

  // refunds the cash register asks for (cloud/refunds/)
  /**
   * In one transaction: a known refund id is answered as it is recorded (`existing`), or `conflict`
   * if this ask names another payment, amount or currency (the recorded one is untouched). Otherwise
   * the ask is checked — the payment exists (SALE_UNKNOWN), is the sender's merchant's
   * (NOT_THIS_MERCHANT), is SUCCESS (SALE_NOT_PAID), the amount fits what remains of what it charged
   * after its PENDING and REFUNDED refunds (EXCEEDS_REMAINING), and the sender's store's PENDING and
   * REFUNDED refunds created on the ask's Beijing day plus this one stay within the store's daily
   * limit (DAILY_LIMIT) — and recorded PENDING, or REFUSED with the first reason (`created`). Two asks
   * for one payment never both pass the remaining check, whatever runs them concurrently. Refuses
   * (NOT_PAIRED) a sender that is not a device.
   */
  requestRefund(ask: RefundAsk): Promise<RefundAskResult>;
  getRefund(refundId: string): Promise<Refund | undefined>;
  /**
   * Replace a recorded refund if it is still at `expectedVersion`; false when another write got there
   * first. With a lease, as an attempt write: taken or renewed with the write, refused (`leasedTo`)
   * while another owner's runs. With `event`, one refund_events row is appended in the same
   * transaction — only if the write succeeds (a version conflict or a lease refusal appends none).
   */
  writeRefund(refund: Refund, expectedVersion: number, lease?: Lease, event?: RefundWriteEvent): Promise<{ ok: true; version: number } | { ok: false; leasedTo?: string }>;
  /** Every refund of one payment's history (refund_events), oldest first; `requestRefund` records each creation. */
  refundEvents(outTradeNo: string): Promise<RefundEventRow[]>;
  listRefunds(filter: RefundFilter): Promise<Refund[]>;
  /** The payment's figures for a refund answer; undefined when there is no such attempt. */
  refundBalance(outTradeNo: string): Promise<RefundBalance | undefined>;
  /** A store's daily refund limit in fen (null: none). Refuses (MERCHANT_UNKNOWN) a merchant that does not exist; a store not seen yet is added. */
  setStoreRefundLimit(merchantId: string, storeId: string, limitFen: number | null, now: number): Promise<void>;
  /** The store's daily refund limit: null when it has none, undefined when there is no such store. */
  storeRefundLimit(merchantId: string, storeId: string): Promise<number | null | undefined>;
  /** Per box and wallet, the paid sales and refunds in [from, to): see DayFigures. Boxes with nothing are absent. */
  dayFigures(scope: FiguresScope, from: number, to: number): Promise<DayFigures[]>;

  // dashboard operators, their sessions and what they did (cloud/dashboard/)
  /** Refuses (OPERATOR_EXISTS) a name that is taken. */
  addOperator(name: string, passwordHash: string, now: number): Promise<OperatorRow>;
  getOperator(name: string): Promise<OperatorRow | undefined>;
  listOperators(): Promise<OperatorRow[]>;
  /** A new password ends every session of the operator, in the same transaction. Refuses (OPERATOR_UNKNOWN) an unknown name. */
  setOperatorPassword(name: string, passwordHash: string, now: number): Promise<void>;
  /** Removes the operator and ends its sessions; its audited actions stay. False when there was no such operator. */
  removeOperator(name: string): Promise<boolean>;
  /** Refuses (OPERATOR_UNKNOWN) a session of an operator that does not exist. */
  createOperatorSession(row: OperatorSessionRow): Promise<void>;
  getOperatorSession(idHash: string): Promise<OperatorSessionRow | undefined>;
  /** Moves the session's lastSeenAt forward (never back); false when there is no such session. */
  touchOperatorSession(idHash: string, at: number): Promise<boolean>;
  endOperatorSession(idHash: string): Promise<boolean>;
  /** Ends every session last seen before `idleBefore` or created before `createdBefore`; returns how many. */
  endExpiredOperatorSessions(idleBefore: number, createdBefore: number): Promise<number>;
  /** Appends to the audit trail (never changed, never deleted); returns the row with its id. */
  addOperatorAction(action: Omit<OperatorActionRow, 'id'>): Promise<OperatorActionRow>;
  listOperatorActions(filter: OperatorActionFilter): Promise<OperatorActionRow[]>;

  // the dashboard's charts: payments and abnormal flows per minute, added by every worker
  /** Adds each count (a whole number ≥ 0; zeros are skipped) to its flow's total for `minute` (epoch ms of its start). */
  addTraffic(minute: number, counts: Readonly<Record<string, number>>): Promise<void>;
  /** Every flow's total per minute from `since` on, whoever added it; oldest minute first, flows by name. */
  trafficSince(since: number): Promise<TrafficRow[]>;
  /** Forgets the minutes before `before`; returns how many rows went. */
  pruneTraffic(before: number): Promise<number>;

  close(): Promise<void>;
}
