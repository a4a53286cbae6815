import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import {
  ErrorCode,
  FINAL_STATES,
  ProtocolError,
  type AttemptState,
  type Currency,
  type DeviceAttemptRecord,
  type DeviceRefundRecord,
  type RefundReason,
  type ResultReason,
  type Wallet,
  type WalletTotals,
  businessDayRange,
} from '../protocol/index.js';
import type { Attempt, Book, Effect, PaymentRules, Sale, SaleEndReason, SaleState } from './payment.js';
import { FINAL_BOX_REFUND_STATES, type BoxRefundState, type Refund } from './refund.js';
import { switchToIncrementalVacuum } from './retention.js';

const REGISTER_VERSION_KEY = 'ecr_register_version';

/**
 * The box's durable memory: one SQLite file (WAL, synchronous=FULL) holding sales, payment attempts,
 * every state transition, the outbox and the pairing credentials. It is opened with a clear error
 * when it is corrupt or from a newer agent, and never silently recreated: it may be the only record
 * of money in flight.
 */
export const JOURNAL_FILE = 'journal.db';

/** Schema history; index i holds the step from version i to i+1. Append only. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE sales (
     sale_id TEXT PRIMARY KEY, ref TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
     state TEXT NOT NULL, end_reason TEXT, paid_by TEXT,
     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deadline INTEGER NOT NULL);
   CREATE INDEX sales_ref ON sales(ref);
   CREATE TABLE attempts (
     out_trade_no TEXT PRIMARY KEY, sale_id TEXT NOT NULL REFERENCES sales(sale_id),
     sale_ref TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL, wallet TEXT NOT NULL,
     state TEXT NOT NULL, reason TEXT,
     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, deadline INTEGER NOT NULL);
   CREATE INDEX attempts_sale ON attempts(sale_id);
   CREATE TABLE transitions (
     id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, sale_id TEXT NOT NULL, out_trade_no TEXT,
     from_state TEXT, to_state TEXT NOT NULL, cause TEXT NOT NULL);
   CREATE TABLE outbox (
     id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, out_trade_no TEXT NOT NULL,
     payload TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE TABLE credentials (
     id INTEGER PRIMARY KEY CHECK (id = 1), device_id TEXT NOT NULL, secret TEXT NOT NULL,
     mqtt_url TEXT NOT NULL, merchant_id TEXT NOT NULL, store_id TEXT NOT NULL,
     cloud_url TEXT NOT NULL, paired_at INTEGER NOT NULL);
   CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE seq (name TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
  // v2: the result line to the cash register survives a crash between commit and write.
  `ALTER TABLE sales ADD COLUMN reported INTEGER NOT NULL DEFAULT 1;
   CREATE INDEX attempts_open ON attempts(state) WHERE state NOT IN ('SUCCESS','FAILED','CANCELLED','REVERSED','REFUNDED');`,
  // v3: the wallet's receipt of an attempt, from the cloud's final result (protocol v2); NULL until one came.
  `ALTER TABLE attempts ADD COLUMN receipt_trade_no TEXT;
   ALTER TABLE attempts ADD COLUMN receipt_paid_at INTEGER;
   ALTER TABLE attempts ADD COLUMN receipt_total INTEGER;
   ALTER TABLE attempts ADD COLUMN receipt_buyer_paid INTEGER;
   ALTER TABLE attempts ADD COLUMN receipt_discount INTEGER;`,
  // v4: ECR protocol v2 numbers the lines to the cash register: each final sale keeps its result
  // line's seq (re-sent and lookup answers repeat it; NULL for sales finished before v2, numbered
  // when first needed). The reserved line numbers live in `seq` as name 'ecr' (no schema change).
  `ALTER TABLE sales ADD COLUMN result_seq INTEGER;`,
  // v5: refunds the cash register asked for. The refund id (<deviceId>-r<seq>, the 'refund' row of
  // `seq`) is made and journaled here before up/refund is sent: it is the idempotency key end to
  // end. A refund of a sale paid at another box has no sale_id. Transitions of a refund are written
  // with out_trade_no = refund_id.
  `CREATE TABLE refunds (
     refund_id TEXT PRIMARY KEY, refund_ref TEXT NOT NULL, sale_id TEXT, sale_ref TEXT, out_trade_no TEXT NOT NULL,
     amount INTEGER NOT NULL, currency TEXT NOT NULL, state TEXT NOT NULL, reason TEXT,
     refunded_total INTEGER, remaining INTEGER, wallet TEXT,
     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
     reported INTEGER NOT NULL DEFAULT 0, result_seq INTEGER);
   CREATE UNIQUE INDEX refunds_ref ON refunds(refund_ref);
   CREATE INDEX refunds_sale ON refunds(sale_id);
   CREATE INDEX refunds_open ON refunds(state) WHERE state NOT IN ('REFUNDED','NOT_REFUNDED');`,
];
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * SQLite page cache of the journal's connection, in KiB. better-sqlite3 builds SQLite with
 * SQLITE_DEFAULT_CACHE_SIZE=-16000: every connection may keep up to 16,000 KiB of pages in malloc'd
 * memory, and the journal touches every page it appends, so the box's RSS grew with the file
 * (~0.7 MiB per 1,000 sales, +13.5 MiB of malloc after 20,000 sales in the footprint benchmark) until
 * that cap. A sale touches a handful of pages (B-tree roots, interior pages, the right-hand leaves);
 * 2 MiB (SQLite's own default) holds them, and a miss is a read from the OS page cache.
 */
export const JOURNAL_CACHE_KIB = 2048;

const FINAL_SQL = FINAL_STATES.map((s) => `'${s}'`).join(',');
const FINAL_REFUND_SQL = FINAL_BOX_REFUND_STATES.map((s) => `'${s}'`).join(',');

export interface Credentials {
  deviceId: string;
  secret: string;
  mqttUrl: string;
  merchantId: string;
  storeId: string;
  cloudUrl: string;
  pairedAt: number;
}

export type SyncMode = 'full' | 'relaxed';

interface SaleRow {
  sale_id: string;
  ref: string;
  amount: number;
  currency: string;
  state: string;
  end_reason: string | null;
  paid_by: string | null;
  created_at: number;
  updated_at: number;
  deadline: number;
  reported: number;
  result_seq: number | null;
}
interface RefundRow {
  refund_id: string;
  refund_ref: string;
  sale_id: string | null;
  sale_ref: string | null;
  out_trade_no: string;
  amount: number;
  currency: string;
  state: string;
  reason: string | null;
  refunded_total: number | null;
  remaining: number | null;
  wallet: string | null;
  created_at: number;
  updated_at: number;
  reported: number;
  result_seq: number | null;
}
interface AttemptRow {
  out_trade_no: string;
  sale_id: string;
  sale_ref: string;
  amount: number;
  currency: string;
  wallet: string;
  state: string;
  reason: string | null;
  created_at: number;
  updated_at: number;
  deadline: number;
  receipt_trade_no: string | null;
  receipt_paid_at: number | null;
  receipt_total: number | null;
  receipt_buyer_paid: number | null;
  receipt_discount: number | null;
}

export interface JournalOpenOptions {
  readonly?: boolean;
}

export class Journal {
  private readonly statements = new Map<string, Database.Statement>();
  private readonly relax: Database.Statement;
  private readonly harden: Database.Statement;
  /** One wrapper made once: better-sqlite3 builds a new one per `db.transaction(fn)` call. */
  private readonly inTx: (fn: () => unknown) => unknown;

  private constructor(
    readonly db: Database.Database,
    readonly path: string,
  ) {
    this.relax = db.prepare('PRAGMA synchronous = NORMAL');
    this.harden = db.prepare('PRAGMA synchronous = FULL');
    this.inTx = db.transaction((fn: () => unknown) => fn());
  }

  /** Open `<dataDir>/journal.db`, creating it (0600) only when it does not exist yet. */
  static open(dataDir: string, opts: JournalOpenOptions = {}): Journal {
    const path = join(dataDir, JOURNAL_FILE);
    if (opts.readonly) return Journal.openReadonly(path);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (!existsSync(path)) closeSync(openSync(path, 'wx', 0o600));
    chmodSync(path, 0o600);
    const db = guard(path, () => new Database(path));
    try {
      guard(path, () => {
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = FULL');
        db.pragma('foreign_keys = ON');
        db.pragma(`cache_size = -${JOURNAL_CACHE_KIB}`);
      });
      checkIntegrity(db, path);
      // Before the first table of a new journal; a failure leaves it working, and the agent says so.
      switchToIncrementalVacuum(db);
      migrate(db, path);
    } catch (err) {
      db.close();
      throw err;
    }
    return new Journal(db, path);
  }

  private static openReadonly(path: string): Journal {
    if (!existsSync(path)) throw new ProtocolError(ErrorCode.NOT_PAIRED, `no journal at ${path}: this data directory was never used by a box`);
    const db = guard(path, () => new Database(path, { readonly: true, fileMustExist: true }));
    try {
      const version = guard(path, () => readVersion(db));
      if (version > SCHEMA_VERSION) throw tooNew(path, version);
      if (version < SCHEMA_VERSION) throw new ProtocolError(ErrorCode.JOURNAL_TOO_NEW, `journal ${path} has schema ${version}; start the agent once to migrate it to ${SCHEMA_VERSION}`);
    } catch (err) {
      db.close();
      throw err;
    }
    return new Journal(db, path);
  }

  /** Prepared once per connection: the hot path must not re-parse SQL per payment. */
  sql(text: string): Database.Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  close(): void {
    this.db.close();
  }

  schemaVersion(): number {
    return readVersion(this.db);
  }

  /**
   * One transaction. `full` (the default) fsyncs the WAL on commit: money state. `relaxed` is for
   * bookkeeping whose loss only causes a harmless re-send (an outbox row removed after PUBACK);
   * the next full commit makes it durable too, since the WAL is appended in order.
   */
  transaction<T>(fn: () => T, mode: SyncMode = 'full'): T {
    if (mode === 'full') return this.inTx(fn) as T;
    this.relax.run();
    try {
      return this.inTx(fn) as T;
    } finally {
      this.harden.run();
    }
  }

  // ── credentials and settings ─────────────────────────────────────────────────────────────────

  credentials(): Credentials | null {
    const r = this.sql('SELECT * FROM credentials WHERE id = 1').get() as Record<string, string | number> | undefined;
    if (!r) return null;
    return {
      deviceId: String(r.device_id),
      secret: String(r.secret),
      mqttUrl: String(r.mqtt_url),
      merchantId: String(r.merchant_id),
      storeId: String(r.store_id),
      cloudUrl: String(r.cloud_url),
      pairedAt: Number(r.paired_at),
    };
  }

  saveCredentials(c: Credentials): void {
    this.transaction(() => {
      this.sql(
          `INSERT OR REPLACE INTO credentials (id, device_id, secret, mqtt_url, merchant_id, store_id, cloud_url, paired_at)
           VALUES (1, @deviceId, @secret, @mqttUrl, @merchantId, @storeId, @cloudUrl, @pairedAt)`,
        )
        .run(c);
    });
  }

  /**
   * Unpairing: only the identity goes. Sales, attempts, transitions and the outbox stay, for lookup
   * and for support: the file may be the only record of money. Inside a caller's transaction it
   * commits with it.
   */
  wipeCredentials(): void {
    this.transaction(() => {
      this.sql('DELETE FROM credentials WHERE id = 1').run();
    });
  }

  getSetting(key: string): string | null {
    const r = this.sql('SELECT value FROM config WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value ?? null;
  }

  setSetting(key: string, value: string, mode: SyncMode = 'full'): void {
    this.transaction(() => this.sql('INSERT OR REPLACE INTO config (key, value) VALUES (?, ?)').run(key, value), mode);
  }

  /** The ECR version the cash register last showed it reads; 1 when it never did (or was forgotten). */
  registerVersion(): number {
    const v = Number(this.getSetting(REGISTER_VERSION_KEY) ?? 1);
    return Number.isInteger(v) && v >= 1 ? v : 1;
  }

  /** Kept across restarts; `scanbox-device register --forget` sets it back to 1 for a register that replaced a v2 one. */
  setRegisterVersion(version: number): void {
    this.setSetting(REGISTER_VERSION_KEY, String(version));
  }

  /** A stable id for this box's hardware, made once; the cloud revokes old credentials on re-pairing it. */
  hardwareId(): string {
    const existing = this.getSetting('hardware_id');
    if (existing) return existing;
    const id = `hw-${randomBytes(8).toString('hex')}`;
    this.setSetting('hardware_id', id);
    return id;
  }

  // ── payment state ────────────────────────────────────────────────────────────────────────────

  /** Journal effects of one step; the caller runs this inside `transaction`. */
  persist(e: Effect): void {
    if (e.kind === 'saveSale') this.saveSale(e.sale, e.from, e.cause);
    else if (e.kind === 'saveAttempt') this.saveAttempt(e.attempt, e.from, e.cause);
    else if (e.kind === 'saveSeq') this.saveSeq(e.nextAttemptSeq, e.nextSaleSeq);
    else if (e.kind === 'saveEcrSeq') this.saveEcrSeq(e.reservedTo);
    else if (e.kind === 'saveRefund') this.saveRefund(e.refund, e.from, e.cause);
    else if (e.kind === 'saveRefundSeq') this.sql(`INSERT OR REPLACE INTO seq (name, value) VALUES ('refund', ?)`).run(e.nextRefundSeq);
  }

  private saveRefund(r: Refund, from: BoxRefundState | null, cause: string): void {
    this.sql(
        `INSERT INTO refunds (refund_id, refund_ref, sale_id, sale_ref, out_trade_no, amount, currency, state, reason, refunded_total, remaining, wallet,
           created_at, updated_at, reported, result_seq)
         VALUES (@refundId, @refundRef, @saleId, @saleRef, @outTradeNo, @amount, @currency, @state, @reason, @refundedTotal, @remaining, @wallet,
           @createdAt, @updatedAt, @reported, @resultSeq)
         ON CONFLICT(refund_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, refunded_total = excluded.refunded_total,
           remaining = excluded.remaining, updated_at = excluded.updated_at, reported = excluded.reported,
           result_seq = coalesce(refunds.result_seq, excluded.result_seq)`,
      )
      .run({
        ...{ refundId: r.refundId, refundRef: r.refundRef, saleId: r.saleId, saleRef: r.saleRef, outTradeNo: r.outTradeNo, amount: r.amount, currency: r.currency },
        ...{ state: r.state, reason: r.reason, refundedTotal: r.refundedTotal, remaining: r.remaining, wallet: r.wallet },
        ...{ createdAt: r.createdAt, updatedAt: r.updatedAt, reported: r.reported ? 1 : 0, resultSeq: r.resultSeq ?? null },
      });
    if (from !== r.state) this.transition(r.updatedAt, r.saleId ?? r.outTradeNo, r.refundId, from, r.state, cause);
  }

  private saveSale(s: Sale, from: SaleState | null, cause: string): void {
    this.sql(
        `INSERT INTO sales (sale_id, ref, amount, currency, state, end_reason, paid_by, created_at, updated_at, deadline, reported, result_seq)
         VALUES (@saleId, @ref, @amount, @currency, @state, @endReason, @paidBy, @createdAt, @updatedAt, @deadline, @reported, @resultSeq)
         ON CONFLICT(sale_id) DO UPDATE SET state = excluded.state, end_reason = excluded.end_reason,
           paid_by = excluded.paid_by, updated_at = excluded.updated_at, reported = excluded.reported,
           result_seq = coalesce(sales.result_seq, excluded.result_seq)`,
      )
      .run({ ...s, reported: s.reported ? 1 : 0, resultSeq: s.resultSeq ?? null });
    if (from !== s.state) this.transition(s.updatedAt, s.saleId, null, from, s.state, cause);
  }

  private saveAttempt(a: Attempt, from: AttemptState | null, cause: string): void {
    const r = a.receipt;
    this.sql(
        `INSERT INTO attempts (out_trade_no, sale_id, sale_ref, amount, currency, wallet, state, reason, created_at, updated_at, deadline,
           receipt_trade_no, receipt_paid_at, receipt_total, receipt_buyer_paid, receipt_discount)
         VALUES (@outTradeNo, @saleId, @saleRef, @amount, @currency, @wallet, @state, @reason, @createdAt, @updatedAt, @deadline,
           @receiptTradeNo, @receiptPaidAt, @receiptTotal, @receiptBuyerPaid, @receiptDiscount)
         ON CONFLICT(out_trade_no) DO UPDATE SET state = excluded.state, reason = excluded.reason, updated_at = excluded.updated_at,
           receipt_trade_no = excluded.receipt_trade_no, receipt_paid_at = excluded.receipt_paid_at, receipt_total = excluded.receipt_total,
           receipt_buyer_paid = excluded.receipt_buyer_paid, receipt_discount = excluded.receipt_discount`,
      )
      .run({
        outTradeNo: a.outTradeNo,
        saleId: a.saleId,
        saleRef: a.saleRef,
        amount: a.amount,
        currency: a.currency,
        wallet: a.wallet,
        state: a.state,
        reason: a.reason,
        createdAt: a.createdAt,
        updatedAt: a.updatedAt,
        deadline: a.deadline,
        receiptTradeNo: r?.walletTradeNo ?? null,
        receiptPaidAt: r?.paidAt ?? null,
        receiptTotal: r?.total ?? null,
        receiptBuyerPaid: r?.buyerPaid ?? null,
        receiptDiscount: r?.discount ?? null,
      });
    if (from !== a.state) this.transition(a.updatedAt, a.saleId, a.outTradeNo, from, a.state, cause);
  }

  private transition(at: number, saleId: string, outTradeNo: string | null, from: string | null, to: string, cause: string): void {
    this.sql('INSERT INTO transitions (at, sale_id, out_trade_no, from_state, to_state, cause) VALUES (?, ?, ?, ?, ?, ?)').run(at, saleId, outTradeNo, from, to, cause);
  }

  private saveSeq(nextAttemptSeq: number, nextSaleSeq: number): void {
    const put = this.sql('INSERT OR REPLACE INTO seq (name, value) VALUES (?, ?)');
    put.run('attempt', nextAttemptSeq);
    put.run('sale', nextSaleSeq);
  }

  /** ECR line numbers below `reservedTo` are taken; the value only ever grows. */
  private saveEcrSeq(reservedTo: number): void {
    this.sql(`INSERT INTO seq (name, value) VALUES ('ecr', ?) ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)`).run(reservedTo);
  }

  /** What the state machine needs in memory: everything unfinished plus the newest finished sales. */
  loadBook(deviceId: string, rules: PaymentRules, now: number): Book {
    const keep = `WITH keep AS (
        SELECT sale_id FROM sales WHERE state IN ('OPEN','CANCELLING') OR reported = 0
        UNION SELECT sale_id FROM attempts WHERE state NOT IN (${FINAL_SQL})
        UNION SELECT sale_id FROM (SELECT sale_id FROM sales ORDER BY updated_at DESC LIMIT 32))`;
    const sales = this.sql(`${keep} SELECT * FROM sales WHERE sale_id IN keep`).all() as SaleRow[];
    const attempts = this.sql(`${keep} SELECT * FROM attempts WHERE sale_id IN keep`).all() as AttemptRow[];
    const refunds = this.sql(`${keep} SELECT * FROM refunds WHERE sale_id IN keep OR state NOT IN (${FINAL_REFUND_SQL}) OR reported = 0`).all() as RefundRow[];
    const seq = (name: string) => (this.sql('SELECT value FROM seq WHERE name = ?').get(name) as { value: number } | undefined)?.value ?? 1;
    return {
      deviceId,
      rules,
      online: false,
      nextAttemptSeq: seq('attempt'),
      nextSaleSeq: seq('sale'),
      // Numbering goes on after every number reserved before the restart: it may jump, never repeat.
      nextEcrSeq: seq('ecr'),
      ecrSeqReservedTo: seq('ecr'),
      nextRefundSeq: seq('refund'),
      sales: Object.fromEntries(sales.map((r) => [r.sale_id, toSale(r)])),
      attempts: Object.fromEntries(attempts.map((r) => [r.out_trade_no, toAttempt(r, now)])),
      refunds: Object.fromEntries(refunds.map((r) => [r.refund_id, toRefund(r, now)])),
      totalsRequests: {},
    };
  }

  /** Bring one attempt and its sale (and the sale's other attempts) back into memory for a late result. */
  loadAttempt(outTradeNo: string, now: number): { sale: Sale; attempts: Attempt[] } | null {
    const a = this.sql('SELECT * FROM attempts WHERE out_trade_no = ?').get(outTradeNo) as AttemptRow | undefined;
    if (!a) return null;
    const s = this.sql('SELECT * FROM sales WHERE sale_id = ?').get(a.sale_id) as SaleRow;
    const all = this.sql('SELECT * FROM attempts WHERE sale_id = ?').all(a.sale_id) as AttemptRow[];
    return { sale: toSale(s), attempts: all.map((r) => toAttempt(r, now)) };
  }

  /**
   * The newest sale with this cash-register ref and its attempts, for a `sale`, `cancel` or `lookup`
   * line about a sale no longer held in memory.
   */
  loadSaleByRef(ref: string, now: number): { sale: Sale; attempts: Attempt[]; refunds: Refund[] } | null {
    const s = this.sql('SELECT * FROM sales WHERE ref = ? ORDER BY created_at DESC, rowid DESC LIMIT 1').get(ref) as SaleRow | undefined;
    if (!s) return null;
    const all = this.sql('SELECT * FROM attempts WHERE sale_id = ? ORDER BY created_at, out_trade_no').all(s.sale_id) as AttemptRow[];
    return { sale: toSale(s), attempts: all.map((r) => toAttempt(r, now)), refunds: this.refundsOfSale(s.sale_id, now) };
  }

  refundsOfSale(saleId: string, now: number): Refund[] {
    return (this.sql('SELECT * FROM refunds WHERE sale_id = ? ORDER BY created_at').all(saleId) as RefundRow[]).map((r) => toRefund(r, now));
  }

  /** A refund by the register's reference or by its id, for a refund line or a cloud answer about one no longer held in memory. */
  loadRefund(by: { refundRef: string } | { refundId: string }, now: number): Refund | null {
    const r = ('refundRef' in by ? this.sql('SELECT * FROM refunds WHERE refund_ref = ?').get(by.refundRef) : this.sql('SELECT * FROM refunds WHERE refund_id = ?').get(by.refundId)) as RefundRow | undefined;
    return r ? toRefund(r, now) : null;
  }

  /**
   * A business day's figures per wallet as this journal has them (the register's totals while the
   * cloud cannot be asked): paid sales by when the wallet took the money (else when the attempt was
   * made), refunds by when the box learnt they were REFUNDED.
   */
  localTotals(date: string): WalletTotals[] {
    const { from, to } = businessDayRange(date);
    const paid = this.sql(
        `SELECT a.wallet AS wallet, count(*) AS n, sum(s.amount) AS amount FROM sales s JOIN attempts a ON a.out_trade_no = s.paid_by
         WHERE s.state = 'PAID' AND coalesce(a.receipt_paid_at, a.created_at) >= ? AND coalesce(a.receipt_paid_at, a.created_at) < ? GROUP BY a.wallet`,
      )
      .all(from, to) as { wallet: string; n: number; amount: number }[];
    const refunded = this.sql(
        `SELECT coalesce(wallet, 'unknown') AS wallet, count(*) AS n, sum(amount) AS amount FROM refunds
         WHERE state = 'REFUNDED' AND updated_at >= ? AND updated_at < ? GROUP BY coalesce(wallet, 'unknown')`,
      )
      .all(from, to) as { wallet: string; n: number; amount: number }[];
    const by = new Map<string, WalletTotals>();
    const row = (wallet: string) => by.get(wallet) ?? by.set(wallet, { wallet, paidCount: 0, paidAmount: 0, refundCount: 0, refundAmount: 0 }).get(wallet)!;
    for (const p of paid) Object.assign(row(p.wallet), { paidCount: p.n, paidAmount: p.amount });
    for (const r of refunded) Object.assign(row(r.wallet), { refundCount: r.n, refundAmount: r.amount });
    return [...by.values()].sort((x, y) => x.wallet.localeCompare(y.wallet));
  }

  attemptRecords(): DeviceAttemptRecord[] {
    const rows = this.sql('SELECT * FROM attempts ORDER BY created_at, out_trade_no').all() as AttemptRow[];
    return rows.map((r) => ({
      outTradeNo: r.out_trade_no,
      saleId: r.sale_id,
      saleRef: r.sale_ref,
      amount: r.amount,
      currency: r.currency as Currency,
      state: r.state as AttemptState,
      reason: r.reason as ResultReason | null,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }

  refundRecords(): DeviceRefundRecord[] {
    const rows = this.sql('SELECT * FROM refunds ORDER BY created_at, refund_id').all() as RefundRow[];
    return rows.map((r) => ({
      ...{ refundId: r.refund_id, refundRef: r.refund_ref, saleRef: r.sale_ref, outTradeNo: r.out_trade_no, amount: r.amount, currency: r.currency as Currency },
      ...{ state: r.state as BoxRefundState, reason: r.reason as RefundReason | null, createdAt: r.created_at, updatedAt: r.updated_at },
    }));
  }

  transitionsOf(outTradeNo: string): { from: string | null; to: string; cause: string; at: number }[] {
    return this.sql('SELECT from_state AS "from", to_state AS "to", cause, at FROM transitions WHERE out_trade_no = ? ORDER BY id').all(outTradeNo) as never;
  }

  pendingAttempts(): number {
    return (this.sql(`SELECT count(*) AS n FROM attempts WHERE state NOT IN (${FINAL_SQL})`).get() as { n: number }).n;
  }
}

function toSale(r: SaleRow): Sale {
  return {
    saleId: r.sale_id,
    ref: r.ref,
    amount: r.amount,
    currency: r.currency as Currency,
    state: r.state as SaleState,
    endReason: r.end_reason as SaleEndReason | null,
    paidBy: r.paid_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deadline: r.deadline,
    reported: r.reported === 1,
    ...(r.result_seq === null ? {} : { resultSeq: r.result_seq }),
  };
}

function toRefund(r: RefundRow, now: number): Refund {
  return {
    ...{ refundId: r.refund_id, refundRef: r.refund_ref, saleId: r.sale_id, saleRef: r.sale_ref, outTradeNo: r.out_trade_no, amount: r.amount, currency: r.currency as Currency },
    ...{ wallet: r.wallet as Wallet | null, state: r.state as BoxRefundState, reason: r.reason as RefundReason | null, refundedTotal: r.refunded_total, remaining: r.remaining },
    ...{ createdAt: r.created_at, updatedAt: r.updated_at, nextCheckAt: now, reported: r.reported === 1 },
    ...(r.result_seq === null ? {} : { resultSeq: r.result_seq }),
  };
}

function toAttempt(r: AttemptRow, now: number): Attempt {
  return {
    outTradeNo: r.out_trade_no,
    saleId: r.sale_id,
    saleRef: r.sale_ref,
    amount: r.amount,
    currency: r.currency as Currency,
    wallet: r.wallet as Wallet,
    state: r.state as AttemptState,
    reason: r.reason as ResultReason | null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    deadline: r.deadline,
    nextCheckAt: now,
    ...receiptOf(r),
  };
}

/** The receipt kept with an attempt (journal v3): absent without a trade number and a total. */
function receiptOf(r: AttemptRow): Pick<Attempt, 'receipt'> {
  if (r.receipt_trade_no === null || r.receipt_total === null) return {};
  return {
    receipt: {
      walletTradeNo: r.receipt_trade_no,
      ...(r.receipt_paid_at !== null ? { paidAt: r.receipt_paid_at } : {}),
      total: r.receipt_total,
      ...(r.receipt_buyer_paid !== null ? { buyerPaid: r.receipt_buyer_paid } : {}),
      ...(r.receipt_discount !== null ? { discount: r.receipt_discount } : {}),
    },
  };
}

// ── opening safely ───────────────────────────────────────────────────────────────────────────────

const WHAT_TO_DO =
  'The box will not start over on its own: the file may hold the only record of a payment in flight. ' +
  'Move it aside for support (mv journal.db journal.db.corrupt), reconcile its attempts with `scanbox-cloud attempts --json`, then pair the box again.';

function corrupt(path: string, detail: string): ProtocolError {
  return new ProtocolError(ErrorCode.JOURNAL_CORRUPT, `journal ${path} is corrupt (${detail.slice(0, 120)}). ${WHAT_TO_DO}`);
}

function tooNew(path: string, version: number): ProtocolError {
  return new ProtocolError(
    ErrorCode.JOURNAL_TOO_NEW,
    `journal ${path} has schema version ${version} but this agent knows only up to ${SCHEMA_VERSION}: it was written by a newer agent. Install that agent version again; do not delete the file.`,
  );
}

/** SQLite reports a damaged file on first use, not on open: any SQLite error here means corrupt. */
function guard<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_')) throw corrupt(path, `${code}: ${(err as Error).message}`);
    throw err;
  }
}

function checkIntegrity(db: Database.Database, path: string): void {
  const rows = guard(path, () => db.pragma('integrity_check') as { integrity_check: string }[]);
  const first = rows[0]?.integrity_check ?? 'no answer';
  if (first !== 'ok') throw corrupt(path, `integrity_check: ${first}`);
}

function readVersion(db: Database.Database): number {
  const table = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").get();
  if (!table) return 0;
  const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
  return row?.version ?? 0;
}

function migrate(db: Database.Database, path: string): void {
  const from = guard(path, () => readVersion(db));
  if (from > SCHEMA_VERSION) throw tooNew(path, from);
  if (from === 0) {
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
    if (tables.n > 0) throw corrupt(path, 'it has tables but no schema_version: not a scanbox journal');
  }
  for (let v = from; v < SCHEMA_VERSION; v++) {
    db.transaction(() => {
      if (v === 0) db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (0);');
      db.exec(MIGRATIONS[v]!);
      db.prepare('UPDATE schema_version SET version = ?').run(v + 1);
    })();
  }
}
