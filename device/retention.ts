import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { FINAL_STATES } from '../protocol/index.js';
import type { Clock } from '../protocol/clock.js';
import type { Journal } from './journal.js';
import type { Book } from './payment.js';
import { FINAL_BOX_REFUND_STATES } from './refund.js';

/**
 * Journal housekeeping: what is finished, acknowledged and older than the retention leaves the
 * box's journal, so the file (and the page cache over it) stays bounded over years of sales.
 *
 * A sale goes, with its attempts, its refunds and all their transitions, only when every part of it
 * is settled: the sale PAID or NOT_PAID and its result line written to the register; every attempt
 * final with nothing of it left in the outbox (its ack has left); every refund of it final and its
 * result line written; nothing of it changed within the retention; and the agent does not hold it in
 * memory. A refund of a sale not in this journal (paid at another box, or pruned) goes on the same
 * terms. Nothing open, unreported or outboxed is touched, nor credentials, settings or sequence
 * numbers (ids are never reused). A pruned ref is unknown to the box afterwards: a `lookup` answers
 * SALE_UNKNOWN and a `sale` with it starts a new sale.
 */

const sqlList = (xs: readonly string[]) => xs.map((s) => `'${s}'`).join(',');
const FINAL_ATTEMPT_SQL = sqlList(FINAL_STATES);
const FINAL_REFUND_SQL = sqlList(FINAL_BOX_REFUND_STATES);

export const DAY_MS = 86_400_000;
/** Sales examined per transaction: a few milliseconds of work, so a payment never waits long behind one. */
export const PRUNE_BATCH = 500;
/** Pages handed back to the file system per step of `incremental_vacuum` (4 MiB at 4 KiB pages). */
export const VACUUM_PAGES = 1024;
/**
 * Free pages kept for the next sales to reuse (1 MiB at 4 KiB pages: hours of a busy counter's
 * sales). An hourly run frees about what the hour added; giving that back would only move pages
 * around for the file to grow again. A large prune (the first after an upgrade, a shorter retention)
 * gives back everything above this.
 */
export const FREE_PAGES_KEPT = 256;
export const HOUSEKEEPING_INTERVAL_MS = 3_600_000;

/** Sales and refunds the agent holds in memory: kept, so memory is always a subset of the journal. */
export interface HeldRecords {
  saleIds: ReadonlySet<string>;
  refundIds: ReadonlySet<string>;
}
const NOTHING_HELD: HeldRecords = { saleIds: new Set(), refundIds: new Set() };

export function heldIn(book: Pick<Book, 'sales' | 'refunds'>): HeldRecords {
  return { saleIds: new Set(Object.keys(book.sales)), refundIds: new Set(Object.keys(book.refunds)) };
}

export interface PruneOptions {
  now: number;
  retentionMs: number;
  /** Sales (or refunds, or 10× as many transitions) examined per transaction. */
  batch?: number;
  held?: () => HeldRecords;
  /**
   * Between two transactions: lets payments run. Resolves false to stop here (the agent is
   * stopping); what was pruned so far stays pruned, the rest waits for the next run.
   */
  pause?: () => Promise<boolean>;
}

export interface PruneReport {
  sales: number;
  attempts: number;
  refunds: number;
  transitions: number;
  /** Pages given back to the file system (0 when the journal is not incremental, or little was freed). */
  pagesFreed: number;
  transactions: number;
  /** False when `pause` asked to stop before the run was done. */
  complete: boolean;
}

const nextTurn = () => new Promise<boolean>((resolve) => setImmediate(() => resolve(true)));

/**
 * One pass over the whole journal, in transactions of `batch` rows, then the freed pages back to the
 * file system. Transactions are relaxed (no fsync): a pruning lost to a power cut is simply done again.
 */
export async function pruneJournal(journal: Journal, opts: PruneOptions): Promise<PruneReport> {
  const cutoff = opts.now - opts.retentionMs;
  const batch = Math.max(1, opts.batch ?? PRUNE_BATCH);
  const held = opts.held ?? (() => NOTHING_HELD);
  const pause = opts.pause ?? nextTurn;
  const report: PruneReport = { sales: 0, attempts: 0, refunds: 0, transitions: 0, pagesFreed: 0, transactions: 0, complete: false };
  const passes: Array<(after: number) => number | null> = [
    (after) => pruneSales(journal, after, batch, cutoff, held(), report),
    (after) => pruneLoneRefunds(journal, after, batch, cutoff, held(), report),
    (after) => sweepTransitions(journal, after, batch * 10, report),
  ];
  for (const pass of passes) {
    for (let after: number | null = 0; after !== null; ) {
      after = pass(after);
      report.transactions++;
      if (!(await pause())) return report;
    }
  }
  if (!(await giveBackPages(journal, pause, report))) return report;
  report.complete = true;
  return report;
}

/**
 * Free pages above FREE_PAGES_KEPT back to the file system, in steps of VACUUM_PAGES. False when
 * `pause` asked to stop. Nothing to do for a journal that is not incremental (its switch failed).
 */
async function giveBackPages(journal: Journal, pause: () => Promise<boolean>, report: PruneReport): Promise<boolean> {
  if (!isIncremental(journal.db)) return true;
  for (let excess = freePages(journal.db) - FREE_PAGES_KEPT; excess > 0; ) {
    journal.transaction(() => journal.db.pragma(`incremental_vacuum(${Math.min(excess, VACUUM_PAGES)})`), 'relaxed');
    const left = freePages(journal.db) - FREE_PAGES_KEPT;
    report.pagesFreed += excess - left;
    report.transactions++;
    if (!(await pause())) return false;
    if (left >= excess) break; // nothing moved: do not spin
    excess = left;
  }
  // In WAL mode the file is cut at a checkpoint: copy the WAL back now rather than at the next
  // automatic one. PASSIVE never waits for a reader (`scanbox-device status` may be reading).
  if (report.pagesFreed > 0) journal.db.pragma('wal_checkpoint(PASSIVE)');
  return true;
}

/** Returns the rowid to go on after, or null when the table is done. */
function pruneSales(journal: Journal, after: number, batch: number, cutoff: number, held: HeldRecords, report: PruneReport): number | null {
  return journal.transaction(() => {
    const window = journal.sql('SELECT max(r) AS upto, count(*) AS n FROM (SELECT rowid AS r FROM sales WHERE rowid > ? ORDER BY rowid LIMIT ?)').get(after, batch) as { upto: number | null; n: number };
    if (window.upto === null) return null;
    const candidates = journal
      .sql(
        `WITH outboxed AS MATERIALIZED (SELECT out_trade_no FROM outbox)
         SELECT s.sale_id AS saleId FROM sales s
         WHERE s.rowid > @after AND s.rowid <= @upto
           AND s.state IN ('PAID','NOT_PAID') AND s.reported = 1 AND s.updated_at < @cutoff
           AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.sale_id = s.sale_id
                 AND (a.state NOT IN (${FINAL_ATTEMPT_SQL}) OR a.updated_at >= @cutoff OR a.out_trade_no IN outboxed))
           AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.sale_id = s.sale_id AND NOT (${SETTLED_REFUND}))`,
      )
      .all({ after, upto: window.upto, cutoff }) as { saleId: string }[];
    const refundsOf = journal.sql('SELECT refund_id AS id FROM refunds WHERE sale_id = ?').pluck();
    for (const { saleId } of candidates) {
      if (held.saleIds.has(saleId)) continue;
      if (held.refundIds.size > 0 && (refundsOf.all(saleId) as string[]).some((id) => held.refundIds.has(id))) continue;
      report.refunds += journal.sql('DELETE FROM refunds WHERE sale_id = ?').run(saleId).changes;
      report.attempts += journal.sql('DELETE FROM attempts WHERE sale_id = ?').run(saleId).changes;
      report.sales += journal.sql('DELETE FROM sales WHERE sale_id = ?').run(saleId).changes;
    }
    return window.n < batch ? null : window.upto;
  }, 'relaxed');
}

/**
 * A refund final, reported, older than the cutoff and out of the outbox (under its own id or the
 * payment's). `outboxed` and `@cutoff` come from the query it is used in.
 */
const SETTLED_REFUND = `r.state IN (${FINAL_REFUND_SQL}) AND r.reported = 1 AND r.updated_at < @cutoff
  AND r.refund_id NOT IN outboxed AND r.out_trade_no NOT IN outboxed`;

/** Refunds whose sale is not in this journal; a refund of a sale here goes with its sale. */
function pruneLoneRefunds(journal: Journal, after: number, batch: number, cutoff: number, held: HeldRecords, report: PruneReport): number | null {
  return journal.transaction(() => {
    const window = journal.sql('SELECT max(r) AS upto, count(*) AS n FROM (SELECT rowid AS r FROM refunds WHERE rowid > ? ORDER BY rowid LIMIT ?)').get(after, batch) as { upto: number | null; n: number };
    if (window.upto === null) return null;
    const ids = journal
      .sql(
        `WITH outboxed AS MATERIALIZED (SELECT out_trade_no FROM outbox)
         SELECT r.refund_id FROM refunds r
         WHERE r.rowid > @after AND r.rowid <= @upto
           AND (r.sale_id IS NULL OR NOT EXISTS (SELECT 1 FROM sales s WHERE s.sale_id = r.sale_id))
           AND ${SETTLED_REFUND}`,
      )
      .pluck()
      .all({ after, upto: window.upto, cutoff }) as string[];
    for (const id of ids) {
      if (!held.refundIds.has(id)) report.refunds += journal.sql('DELETE FROM refunds WHERE refund_id = ?').run(id).changes;
    }
    return window.n < batch ? null : window.upto;
  }, 'relaxed');
}

/**
 * Transitions whose owner is gone: the attempt or refund named in `out_trade_no`, or for a sale's own
 * transition (`out_trade_no` null) the sale. Swept by id range rather than deleted with each sale: the
 * table has no index on its owner, and one scan per run costs less than one per batch. A crash
 * between a batch and the sweep leaves orphans the next run removes.
 */
function sweepTransitions(journal: Journal, after: number, chunk: number, report: PruneReport): number | null {
  return journal.transaction(() => {
    const upto = journal.sql('SELECT id FROM transitions WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?').pluck().get(after, chunk - 1) as number | undefined;
    report.transitions += journal
      .sql(
        `DELETE FROM transitions WHERE id > @after AND id <= @upto AND CASE
           WHEN out_trade_no IS NULL THEN NOT EXISTS (SELECT 1 FROM sales s WHERE s.sale_id = transitions.sale_id)
           ELSE NOT EXISTS (SELECT 1 FROM attempts a WHERE a.out_trade_no = transitions.out_trade_no)
            AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.refund_id = transitions.out_trade_no) END`,
      )
      .run({ after, upto: upto ?? Number.MAX_SAFE_INTEGER }).changes;
    return upto ?? null;
  }, 'relaxed');
}

function isIncremental(db: Database.Database): boolean {
  return db.pragma('auto_vacuum', { simple: true }) === 2;
}

function freePages(db: Database.Database): number {
  return db.pragma('freelist_count', { simple: true }) as number;
}

export type VacuumSwitch = 'already' | 'switched' | { failed: string };

/**
 * Make the journal give freed pages back (`auto_vacuum = INCREMENTAL`). SQLite records that mode
 * only in an empty file or by rewriting the file with VACUUM, and opening in WAL mode already writes
 * the first page, so both a new and an older journal are switched here with one VACUUM (instant on
 * an empty file; about 0.6 s per 40 MiB here), before any table is created. VACUUM cannot run inside
 * a transaction, and it writes the whole file through the WAL, so the WAL is truncated afterwards.
 * A failure (disk full: VACUUM needs about twice the file's size free) leaves the journal as it was,
 * working and not incremental: freed pages are still reused, the file only stops shrinking. It is
 * tried again at the next open.
 */
export function switchToIncrementalVacuum(db: Database.Database): VacuumSwitch {
  if (isIncremental(db)) return 'already';
  try {
    db.pragma('auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (err) {
    return { failed: `${(err as { code?: string }).code ?? 'error'}: ${(err as Error).message}` };
  }
  return isIncremental(db) ? 'switched' : { failed: 'auto_vacuum did not change' };
}

export interface HousekeepingOptions {
  journal: Journal;
  clock: Clock;
  retentionMs: number;
  held: () => HeldRecords;
  log: Logger;
  intervalMs?: number;
  batch?: number;
}

/**
 * The agent's schedule: a run soon after start, then one per interval after the previous run ended.
 * Batches are separated by a timer turn, so serial lines and MQTT messages are handled in between.
 */
export class JournalHousekeeping {
  private timer: unknown = null;
  private wake: ((goOn: boolean) => void) | null = null;
  private stopped = false;
  private running: Promise<void> | null = null;

  constructor(private readonly opts: HousekeepingOptions) {}

  start(): void {
    if (!isIncremental(this.opts.journal.db)) {
      this.opts.log.warn({ autoVacuum: 'none' }, 'journal could not be switched to incremental vacuum (disk full?): pruned space is reused but the file does not shrink; retried at the next start');
    }
    this.schedule(0);
  }

  /** Stops between two transactions; resolves once no transaction will start any more. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.timer);
    this.wake?.(false);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.running = this.run().finally(() => {
        this.running = null;
        this.schedule(this.opts.intervalMs ?? HOUSEKEEPING_INTERVAL_MS);
      });
    }, ms);
  }

  /** Judged when the run goes on, not when the timer fired: a stop in between wins. */
  private pause = (): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      if (this.stopped) return resolve(false);
      this.wake = (goOn) => {
        this.wake = null;
        resolve(goOn);
      };
      this.timer = this.opts.clock.setTimeout(() => this.wake?.(true), 0);
    }).then((goOn) => goOn && !this.stopped);

  private async run(): Promise<void> {
    const { journal, clock, log } = this.opts;
    const started = clock.monotonic?.() ?? clock.now();
    try {
      const r = await pruneJournal(journal, { now: clock.now(), retentionMs: this.opts.retentionMs, batch: this.opts.batch, held: this.opts.held, pause: this.pause });
      const ms = Math.round((clock.monotonic?.() ?? clock.now()) - started);
      if (r.sales + r.refunds + r.transitions + r.pagesFreed > 0 || !r.complete) log.info({ ...r, ms }, 'journal housekeeping');
    } catch (err) {
      // Nothing half-done: each batch is one transaction. The next run tries again.
      log.error({ err: (err as Error).message, code: (err as { code?: string }).code }, 'journal housekeeping failed; retried at the next run');
    }
  }
}
