import Database from 'better-sqlite3';
import { closeSync, openSync } from 'node:fs';
import { ErrorCode, ProtocolError, type AttemptState, type Wallet } from '../../protocol/index.js';
import { ATTEMPT_COLUMNS, MIGRATIONS, openConnection, pairingCodeHash, UNACKED_SQL } from './sqlite-schema.js';
import { CommitThread, threadedWriter } from './commit-thread.js';
import { inlineWriter, SqliteWriter, type AsyncWriter } from './sqlite-writer.js';
import type {
  ChannelOverride,
  ChannelStateRow,
  AttemptEventRow,
  AttemptFilter,
  AttemptsCreated,
  AttemptWrite,
  CloudStore,
  DeviceAuth,
  DeviceCommandName,
  DeviceCommandRow,
  DeviceRow,
  FleetSummary,
  FleetUpdate,
  NewDevice,
  PairingCodeRow,
  ReconcileFindingRow,
  RedeemRefusal,
  RedeemResult,
  WriteResult,
} from './store.js';
import type { Attempt } from '../payments/transaction.js';
import type { Merchant, MerchantPatch } from '../merchants/merchant.js';
import type { Refund } from '../refunds/refund-machine.js';
import { SqliteRefunds } from './sqlite-refunds.js';
import { toAttempt, toAttemptEvent, toDevice, toDeviceCommand, toDoctorReport, toFinding, toMerchant, unresolvedSql } from './rows.js';
import { SqliteOperators } from './sqlite-operators.js';
import type { DayFigures, FiguresScope, RefundAsk, RefundAskResult, RefundBalance, RefundEventRow, RefundFilter, RefundWriteEvent } from './store.js';
import type { OperatorActionFilter, OperatorActionRow, OperatorRow, OperatorSessionRow } from './store.js';
import type { DoctorReportRow, Lease, TrafficRow } from './store.js';
import { toTrafficRow, trafficEntries } from './traffic.js';

/** A doctor report's row; its checks are JSON text. */
const doctorReportOf = (r: Row): DoctorReportRow => toDoctorReport(r, JSON.parse(r.checks as string) as DoctorReportRow['checks']);

type Db = Database.Database;
type Row = Record<string, unknown>;

/** How many recently written attempts `getAttempt` answers from memory (≈1 KB each). */
const RECENT_ATTEMPTS = 10_000;

const FINAL_SQL = `('SUCCESS','FAILED','CANCELLED','REVERSED','REFUNDED')`;
/** transaction.ts `needsWork`: not final, or a late check due or in flight. */
const NEEDS_WORK_SQL = `state NOT IN ${FINAL_SQL} OR next_at IS NOT NULL OR in_flight IS NOT NULL`;

/** Merchant field ↔ column, for the fields `merchant set` may change. */
const MERCHANT_COLUMNS = { name: 'name', wechatSubMchId: 'wechat_sub_mch_id', alipayAppAuthToken: 'alipay_app_auth_token' } as const satisfies Record<keyof MerchantPatch, string>;

/**
 * Open (creating if needed, 0600) and check the database: integrity first, then migrations.
 * A damaged file is refused with what to do, never silently replaced.
 */
function openDatabase(path: string): Db {
  if (path !== ':memory:') closeSync(openSync(path, 'a', 0o600));
  let db: Db;
  try {
    db = openConnection(path);
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new Error(String(check));
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(
      ErrorCode.STORE_CORRUPT,
      `cloud store ${path} failed its integrity check (${(err as Error).message}). Stop the cloud, keep a copy of the file, and restore the last backup (or run sqlite3 ".recover" on the copy); it was not modified`,
      { path },
    );
  }
  migrate(db, path);
  return db;
}

function migrate(db: Db, path: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null };
  const current = row.v ?? 0;
  if (current > MIGRATIONS.length) {
    throw new ProtocolError(ErrorCode.STORE_TOO_NEW, `cloud store ${path} has schema version ${current}; this cloud knows up to ${MIGRATIONS.length}. Upgrade the cloud`, { path });
  }
  db.transaction(() => {
    for (let v = current + 1; v <= MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v - 1]!);
      db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(v);
    }
  }).immediate();
}

export class SqliteStore implements CloudStore {
  private readonly db: Db;
  private readonly stmt;
  private readonly writer: AsyncWriter;
  private readonly recent = new Map<string, Attempt>();
  /** The cashier's refunds (schema 8): their own statements, on this connection. */
  private readonly refunds: SqliteRefunds;
  /** The dashboard's operators, sessions and audit trail (schema 10). */
  private readonly operators: SqliteOperators;

  /**
   * `commitThread`: run the writes (sqlite-writer.ts) on their own thread and connection, so the
   * event loop keeps serving boxes while a group commit waits for the disk. The cloud does; tools
   * and tests that only read or write a little keep everything inline.
   */
  constructor(path: string, opts: { commitThread?: boolean } = {}) {
    this.db = openDatabase(path);
    const threaded = opts.commitThread === true && path !== ':memory:';
    // With a commit thread, checkpoints are its job: a write here (pairing, a lone attempt write) must never copy the WAL back on the event loop.
    if (threaded) this.db.pragma('wal_autocheckpoint = 0');
    const inline = new SqliteWriter(this.db);
    this.writer = threaded ? threadedWriter(CommitThread.start(path), inline) : inlineWriter(inline);
    const db = this.db;
    this.stmt = {
      getAttempt: db.prepare('SELECT * FROM attempts WHERE out_trade_no=?'),
      // Read on every message from a box (the service's second check): prepared once, not per call.
      deviceAuth: db.prepare('SELECT secret_hash, status, hardware_id, merchant_id FROM devices WHERE device_id=?'),
      // Read on every subscribe (a reconnecting fleet: 10,000 in seconds).
      unackedFinal: db.prepare(`SELECT * FROM attempts WHERE device_id=? AND state IN ${FINAL_SQL} AND ${UNACKED_SQL} ORDER BY created_at`),
    };
    this.refunds = new SqliteRefunds(db);
    this.operators = new SqliteOperators(db);
  }

  async addMerchant(merchantId: string, patch: MerchantPatch, now: number): Promise<Merchant> {
    return this.db.transaction(() => {
      if (this.merchantRow(merchantId)) throw new ProtocolError(ErrorCode.MERCHANT_EXISTS, `merchant ${merchantId} already exists; use merchant set to change it`);
      this.db.prepare('INSERT INTO merchants (merchant_id, created_at, updated_at) VALUES (?,?,?)').run(merchantId, now, now);
      return this.patchMerchant(merchantId, patch, now);
    }).immediate();
  }

  async updateMerchant(merchantId: string, patch: MerchantPatch, now: number): Promise<Merchant> {
    return this.db.transaction(() => {
      if (!this.merchantRow(merchantId)) throw new ProtocolError(ErrorCode.MERCHANT_UNKNOWN, `merchant ${merchantId} does not exist; add it with merchant add`);
      return this.patchMerchant(merchantId, patch, now);
    }).immediate();
  }

  private patchMerchant(merchantId: string, patch: MerchantPatch, now: number): Merchant {
    const sets = Object.entries(MERCHANT_COLUMNS).filter(([field]) => patch[field as keyof MerchantPatch] !== undefined);
    const values = sets.map(([field]) => patch[field as keyof MerchantPatch] ?? null);
    this.db.prepare(`UPDATE merchants SET ${[...sets.map(([, col]) => `${col}=?`), 'updated_at=?'].join(',')} WHERE merchant_id=?`).run(...values, now, merchantId);
    return toMerchant(this.merchantRow(merchantId)!);
  }

  private merchantRow(merchantId: string): Row | undefined {
    return this.db.prepare('SELECT * FROM merchants WHERE merchant_id=?').get(merchantId) as Row | undefined;
  }

  async getMerchant(merchantId: string): Promise<Merchant | undefined> {
    const r = this.merchantRow(merchantId);
    return r ? toMerchant(r) : undefined;
  }

  async listMerchants(): Promise<Merchant[]> {
    return (this.db.prepare('SELECT * FROM merchants ORDER BY merchant_id').all() as Row[]).map(toMerchant);
  }

  async createPairingCode(row: PairingCodeRow): Promise<void> {
    this.db.transaction(() => {
      if (!this.merchantRow(row.merchantId)) throw new ProtocolError(ErrorCode.MERCHANT_UNKNOWN, `merchant ${row.merchantId} does not exist; add it with scanbox-cloud merchant add first`);
      this.ensureStore(row.merchantId, row.storeId, row.createdAt);
      this.db.prepare('INSERT INTO pairing_codes (code, merchant_id, store_id, created_at, expires_at) VALUES (?,?,?,?,?)').run(pairingCodeHash(row.code), row.merchantId, row.storeId, row.createdAt, row.expiresAt);
    }).immediate();
  }

  private ensureStore(merchantId: string, storeId: string, at: number): void {
    this.db.prepare('INSERT OR IGNORE INTO stores (merchant_id, store_id, created_at) VALUES (?,?,?)').run(merchantId, storeId, at);
  }

  async checkPairingCode(code: string, now: number): Promise<RedeemRefusal | undefined> {
    return refusalOf(this.db.prepare('SELECT * FROM pairing_codes WHERE code=?').get(pairingCodeHash(code)) as Row | undefined, now);
  }

  async redeemPairingCode(code: string, hardwareId: string, now: number, device: NewDevice, provenDeviceId?: string): Promise<RedeemResult> {
    const hash = pairingCodeHash(code);
    return this.db.transaction((): RedeemResult => {
      const row = this.db.prepare('SELECT * FROM pairing_codes WHERE code=?').get(hash) as Row | undefined;
      const why = refusalOf(row, now);
      if (why || !row) return { ok: false, why: why ?? 'unknown' };
      const merchantId = row.merchant_id as string;
      const storeId = row.store_id as string;
      const active = this.db.prepare(`SELECT device_id, merchant_id FROM devices WHERE hardware_id=? AND status='active'`).all(hardwareId) as Row[];
      const foreign = active.find((d) => d.merchant_id !== merchantId && d.device_id !== provenDeviceId);
      if (foreign) return { ok: false, why: 'hardware_in_use', deviceId: foreign.device_id as string, merchantId: foreign.merchant_id as string };
      this.db.prepare('UPDATE pairing_codes SET used_at=?, used_by_hardware=?, device_id=? WHERE code=?').run(now, hardwareId, device.deviceId, hash);
      const revoked = active.map((d) => d.device_id as string);
      for (const id of revoked) this.revokeNow(id, now);
      this.db
        .prepare(`INSERT INTO devices (device_id, hardware_id, merchant_id, store_id, secret_hash, status, firmware, paired_at) VALUES (?,?,?,?,?,'active',?,?)`)
        .run(device.deviceId, hardwareId, merchantId, storeId, device.secretHash, device.firmware, now);
      return { ok: true, merchantId, storeId, revoked };
    }).immediate();
  }

  private revokeNow(deviceId: string, now: number): boolean {
    return this.db.prepare(`UPDATE devices SET status='revoked', revoked_at=? WHERE device_id=? AND status='active'`).run(now, deviceId).changes > 0;
  }

  async getDeviceAuth(deviceId: string): Promise<DeviceAuth | undefined> {
    const r = this.stmt.deviceAuth.get(deviceId) as Row | undefined;
    return r ? { secretHash: r.secret_hash as string, status: r.status as DeviceAuth['status'], hardwareId: r.hardware_id as string, merchantId: r.merchant_id as string } : undefined;
  }

  async setSecretHash(deviceId: string, secretHash: string): Promise<void> {
    this.db.prepare('UPDATE devices SET secret_hash=? WHERE device_id=?').run(secretHash, deviceId);
  }

  async getDevice(deviceId: string): Promise<DeviceRow | undefined> {
    const r = this.db.prepare('SELECT * FROM devices WHERE device_id=?').get(deviceId) as Row | undefined;
    return r ? toDevice(r) : undefined;
  }

  async listDevices(): Promise<DeviceRow[]> {
    return (this.db.prepare('SELECT * FROM devices ORDER BY merchant_id, store_id, device_id').all() as Row[]).map(toDevice);
  }

  async revokeDevice(deviceId: string, now: number): Promise<boolean> {
    return this.db.transaction(() => this.revokeNow(deviceId, now)).immediate();
  }

  async revokedSince(since: number): Promise<{ deviceId: string; revokedAt: number }[]> {
    const rows = this.db.prepare('SELECT device_id, revoked_at FROM devices WHERE revoked_at > ?').all(since) as Row[];
    return rows.map((r) => ({ deviceId: r.device_id as string, revokedAt: r.revoked_at as number }));
  }

  /** Resolved when the store can commit (the commit thread, if any, is up). */
  whenReady(): Promise<void> {
    return this.writer.ready;
  }

  updateFleet(updates: FleetUpdate[]): Promise<void> {
    return this.writer.updateFleet(updates);
  }

  markStale(before: number): Promise<string[]> {
    return this.writer.markStale(before);
  }

  async fleetSummary(awayLimit: number): Promise<FleetSummary> {
    const counts: FleetSummary['counts'] = { online: 0, offline: 0, stale: 0, never: 0 };
    for (const r of this.db.prepare(`SELECT connectivity, COUNT(*) AS n FROM devices WHERE status='active' GROUP BY connectivity`).all() as Row[]) {
      counts[r.connectivity as keyof typeof counts] = r.n as number;
    }
    const away = this.db
      .prepare(`SELECT device_id, merchant_id, store_id, connectivity, COALESCE(last_seen_at, paired_at) AS seen FROM devices WHERE status='active' AND connectivity IN ('offline','stale') ORDER BY seen DESC, device_id LIMIT ?`)
      .all(awayLimit) as Row[];
    return {
      counts,
      away: away.map((r) => ({ deviceId: r.device_id as string, merchantId: r.merchant_id as string, storeId: r.store_id as string, connectivity: r.connectivity as 'offline' | 'stale', lastSeenAt: r.seen as number })),
    };
  }

  async getAttempt(outTradeNo: string): Promise<Attempt | undefined> {
    const hit = this.recent.get(outTradeNo);
    if (hit) return hit;
    const r = this.stmt.getAttempt.get(outTradeNo) as Row | undefined;
    return r ? toAttempt(r) : undefined;
  }

  async writeAttempts(writes: AttemptWrite[]): Promise<WriteResult[]> {
    const results = await this.writer.writeAttempts(writes);
    writes.forEach((w, i) => {
      const r = results[i]!;
      if (r.ok) this.remember(w.attempt, r.version);
      else if (r.why === 'version') this.recent.delete(w.attempt.outTradeNo);
    });
    return results;
  }

  /**
   * The attempts this store committed last, exactly as the file now holds them: the next step of
   * an attempt reads its state back at once, and after a commit on the other connection that read
   * found this connection's page cache flushed (13 % of the event loop under load). Safe with more
   * writers on the file: a stale entry only makes a write fail its version check, which forgets it.
   */
  private remember(a: Attempt, version: number): void {
    const row: Record<string, unknown> = {};
    for (const [field] of ATTEMPT_COLUMNS) row[field] = a[field] ?? null;
    row.version = version;
    this.recent.delete(a.outTradeNo);
    this.recent.set(a.outTradeNo, Object.freeze(row) as unknown as Attempt);
    if (this.recent.size > RECENT_ATTEMPTS) this.recent.delete(this.recent.keys().next().value!);
  }

  /** Same rule as transaction.ts `needsWork`: not final, or a late check due or in flight. */
  async listActiveAttempts(): Promise<Attempt[]> {
    const rows = this.db.prepare(`SELECT * FROM attempts WHERE ${NEEDS_WORK_SQL}`).all() as Row[];
    return rows.map(toAttempt);
  }

  /** One transaction on the file's write lock: another handle or process claiming at once waits its turn, then sees these leases. */
  async claimAttempts(lease: Lease, limit: number): Promise<Attempt[]> {
    return this.db.transaction(() => {
      const rows = this.db
        .prepare(`SELECT * FROM attempts WHERE (${NEEDS_WORK_SQL}) AND (lease_owner IS NULL OR lease_until <= ?) ORDER BY created_at, out_trade_no LIMIT ?`)
        .all(lease.now, limit) as Row[];
      const take = this.db.prepare('UPDATE attempts SET lease_owner=?, lease_until=? WHERE out_trade_no=?');
      for (const r of rows) take.run(lease.owner, lease.until, r.out_trade_no);
      return rows.map(toAttempt);
    }).immediate();
  }

  async claimRefunds(lease: Lease, limit: number): Promise<Refund[]> {
    return this.refunds.claim(lease, limit);
  }

  async renewLeases(lease: Lease): Promise<number> {
    return this.db.transaction(() => {
      const attempts = this.db.prepare(`UPDATE attempts SET lease_until=? WHERE lease_owner=? AND (${NEEDS_WORK_SQL})`).run(lease.until, lease.owner).changes;
      const refunds = this.db.prepare(`UPDATE customer_refunds SET lease_until=? WHERE lease_owner=? AND state='PENDING'`).run(lease.until, lease.owner).changes;
      return attempts + refunds;
    }).immediate();
  }

  async releaseLeases(owner: string): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('UPDATE attempts SET lease_owner=NULL, lease_until=NULL WHERE lease_owner=?').run(owner);
      this.db.prepare('UPDATE customer_refunds SET lease_owner=NULL, lease_until=NULL WHERE lease_owner=?').run(owner);
    }).immediate();
  }

  async listUnackedFinal(deviceId: string): Promise<Attempt[]> {
    const rows = this.stmt.unackedFinal.all(deviceId) as Row[];
    return rows.map(toAttempt);
  }

  async listAttempts(filter: AttemptFilter): Promise<Attempt[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.state) (where.push('state=?'), args.push(filter.state));
    if (filter.outTradeNo) (where.push('out_trade_no=?'), args.push(filter.outTradeNo));
    if (filter.flag) (where.push('flag=?'), args.push(filter.flag));
    if (filter.saleRef) (where.push('sale_ref=?'), args.push(filter.saleRef));
    if (filter.gatewayTradeNo) (where.push('gateway_trade_no=?'), args.push(filter.gatewayTradeNo));
    if (filter.unresolved) where.push(unresolvedSql('attempt', 'attempts', 'out_trade_no'));
    // outTradeNo = `<deviceId>-<seq>`: the primary key's range for the prefix finds a device's attempts.
    if (filter.deviceId) (where.push('out_trade_no >= ? AND out_trade_no < ? AND device_id=?'), args.push(`${filter.deviceId}-`, `${filter.deviceId}.`, filter.deviceId));
    const sql = `SELECT * FROM attempts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, out_trade_no LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit ?? -1) as Row[]).map(toAttempt);
  }

  async countAttempts(state: AttemptState): Promise<{ count: number; oldestCreatedAt: number | null }> {
    const r = this.db.prepare('SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM attempts WHERE state=?').get(state) as Row;
    return { count: r.n as number, oldestCreatedAt: (r.oldest as number | null) ?? null };
  }

  async attemptEvents(outTradeNo: string): Promise<AttemptEventRow[]> {
    const rows = this.db
      .prepare('SELECT * FROM attempt_events WHERE attempt_rowid = (SELECT rowid FROM attempts WHERE out_trade_no=?) ORDER BY seq')
      .all(outTradeNo) as Row[];
    return rows.map(toAttemptEvent);
  }

  async listAttemptsCreated(range: AttemptsCreated): Promise<Attempt[]> {
    const rows = this.db.prepare('SELECT * FROM attempts WHERE channel=? AND created_at >= ? AND created_at < ? ORDER BY created_at, out_trade_no').all(range.channel, range.from, range.to) as Row[];
    return rows.map(toAttempt);
  }

  async listReconcileFindings(billDate: string, channel: string): Promise<ReconcileFindingRow[]> {
    const rows = this.db.prepare('SELECT * FROM reconcile_findings WHERE bill_date=? AND channel=? ORDER BY out_trade_no, kind').all(billDate, channel) as Row[];
    return rows.map(toFinding);
  }

  async saveReconcileFindings(rows: ReconcileFindingRow[]): Promise<void> {
    const upsert = this.db.prepare(
      `INSERT INTO reconcile_findings (bill_date, channel, out_trade_no, kind, status, merchant_id, amount, detail, action, found_at, updated_at)
       VALUES (@billDate, @channel, @outTradeNo, @kind, @status, @merchantId, @amount, @detail, @action, @foundAt, @updatedAt)
       ON CONFLICT (bill_date, channel, out_trade_no, kind) DO UPDATE SET status=excluded.status, merchant_id=excluded.merchant_id,
         amount=excluded.amount, detail=excluded.detail, action=excluded.action, updated_at=excluded.updated_at`,
    );
    this.db.transaction(() => {
      for (const r of rows) upsert.run(r);
    }).immediate();
  }

  /** Writes already asked for are committed first. */
  async channelOverrides(): Promise<ChannelOverride[]> {
    const rows = this.db.prepare('SELECT * FROM channel_overrides ORDER BY channel').all() as Row[];
    return rows.map((r) => ({ channel: r.channel as string, mode: r.mode as ChannelOverride['mode'], wallets: (r.wallets as string).split(',').filter(Boolean) as Wallet[], at: r.at as number }));
  }

  async setChannelOverride(channel: string, override: { mode: 'pinned' | 'disabled'; wallets: Wallet[] } | null, now: number): Promise<void> {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM channel_overrides WHERE channel=?').run(channel);
      if (!override) return;
      if (override.mode === 'pinned') {
        // One pin per wallet: a pin of another channel of one of these wallets gives way.
        for (const r of this.db.prepare(`SELECT channel, wallets FROM channel_overrides WHERE mode='pinned'`).all() as Row[]) {
          if ((r.wallets as string).split(',').some((w) => override.wallets.includes(w as Wallet))) this.db.prepare('DELETE FROM channel_overrides WHERE channel=?').run(r.channel);
        }
      }
      this.db.prepare('INSERT INTO channel_overrides (channel, mode, wallets, at) VALUES (?,?,?,?)').run(channel, override.mode, override.wallets.join(','), now);
    }).immediate();
  }

  async saveChannelStates(rows: ChannelStateRow[]): Promise<void> {
    const put = this.db.prepare('INSERT INTO channel_states (channel, summary, at) VALUES (?,?,?) ON CONFLICT(channel) DO UPDATE SET summary=excluded.summary, at=excluded.at');
    this.db.transaction(() => rows.forEach((r) => put.run(r.channel, JSON.stringify(r.summary), r.at)))();
  }

  async channelStates(): Promise<ChannelStateRow[]> {
    const rows = this.db.prepare('SELECT * FROM channel_states ORDER BY channel').all() as Row[];
    return rows.map((r) => ({ channel: r.channel as string, summary: JSON.parse(r.summary as string) as ChannelStateRow['summary'], at: r.at as number }));
  }

  async addDeviceCommand(cmd: { id: string; deviceId: string; command: DeviceCommandName }, now: number): Promise<{ row: DeviceCommandRow; created: boolean }> {
    return this.db.transaction(() => {
      const device = this.db.prepare('SELECT status FROM devices WHERE device_id=?').get(cmd.deviceId) as Row | undefined;
      if (!device) throw new ProtocolError(ErrorCode.NOT_PAIRED, `no device ${cmd.deviceId}`);
      if (device.status !== 'active') throw new ProtocolError(ErrorCode.DEVICE_REVOKED, `${cmd.deviceId} is revoked: it takes no command`);
      const open = this.db.prepare('SELECT * FROM device_commands WHERE device_id=? AND command=? AND done_at IS NULL ORDER BY created_at LIMIT 1').get(cmd.deviceId, cmd.command) as Row | undefined;
      if (open) return { row: toDeviceCommand(open), created: false };
      this.db.prepare('INSERT INTO device_commands (id, device_id, command, created_at) VALUES (?,?,?,?)').run(cmd.id, cmd.deviceId, cmd.command, now);
      return { row: toDeviceCommand(this.db.prepare('SELECT * FROM device_commands WHERE id=?').get(cmd.id) as Row), created: true };
    }).immediate();
  }

  async openDeviceCommands(): Promise<DeviceCommandRow[]> {
    return (this.db.prepare('SELECT * FROM device_commands WHERE done_at IS NULL ORDER BY created_at, rowid').all() as Row[]).map(toDeviceCommand);
  }

  async markDeviceCommandSent(id: string, now: number): Promise<boolean> {
    const done = `CASE WHEN command = 'unpair' THEN NULL ELSE ? END`;
    const outcome = `CASE WHEN command = 'unpair' THEN NULL ELSE 'sent' END`;
    const r = this.db.prepare(`UPDATE device_commands SET sent_at=COALESCE(sent_at, ?), done_at=${done}, outcome=${outcome} WHERE id=? AND done_at IS NULL`).run(now, now, id);
    return r.changes > 0;
  }

  async finishDeviceCommand(id: string, now: number, outcome: 'revoked' | 'dropped'): Promise<boolean> {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT device_id FROM device_commands WHERE id=? AND done_at IS NULL').get(id) as Row | undefined;
      if (!row) return false;
      if (outcome === 'revoked') this.revokeNow(row.device_id as string, now);
      this.db.prepare('UPDATE device_commands SET done_at=?, outcome=? WHERE id=?').run(now, outcome, id);
      return true;
    }).immediate();
  }

  async listDeviceCommands(deviceId?: string): Promise<DeviceCommandRow[]> {
    const rows = deviceId === undefined
      ? this.db.prepare('SELECT * FROM device_commands ORDER BY created_at, rowid').all()
      : this.db.prepare('SELECT * FROM device_commands WHERE device_id=? ORDER BY created_at, rowid').all(deviceId);
    return (rows as Row[]).map(toDeviceCommand);
  }

  async saveDoctorReport(r: DoctorReportRow): Promise<boolean> {
    return this.db.transaction(() => {
      const asked = this.db.prepare(`SELECT 1 FROM device_commands WHERE id=? AND device_id=? AND command='doctor'`).get(r.commandId, r.deviceId);
      if (!asked) return false;
      this.db
        .prepare(
          `INSERT INTO doctor_reports (device_id, command_id, message_id, firmware, checks, sent_at, received_at) VALUES (?,?,?,?,?,?,?)
           ON CONFLICT (device_id) DO UPDATE SET command_id=excluded.command_id, message_id=excluded.message_id, firmware=excluded.firmware,
             checks=excluded.checks, sent_at=excluded.sent_at, received_at=excluded.received_at`,
        )
        .run(r.deviceId, r.commandId, r.messageId, r.firmware, JSON.stringify(r.checks), r.sentAt, r.receivedAt);
      return true;
    }).immediate();
  }

  async latestDoctorReport(deviceId: string): Promise<DoctorReportRow | undefined> {
    const r = this.db.prepare('SELECT * FROM doctor_reports WHERE device_id=?').get(deviceId) as Row | undefined;
    return r ? doctorReportOf(r) : undefined;
  }

  async listDoctorReports(): Promise<DoctorReportRow[]> {
    return (this.db.prepare('SELECT * FROM doctor_reports ORDER BY device_id').all() as Row[]).map(doctorReportOf);
  }

  async requestRefund(ask: RefundAsk): Promise<RefundAskResult> {
    return this.refunds.request(ask);
  }

  async getRefund(refundId: string): Promise<Refund | undefined> {
    return this.refunds.get(refundId);
  }

  async writeRefund(refund: Refund, expectedVersion: number, lease?: Lease, event?: RefundWriteEvent): Promise<{ ok: true; version: number } | { ok: false; leasedTo?: string }> {
    return this.refunds.write(refund, expectedVersion, lease, event);
  }

  async refundEvents(outTradeNo: string): Promise<RefundEventRow[]> {
    return this.refunds.events(outTradeNo);
  }

  async listRefunds(filter: RefundFilter): Promise<Refund[]> {
    return this.refunds.list(filter);
  }

  async refundBalance(outTradeNo: string): Promise<RefundBalance | undefined> {
    return this.refunds.balance(outTradeNo);
  }

  async setStoreRefundLimit(merchantId: string, storeId: string, limitFen: number | null, now: number): Promise<void> {
    this.refunds.setLimit(merchantId, storeId, limitFen, now);
  }

  async storeRefundLimit(merchantId: string, storeId: string): Promise<number | null | undefined> {
    return this.refunds.limit(merchantId, storeId);
  }

  async dayFigures(scope: FiguresScope, from: number, to: number): Promise<DayFigures[]> {
    return this.refunds.figures(scope, from, to);
  }

  async addOperator(name: string, passwordHash: string, now: number): Promise<OperatorRow> {
    return this.operators.add(name, passwordHash, now);
  }

  async getOperator(name: string): Promise<OperatorRow | undefined> {
    return this.operators.get(name);
  }

  async listOperators(): Promise<OperatorRow[]> {
    return this.operators.list();
  }

  async setOperatorPassword(name: string, passwordHash: string, now: number): Promise<void> {
    this.operators.setPassword(name, passwordHash, now);
  }

  async removeOperator(name: string): Promise<boolean> {
    return this.operators.remove(name);
  }

  async createOperatorSession(row: OperatorSessionRow): Promise<void> {
    this.operators.createSession(row);
  }

  async getOperatorSession(idHash: string): Promise<OperatorSessionRow | undefined> {
    return this.operators.session(idHash);
  }

  async touchOperatorSession(idHash: string, at: number): Promise<boolean> {
    return this.operators.touch(idHash, at);
  }

  async endOperatorSession(idHash: string): Promise<boolean> {
    return this.operators.endSession(idHash);
  }

  async endExpiredOperatorSessions(idleBefore: number, createdBefore: number): Promise<number> {
    return this.operators.endExpired(idleBefore, createdBefore);
  }

  async addOperatorAction(action: Omit<OperatorActionRow, 'id'>): Promise<OperatorActionRow> {
    return this.operators.addAction(action);
  }

  async listOperatorActions(filter: OperatorActionFilter): Promise<OperatorActionRow[]> {
    return this.operators.actions(filter);
  }

  async addTraffic(minute: number, counts: Readonly<Record<string, number>>): Promise<void> {
    const entries = trafficEntries(minute, counts);
    const add = this.db.prepare('INSERT INTO traffic_minutes (minute, flow, count) VALUES (?, ?, ?) ON CONFLICT (minute, flow) DO UPDATE SET count = count + excluded.count');
    this.db.transaction(() => entries.forEach(([flow, n]) => add.run(minute, flow, n)))();
  }

  async trafficSince(since: number): Promise<TrafficRow[]> {
    return (this.db.prepare('SELECT minute, flow, count FROM traffic_minutes WHERE minute >= ? ORDER BY minute, flow').all(since) as Row[]).map(toTrafficRow);
  }

  async pruneTraffic(before: number): Promise<number> {
    return this.db.prepare('DELETE FROM traffic_minutes WHERE minute < ?').run(before).changes;
  }

  async close(): Promise<void> {
    await this.writer.close();
    if (this.db.open) this.db.close();
  }
}

function refusalOf(row: Row | undefined, now: number): RedeemRefusal | undefined {
  if (!row) return 'unknown';
  if (row.used_at !== null) return 'used';
  if ((row.expires_at as number) <= now) return 'expired';
  return undefined;
}
