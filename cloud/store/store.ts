import type { AttemptState, Wallet } from '../../protocol/index.js';
import type { HealthSummary } from '../gateway/channel-health.js';
import type { Attempt, AttemptFlag } from '../payments/transaction.js';
import type { Merchant, MerchantPatch } from '../merchants/merchant.js';

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

export interface AttemptEventRow {
  seq: number;
  outTradeNo: string;
  at: number;
  event: string;
  fromState: AttemptState | null;
  toState: AttemptState;
  note: string;
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
}

export type WriteResult =
  | { ok: true; version: number }
  | { ok: false; why: 'version' }
  | { ok: false; why: 'sale_taken'; winner: string };

export interface AttemptFilter {
  state?: AttemptState;
  flag?: AttemptFlag;
  outTradeNo?: string;
  deviceId?: string;
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

  // attempts
  getAttempt(outTradeNo: string): Promise<Attempt | undefined>;
  /** All writes in one transaction (group commit); each succeeds or fails on its own. */
  writeAttempts(writes: AttemptWrite[]): Promise<WriteResult[]>;
  /** Attempts that still have work: not final, or a step still scheduled. */
  listActiveAttempts(): Promise<Attempt[]>;
  /** Final attempts whose result the device has not acknowledged yet. */
  listUnackedFinal(deviceId: string): Promise<Attempt[]>;
  listAttempts(filter: AttemptFilter): Promise<Attempt[]>;
  attemptEvents(outTradeNo: string): Promise<AttemptEventRow[]>;

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

  close(): Promise<void>;
}
