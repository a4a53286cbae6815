import { ErrorCode, ProtocolError, REFUND_STATES } from '../../protocol/index.js';
import type { Refund } from '../refunds/refund-machine.js';
import { REFUND_COLUMNS } from './sqlite-refunds.js';
import { answerKnown, creationEvent, decideRefund, limitDayOf, type AskedPayment } from './refund-ask.js';
import { toRefundEvent, unresolvedSql } from './rows.js';
import { mergeDayFigures, type FigureRow } from './day-figures.js';
import type { PgConnection, Row, Sql } from './pg-connection.js';
import type { DayFigures, FiguresScope, Lease, RefundAsk, RefundAskResult, RefundBalance, RefundEventRow, RefundFilter, RefundWriteEvent } from './store.js';

const COLS = REFUND_COLUMNS.map(([, c]) => c);
const INSERT = `INSERT INTO customer_refunds (${COLS.join(',')}) VALUES (${COLS.map((_, i) => `$${i + 1}`).join(',')}) ON CONFLICT (refund_id) DO NOTHING`;
const EVENT_COLS = '(refund_id, out_trade_no, at, event, from_state, to_state, note)';
/** Every column but the key, then the key, the expected version, the lease ($n+1 … $n+5), and the event and its note ($n+6, $n+7). */
const UPDATABLE = COLS.filter((c) => c !== 'refund_id');
const n = UPDATABLE.length;
/**
 * The write and its refund_events row in one statement (one round trip): refused while another
 * owner's lease runs past `now`, unless forced (Lease.force: `now` is then only typed); the event is
 * appended only for a row the UPDATE wrote, and only when one is given. `prior` reads the statement's
 * snapshot, which the UPDATE's changes are not part of: the state the write replaces (a row at the
 * expected version was committed before the caller read it, and only a write bumping the version
 * changes its state).
 */
const update = (forced: boolean) => `WITH prior AS (SELECT state FROM customer_refunds WHERE refund_id=$${n + 1} AND version=$${n + 2}),
  written AS (UPDATE customer_refunds SET ${UPDATABLE.map((c, i) => `${c}=$${i + 1}`).join(',')},
    lease_owner = CASE WHEN $${n + 3}::text IS NULL THEN lease_owner ELSE $${n + 3} END,
    lease_until = CASE WHEN $${n + 3}::text IS NULL THEN lease_until ELSE $${n + 5}::bigint END
  WHERE refund_id=$${n + 1} AND version=$${n + 2}
    AND ${forced ? `$${n + 4}::bigint IS NOT NULL` : `($${n + 3}::text IS NULL OR lease_owner IS NULL OR lease_owner = $${n + 3} OR lease_until <= $${n + 4}::bigint)`}
  RETURNING refund_id, out_trade_no, updated_at, state),
  logged AS (INSERT INTO refund_events ${EVENT_COLS}
    SELECT w.refund_id, w.out_trade_no, w.updated_at, $${n + 6}::text, b.state, w.state, $${n + 7}::text FROM written w LEFT JOIN prior b ON true WHERE $${n + 6}::text IS NOT NULL)
SELECT COUNT(*)::int AS n FROM written`;
const UPDATE = update(false);
const UPDATE_FORCED = update(true);
const SUMS = `SELECT COALESCE(SUM(amount) FILTER (WHERE state='REFUNDED'), 0)::bigint AS refunded, COALESCE(SUM(amount) FILTER (WHERE state='PENDING'), 0)::bigint AS pending
  FROM customer_refunds WHERE out_trade_no=$1`;
/** An attempt recorded before schema 5 may name no merchant: its box's is the one it was paid to. */
const PAYMENT = `SELECT a.state, a.amount, a.charged, a.wallet, a.channel, COALESCE(a.merchant_id, d.merchant_id) AS merchant_id
  FROM attempts a LEFT JOIN devices d ON d.device_id = a.device_id WHERE a.out_trade_no=$1`;

function toRefund(row: Row): Refund {
  const r: Record<string, unknown> = {};
  for (const [field, col] of REFUND_COLUMNS) r[field] = row[col] ?? null;
  return r as unknown as Refund;
}

function toPayment(r: Row): AskedPayment {
  return { state: r.state as string, amount: r.amount as number, charged: r.charged as number | null, wallet: r.wallet as string | null, channel: r.channel as string | null, merchantId: r.merchant_id as string | null };
}

/**
 * The PostgreSQL side of the cashier's refunds (cloud/refunds/), on the store's pool. A request is
 * one transaction that locks, in this order, the box's asks (an advisory lock: its refundRefs are
 * used once), the paid attempt's row (two asks for one payment — from any box of its merchant, on
 * any worker — check what remains one after the other) and the store's row (its daily limit), and
 * only then reads the figures it checks. The rules themselves are refund-ask.ts, shared with SQLite.
 */
export class PgRefunds {
  constructor(private readonly db: PgConnection) {}

  request(ask: RefundAsk): Promise<RefundAskResult> {
    return this.db.tx(async (sql): Promise<RefundAskResult> => {
      const known = await this.getOn(sql, ask.refundId);
      if (known) return answerKnown(known, ask);
      const [device] = (await sql.query('SELECT merchant_id, store_id FROM devices WHERE device_id=$1', [ask.deviceId])).rows;
      if (!device) throw new ProtocolError(ErrorCode.NOT_PAIRED, `no device ${ask.deviceId}: a refund is asked by a paired box`);
      const sender = { merchantId: device.merchant_id as string, storeId: device.store_id as string };
      await sql.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`scanbox-refunds:${ask.deviceId}`]);
      const [payment] = (await sql.query(`${PAYMENT} FOR UPDATE OF a`, [ask.outTradeNo])).rows;
      const [store] = (await sql.query('SELECT refund_daily_limit FROM stores WHERE merchant_id=$1 AND store_id=$2 FOR UPDATE', [sender.merchantId, sender.storeId])).rows;
      const day = limitDayOf(ask.at);
      const [f] = (
        await sql.query(
          `SELECT s.refunded, s.pending,
             (SELECT COALESCE(SUM(amount), 0)::bigint FROM customer_refunds WHERE merchant_id=$2 AND store_id=$3 AND created_at >= $4 AND created_at < $5 AND state IN ('PENDING','REFUNDED')) AS store_day,
             EXISTS (SELECT 1 FROM customer_refunds WHERE device_id=$6 AND refund_ref=$7 AND state <> 'REFUSED') AS ref_used
           FROM (${SUMS}) s`,
          [ask.outTradeNo, sender.merchantId, sender.storeId, day.from, day.to, ask.deviceId, ask.refundRef],
        )
      ).rows;
      const figures = { refunded: f!.refunded as number, pending: f!.pending as number, storeDay: f!.store_day as number, refUsed: f!.ref_used as boolean, limit: store?.refund_daily_limit as number | null | undefined };
      const recorded = decideRefund(ask, sender, payment && toPayment(payment), figures);
      const inserted = await sql.query(INSERT, REFUND_COLUMNS.map(([field]) => recorded[field]));
      // The same refund id taken meanwhile by another worker: this insert waited for it, and it is the answer.
      if (inserted.rowCount === 0) return answerKnown((await this.getOn(sql, ask.refundId))!, ask);
      const e = creationEvent(recorded);
      await sql.query(`INSERT INTO refund_events ${EVENT_COLS} VALUES ($1, $2, $3, $4, NULL, $5, $6)`, [recorded.refundId, recorded.outTradeNo, recorded.updatedAt, e.event, recorded.state, e.note]);
      return { kind: 'created', refund: recorded };
    });
  }

  private async getOn(sql: Sql, refundId: string): Promise<Refund | undefined> {
    const [row] = (await sql.query('SELECT * FROM customer_refunds WHERE refund_id=$1', [refundId])).rows;
    return row ? toRefund(row) : undefined;
  }

  get(refundId: string): Promise<Refund | undefined> {
    return this.getOn(this.db, refundId);
  }

  async write(r: Refund, expectedVersion: number, lease?: Lease, event?: RefundWriteEvent): Promise<{ ok: true; version: number } | { ok: false; leasedTo?: string }> {
    const version = expectedVersion + 1;
    const values = UPDATABLE.map((c) => (c === 'version' ? version : r[REFUND_COLUMNS.find(([, col]) => col === c)![0]]));
    const [res] = await this.db.rows(lease?.force ? UPDATE_FORCED : UPDATE, [
      ...values, r.refundId, expectedVersion, lease?.owner ?? null, lease?.now ?? null, lease?.until ?? null, event?.event ?? null, event?.note ?? null,
    ]);
    if (res!.n === 1) return { ok: true, version };
    if (!lease || lease.force) return { ok: false };
    const [held] = await this.db.rows('SELECT lease_owner FROM customer_refunds WHERE refund_id=$1 AND version=$2 AND lease_owner <> $3 AND lease_until > $4', [r.refundId, expectedVersion, lease.owner, lease.now]);
    return held ? { ok: false, leasedTo: held.lease_owner as string } : { ok: false };
  }

  async events(outTradeNo: string): Promise<RefundEventRow[]> {
    return (await this.db.rows('SELECT * FROM refund_events WHERE out_trade_no=$1 ORDER BY seq', [outTradeNo])).map(toRefundEvent);
  }

  async claim(lease: Lease, limit: number): Promise<Refund[]> {
    const rows = await this.db.rows(
      `UPDATE customer_refunds SET lease_owner=$1, lease_until=$3 WHERE refund_id IN (
         SELECT refund_id FROM customer_refunds WHERE state='PENDING' AND (lease_owner IS NULL OR lease_until <= $2)
         ORDER BY created_at, refund_id LIMIT $4 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [lease.owner, lease.now, lease.until, limit],
    );
    return rows.map(toRefund).sort((x, y) => x.createdAt - y.createdAt || (x.refundId < y.refundId ? -1 : 1));
  }

  async list(f: RefundFilter): Promise<Refund[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const p = (v: unknown) => (args.push(v), `$${args.length}`);
    if (f.state !== undefined) {
      if (!(REFUND_STATES as readonly string[]).includes(f.state)) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `no refund state ${f.state}`);
      where.push(`state=${p(f.state)}`);
    }
    if (f.flagged !== undefined) where.push(f.flagged ? 'flagged' : 'NOT flagged');
    if (f.deviceId !== undefined) where.push(`device_id=${p(f.deviceId)}`);
    if (f.merchantId !== undefined) where.push(`merchant_id=${p(f.merchantId)}`);
    if (f.outTradeNo !== undefined) where.push(`out_trade_no=${p(f.outTradeNo)}`);
    if (f.channel !== undefined) where.push(`channel=${p(f.channel)}`);
    if (f.refundIds !== undefined) where.push(`refund_id = ANY(${p([...f.refundIds])}::text[])`);
    if (f.finalFrom !== undefined) where.push(`final_at >= ${p(f.finalFrom)}`);
    if (f.finalTo !== undefined) where.push(`final_at < ${p(f.finalTo)}`);
    if (f.unresolved) where.push(unresolvedSql('refund', 'customer_refunds', 'refund_id'));
    const sql = `SELECT * FROM customer_refunds ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, refund_id LIMIT ${p(f.limit ?? null)}`;
    return (await this.db.rows(sql, args)).map(toRefund);
  }

  async balance(outTradeNo: string): Promise<RefundBalance | undefined> {
    const [a] = await this.db.rows(PAYMENT, [outTradeNo]);
    if (!a) return undefined;
    const [s] = await this.db.rows(SUMS, [outTradeNo]);
    return { charged: (a.charged as number | null) ?? (a.amount as number), refunded: s!.refunded as number, pending: s!.pending as number };
  }

  async setLimit(merchantId: string, storeId: string, limitFen: number | null, now: number): Promise<void> {
    if (limitFen !== null && (!Number.isSafeInteger(limitFen) || limitFen < 0)) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `a daily refund limit is whole fen ≥ 0, not ${limitFen}`);
    await this.db.tx(async (sql) => {
      const m = await sql.query('SELECT 1 FROM merchants WHERE merchant_id=$1 FOR KEY SHARE', [merchantId]);
      if (m.rowCount === 0) throw new ProtocolError(ErrorCode.MERCHANT_UNKNOWN, `merchant ${merchantId} does not exist; add it with scanbox-cloud merchant add first`);
      await sql.query(
        'INSERT INTO stores (merchant_id, store_id, created_at, refund_daily_limit) VALUES ($1, $2, $3, $4) ON CONFLICT (merchant_id, store_id) DO UPDATE SET refund_daily_limit=excluded.refund_daily_limit',
        [merchantId, storeId, now, limitFen],
      );
    });
  }

  async limit(merchantId: string, storeId: string): Promise<number | null | undefined> {
    const [row] = await this.db.rows('SELECT refund_daily_limit FROM stores WHERE merchant_id=$1 AND store_id=$2', [merchantId, storeId]);
    return row ? ((row.refund_daily_limit as number | null) ?? null) : undefined;
  }

  /** As sqlite-refunds.ts figures: a box's attempts by the key range of `<deviceId>-`, a merchant's by a scan (once a day). */
  async figures(scope: FiguresScope, from: number, to: number): Promise<DayFigures[]> {
    const byBox = 'deviceId' in scope;
    const paid = await this.db.rows(
      `SELECT a.device_id, COALESCE(d.store_id, '') AS store_id, a.wallet, COUNT(*) AS n, SUM(a.amount)::bigint AS total
       FROM attempts a LEFT JOIN devices d ON d.device_id = a.device_id
       WHERE ${byBox ? 'a.out_trade_no >= $3 AND a.out_trade_no < $4 AND a.device_id = $5' : 'a.merchant_id = $3'}
         AND a.state = 'SUCCESS' AND COALESCE(a.wallet_paid_at, a.created_at) >= $1 AND COALESCE(a.wallet_paid_at, a.created_at) < $2
       GROUP BY a.device_id, a.wallet, d.store_id`,
      byBox ? [from, to, `${scope.deviceId}-`, `${scope.deviceId}.`, scope.deviceId] : [from, to, scope.merchantId],
    );
    const refunded = await this.db.rows(
      `SELECT device_id, MIN(store_id) AS store_id, wallet, COUNT(*) AS n, SUM(amount)::bigint AS total FROM customer_refunds
       WHERE ${byBox ? 'device_id' : 'merchant_id'} = $3 AND state = 'REFUNDED' AND final_at >= $1 AND final_at < $2 GROUP BY device_id, wallet`,
      [from, to, byBox ? scope.deviceId : scope.merchantId],
    );
    const group = (r: Row): FigureRow => ({ deviceId: r.device_id as string, storeId: r.store_id as string, wallet: r.wallet as string, count: r.n as number, amount: r.total as number });
    return mergeDayFigures(paid.map(group), refunded.map(group));
  }
}
