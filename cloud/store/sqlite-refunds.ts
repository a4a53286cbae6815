import type Database from 'better-sqlite3';
import { ErrorCode, ProtocolError, REFUND_STATES } from '../../protocol/index.js';
import type { Refund } from '../refunds/refund-machine.js';
import type { DayFigures, FiguresScope, Lease, RefundAsk, RefundAskResult, RefundBalance, RefundEventRow, RefundFilter, RefundWriteEvent } from './store.js';
import { answerKnown, creationEvent, decideRefund, limitDayOf, type AskedPayment } from './refund-ask.js';
import { toRefundEvent, unresolvedSql } from './rows.js';
import { mergeDayFigures, type FigureRow } from './day-figures.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

/** Refund field ↔ column (schema 8, `customer_refunds`); one list so reading and writing cannot drift apart (the PostgreSQL store's too). */
export const REFUND_COLUMNS = [
  ['refundId', 'refund_id'],
  ['deviceId', 'device_id'],
  ['merchantId', 'merchant_id'],
  ['storeId', 'store_id'],
  ['outTradeNo', 'out_trade_no'],
  ['refundRef', 'refund_ref'],
  ['wallet', 'wallet'],
  ['channel', 'channel'],
  ['amount', 'amount'],
  ['saleTotal', 'sale_total'],
  ['currency', 'currency'],
  ['state', 'state'],
  ['reason', 'reason'],
  ['message', 'message'],
  ['createdAt', 'created_at'],
  ['updatedAt', 'updated_at'],
  ['finalAt', 'final_at'],
  ['tries', 'tries'],
  ['nextAt', 'next_at'],
  ['inFlight', 'in_flight'],
  ['callSeq', 'call_seq'],
  ['flagged', 'flagged'],
  ['version', 'version'],
] as const satisfies readonly (readonly [keyof Refund, string])[];
const BOOLEAN_FIELDS = new Set<keyof Refund>(['inFlight', 'flagged']);

/** What holds money back: a refund in progress, or done. FAILED and REFUSED gave nothing back. */
const HOLDING_SQL = `state IN ('PENDING','REFUNDED')`;

function toRefund(row: Row): Refund {
  const r: Record<string, unknown> = {};
  for (const [field, col] of REFUND_COLUMNS) r[field] = BOOLEAN_FIELDS.has(field) ? row[col] === 1 : (row[col] ?? null);
  return r as unknown as Refund;
}

/** A refund_events row of `r` as just written: at its updatedAt, to its state. */
function eventParams(r: Refund, e: RefundWriteEvent, from: string | null): Row {
  return { refund_id: r.refundId, out_trade_no: r.outTradeNo, at: r.updatedAt, event: e.event, from, to: r.state, note: e.note };
}

function toParams(r: Refund): Row {
  const p: Row = {};
  for (const [field, col] of REFUND_COLUMNS) p[col] = BOOLEAN_FIELDS.has(field) ? (r[field] ? 1 : 0) : r[field];
  return p;
}

/**
 * The SQLite side of the cashier's refunds (cloud/refunds/): the atomic request, the machine's
 * writes and the reads of the totals, the report and the reconciliation. Everything runs on the
 * store's main connection in IMMEDIATE transactions: the write lock is taken before the first read,
 * so two requests for one payment — in this process or another on the same file — are checked one
 * after the other.
 */
export class SqliteRefunds {
  private readonly stmt;

  constructor(private readonly db: Db) {
    const cols = REFUND_COLUMNS.map(([, c]) => c);
    this.stmt = {
      get: db.prepare('SELECT * FROM customer_refunds WHERE refund_id=?'),
      insert: db.prepare(`INSERT INTO customer_refunds (${cols.join(',')}) VALUES (${cols.map((c) => `@${c}`).join(',')})`),
      update: db.prepare(`UPDATE customer_refunds SET ${cols.filter((c) => c !== 'refund_id').map((c) => `${c}=@${c}`).join(',')} WHERE refund_id=@refund_id AND version=@expected`),
      atVersion: db.prepare('SELECT state, lease_owner, lease_until FROM customer_refunds WHERE refund_id=? AND version=?'),
      takeLease: db.prepare('UPDATE customer_refunds SET lease_owner=?, lease_until=? WHERE refund_id=?'),
      insertEvent: db.prepare('INSERT INTO refund_events (refund_id, out_trade_no, at, event, from_state, to_state, note) VALUES (@refund_id, @out_trade_no, @at, @event, @from, @to, @note)'),
      events: db.prepare('SELECT * FROM refund_events WHERE out_trade_no=? ORDER BY seq'),
      device: db.prepare('SELECT merchant_id, store_id FROM devices WHERE device_id=?'),
      // An attempt recorded before schema 5 may name no merchant: its box's is the one it was paid to.
      attempt: db.prepare(
        'SELECT a.state, a.amount, a.charged, a.currency, a.wallet, a.channel, COALESCE(a.merchant_id, d.merchant_id) AS merchant_id FROM attempts a LEFT JOIN devices d ON d.device_id = a.device_id WHERE a.out_trade_no=?',
      ),
      sums: db.prepare(`SELECT COALESCE(SUM(CASE WHEN state='REFUNDED' THEN amount END), 0) AS refunded, COALESCE(SUM(CASE WHEN state='PENDING' THEN amount END), 0) AS pending FROM customer_refunds WHERE out_trade_no=?`),
      storeDay: db.prepare(`SELECT COALESCE(SUM(amount), 0) FROM customer_refunds WHERE merchant_id=? AND store_id=? AND created_at >= ? AND created_at < ? AND ${HOLDING_SQL}`).pluck(),
      limit: db.prepare('SELECT refund_daily_limit FROM stores WHERE merchant_id=? AND store_id=?'),
      sameRef: db.prepare("SELECT refund_id FROM customer_refunds WHERE device_id=? AND refund_ref=? AND state <> 'REFUSED' LIMIT 1").pluck(),
    };
  }

  request(ask: RefundAsk): RefundAskResult {
    return this.db.transaction((): RefundAskResult => {
      const known = this.stmt.get.get(ask.refundId) as Row | undefined;
      if (known) return answerKnown(toRefund(known), ask);
      const device = this.stmt.device.get(ask.deviceId) as Row | undefined;
      if (!device) throw new ProtocolError(ErrorCode.NOT_PAIRED, `no device ${ask.deviceId}: a refund is asked by a paired box`);
      const sender = { merchantId: device.merchant_id as string, storeId: device.store_id as string };
      const a = this.stmt.attempt.get(ask.outTradeNo) as (AskedPayment & { merchant_id: string | null }) | undefined;
      const payment = a && { ...a, merchantId: a.merchant_id };
      const { refunded, pending } = this.stmt.sums.get(ask.outTradeNo) as { refunded: number; pending: number };
      const limit = (this.stmt.limit.get(sender.merchantId, sender.storeId) as Row | undefined)?.refund_daily_limit as number | null | undefined;
      const day = limitDayOf(ask.at);
      const storeDay = limit === null || limit === undefined ? 0 : (this.stmt.storeDay.get(sender.merchantId, sender.storeId, day.from, day.to) as number);
      const refUsed = this.stmt.sameRef.get(ask.deviceId, ask.refundRef) !== undefined;
      const recorded = decideRefund(ask, sender, payment, { refUsed, refunded, pending, limit, storeDay });
      this.stmt.insert.run(toParams(recorded));
      this.stmt.insertEvent.run(eventParams(recorded, creationEvent(recorded), null));
      return { kind: 'created', refund: recorded };
    }).immediate();
  }

  get(refundId: string): Refund | undefined {
    const row = this.stmt.get.get(refundId) as Row | undefined;
    return row ? toRefund(row) : undefined;
  }

  /** The version, then the lease, then the row, its lease and its event: a refused write leaves no event. */
  write(r: Refund, expectedVersion: number, lease?: Lease, event?: RefundWriteEvent): { ok: true; version: number } | { ok: false; leasedTo?: string } {
    const version = expectedVersion + 1;
    return this.db.transaction((): { ok: true; version: number } | { ok: false; leasedTo?: string } => {
      const before = this.stmt.atVersion.get(r.refundId, expectedVersion) as Row | undefined;
      if (!before) return { ok: false };
      if (lease && !lease.force && before.lease_owner !== null && before.lease_owner !== lease.owner && (before.lease_until as number) > lease.now) {
        return { ok: false, leasedTo: before.lease_owner as string };
      }
      if (this.stmt.update.run({ ...toParams(r), version, expected: expectedVersion }).changes !== 1) return { ok: false };
      if (lease) this.stmt.takeLease.run(lease.owner, lease.until, r.refundId);
      if (event) this.stmt.insertEvent.run(eventParams(r, event, before.state as string));
      return { ok: true, version };
    }).immediate();
  }

  events(outTradeNo: string): RefundEventRow[] {
    return (this.stmt.events.all(outTradeNo) as Row[]).map(toRefundEvent);
  }

  /** PENDING refunds nobody holds at `lease.now`, oldest first, leased to the owner: store.ts claimRefunds. */
  claim(lease: Lease, limit: number): Refund[] {
    return this.db.transaction(() => {
      const rows = this.db
        .prepare(`SELECT * FROM customer_refunds WHERE state='PENDING' AND (lease_owner IS NULL OR lease_until <= ?) ORDER BY created_at, refund_id LIMIT ?`)
        .all(lease.now, limit) as Row[];
      for (const r of rows) this.stmt.takeLease.run(lease.owner, lease.until, r.refund_id);
      return rows.map(toRefund);
    }).immediate();
  }

  list(f: RefundFilter): Refund[] {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (sql: string, ...values: unknown[]) => (where.push(sql), args.push(...values));
    if (f.state !== undefined) {
      // Written out (not bound) so SQLite can use the partial indexes on state; checked against the list first.
      if (!(REFUND_STATES as readonly string[]).includes(f.state)) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `no refund state ${f.state}`);
      where.push(`state='${f.state}'`);
    }
    if (f.flagged !== undefined) where.push(f.flagged ? 'flagged = 1' : 'flagged = 0');
    if (f.deviceId !== undefined) add('device_id=?', f.deviceId);
    if (f.merchantId !== undefined) add('merchant_id=?', f.merchantId);
    if (f.outTradeNo !== undefined) add('out_trade_no=?', f.outTradeNo);
    if (f.channel !== undefined) add('channel=?', f.channel);
    if (f.refundIds !== undefined) add(`refund_id IN (SELECT value FROM json_each(?))`, JSON.stringify(f.refundIds));
    if (f.finalFrom !== undefined) add('final_at >= ?', f.finalFrom);
    if (f.finalTo !== undefined) add('final_at < ?', f.finalTo);
    if (f.unresolved) where.push(unresolvedSql('refund', 'customer_refunds', 'refund_id'));
    const sql = `SELECT * FROM customer_refunds ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, refund_id LIMIT ?`;
    return (this.db.prepare(sql).all(...args, f.limit ?? -1) as Row[]).map(toRefund);
  }

  balance(outTradeNo: string): RefundBalance | undefined {
    const a = this.stmt.attempt.get(outTradeNo) as Row | undefined;
    if (!a) return undefined;
    const { refunded, pending } = this.stmt.sums.get(outTradeNo) as { refunded: number; pending: number };
    return { charged: (a.charged as number | null) ?? (a.amount as number), refunded, pending };
  }

  setLimit(merchantId: string, storeId: string, limitFen: number | null, now: number): void {
    if (limitFen !== null && (!Number.isSafeInteger(limitFen) || limitFen < 0)) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `a daily refund limit is whole fen ≥ 0, not ${limitFen}`);
    this.db.transaction(() => {
      if (!this.db.prepare('SELECT 1 FROM merchants WHERE merchant_id=?').get(merchantId)) {
        throw new ProtocolError(ErrorCode.MERCHANT_UNKNOWN, `merchant ${merchantId} does not exist; add it with scanbox-cloud merchant add first`);
      }
      this.db.prepare('INSERT OR IGNORE INTO stores (merchant_id, store_id, created_at) VALUES (?,?,?)').run(merchantId, storeId, now);
      this.db.prepare('UPDATE stores SET refund_daily_limit=? WHERE merchant_id=? AND store_id=?').run(limitFen, merchantId, storeId);
    }).immediate();
  }

  limit(merchantId: string, storeId: string): number | null | undefined {
    const row = this.stmt.limit.get(merchantId, storeId) as Row | undefined;
    return row ? ((row.refund_daily_limit as number | null) ?? null) : undefined;
  }

  /**
   * A box's attempts are found by the primary key's range for `<deviceId>-` (an outTradeNo starts
   * with its box's id), a merchant's by a scan: the report runs once a day, and an index on the
   * attempts would be touched by every payment.
   */
  figures(scope: FiguresScope, from: number, to: number): DayFigures[] {
    const paidScope =
      'deviceId' in scope
        ? { sql: 'a.out_trade_no >= ? AND a.out_trade_no < ? AND a.device_id = ?', args: [`${scope.deviceId}-`, `${scope.deviceId}.`, scope.deviceId] }
        : { sql: 'a.merchant_id = ?', args: [scope.merchantId] };
    const paid = this.db
      .prepare(
        `SELECT a.device_id, COALESCE(d.store_id, '') AS store_id, a.wallet, COUNT(*) AS n, SUM(a.amount) AS total
         FROM attempts a LEFT JOIN devices d ON d.device_id = a.device_id
         WHERE ${paidScope.sql} AND a.state = 'SUCCESS' AND COALESCE(a.wallet_paid_at, a.created_at) >= ? AND COALESCE(a.wallet_paid_at, a.created_at) < ?
         GROUP BY a.device_id, a.wallet`,
      )
      .all(...paidScope.args, from, to) as Row[];
    const refundScope = 'deviceId' in scope ? { sql: 'device_id = ?', arg: scope.deviceId } : { sql: 'merchant_id = ?', arg: scope.merchantId };
    const refunded = this.db
      .prepare(
        `SELECT device_id, store_id, wallet, COUNT(*) AS n, SUM(amount) AS total FROM customer_refunds
         WHERE ${refundScope.sql} AND state = 'REFUNDED' AND final_at >= ? AND final_at < ? GROUP BY device_id, wallet`,
      )
      .all(refundScope.arg, from, to) as Row[];
    const group = (r: Row): FigureRow => ({ deviceId: r.device_id as string, storeId: r.store_id as string, wallet: r.wallet as string, count: r.n as number, amount: r.total as number });
    return mergeDayFigures(paid.map(group), refunded.map(group));
  }
}
