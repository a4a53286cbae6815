import Database from 'better-sqlite3';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isProtocolError } from '../../protocol/index.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { MIGRATIONS, pairingCodeHash, UNACKED_SQL } from '../../cloud/store/sqlite-schema.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import type { AttemptWrite } from '../../cloud/store/store.js';
import type { Attempt } from '../../cloud/payments/transaction.js';
import { ensureMerchant, tempDir } from './harness.js';
import { FakeClock } from '../support/fake-clock.js';

let dir: string;
let remove: () => void;
beforeEach(() => ({ dir, remove } = tempDir()));
afterEach(() => remove());

function attempt(outTradeNo: string, patch: Partial<Attempt> = {}): Attempt {
  return {
    outTradeNo, deviceId: 'sbA', saleId: 's1', saleRef: 'R1', amount: 100, currency: 'CNY', wallet: 'wechat', state: 'PAYING', reason: null,
    createdAt: 1, updatedAt: 1, payAt: 1, deadlineAt: 2, nextAt: null, step: 'pay', inFlight: 'pay', callSeq: 1, tries: 0,
    cancelReason: null, gatewayTradeNo: null, ackedState: null, version: 0,
    merchantId: 'M1', channel: 'wechat', charged: null, walletPaidAt: null, buyerPaid: null, discount: null, flag: null, ...patch,
  };
}
const write = (a: Attempt, expectedVersion: number, claimSale = false): AttemptWrite => ({ attempt: a, expectedVersion, event: 'test', fromState: null, note: '', claimSale });

describe('SqliteStore', () => {
  it('creates its file 0600 and survives reopening (migrations run once)', async () => {
    const path = join(dir, 'c.db');
    const s = new SqliteStore(path);
    await s.writeAttempts([write(attempt('sbA-1'), 0)]);
    await s.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = new SqliteStore(path);
    expect((await again.getAttempt('sbA-1'))?.state).toBe('PAYING');
    await again.close();
  });

  it('refuses a corrupt file with STORE_CORRUPT and what to do, and leaves it alone', () => {
    const path = join(dir, 'bad.db');
    writeFileSync(path, Buffer.alloc(8192, 7));
    let err: unknown;
    try {
      new SqliteStore(path);
    } catch (e) {
      err = e;
    }
    expect(isProtocolError(err, 'STORE_CORRUPT')).toBe(true);
    expect((err as Error).message).toMatch(/restore/);
    expect(statSync(path).size).toBe(8192);
  });

  it('the register refunds’ history (refund_events) is append-only in the file itself', async () => {
    const path = join(dir, 'h.db');
    await new SqliteStore(path).close();
    const db = new Database(path);
    db.prepare("INSERT INTO refund_events (refund_id, out_trade_no, at, event, from_state, to_state, note) VALUES ('sbA-r1', 'sbA-1', 1, 'request', NULL, 'PENDING', 'taken')").run();
    expect(() => db.prepare("UPDATE refund_events SET note = 'rewritten'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM refund_events').run()).toThrow(/append-only/);
    expect(db.prepare('SELECT note FROM refund_events').pluck().all()).toEqual(['taken']);
    db.close();
  });

  it('refuses a store from a newer cloud (STORE_TOO_NEW)', async () => {
    const path = join(dir, 'new.db');
    await new SqliteStore(path).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_version (version) VALUES (99)').run();
    db.close();
    expect(() => new SqliteStore(path)).toThrow(/schema version 99/);
  });
});

// What SQLite keeps beside the interface, inline and on the commit thread (cloud/commit-thread.ts).
// The CloudStore contract itself (versioning, sale claims, lists, pairing, fleet, the trail through
// attemptEvents) is test/conformance/store.ts, run against both modes in test/conformance/store.test.ts.
describe.each([{ commitThread: false }, { commitThread: true }])('SqliteStore writes %o', (opts) => {
  it('keeps a refund row, and its audit trail is append-only in the file itself', async () => {
    const path = join(dir, 'a.db');
    const s = new SqliteStore(path, opts);
    await s.writeAttempts([write(attempt('sbA-1'), 0)]);
    await s.writeAttempts([{ ...write(attempt('sbA-1', { state: 'REFUND_PENDING', reason: 'DUPLICATE_PAYMENT' }), 1), fromState: 'PAYING' }]);
    await s.close();
    const db = new Database(path);
    expect(db.prepare('SELECT state, amount FROM refunds').all()).toEqual([{ state: 'PENDING', amount: 100 }]);
    expect(() => db.prepare('DELETE FROM attempt_events').run()).toThrow(/append-only/);
    expect(() => db.prepare("UPDATE attempt_events SET note = 'rewritten'").run()).toThrow(/append-only/);
    db.close();
  });
});

describe('recently written attempts', () => {
  it('getAttempt after a write answers exactly what a fresh read of the file does', async () => {
    const path = join(dir, 'r.db');
    const s = new SqliteStore(path);
    await s.writeAttempts([write(attempt('sbA-1'), 0)]);
    await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS', gatewayTradeNo: 'g1', inFlight: null }), 1, true)]);
    const fresh = new SqliteStore(path);
    expect(await s.getAttempt('sbA-1')).toEqual(await fresh.getAttempt('sbA-1'));
    expect((await s.getAttempt('sbA-1'))?.version).toBe(2);
    await fresh.close();
    await s.close();
  });

  it('another writer on the file: the stale copy fails its version check once, then the file is read', async () => {
    const path = join(dir, 'two.db');
    const a = new SqliteStore(path);
    const b = new SqliteStore(path);
    await a.writeAttempts([write(attempt('sbA-1'), 0)]);
    await b.writeAttempts([write(attempt('sbA-1', { state: 'FAILED', inFlight: null }), 1)]);
    const stale = await a.getAttempt('sbA-1');
    expect(stale?.version).toBe(1);
    expect(await a.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS' }), stale!.version)])).toEqual([{ ok: false, why: 'version' }]);
    expect(await a.getAttempt('sbA-1')).toMatchObject({ state: 'FAILED', version: 2 });
    await a.close();
    await b.close();
  });
});

describe('schemas 2 and 3: indexes that a group commit touches in a few hot pages', () => {
  it('migrates a version-1 store, and finds a device\'s unacknowledged results through the partial index', async () => {
    const path = join(dir, 'm.db');
    const v1 = new Database(path);
    v1.exec(MIGRATIONS[0]!);
    v1.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);');
    // An attempt of the old schema with its audit trail: the trail must survive the migrations.
    v1.exec(`INSERT INTO attempts (out_trade_no, device_id, sale_id, amount, currency, state, created_at, updated_at, call_seq, tries, version)
             VALUES ('sbOLD-1', 'sbOLD', 's1', 100, 'CNY', 'SUCCESS', 1, 2, 1, 0, 2)`);
    v1.exec(`INSERT INTO attempt_events (out_trade_no, at, event, from_state, to_state, note) VALUES ('sbOLD-1', 1, 'pay', NULL, 'PAYING', ''), ('sbOLD-1', 2, 'outcome', 'PAYING', 'SUCCESS', '')`);
    v1.close();
    const s = new SqliteStore(path);
    expect((await s.attemptEvents('sbOLD-1')).map((e) => e.toState)).toEqual(['PAYING', 'SUCCESS']);
    await s.writeAttempts([
      write(attempt('sbA-1', { state: 'SUCCESS' }), 0),
      write(attempt('sbA-2', { saleId: 's2', state: 'SUCCESS', ackedState: 'SUCCESS' }), 0),
      write(attempt('sbA-3', { saleId: 's3' }), 0),
      write(attempt('sbAB-1', { deviceId: 'sbAB', state: 'FAILED' }), 0),
    ]);
    expect((await s.listUnackedFinal('sbA')).map((a) => a.outTradeNo)).toEqual(['sbA-1']);
    expect((await s.listAttempts({ deviceId: 'sbA' })).map((a) => a.outTradeNo)).toEqual(['sbA-1', 'sbA-2', 'sbA-3']);
    expect((await s.listAttempts({ deviceId: 'sbAB' })).map((a) => a.outTradeNo)).toEqual(['sbAB-1']);
    await s.close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT MAX(version) FROM schema_version').pluck().get()).toBe(MIGRATIONS.length);
    const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT * FROM attempts WHERE device_id=? AND state IN ('SUCCESS','FAILED') AND ${UNACKED_SQL}`).all('sbA') as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/USING INDEX attempts_unacked/);
    const events = db.prepare("EXPLAIN QUERY PLAN SELECT * FROM attempt_events WHERE attempt_rowid = (SELECT rowid FROM attempts WHERE out_trade_no='sbA-1') ORDER BY seq").all() as { detail: string }[];
    expect(events.map((p) => p.detail).join(' ')).toMatch(/USING INDEX attempt_events_by_attempt/);
    // Acknowledged attempts are not in it: the index stays as small as what is in flight.
    expect(db.prepare(`SELECT count(*) FROM attempts INDEXED BY attempts_unacked WHERE device_id=? AND ${UNACKED_SQL}`).pluck().get('sbA')).toBe(2);
    db.close();
  });
});

describe('schema 4: pairing codes kept as hashes', () => {
  it('a new code is stored only as its hash, and still redeems', async () => {
    const path = join(dir, 'p.db');
    const s = new SqliteStore(path);
    await ensureMerchant(s, 'M');
    const { code } = await createPairingCode({ store: s, clock: new FakeClock(1), codeTtlS: 60 }, 'M', 'S');
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT code FROM pairing_codes').pluck().all()).toEqual([pairingCodeHash(code)]);
    db.close();
    expect(await s.checkPairingCode(code, 2)).toBeUndefined();
    expect(await s.redeemPairingCode(code, 'hw', 2, { deviceId: 'sbA', secretHash: 'h', firmware: null })).toMatchObject({ ok: true });
    expect(await s.checkPairingCode(code, 3)).toBe('used');
    await s.close();
  });

  it('migrating a schema-3 store hashes the codes in place: a live one still redeems, none is left in clear', async () => {
    const path = join(dir, 'p3.db');
    const v3 = new Database(path);
    for (const m of MIGRATIONS.slice(0, 3)) v3.exec(m);
    v3.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1), (2), (3);');
    v3.exec(`INSERT INTO merchants VALUES ('M', 1); INSERT INTO stores VALUES ('M', 'S', 1);
             INSERT INTO pairing_codes (code, merchant_id, store_id, created_at, expires_at) VALUES ('ABCDE12345', 'M', 'S', 1, 1000), ('FGHJK67890', 'M', 'S', 1, 1000)`);
    v3.close();
    const s = new SqliteStore(path);
    expect(await s.redeemPairingCode('ABCDE12345', 'hw', 2, { deviceId: 'sbA', secretHash: 'h', firmware: null })).toMatchObject({ ok: true, merchantId: 'M' });
    expect(await s.checkPairingCode('FGHJK67890', 2)).toBeUndefined();
    await s.close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT code FROM pairing_codes ORDER BY code').pluck().all()).toEqual([pairingCodeHash('ABCDE12345'), pairingCodeHash('FGHJK67890')].sort());
    db.close();
  });
});

describe('commit thread', () => {
  it('close() commits every write already asked for before it returns', async () => {
    const path = join(dir, 't.db');
    const s = new SqliteStore(path, { commitThread: true });
    const writes = Array.from({ length: 50 }, (_, i) => s.writeAttempts([write(attempt(`sbA-${i}`, { saleId: `s${i}` }), 0)]));
    await s.close();
    expect(await Promise.all(writes)).toEqual(Array.from({ length: 50 }, () => [{ ok: true, version: 1 }]));
    const again = new SqliteStore(path);
    expect(await again.listAttempts({})).toHaveLength(50);
    await again.close();
  });

  it('lone writes commit on the main connection, and the thread checkpoints for it: the WAL stops growing', async () => {
    const path = join(dir, 'w.db');
    const s = new SqliteStore(path, { commitThread: true });
    await s.whenReady();
    let n = 0;
    const burst = async (count: number) => {
      for (let i = 0; i < count; i++, n++) {
        await s.writeAttempts([write(attempt(`sbA-${n}`, { saleId: `s${n}` }), 0)]);
        // As in the cloud, each write comes from an I/O event: timers get their turn in between.
        await new Promise((r) => setImmediate(r));
      }
      return statSync(`${path}-wal`).size;
    };
    let size = await burst(400);
    // Without a checkpoint every burst appends to the WAL; once one ran, the next burst reuses it.
    const deadline = Date.now() + 5_000;
    for (;;) {
      const next = await burst(20);
      if (next <= size) break;
      if (Date.now() > deadline) throw new Error(`the WAL kept growing: ${size} → ${next} bytes`);
      size = next;
    }
    expect(await s.listAttempts({})).toHaveLength(n);
    await s.close();
  });

  it('a dead commit thread fails pending and later writes with STORE_UNAVAILABLE, never reports them done', async () => {
    const s = new SqliteStore(join(dir, 'd.db'), { commitThread: true });
    await s.writeAttempts([write(attempt('sbA-1'), 0)]);
    const worker = (s as unknown as { writer: { thread: { worker: { terminate(): Promise<number> } } } }).writer.thread.worker;
    // A group (not a lone write, which commits inline while the thread is idle) goes to the thread.
    const pending = s.writeAttempts([write(attempt('sbA-2'), 0), write(attempt('sbA-4', { saleId: 's4' }), 0), write(attempt('sbA-5', { saleId: 's5' }), 0)]);
    await worker.terminate();
    // The thread may have committed it just before it died; then, and only then, it may say so.
    const outcome = await pending.then(() => 'committed', (e: { code?: string }) => e.code);
    if (outcome === 'committed') expect((await s.getAttempt('sbA-2'))?.state).toBe('PAYING');
    else expect(outcome).toBe('STORE_UNAVAILABLE');
    await expect(s.writeAttempts([write(attempt('sbA-3'), 0)])).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect((await s.getAttempt('sbA-1'))?.state).toBe('PAYING');
    await s.close();
  });
});
