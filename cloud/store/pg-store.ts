import { ErrorCode, FINAL_STATES, ProtocolError, type AttemptState, type Wallet } from '../../protocol/index.js';
import { refundNoOf, type Attempt } from '../payments/transaction.js';
import type { Merchant, MerchantPatch } from '../merchants/merchant.js';
import type { Refund } from '../refunds/refund-machine.js';
import { ATTEMPT_COLUMNS, pairingCodeHash, UNACKED_SQL } from './sqlite-schema.js';
import { PgConnection, type Row, type Sql } from './pg-connection.js';
import { checkSchema } from './pg-migrate.js';
import { NEEDS_WORK_SQL } from './pg-schema.js';
import { PgRefunds } from './pg-refunds.js';
import { toAttempt, toAttemptEvent, toDevice, toDeviceCommand, toDoctorReport, toFinding, toMerchant, unresolvedSql } from './rows.js';
import { PgOperators } from './pg-operators.js';
import type {
  AttemptEventRow,
  AttemptFilter,
  AttemptsCreated,
  AttemptWrite,
  ChannelOverride,
  ChannelStateRow,
  CloudStore,
  DayFigures,
  DeviceAuth,
  DeviceCommandName,
  DeviceCommandRow,
  DeviceRow,
  DoctorReportRow,
  FiguresScope,
  FleetSummary,
  FleetUpdate,
  Lease,
  NewDevice,
  OperatorActionFilter,
  OperatorActionRow,
  OperatorRow,
  OperatorSessionRow,
  PairingCodeRow,
  ReconcileFindingRow,
  RedeemRefusal,
  RedeemResult,
  RefundAsk,
  RefundAskResult,
  RefundBalance,
  RefundEventRow,
  RefundFilter,
  RefundWriteEvent,
  TrafficRow,
  WriteResult,
} from './store.js';
import { toTrafficRow, trafficEntries } from './traffic.js';

/** A doctor report's row; its checks are JSONB, decoded by the driver. */
const doctorReportOf = (r: Row): DoctorReportRow => toDoctorReport(r, r.checks as DoctorReportRow['checks']);

/**
 * The CloudStore on PostgreSQL, for several cloud workers on one database (issue 16). What it
 * keeps and answers is what the SQLite store does (the conformance suite holds both to it); how:
 *
 * - A group of attempt writes is one call of `scanbox_write_attempts` (pg-schema.ts): one round
 *   trip, one transaction, one commit for the whole group — group commit kept across the network.
 *   Versions are checked on rows locked for the transaction, so of two workers writing one attempt
 *   exactly one wins; the sale claim is the primary key of `sale_claims`.
 * - Several statements that must hold together run in one transaction; where SQLite's IMMEDIATE
 *   transaction serialized everything, the row that decides is locked here (`FOR UPDATE`), or an
 *   advisory lock stands for a row that may not exist yet (a hardware id being paired).
 * - Background work is claimed with `FOR UPDATE SKIP LOCKED` under a lease (store.ts Lease).
 *
 * Nothing is cached in the process: another worker may have written since.
 */

const MERCHANT_COLUMNS = { name: 'name', wechatSubMchId: 'wechat_sub_mch_id', alipayAppAuthToken: 'alipay_app_auth_token' } as const satisfies Record<keyof MerchantPatch, string>;
const FINAL = [...FINAL_STATES];

/** A key for pg_advisory_xact_lock from a name: 64 bits of PostgreSQL's own hash of it. */
const ADVISORY = 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))';

function refusalOf(row: Row | undefined, now: number): RedeemRefusal | undefined {
  if (!row) return 'unknown';
  if (row.used_at !== null) return 'used';
  if ((row.expires_at as number) <= now) return 'expired';
  return undefined;
}

/** One write as scanbox_write_attempts reads it: the attempt by column, and the duplicate-payment refund to record, if any. */
function writeArg(w: AttemptWrite): Row {
  const a: Row = {};
  for (const [field, col] of ATTEMPT_COLUMNS) a[col] = w.attempt[field];
  const s = w.attempt.state;
  const refunding = s === 'REFUND_PENDING' || (s === 'REFUNDED' && w.fromState === 'REFUND_PENDING');
  return {
    a,
    expected: w.expectedVersion,
    event: w.event,
    from: w.fromState,
    note: w.note,
    claim: w.claimSale,
    lease: w.lease ?? null,
    refund: refunding ? { refund_no: refundNoOf(w.attempt.outTradeNo), state: s === 'REFUNDED' ? 'DONE' : 'PENDING' } : null,
  };
}

/** The fleet updates of one device folded into one, as applying them in order would leave it. */
function foldFleet(updates: FleetUpdate[]): FleetUpdate[] {
  const byDevice = new Map<string, FleetUpdate>();
  for (const u of updates) {
    const prev = byDevice.get(u.deviceId);
    const defined = Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined)) as FleetUpdate;
    byDevice.set(u.deviceId, prev ? { ...prev, ...defined, at: Math.max(prev.at, u.at) } : defined);
  }
  return [...byDevice.values()].sort((x, y) => (x.deviceId < y.deviceId ? -1 : 1));
}

/**
 * A worker's name is its leases' owner: two live processes under one name would each take the
 * other's attempts for its own. The name is held for the worker's life (a session lock, let go by
 * PostgreSQL when the process dies), so a second one is refused at start, and a worker restarted
 * under its name — the default one included — resumes its own work at once instead of waiting for
 * its old leases to run out.
 */
async function holdWorkerName(db: PgConnection, worker: string): Promise<void> {
  if (await db.holdLock(`scanbox-worker:${worker}`)) return;
  throw new ProtocolError(ErrorCode.CONFIG_INVALID, `another running worker on this database is named ${worker}: give each worker its own --worker-id`);
}

export class PgStore implements CloudStore {
  private readonly refunds: PgRefunds;
  private readonly operators: PgOperators;

  private constructor(private readonly db: PgConnection) {
    this.refunds = new PgRefunds(db);
    this.operators = new PgOperators(db);
  }

  /**
   * Connects and checks the schema: a database `scanbox-cloud migrate` has not brought to this
   * cloud's version is refused with that command (STORE_UNAVAILABLE), a newer one too (STORE_TOO_NEW).
   */
  static async open(url: string, opts: { poolSize?: number; worker?: string } = {}): Promise<PgStore> {
    const db = new PgConnection(url, { max: opts.poolSize });
    try {
      await checkSchema(db);
      if (opts.worker !== undefined) await holdWorkerName(db, opts.worker);
    } catch (err) {
      await db.close();
      throw err;
    }
    return new PgStore(db);
  }

  // ── merchants ─────────────────────────────────────────────────────────────────────────────────

  async addMerchant(merchantId: string, patch: MerchantPatch, now: number): Promise<Merchant> {
    return this.db.tx(async (sql) => {
      const added = await sql.query('INSERT INTO merchants (merchant_id, created_at, updated_at) VALUES ($1, $2, $2) ON CONFLICT DO NOTHING', [merchantId, now]);
      if (added.rowCount === 0) throw new ProtocolError(ErrorCode.MERCHANT_EXISTS, `merchant ${merchantId} already exists; use merchant set to change it`);
      return this.patchMerchant(sql, merchantId, patch, now);
    });
  }

  async updateMerchant(merchantId: string, patch: MerchantPatch, now: number): Promise<Merchant> {
    return this.db.tx(async (sql) => {
      const found = await sql.query('SELECT 1 FROM merchants WHERE merchant_id=$1 FOR UPDATE', [merchantId]);
      if (found.rowCount === 0) throw new ProtocolError(ErrorCode.MERCHANT_UNKNOWN, `merchant ${merchantId} does not exist; add it with merchant add`);
      return this.patchMerchant(sql, merchantId, patch, now);
    });
  }

  private async patchMerchant(sql: Sql, merchantId: string, patch: MerchantPatch, now: number): Promise<Merchant> {
    const sets = Object.entries(MERCHANT_COLUMNS).filter(([field]) => patch[field as keyof MerchantPatch] !== undefined);
    const values = sets.map(([field]) => patch[field as keyof MerchantPatch] ?? null);
    const assign = [...sets.map(([, col], i) => `${col}=$${i + 1}`), `updated_at=$${sets.length + 1}`].join(',');
    const r = await sql.query(`UPDATE merchants SET ${assign} WHERE merchant_id=$${sets.length + 2} RETURNING *`, [...values, now, merchantId]);
    return toMerchant(r.rows[0]!);
  }

  async getMerchant(merchantId: string): Promise<Merchant | undefined> {
    const [r] = await this.db.rows('SELECT * FROM merchants WHERE merchant_id=$1', [merchantId]);
    return r ? toMerchant(r) : undefined;
  }

  async listMerchants(): Promise<Merchant[]> {
    return (await this.db.rows('SELECT * FROM merchants ORDER BY merchant_id')).map(toMerchant);
  }

  // ── pairing and devices ───────────────────────────────────────────────────────────────────────

  async createPairingCode(row: PairingCodeRow): Promise<void> {
    await this.db.tx(async (sql) => {
      const m = await sql.query('SELECT 1 FROM merchants WHERE merchant_id=$1 FOR KEY SHARE', [row.merchantId]);
      if (m.rowCount === 0) throw new ProtocolError(ErrorCode.MERCHANT_UNKNOWN, `merchant ${row.merchantId} does not exist; add it with scanbox-cloud merchant add first`);
      await sql.query('INSERT INTO stores (merchant_id, store_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [row.merchantId, row.storeId, row.createdAt]);
      await sql.query('INSERT INTO pairing_codes (code, merchant_id, store_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
        pairingCodeHash(row.code),
        row.merchantId,
        row.storeId,
        row.createdAt,
        row.expiresAt,
      ]);
    });
  }

  async checkPairingCode(code: string, now: number): Promise<RedeemRefusal | undefined> {
    const [row] = await this.db.rows('SELECT used_at, expires_at FROM pairing_codes WHERE code=$1', [pairingCodeHash(code)]);
    return refusalOf(row, now);
  }

  /** The code row is locked, and the hardware id by an advisory lock: two redeems of one box's hardware are checked one after the other. */
  async redeemPairingCode(code: string, hardwareId: string, now: number, device: NewDevice, provenDeviceId?: string): Promise<RedeemResult> {
    const hash = pairingCodeHash(code);
    return this.db.tx(async (sql): Promise<RedeemResult> => {
      const [row] = (await sql.query('SELECT * FROM pairing_codes WHERE code=$1 FOR UPDATE', [hash])).rows;
      const why = refusalOf(row, now);
      if (why || !row) return { ok: false, why: why ?? 'unknown' };
      const merchantId = row.merchant_id as string;
      const storeId = row.store_id as string;
      await sql.query(ADVISORY, [`scanbox-hardware:${hardwareId}`]);
      const active = (await sql.query(`SELECT device_id, merchant_id FROM devices WHERE hardware_id=$1 AND status='active' ORDER BY device_id FOR UPDATE`, [hardwareId])).rows;
      const foreign = active.find((d) => d.merchant_id !== merchantId && d.device_id !== provenDeviceId);
      if (foreign) return { ok: false, why: 'hardware_in_use', deviceId: foreign.device_id as string, merchantId: foreign.merchant_id as string };
      await sql.query('UPDATE pairing_codes SET used_at=$1, used_by_hardware=$2, device_id=$3 WHERE code=$4', [now, hardwareId, device.deviceId, hash]);
      const revoked = active.map((d) => d.device_id as string);
      if (revoked.length) await sql.query(`UPDATE devices SET status='revoked', revoked_at=$1 WHERE device_id = ANY($2::text[]) AND status='active'`, [now, revoked]);
      await sql.query(
        `INSERT INTO devices (device_id, hardware_id, merchant_id, store_id, secret_hash, status, firmware, paired_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $7)`,
        [device.deviceId, hardwareId, merchantId, storeId, device.secretHash, device.firmware, now],
      );
      return { ok: true, merchantId, storeId, revoked };
    });
  }

  async getDeviceAuth(deviceId: string): Promise<DeviceAuth | undefined> {
    const [r] = await this.db.rows('SELECT secret_hash, status, hardware_id, merchant_id FROM devices WHERE device_id=$1', [deviceId]);
    return r ? { secretHash: r.secret_hash as string, status: r.status as DeviceAuth['status'], hardwareId: r.hardware_id as string, merchantId: r.merchant_id as string } : undefined;
  }

  async setSecretHash(deviceId: string, secretHash: string): Promise<void> {
    await this.db.query('UPDATE devices SET secret_hash=$1 WHERE device_id=$2', [secretHash, deviceId]);
  }

  async getDevice(deviceId: string): Promise<DeviceRow | undefined> {
    const [r] = await this.db.rows('SELECT * FROM devices WHERE device_id=$1', [deviceId]);
    return r ? toDevice(r) : undefined;
  }

  async listDevices(): Promise<DeviceRow[]> {
    return (await this.db.rows('SELECT * FROM devices ORDER BY merchant_id, store_id, device_id')).map(toDevice);
  }

  async revokeDevice(deviceId: string, now: number): Promise<boolean> {
    const r = await this.db.query(`UPDATE devices SET status='revoked', revoked_at=$1 WHERE device_id=$2 AND status='active'`, [now, deviceId]);
    return r.rowCount === 1;
  }

  async revokedSince(since: number): Promise<{ deviceId: string; revokedAt: number }[]> {
    const rows = await this.db.rows('SELECT device_id, revoked_at FROM devices WHERE revoked_at > $1 ORDER BY revoked_at, device_id', [since]);
    return rows.map((r) => ({ deviceId: r.device_id as string, revokedAt: r.revoked_at as number }));
  }

  /**
   * One statement for the batch. The rows are locked in key order first: two workers updating
   * overlapping boxes (one box's messages reach either) wait for each other instead of deadlocking.
   */
  async updateFleet(updates: FleetUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    const list = foldFleet(updates);
    const ids = list.map((u) => u.deviceId);
    await this.db.tx(async (sql) => {
      await sql.query('SELECT 1 FROM devices WHERE device_id = ANY($1::text[]) ORDER BY device_id FOR NO KEY UPDATE', [ids]);
      await sql.query(
        `UPDATE devices d SET last_seen_at = GREATEST(COALESCE(d.last_seen_at, 0), u.at), connectivity = COALESCE(u.connectivity, d.connectivity),
           firmware = COALESCE(u.firmware, d.firmware), outbox_depth = COALESCE(u.outbox_depth, d.outbox_depth), pending_attempts = COALESCE(u.pending_attempts, d.pending_attempts)
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::integer[], $6::integer[]) AS u(device_id, at, connectivity, firmware, outbox_depth, pending_attempts)
         WHERE d.device_id = u.device_id`,
        [ids, list.map((u) => u.at), list.map((u) => u.connectivity ?? null), list.map((u) => u.firmware ?? null), list.map((u) => u.outboxDepth ?? null), list.map((u) => u.pendingAttempts ?? null)],
      );
    });
  }

  async markStale(before: number): Promise<string[]> {
    const rows = await this.db.rows(`UPDATE devices SET connectivity='stale' WHERE connectivity='online' AND last_seen_at < $1 RETURNING device_id`, [before]);
    return rows.map((r) => r.device_id as string).sort();
  }

  async fleetSummary(awayLimit: number): Promise<FleetSummary> {
    const counts: FleetSummary['counts'] = { online: 0, offline: 0, stale: 0, never: 0 };
    for (const r of await this.db.rows(`SELECT connectivity, COUNT(*) AS n FROM devices WHERE status='active' GROUP BY connectivity`)) {
      counts[r.connectivity as keyof typeof counts] = r.n as number;
    }
    const away = await this.db.rows(
      `SELECT device_id, merchant_id, store_id, connectivity, COALESCE(last_seen_at, paired_at) AS seen FROM devices
       WHERE status='active' AND connectivity IN ('offline','stale') ORDER BY seen DESC, device_id LIMIT $1`,
      [awayLimit],
    );
    return {
      counts,
      away: away.map((r) => ({ deviceId: r.device_id as string, merchantId: r.merchant_id as string, storeId: r.store_id as string, connectivity: r.connectivity as 'offline' | 'stale', lastSeenAt: r.seen as number })),
    };
  }

  // ── attempts ──────────────────────────────────────────────────────────────────────────────────

  async getAttempt(outTradeNo: string): Promise<Attempt | undefined> {
    const [r] = await this.db.rows('SELECT * FROM attempts WHERE out_trade_no=$1', [outTradeNo]);
    return r ? toAttempt(r) : undefined;
  }

  async writeAttempts(writes: AttemptWrite[]): Promise<WriteResult[]> {
    if (writes.length === 0) return [];
    const [r] = await this.db.rows<{ results: WriteResult[] }>('SELECT scanbox_write_attempts($1::jsonb) AS results', [JSON.stringify(writes.map(writeArg))]);
    return r!.results;
  }

  async listActiveAttempts(): Promise<Attempt[]> {
    return (await this.db.rows(`SELECT * FROM attempts WHERE ${NEEDS_WORK_SQL} ORDER BY created_at, out_trade_no`)).map(toAttempt);
  }

  async listUnackedFinal(deviceId: string): Promise<Attempt[]> {
    const rows = await this.db.rows(`SELECT * FROM attempts WHERE device_id=$1 AND state = ANY($2::text[]) AND ${UNACKED_SQL} ORDER BY created_at, id`, [deviceId, FINAL]);
    return rows.map(toAttempt);
  }

  async listAttempts(filter: AttemptFilter): Promise<Attempt[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: (n: (v: unknown) => string) => string) => where.push(sql((v) => (args.push(v), `$${args.length}`)));
    if (filter.state) add((p) => `state=${p(filter.state)}`);
    if (filter.outTradeNo) add((p) => `out_trade_no=${p(filter.outTradeNo)}`);
    if (filter.flag) add((p) => `flag=${p(filter.flag)}`);
    if (filter.saleRef) add((p) => `sale_ref=${p(filter.saleRef)}`);
    if (filter.gatewayTradeNo) add((p) => `gateway_trade_no=${p(filter.gatewayTradeNo)}`);
    if (filter.unresolved) where.push(unresolvedSql('attempt', 'attempts', 'out_trade_no'));
    // outTradeNo = `<deviceId>-<seq>`: the primary key's range for the prefix finds a device's attempts.
    if (filter.deviceId) add((p) => `out_trade_no >= ${p(`${filter.deviceId}-`)} AND out_trade_no < ${p(`${filter.deviceId}.`)} AND device_id=${p(filter.deviceId)}`);
    args.push(filter.limit ?? null);
    const sql = `SELECT * FROM attempts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, out_trade_no LIMIT $${args.length}`;
    return (await this.db.rows(sql, args)).map(toAttempt);
  }

  async countAttempts(state: AttemptState): Promise<{ count: number; oldestCreatedAt: number | null }> {
    const [r] = await this.db.rows('SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM attempts WHERE state=$1', [state]);
    return { count: r!.n as number, oldestCreatedAt: (r!.oldest as number | null) ?? null };
  }

  async attemptEvents(outTradeNo: string): Promise<AttemptEventRow[]> {
    const rows = await this.db.rows('SELECT * FROM attempt_events WHERE attempt_id = (SELECT id FROM attempts WHERE out_trade_no=$1) ORDER BY seq', [outTradeNo]);
    return rows.map(toAttemptEvent);
  }

  // ── leases ────────────────────────────────────────────────────────────────────────────────────

  async claimAttempts(lease: Lease, limit: number): Promise<Attempt[]> {
    const rows = await this.db.rows(
      `UPDATE attempts SET lease_owner=$1, lease_until=$3 WHERE out_trade_no IN (
         SELECT out_trade_no FROM attempts WHERE ${NEEDS_WORK_SQL} AND (lease_owner IS NULL OR lease_until <= $2)
         ORDER BY created_at, out_trade_no LIMIT $4 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [lease.owner, lease.now, lease.until, limit],
    );
    return rows.map(toAttempt).sort((x, y) => x.createdAt - y.createdAt || (x.outTradeNo < y.outTradeNo ? -1 : 1));
  }

  async claimRefunds(lease: Lease, limit: number): Promise<Refund[]> {
    return this.refunds.claim(lease, limit);
  }

  async renewLeases(lease: Lease): Promise<number> {
    return this.db.tx(async (sql) => {
      const a = await sql.query(`UPDATE attempts SET lease_until=$2 WHERE lease_owner=$1 AND ${NEEDS_WORK_SQL}`, [lease.owner, lease.until]);
      const r = await sql.query(`UPDATE customer_refunds SET lease_until=$2 WHERE lease_owner=$1 AND state='PENDING'`, [lease.owner, lease.until]);
      return (a.rowCount ?? 0) + (r.rowCount ?? 0);
    });
  }

  async releaseLeases(owner: string): Promise<void> {
    await this.db.tx(async (sql) => {
      await sql.query('UPDATE attempts SET lease_owner=NULL, lease_until=NULL WHERE lease_owner=$1', [owner]);
      await sql.query('UPDATE customer_refunds SET lease_owner=NULL, lease_until=NULL WHERE lease_owner=$1', [owner]);
    });
  }

  // ── the morning reconciliation ────────────────────────────────────────────────────────────────

  async listAttemptsCreated(range: AttemptsCreated): Promise<Attempt[]> {
    const rows = await this.db.rows('SELECT * FROM attempts WHERE channel=$1 AND created_at >= $2 AND created_at < $3 ORDER BY created_at, out_trade_no', [range.channel, range.from, range.to]);
    return rows.map(toAttempt);
  }

  async listReconcileFindings(billDate: string, channel: string): Promise<ReconcileFindingRow[]> {
    return (await this.db.rows('SELECT * FROM reconcile_findings WHERE bill_date=$1 AND channel=$2 ORDER BY out_trade_no, kind', [billDate, channel])).map(toFinding);
  }

  async saveReconcileFindings(rows: ReconcileFindingRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.tx(async (sql) => {
      for (const r of rows) {
        await sql.query(
          `INSERT INTO reconcile_findings (bill_date, channel, out_trade_no, kind, status, merchant_id, amount, detail, action, found_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (bill_date, channel, out_trade_no, kind) DO UPDATE SET status=excluded.status, merchant_id=excluded.merchant_id,
             amount=excluded.amount, detail=excluded.detail, action=excluded.action, updated_at=excluded.updated_at`,
          [r.billDate, r.channel, r.outTradeNo, r.kind, r.status, r.merchantId, r.amount, r.detail, r.action, r.foundAt, r.updatedAt],
        );
      }
    });
  }

  // ── channels ──────────────────────────────────────────────────────────────────────────────────

  async channelOverrides(): Promise<ChannelOverride[]> {
    const rows = await this.db.rows('SELECT * FROM channel_overrides ORDER BY channel');
    return rows.map((r) => ({ channel: r.channel as string, mode: r.mode as ChannelOverride['mode'], wallets: r.wallets as Wallet[], at: r.at as number }));
  }

  /** The table is locked for the change: two operators pinning at once leave one pin per wallet. */
  async setChannelOverride(channel: string, override: { mode: 'pinned' | 'disabled'; wallets: Wallet[] } | null, now: number): Promise<void> {
    await this.db.tx(async (sql) => {
      await sql.query('LOCK TABLE channel_overrides IN SHARE ROW EXCLUSIVE MODE');
      await sql.query('DELETE FROM channel_overrides WHERE channel=$1', [channel]);
      if (!override) return;
      // One pin per wallet: a pin of another channel of one of these wallets gives way.
      if (override.mode === 'pinned') await sql.query(`DELETE FROM channel_overrides WHERE mode='pinned' AND wallets && $1::text[]`, [override.wallets]);
      await sql.query('INSERT INTO channel_overrides (channel, mode, wallets, at) VALUES ($1, $2, $3, $4)', [channel, override.mode, override.wallets, now]);
    });
  }

  async saveChannelStates(rows: ChannelStateRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.tx(async (sql) => {
      for (const r of rows) {
        await sql.query('INSERT INTO channel_states (channel, summary, at) VALUES ($1, $2::jsonb, $3) ON CONFLICT (channel) DO UPDATE SET summary=excluded.summary, at=excluded.at', [
          r.channel,
          JSON.stringify(r.summary),
          r.at,
        ]);
      }
    });
  }

  async channelStates(): Promise<ChannelStateRow[]> {
    const rows = await this.db.rows('SELECT * FROM channel_states ORDER BY channel');
    return rows.map((r) => ({ channel: r.channel as string, summary: r.summary as ChannelStateRow['summary'], at: r.at as number }));
  }

  // ── commands for boxes ────────────────────────────────────────────────────────────────────────

  /** The box's row is locked: two CLIs queueing the same command for one box leave one. */
  async addDeviceCommand(cmd: { id: string; deviceId: string; command: DeviceCommandName }, now: number): Promise<{ row: DeviceCommandRow; created: boolean }> {
    return this.db.tx(async (sql) => {
      const [device] = (await sql.query('SELECT status FROM devices WHERE device_id=$1 FOR NO KEY UPDATE', [cmd.deviceId])).rows;
      if (!device) throw new ProtocolError(ErrorCode.NOT_PAIRED, `no device ${cmd.deviceId}`);
      if (device.status !== 'active') throw new ProtocolError(ErrorCode.DEVICE_REVOKED, `${cmd.deviceId} is revoked: it takes no command`);
      const [open] = (await sql.query('SELECT * FROM device_commands WHERE device_id=$1 AND command=$2 AND done_at IS NULL ORDER BY created_at, seq LIMIT 1', [cmd.deviceId, cmd.command])).rows;
      if (open) return { row: toDeviceCommand(open), created: false };
      const [row] = (await sql.query('INSERT INTO device_commands (id, device_id, command, created_at) VALUES ($1, $2, $3, $4) RETURNING *', [cmd.id, cmd.deviceId, cmd.command, now])).rows;
      return { row: toDeviceCommand(row!), created: true };
    });
  }

  async openDeviceCommands(): Promise<DeviceCommandRow[]> {
    return (await this.db.rows('SELECT * FROM device_commands WHERE done_at IS NULL ORDER BY created_at, seq')).map(toDeviceCommand);
  }

  async markDeviceCommandSent(id: string, now: number): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE device_commands SET sent_at=COALESCE(sent_at, $1), done_at=CASE WHEN command = 'unpair' THEN NULL ELSE $1 END,
         outcome=CASE WHEN command = 'unpair' THEN NULL ELSE 'sent' END
       WHERE id=$2 AND done_at IS NULL`,
      [now, id],
    );
    return r.rowCount === 1;
  }

  async finishDeviceCommand(id: string, now: number, outcome: 'revoked' | 'dropped'): Promise<boolean> {
    return this.db.tx(async (sql) => {
      const [row] = (await sql.query('SELECT device_id FROM device_commands WHERE id=$1 AND done_at IS NULL FOR UPDATE', [id])).rows;
      if (!row) return false;
      if (outcome === 'revoked') await sql.query(`UPDATE devices SET status='revoked', revoked_at=$1 WHERE device_id=$2 AND status='active'`, [now, row.device_id]);
      await sql.query('UPDATE device_commands SET done_at=$1, outcome=$2 WHERE id=$3', [now, outcome, id]);
      return true;
    });
  }

  async listDeviceCommands(deviceId?: string): Promise<DeviceCommandRow[]> {
    const rows =
      deviceId === undefined
        ? await this.db.rows('SELECT * FROM device_commands ORDER BY created_at, seq')
        : await this.db.rows('SELECT * FROM device_commands WHERE device_id=$1 ORDER BY created_at, seq', [deviceId]);
    return rows.map(toDeviceCommand);
  }

  // ── the box's doctor ──────────────────────────────────────────────────────────────────────────

  /** One statement: kept only when the command exists as this box's doctor, replacing the box's last report. */
  async saveDoctorReport(r: DoctorReportRow): Promise<boolean> {
    const res = await this.db.query(
      `INSERT INTO doctor_reports (device_id, command_id, message_id, firmware, checks, sent_at, received_at)
       SELECT $1, $2, $3, $4, $5::jsonb, $6, $7 WHERE EXISTS (SELECT 1 FROM device_commands WHERE id=$2 AND device_id=$1 AND command='doctor')
       ON CONFLICT (device_id) DO UPDATE SET command_id=excluded.command_id, message_id=excluded.message_id, firmware=excluded.firmware,
         checks=excluded.checks, sent_at=excluded.sent_at, received_at=excluded.received_at`,
      [r.deviceId, r.commandId, r.messageId, r.firmware, JSON.stringify(r.checks), r.sentAt, r.receivedAt],
    );
    return res.rowCount === 1;
  }

  async latestDoctorReport(deviceId: string): Promise<DoctorReportRow | undefined> {
    const [r] = await this.db.rows('SELECT * FROM doctor_reports WHERE device_id=$1', [deviceId]);
    return r ? doctorReportOf(r) : undefined;
  }

  async listDoctorReports(): Promise<DoctorReportRow[]> {
    return (await this.db.rows('SELECT * FROM doctor_reports ORDER BY device_id')).map(doctorReportOf);
  }

  // ── the cashier's refunds (pg-refunds.ts) ─────────────────────────────────────────────────────

  requestRefund(ask: RefundAsk): Promise<RefundAskResult> {
    return this.refunds.request(ask);
  }

  getRefund(refundId: string): Promise<Refund | undefined> {
    return this.refunds.get(refundId);
  }

  writeRefund(refund: Refund, expectedVersion: number, lease?: Lease, event?: RefundWriteEvent): Promise<{ ok: true; version: number } | { ok: false; leasedTo?: string }> {
    return this.refunds.write(refund, expectedVersion, lease, event);
  }

  refundEvents(outTradeNo: string): Promise<RefundEventRow[]> {
    return this.refunds.events(outTradeNo);
  }

  listRefunds(filter: RefundFilter): Promise<Refund[]> {
    return this.refunds.list(filter);
  }

  refundBalance(outTradeNo: string): Promise<RefundBalance | undefined> {
    return this.refunds.balance(outTradeNo);
  }

  setStoreRefundLimit(merchantId: string, storeId: string, limitFen: number | null, now: number): Promise<void> {
    return this.refunds.setLimit(merchantId, storeId, limitFen, now);
  }

  storeRefundLimit(merchantId: string, storeId: string): Promise<number | null | undefined> {
    return this.refunds.limit(merchantId, storeId);
  }

  dayFigures(scope: FiguresScope, from: number, to: number): Promise<DayFigures[]> {
    return this.refunds.figures(scope, from, to);
  }

  // ── dashboard operators (pg-operators.ts) ─────────────────────────────────────────────────────

  addOperator(name: string, passwordHash: string, now: number): Promise<OperatorRow> {
    return this.operators.add(name, passwordHash, now);
  }

  getOperator(name: string): Promise<OperatorRow | undefined> {
    return this.operators.get(name);
  }

  listOperators(): Promise<OperatorRow[]> {
    return this.operators.list();
  }

  setOperatorPassword(name: string, passwordHash: string, now: number): Promise<void> {
    return this.operators.setPassword(name, passwordHash, now);
  }

  removeOperator(name: string): Promise<boolean> {
    return this.operators.remove(name);
  }

  createOperatorSession(row: OperatorSessionRow): Promise<void> {
    return this.operators.createSession(row);
  }

  getOperatorSession(idHash: string): Promise<OperatorSessionRow | undefined> {
    return this.operators.session(idHash);
  }

  touchOperatorSession(idHash: string, at: number): Promise<boolean> {
    return this.operators.touch(idHash, at);
  }

  endOperatorSession(idHash: string): Promise<boolean> {
    return this.operators.endSession(idHash);
  }

  endExpiredOperatorSessions(idleBefore: number, createdBefore: number): Promise<number> {
    return this.operators.endExpired(idleBefore, createdBefore);
  }

  addOperatorAction(action: Omit<OperatorActionRow, 'id'>): Promise<OperatorActionRow> {
    return this.operators.addAction(action);
  }

  listOperatorActions(filter: OperatorActionFilter): Promise<OperatorActionRow[]> {
    return this.operators.actions(filter);
  }

  async addTraffic(minute: number, counts: Readonly<Record<string, number>>): Promise<void> {
    const entries = trafficEntries(minute, counts);
    if (entries.length === 0) return;
    // One statement for every flow: workers adding to one minute at once serialise on its rows.
    await this.db.query(
      `INSERT INTO traffic_minutes (minute, flow, count) SELECT $1, f, c FROM unnest($2::text[], $3::bigint[]) AS t(f, c)
       ON CONFLICT (minute, flow) DO UPDATE SET count = traffic_minutes.count + excluded.count`,
      [minute, entries.map(([f]) => f), entries.map(([, n]) => n)],
    );
  }

  async trafficSince(since: number): Promise<TrafficRow[]> {
    return (await this.db.rows('SELECT minute, flow, count FROM traffic_minutes WHERE minute >= $1 ORDER BY minute, flow', [since])).map(toTrafficRow);
  }

  async pruneTraffic(before: number): Promise<number> {
    return (await this.db.query('DELETE FROM traffic_minutes WHERE minute < $1', [before])).rowCount ?? 0;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
