import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../device/config.js';
import { JOURNAL_FILE, Journal } from '../../device/journal.js';
import { KEPT_FINISHED_SALES, step } from '../../device/payment.js';
import { DAY_MS, FREE_PAGES_KEPT, HOUSEKEEPING_INTERVAL_MS, JournalHousekeeping, pruneJournal, switchToIncrementalVacuum, type HeldRecords } from '../../device/retention.js';
import { FakeClock } from '../support/fake-clock.js';
import { AgentHarness, writeCredentials } from './agent-harness.js';
import { RULES, ecrLines } from './payment-fixtures.js';
import { CUTOFF, NOW, RETENTION_MS, settledSale, snapshot, writeJournal, type SaleSpec } from './retention-fixtures.js';
import { useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();
const NOTHING_HELD: HeldRecords = { saleIds: new Set(), refundIds: new Set() };
const autoVacuum = (j: Journal | Database.Database) => ('db' in j ? j.db : j).pragma('auto_vacuum', { simple: true });

/** A journal as agents before housekeeping left it: no auto_vacuum, the given sales in it. */
function journalFromBefore(sales: SaleSpec[]): string {
  const dir = tempDir();
  const j = Journal.open(dir);
  writeJournal(j, sales);
  j.close();
  const raw = new Database(join(dir, JOURNAL_FILE));
  raw.pragma('auto_vacuum = NONE');
  raw.exec('VACUUM');
  expect(autoVacuum(raw)).toBe(0);
  raw.close();
  return dir;
}

function logCollector() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { lines, log };
}

describe('journal vacuum mode', () => {
  it('a new journal is incremental from its first table', () => {
    const j = Journal.open(tempDir());
    expect(autoVacuum(j)).toBe(2);
    j.close();
  });

  it('a journal created before is switched once at open, keeps every row and keeps working', () => {
    const dir = journalFromBefore([settledSale(CUTOFF - DAY_MS), { ...settledSale(NOW), state: 'OPEN', attempts: [{ state: 'PAYING', at: NOW, outboxed: true }] }]);
    const raw = new Database(join(dir, JOURNAL_FILE), { readonly: true });
    const rows = raw.prepare('SELECT * FROM sales ORDER BY sale_id').all();
    const transitions = raw.prepare('SELECT * FROM transitions ORDER BY id').all();
    raw.close();

    const j = Journal.open(dir);
    expect(autoVacuum(j)).toBe(2);
    expect(j.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(snapshot(j).sales.size).toBe(2);
    expect(j.db.prepare('SELECT * FROM sales ORDER BY sale_id').all()).toEqual(rows);
    expect(j.db.prepare('SELECT * FROM transitions ORDER BY id').all()).toEqual(transitions);
    // Still the journal the agent writes: a new sale goes in and comes back by its ref.
    writeJournal(j, [settledSale(NOW)]);
    expect(j.loadSaleByRef('R1', NOW)?.sale.updatedAt).toBe(NOW);
    // The VACUUM went through the WAL; it is truncated afterwards, not left at the file's size.
    expect(statSync(join(dir, `${JOURNAL_FILE}-wal`)).size).toBeLessThan(statSync(join(dir, JOURNAL_FILE)).size);
    j.close();
  });

  it('a switch that fails leaves the journal as it was and working; the next open switches it', () => {
    const dir = journalFromBefore([settledSale(CUTOFF - DAY_MS)]);
    const db = new Database(join(dir, JOURNAL_FILE));
    // A connection that may not write makes VACUUM fail, as a full disk would.
    db.pragma('query_only = 1');
    const result = switchToIncrementalVacuum(db);
    db.pragma('query_only = 0');
    expect(result).toEqual({ failed: expect.stringContaining('SQLITE_READONLY') });
    expect(autoVacuum(db)).toBe(0);
    expect(db.prepare('SELECT count(*) AS n FROM sales').get()).toEqual({ n: 1 });
    db.close();

    const j = Journal.open(dir);
    expect(autoVacuum(j)).toBe(2);
    j.close();
  });

  it('the agent says so when its journal is not incremental', async () => {
    const j = Journal.open(tempDir());
    j.db.pragma('auto_vacuum = NONE');
    j.db.exec('VACUUM');
    const { lines, log } = logCollector();
    const hk = new JournalHousekeeping({ journal: j, clock: new FakeClock(NOW), retentionMs: RETENTION_MS, held: () => NOTHING_HELD, log });
    hk.start();
    expect(lines).toContainEqual(expect.objectContaining({ level: 40, autoVacuum: 'none', msg: expect.stringContaining('could not be switched to incremental vacuum') }));
    await hk.stop();
    j.close();
  });
});

describe('journal pruning', () => {
  it('gives the freed pages back beyond a slack the next sales reuse: the file shrinks', async () => {
    const dir = tempDir();
    const j = Journal.open(dir);
    writeJournal(j, [...Array.from({ length: 6_000 }, () => settledSale(CUTOFF - DAY_MS)), settledSale(NOW)]);
    j.db.pragma('wal_checkpoint(TRUNCATE)');
    const file = join(dir, JOURNAL_FILE);
    const before = statSync(file).size;
    const r = await pruneJournal(j, { now: NOW, retentionMs: RETENTION_MS });
    expect(r).toMatchObject({ sales: 6_000, attempts: 6_000, complete: true });
    expect(r.pagesFreed).toBeGreaterThan(0);
    expect(j.db.pragma('freelist_count', { simple: true })).toBe(FREE_PAGES_KEPT);
    expect(statSync(file).size).toBeLessThan(before / 2);
    expect(snapshot(j).sales.size).toBe(1);
    j.close();
  });

  it('an hourly run that frees little moves no page: the space is reused by the next sales', async () => {
    const j = Journal.open(tempDir());
    writeJournal(j, [...Array.from({ length: 20 }, () => settledSale(CUTOFF - 1)), settledSale(NOW)]);
    const pages = j.db.pragma('page_count', { simple: true });
    const r = await pruneJournal(j, { now: NOW, retentionMs: RETENTION_MS });
    expect(r).toMatchObject({ sales: 20, pagesFreed: 0 });
    expect(j.db.pragma('page_count', { simple: true })).toBe(pages);
    writeJournal(j, Array.from({ length: 20 }, () => settledSale(NOW)));
    expect(j.db.pragma('page_count', { simple: true })).toBe(pages);
    j.close();
  });

  it('a pruned ref is unknown afterwards: a lookup answers SALE_UNKNOWN; a recent one is still answered', async () => {
    const j = Journal.open(tempDir());
    writeJournal(j, [settledSale(CUTOFF - 1), settledSale(CUTOFF)]);
    await pruneJournal(j, { now: NOW, retentionMs: RETENTION_MS });
    expect(j.loadSaleByRef('R1', NOW)).toBeNull();
    expect(j.loadSaleByRef('R2', NOW)?.sale.state).toBe('PAID');
    const book = j.loadBook('box1', RULES, NOW);
    expect(Object.keys(book.sales)).toEqual(['box1-s2']);
    const lines = ecrLines(step(book, { type: 'ecrLookup', ref: 'R1' }, NOW).effects);
    expect(lines).toEqual([expect.objectContaining({ type: 'error', ref: 'R1', code: 'SALE_UNKNOWN' })]);
    j.close();
  });
});

describe('housekeeping schedule', () => {
  const started: JournalHousekeeping[] = [];
  afterEach(async () => {
    for (const hk of started.splice(0)) await hk.stop();
  });

  function schedule(j: Journal, clock: FakeClock, held: () => HeldRecords = () => NOTHING_HELD, batch?: number) {
    const { lines, log } = logCollector();
    const hk = new JournalHousekeeping({ journal: j, clock, retentionMs: RETENTION_MS, held, log, ...(batch ? { batch } : {}) });
    started.push(hk);
    return { hk, lines };
  }

  it('runs at start, then once an interval; what it holds in memory is kept', async () => {
    const j = Journal.open(tempDir());
    const clock = new FakeClock(NOW);
    // R1 is old; R2 is held in memory; R3 becomes old half an hour later.
    writeJournal(j, [settledSale(CUTOFF - 1), settledSale(CUTOFF - 1), settledSale(CUTOFF + HOUSEKEEPING_INTERVAL_MS / 2)]);
    const { hk, lines } = schedule(j, clock, () => ({ saleIds: new Set(['box1-s2']), refundIds: new Set() }));
    hk.start();
    await clock.advance(0);
    expect([...snapshot(j).sales.keys()]).toEqual(['box1-s2', 'box1-s3']);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'journal housekeeping', sales: 1, attempts: 1, complete: true }));

    await clock.advance(HOUSEKEEPING_INTERVAL_MS - 1);
    expect(snapshot(j).sales.size).toBe(2);
    await clock.advance(1);
    expect([...snapshot(j).sales.keys()]).toEqual(['box1-s2']);
    await hk.stop();
    j.close();
  });

  it('stops between two transactions and sets no timer afterwards', async () => {
    const j = Journal.open(tempDir());
    const clock = new FakeClock(NOW);
    writeJournal(j, Array.from({ length: 5 }, () => settledSale(CUTOFF - 1)));
    const { hk } = schedule(j, clock, undefined, 2);
    hk.start();
    clock.advanceSync(0); // the run starts: its first batch of 2 commits, then it waits for a timer turn
    expect(snapshot(j).sales.size).toBe(3);
    await hk.stop();
    await clock.advance(HOUSEKEEPING_INTERVAL_MS * 2);
    expect(clock.pendingTimers()).toBe(0);
    expect(snapshot(j).sales.size).toBe(3);
    j.close();
  });

  it('a failed run is logged and the next one still comes', async () => {
    const j = Journal.open(tempDir());
    const clock = new FakeClock(NOW);
    writeJournal(j, [settledSale(CUTOFF - 1)]);
    let fail = true;
    const { hk, lines } = schedule(j, clock, () => {
      if (fail) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR' });
      return NOTHING_HELD;
    });
    hk.start();
    await clock.advance(0);
    expect(lines).toContainEqual(expect.objectContaining({ level: 50, msg: 'journal housekeeping failed; retried at the next run', code: 'SQLITE_IOERR' }));
    expect(snapshot(j).sales.size).toBe(1);
    fail = false;
    await clock.advance(HOUSEKEEPING_INTERVAL_MS);
    expect(snapshot(j).sales.size).toBe(0);
    await hk.stop();
    j.close();
  });
});

describe('retentionDays', () => {
  const flags = { scannerPath: '/dev/a', ecrPath: '/dev/b', dataDir: '/tmp/x' };
  it('defaults to 30 days; at least 1, whole days; settable by env', () => {
    expect(loadConfig({ flags }).retentionDays).toBe(30);
    expect(loadConfig({ flags, env: { SCANBOX_DEVICE_RETENTION_DAYS: '7' } }).retentionDays).toBe(7);
    for (const bad of [0, 1.5, -3]) {
      expect(() => loadConfig({ flags: { ...flags, retentionDays: bad } })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('retentionDays') }));
    }
  });
});

describe('the agent prunes its journal', () => {
  let box: AgentHarness | undefined;
  afterEach(async () => {
    await box?.stop();
    box = undefined;
  });

  it('at start, all but what it holds in memory: an old settled ref is then unknown to lookup, a recent one is answered', async () => {
    const dir = tempDir();
    writeCredentials(dir, 'box1', 'mqtt://127.0.0.1:9');
    const j = Journal.open(dir);
    const now = Date.now();
    // R1 … R40 settled 31 days ago (R1 oldest), R41 yesterday. The agent holds the newest 32 finished
    // sales in memory (KEPT_FINISHED_SALES): those stay; the 9 oldest go.
    writeJournal(j, [...Array.from({ length: 40 }, (_, i) => settledSale(now - 31 * DAY_MS + i * 1000)), settledSale(now - DAY_MS)]);
    j.close();
    box = new AgentHarness(dir, { retentionDays: 30 });
    await box.start();
    expect(await box.logs.find((l) => l.msg === 'journal housekeeping', 'housekeeping run', 10_000)).toMatchObject({ sales: 41 - KEPT_FINISHED_SALES, attempts: 41 - KEPT_FINISHED_SALES });
    const ask = async (ref: string) => {
      const mark = box!.ecrOut.mark();
      box!.ecr({ type: 'lookup', ref });
      return box!.ecrOut.find((l) => l.ref === ref, `lookup answer for ${ref}`, 10_000, mark);
    };
    expect(await ask('R1')).toMatchObject({ type: 'error', code: 'SALE_UNKNOWN' });
    expect(await ask('R9')).toMatchObject({ type: 'error', code: 'SALE_UNKNOWN' });
    expect(await ask('R10')).toMatchObject({ type: 'result', outcome: 'PAID', lookup: true });
    expect(await ask('R41')).toMatchObject({ type: 'result', outcome: 'PAID', lookup: true });
  });
});
