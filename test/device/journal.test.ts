import { statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { DeviceAttemptRecord } from '../../protocol/index.js';
import { JOURNAL_CACHE_KIB, JOURNAL_FILE, Journal, MIGRATIONS, SCHEMA_VERSION, type Credentials } from '../../device/journal.js';
import { step } from '../../device/payment.js';
import { RULES, T0, bookWithAttempt, onlineBook, sale } from './payment-fixtures.js';
import { useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();
const CREDS: Credentials = { deviceId: 'box1', secret: 's'.repeat(40), mqttUrl: 'mqtt://127.0.0.1:1883', merchantId: 'm', storeId: 's', cloudUrl: 'http://127.0.0.1:1', pairedAt: T0 };

function expectCode(fn: () => unknown, code: string, text: string): void {
  expect(fn).toThrow(expect.objectContaining({ code, message: expect.stringContaining(text) }));
}

describe('journal', () => {
  it('creates the file 0600 with WAL, synchronous=FULL and the current schema', () => {
    const dir = tempDir();
    const j = Journal.open(dir);
    expect(statSync(join(dir, JOURNAL_FILE)).mode & 0o777).toBe(0o600);
    expect(j.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(j.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(j.schemaVersion()).toBe(SCHEMA_VERSION);
    // A relaxed transaction restores FULL afterwards.
    j.transaction(() => j.setSetting('x', '1'), 'relaxed');
    expect(j.db.pragma('synchronous', { simple: true })).toBe(2);
    j.close();
  });

  it("caps SQLite's page cache at JOURNAL_CACHE_KIB, not better-sqlite3's 16,000 KiB (RSS grew with the file)", () => {
    const dir = tempDir();
    const plain = new Database(join(dir, 'plain.db'));
    const builtIn = -(plain.pragma('cache_size', { simple: true }) as number);
    plain.close();
    expect(builtIn).toBeGreaterThan(JOURNAL_CACHE_KIB);
    expect(JOURNAL_CACHE_KIB).toBeLessThanOrEqual(2048);
    const j = Journal.open(dir);
    expect(j.db.pragma('cache_size', { simple: true })).toBe(-JOURNAL_CACHE_KIB);
    j.close();
  });

  it('migrates a v1 journal to the current schema, keeping its rows', () => {
    const dir = tempDir();
    const raw = new Database(join(dir, JOURNAL_FILE));
    raw.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);');
    raw.exec(MIGRATIONS[0]!);
    raw.prepare("INSERT INTO sales VALUES ('box1-s1','R1',100,'CNY','PAID',NULL,'box1-1',1,2,3)").run();
    raw.close();
    const j = Journal.open(dir);
    expect(j.schemaVersion()).toBe(SCHEMA_VERSION);
    const row = j.db.prepare('SELECT ref, reported FROM sales').get();
    expect(row).toEqual({ ref: 'R1', reported: 1 });
    j.close();
  });

  it('refuses a journal from a newer agent with JOURNAL_TOO_NEW and leaves it untouched', () => {
    const dir = tempDir();
    Journal.open(dir).close();
    const raw = new Database(join(dir, JOURNAL_FILE));
    raw.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION + 1);
    raw.close();
    expectCode(() => Journal.open(dir), 'JOURNAL_TOO_NEW', 'newer agent');
    expectCode(() => Journal.open(dir, { readonly: true }), 'JOURNAL_TOO_NEW', 'newer agent');
    const again = new Database(join(dir, JOURNAL_FILE));
    expect(again.prepare('SELECT version FROM schema_version').get()).toEqual({ version: SCHEMA_VERSION + 1 });
    again.close();
  });

  it('refuses a corrupt file with JOURNAL_CORRUPT and says what to do; never recreates it', () => {
    const dir = tempDir();
    const path = join(dir, JOURNAL_FILE);
    writeFileSync(path, Buffer.alloc(8192, 0x5a), { mode: 0o600 });
    expectCode(() => Journal.open(dir), 'JOURNAL_CORRUPT', 'mv journal.db journal.db.corrupt');
    expect(readFileSync(path).equals(Buffer.alloc(8192, 0x5a))).toBe(true);
  });

  it('detects a damaged page with integrity_check', () => {
    const dir = tempDir();
    const j = Journal.open(dir);
    let b = onlineBook();
    j.transaction(() => {
      for (let i = 0; i < 300; i++) {
        const r = step(b, sale(`R${i}`), T0 + i);
        b = { ...r.book, sales: {} };
        for (const e of r.effects) j.persist(e);
      }
    });
    j.db.pragma('wal_checkpoint(TRUNCATE)');
    const { rootpage } = j.db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'sales'").get() as { rootpage: number };
    const pageSize = j.db.pragma('page_size', { simple: true }) as number;
    j.close();
    const path = join(dir, JOURNAL_FILE);
    const bytes = readFileSync(path);
    const at = (rootpage - 1) * pageSize;
    bytes.fill(0x33, at, at + pageSize); // scribble over the sales table's root page
    writeFileSync(path, bytes);
    expectCode(() => Journal.open(dir), 'JOURNAL_CORRUPT', 'corrupt');
  });

  it('refuses a foreign SQLite database rather than adopting it', () => {
    const dir = tempDir();
    const raw = new Database(join(dir, JOURNAL_FILE));
    raw.exec('CREATE TABLE other (x)');
    raw.close();
    expectCode(() => Journal.open(dir), 'JOURNAL_CORRUPT', 'not a scanbox journal');
  });

  it('round-trips a book and exports DeviceAttemptRecords, also read-only', () => {
    const dir = tempDir();
    const j = Journal.open(dir);
    j.saveCredentials(CREDS);
    const book = bookWithAttempt();
    const s1 = step(onlineBook(), sale(), T0);
    j.transaction(() => s1.effects.forEach((e) => j.persist(e)));
    const s2 = step(s1.book, { type: 'scan', code: { wallet: 'wechat', code: '134567890123456789' } }, T0 + 1);
    j.transaction(() => s2.effects.forEach((e) => j.persist(e)));
    const loaded = j.loadBook('box1', RULES, T0 + 5);
    expect(loaded.attempts['box1-1']).toEqual({ ...book.attempts['box1-1'], nextCheckAt: T0 + 5 });
    expect(loaded.nextAttemptSeq).toBe(2);
    expect(j.transitionsOf('box1-1')).toEqual([{ from: null, to: 'CREATED', cause: 'code scanned', at: T0 + 1 }]);
    const ro = Journal.open(dir, { readonly: true });
    const records = ro.attemptRecords();
    expect(records).toHaveLength(1);
    expect(DeviceAttemptRecord.parse(records[0])).toMatchObject({ outTradeNo: 'box1-1', state: 'CREATED', saleRef: 'R1' });
    expect(ro.credentials()?.deviceId).toBe('box1');
    ro.close();
    j.close();
  });
});

describe('which commits are fsynced', () => {
  it('money state and pay/cancel are full; a lone query or re-ack is relaxed; bookkeeping events are relaxed', async () => {
    const { commitMode } = await import('../../device/agent.js');
    const b = bookWithAttempt();
    const scan = step(onlineBook(), sale(), T0);
    expect(commitMode(scan.effects.filter((e) => e.kind !== 'log' && e.kind !== 'display' && e.kind !== 'ecr'), 'full')).toBe('full');
    const q = step(b, { type: 'resync' }, T0 + 5).effects.filter((e) => e.kind === 'send');
    expect(q.length).toBe(1);
    expect(commitMode(q, 'full')).toBe('relaxed');
    const cancel = step(b, { type: 'ecrCancel', ref: 'R1' }, T0 + 5).effects.filter((e) => e.kind === 'send' || e.kind === 'saveAttempt');
    expect(commitMode(cancel, 'full')).toBe('full');
    expect(commitMode(cancel, 'relaxed')).toBe('relaxed');
  });
});

describe('ECR v2 line numbers in the journal', () => {
  /** One step as the agent runs it: its journal effects in one transaction (or none: a power cut before the commit). */
  function commit(j: Journal, r: ReturnType<typeof step>): ReturnType<typeof step> {
    j.transaction(() => r.effects.forEach((e) => (e.kind === 'send' || e.kind === 'withdrawPay' ? undefined : j.persist(e))));
    return r;
  }
  const seqsOf = (r: ReturnType<typeof step>) => r.effects.flatMap((e) => (e.kind === 'ecr' ? [e.line.seq] : []));

  it('seq survives a reopen and never repeats, also when a step was lost to a power cut before its commit', () => {
    const dir = tempDir();
    const written: number[] = [];
    let j = Journal.open(dir);
    let b = onlineBook();
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 30; i++) {
        const r = commit(j, step(b, { type: 'ecrHello', firmware: 'fw' }, T0 + i));
        written.push(...seqsOf(r));
        b = r.book;
      }
      // The next step computed lines but died before committing: they were never written, and
      // whatever it reserved is lost; the numbers that were written must still never come back.
      step(b, { type: 'ecrHello', firmware: 'fw' }, T0 + 99);
      j.close();
      j = Journal.open(dir);
      b = { ...j.loadBook('box1', RULES, T0 + 100), online: true };
      expect(b.nextEcrSeq, `round ${round}`).toBeGreaterThan(Math.max(...written));
    }
    expect(new Set(written).size).toBe(written.length);
    expect([...written].sort((x, y) => x - y)).toEqual(written);
    j.close();
  });

  it('the reservation only grows (a stale, lower write cannot lower it)', () => {
    const dir = tempDir();
    const j = Journal.open(dir);
    j.transaction(() => j.persist({ kind: 'saveEcrSeq', reservedTo: 129 }));
    j.transaction(() => j.persist({ kind: 'saveEcrSeq', reservedTo: 65 }));
    expect(j.loadBook('box1', RULES, T0)).toMatchObject({ nextEcrSeq: 129, ecrSeqReservedTo: 129 });
    j.close();
  });

  it("a final sale's resultSeq is journaled, reloaded, never changed; loadSaleByRef finds the newest sale of a ref with its attempts", () => {
    const dir = tempDir();
    const j = Journal.open(dir);
    let b = onlineBook();
    for (const e of [sale('R1'), { type: 'scan', code: { wallet: 'wechat', code: '134567890123456789' } }, { type: 'ecrCancel', ref: 'R1' }] as const) b = commit(j, step(b, e, T0 + 1)).book;
    const a = b.attempts['box1-1']!;
    const closed = commit(j, step(b, { type: 'result', message: { v: 2, id: 'r1', ts: T0, outTradeNo: a.outTradeNo, saleId: a.saleId, amount: a.amount, currency: 'CNY', state: 'REVERSED' } }, T0 + 2));
    const line = closed.effects.find((e) => e.kind === 'ecr' && e.line.type === 'result');
    expect(line).toBeDefined();
    const seq = line!.kind === 'ecr' ? line!.line.seq : 0;
    const found = j.loadSaleByRef('R1', T0 + 3)!;
    expect(found.sale).toMatchObject({ ref: 'R1', state: 'NOT_PAID', resultSeq: seq });
    expect(found.attempts.map((x) => [x.outTradeNo, x.state])).toEqual([['box1-1', 'REVERSED']]);
    expect(j.loadBook('box1', RULES, T0).sales[a.saleId]!.resultSeq).toBe(seq);
    // A later save of the sale (say, a pre-v2 path without the field) keeps the number.
    j.transaction(() => j.persist({ kind: 'saveSale', sale: { ...found.sale, resultSeq: undefined, updatedAt: T0 + 9 }, from: 'NOT_PAID', cause: 'test' }));
    expect(j.loadSaleByRef('R1', T0)!.sale.resultSeq).toBe(seq);
    expect(j.loadSaleByRef('NOPE', T0)).toBeNull();
    j.close();
  });

  it('migrates a schema-3 journal: its sales are kept, with no resultSeq until one is needed', () => {
    const dir = tempDir();
    const raw = new Database(join(dir, JOURNAL_FILE));
    raw.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (3);');
    for (const m of MIGRATIONS.slice(0, 3)) raw.exec(m);
    raw.prepare("INSERT INTO sales VALUES ('box1-s1','R1',1234,'CNY','NOT_PAID','CASHIER_CANCEL',NULL,1,2,3,1)").run();
    raw.close();
    const j = Journal.open(dir);
    expect(j.schemaVersion()).toBe(SCHEMA_VERSION);
    const s = j.loadSaleByRef('R1', T0)!.sale;
    expect(s).toMatchObject({ ref: 'R1', state: 'NOT_PAID' });
    expect(s).not.toHaveProperty('resultSeq');
    expect(j.loadBook('box1', RULES, T0)).toMatchObject({ nextEcrSeq: 1, ecrSeqReservedTo: 1 });
    j.close();
  });
});
