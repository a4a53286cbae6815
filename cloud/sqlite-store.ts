import Database from 'better-sqlite3';
import { closeSync, openSync } from 'node:fs';
import { ErrorCode, ProtocolError, type AttemptState } from '../protocol/index.js';
import { MIGRATIONS } from './sqlite-schema.js';
import type {
  AttemptEventRow,
  AttemptFilter,
  AttemptWrite,
  CloudStore,
  DeviceAuth,
  DeviceRow,
  FleetUpdate,
  NewDevice,
  PairingCodeRow,
  RedeemRefusal,
  RedeemResult,
  WriteResult,
} from './store.js';
import { refundNoOf, type Attempt } from './transaction.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

/** Attempt field ↔ column; one list so reading and writing cannot drift apart. */
const ATTEMPT_COLUMNS = [
  ['outTradeNo', 'out_trade_no'],
  ['deviceId', 'device_id'],
  ['saleId', 'sale_id'],
  ['saleRef', 'sale_ref'],
  ['amount', 'amount'],
  ['currency', 'currency'],
  ['wallet', 'wallet'],
  ['state', 'state'],
  ['reason', 'reason'],
  ['createdAt', 'created_at'],
  ['updatedAt', 'updated_at'],
  ['payAt', 'pay_at'],
  ['deadlineAt', 'deadline_at'],
  ['nextAt', 'next_at'],
  ['step', 'step'],
  ['inFlight', 'in_flight'],
  ['callSeq', 'call_seq'],
  ['tries', 'tries'],
  ['cancelReason', 'cancel_reason'],
  ['gatewayTradeNo', 'gateway_trade_no'],
  ['ackedState', 'acked_state'],
  ['version', 'version'],
] as const satisfies readonly (readonly [keyof Attempt, string])[];

const FINAL_SQL = `('SUCCESS','FAILED','CANCELLED','REVERSED','REFUNDED')`;

function toAttempt(row: Row): Attempt {
  const a: Record<string, unknown> = {};
  for (const [field, col] of ATTEMPT_COLUMNS) a[field] = row[col] ?? null;
  return a as unknown as Attempt;
}

function toDevice(r: Row): DeviceRow {
  return {
    deviceId: r.device_id as string,
    hardwareId: r.hardware_id as string,
    merchantId: r.merchant_id as string,
    storeId: r.store_id as string,
    status: r.status as DeviceRow['status'],
    connectivity: r.connectivity as DeviceRow['connectivity'],
    lastSeenAt: (r.last_seen_at as number | null) ?? null,
    firmware: (r.firmware as string | null) ?? null,
    outboxDepth: (r.outbox_depth as number | null) ?? null,
    pendingAttempts: (r.pending_attempts as number | null) ?? null,
    pairedAt: r.paired_at as number,
    revokedAt: (r.revoked_at as number | null) ?? null,
  };
}

/**
 * Open (creating if needed, 0600) and check the database: integrity first, then migrations.
 * A damaged file is refused with what to do, never silently replaced.
 */
function openDatabase(path: string): Db {
  if (path !== ':memory:') closeSync(openSync(path, 'a', 0o600));
  let db: Db;
  try {
    db = new Database(path, { timeout: 5000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
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

  constructor(path: string) {
    this.db = openDatabase(path);
    const cols = ATTEMPT_COLUMNS.map(([, c]) => c);
    const db = this.db;
    this.stmt = {
      insertAttempt: db.prepare(`INSERT OR IGNORE INTO attempts (${cols.join(',')}) VALUES (${cols.map((c) => `@${c}`).join(',')})`),
      updateAttempt: db.prepare(`UPDATE attempts SET ${cols.filter((c) => c !== 'out_trade_no').map((c) => `${c}=@${c}`).join(',')} WHERE out_trade_no=@out_trade_no AND version=@expected`),
      attemptVersion: db.prepare('SELECT version FROM attempts WHERE out_trade_no=?').pluck(),
      getAttempt: db.prepare('SELECT * FROM attempts WHERE out_trade_no=?'),
      // Read on every message from a box (the service's second check): prepared once, not per call.
      deviceAuth: db.prepare('SELECT secret_hash, status FROM devices WHERE device_id=?'),
      claimSale: db.prepare('INSERT OR IGNORE INTO sale_claims (device_id, sale_id, out_trade_no, claimed_at) VALUES (?,?,?,?)'),
      saleWinner: db.prepare('SELECT out_trade_no FROM sale_claims WHERE device_id=? AND sale_id=?').pluck(),
      insertEvent: db.prepare('INSERT INTO attempt_events (out_trade_no, at, event, from_state, to_state, note) VALUES (?,?,?,?,?,?)'),
      upsertRefund: db.prepare(
        `INSERT INTO refunds (refund_no, out_trade_no, amount, currency, reason, state, created_at, updated_at) VALUES (@refundNo,@outTradeNo,@amount,@currency,@reason,@state,@at,@at)
         ON CONFLICT(refund_no) DO UPDATE SET state=excluded.state, reason=excluded.reason, updated_at=excluded.updated_at`,
      ),
      fleet: db.prepare(
        `UPDATE devices SET last_seen_at=MAX(COALESCE(last_seen_at,0), @at), connectivity=COALESCE(@connectivity, connectivity),
         firmware=COALESCE(@firmware, firmware), outbox_depth=COALESCE(@outboxDepth, outbox_depth), pending_attempts=COALESCE(@pendingAttempts, pending_attempts)
         WHERE device_id=@deviceId`,
      ),
    };
  }

  async createPairingCode(row: PairingCodeRow): Promise<void> {
    this.db.transaction(() => {
      this.ensureStore(row.merchantId, row.storeId, row.createdAt);
      this.db.prepare('INSERT INTO pairing_codes (code, merchant_id, store_id, created_at, expires_at) VALUES (?,?,?,?,?)').run(row.code, row.merchantId, row.storeId, row.createdAt, row.expiresAt);
    }).immediate();
  }

  private ensureStore(merchantId: string, storeId: string, at: number): void {
    this.db.prepare('INSERT OR IGNORE INTO merchants (merchant_id, created_at) VALUES (?,?)').run(merchantId, at);
    this.db.prepare('INSERT OR IGNORE INTO stores (merchant_id, store_id, created_at) VALUES (?,?,?)').run(merchantId, storeId, at);
  }

  async checkPairingCode(code: string, now: number): Promise<RedeemRefusal | undefined> {
    return refusalOf(this.db.prepare('SELECT * FROM pairing_codes WHERE code=?').get(code) as Row | undefined, now);
  }

  async redeemPairingCode(code: string, hardwareId: string, now: number, device: NewDevice): Promise<RedeemResult> {
    return this.db.transaction((): RedeemResult => {
      const row = this.db.prepare('SELECT * FROM pairing_codes WHERE code=?').get(code) as Row | undefined;
      const why = refusalOf(row, now);
      if (why || !row) return { ok: false, why: why ?? 'unknown' };
      this.db.prepare('UPDATE pairing_codes SET used_at=?, used_by_hardware=?, device_id=? WHERE code=?').run(now, hardwareId, device.deviceId, code);
      const revoked = this.db.prepare(`SELECT device_id FROM devices WHERE hardware_id=? AND status='active'`).pluck().all(hardwareId) as string[];
      for (const id of revoked) this.revokeNow(id, now);
      const merchantId = row.merchant_id as string;
      const storeId = row.store_id as string;
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
    return r ? { secretHash: r.secret_hash as string, status: r.status as DeviceAuth['status'] } : undefined;
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

  async updateFleet(updates: FleetUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    this.db.transaction(() => {
      for (const u of updates) {
        this.stmt.fleet.run({ connectivity: null, firmware: null, outboxDepth: null, pendingAttempts: null, ...u });
      }
    }).immediate();
  }

  async markStale(before: number): Promise<string[]> {
    return this.db.transaction(() => {
      const ids = this.db.prepare(`SELECT device_id FROM devices WHERE connectivity='online' AND last_seen_at < ?`).pluck().all(before) as string[];
      this.db.prepare(`UPDATE devices SET connectivity='stale' WHERE connectivity='online' AND last_seen_at < ?`).run(before);
      return ids;
    }).immediate();
  }

  async getAttempt(outTradeNo: string): Promise<Attempt | undefined> {
    const r = this.stmt.getAttempt.get(outTradeNo) as Row | undefined;
    return r ? toAttempt(r) : undefined;
  }

  async writeAttempts(writes: AttemptWrite[]): Promise<WriteResult[]> {
    return this.db.transaction(() => writes.map((w) => this.writeOne(w))).immediate();
  }

  /** Version check, then the sale claim, then the write: a refused write leaves no claim behind. */
  private writeOne(w: AttemptWrite): WriteResult {
    const a = w.attempt;
    const current = this.stmt.attemptVersion.get(a.outTradeNo) as number | undefined;
    if ((current ?? 0) !== w.expectedVersion) return { ok: false, why: 'version' };
    if (w.claimSale) {
      this.stmt.claimSale.run(a.deviceId, a.saleId, a.outTradeNo, a.updatedAt);
      const winner = this.stmt.saleWinner.get(a.deviceId, a.saleId) as string;
      if (winner !== a.outTradeNo) return { ok: false, why: 'sale_taken', winner };
    }
    const version = w.expectedVersion + 1;
    const params: Row = { expected: w.expectedVersion };
    for (const [field, col] of ATTEMPT_COLUMNS) params[col] = a[field];
    params.version = version;
    if (w.expectedVersion === 0) this.stmt.insertAttempt.run(params);
    else this.stmt.updateAttempt.run(params);
    this.stmt.insertEvent.run(a.outTradeNo, a.updatedAt, w.event, w.fromState, a.state, w.note);
    this.recordRefund(a, w.fromState);
    return { ok: true, version };
  }

  private recordRefund(a: Attempt, from: AttemptState | null): void {
    const refunding = a.state === 'REFUND_PENDING' || (a.state === 'REFUNDED' && from === 'REFUND_PENDING');
    if (!refunding) return;
    this.stmt.upsertRefund.run({
      refundNo: refundNoOf(a.outTradeNo),
      outTradeNo: a.outTradeNo,
      amount: a.amount,
      currency: a.currency,
      reason: a.reason,
      state: a.state === 'REFUNDED' ? 'DONE' : 'PENDING',
      at: a.updatedAt,
    });
  }

  /** Same rule as transaction.ts `needsWork`: not final, or a late check due or in flight. */
  async listActiveAttempts(): Promise<Attempt[]> {
    const rows = this.db.prepare(`SELECT * FROM attempts WHERE state NOT IN ${FINAL_SQL} OR next_at IS NOT NULL OR in_flight IS NOT NULL`).all() as Row[];
    return rows.map(toAttempt);
  }

  async listUnackedFinal(deviceId: string): Promise<Attempt[]> {
    const rows = this.db
      .prepare(`SELECT * FROM attempts WHERE device_id=? AND state IN ${FINAL_SQL} AND (acked_state IS NULL OR acked_state <> state) ORDER BY created_at`)
      .all(deviceId) as Row[];
    return rows.map(toAttempt);
  }

  async listAttempts(filter: AttemptFilter): Promise<Attempt[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.state) (where.push('state=?'), args.push(filter.state));
    if (filter.outTradeNo) (where.push('out_trade_no=?'), args.push(filter.outTradeNo));
    if (filter.deviceId) (where.push('device_id=?'), args.push(filter.deviceId));
    const sql = `SELECT * FROM attempts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, out_trade_no LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit ?? -1) as Row[]).map(toAttempt);
  }

  async attemptEvents(outTradeNo: string): Promise<AttemptEventRow[]> {
    const rows = this.db.prepare('SELECT * FROM attempt_events WHERE out_trade_no=? ORDER BY seq').all(outTradeNo) as Row[];
    return rows.map((r) => ({
      seq: r.seq as number,
      outTradeNo: r.out_trade_no as string,
      at: r.at as number,
      event: r.event as string,
      fromState: (r.from_state as AttemptState | null) ?? null,
      toState: r.to_state as AttemptState,
      note: r.note as string,
    }));
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}

function refusalOf(row: Row | undefined, now: number): RedeemRefusal | undefined {
  if (!row) return 'unknown';
  if (row.used_at !== null) return 'used';
  if ((row.expires_at as number) <= now) return 'expired';
  return undefined;
}
