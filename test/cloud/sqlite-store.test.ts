import Database from 'better-sqlite3';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isProtocolError } from '../../protocol/index.js';
import { SqliteStore } from '../../cloud/sqlite-store.js';
import type { AttemptWrite } from '../../cloud/store.js';
import type { Attempt } from '../../cloud/transaction.js';
import { tempDir } from './harness.js';

let dir: string;
let remove: () => void;
beforeEach(() => ({ dir, remove } = tempDir()));
afterEach(() => remove());

function attempt(outTradeNo: string, patch: Partial<Attempt> = {}): Attempt {
  return {
    outTradeNo, deviceId: 'sbA', saleId: 's1', saleRef: 'R1', amount: 100, currency: 'CNY', wallet: 'wechat', state: 'PAYING', reason: null,
    createdAt: 1, updatedAt: 1, payAt: 1, deadlineAt: 2, nextAt: null, step: 'pay', inFlight: 'pay', callSeq: 1, tries: 0,
    cancelReason: null, gatewayTradeNo: null, ackedState: null, version: 0, ...patch,
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

  it('refuses a store from a newer cloud (STORE_TOO_NEW)', async () => {
    const path = join(dir, 'new.db');
    await new SqliteStore(path).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_version (version) VALUES (99)').run();
    db.close();
    expect(() => new SqliteStore(path)).toThrow(/schema version 99/);
  });

  it('outTradeNo is unique and writes are versioned: a stale writer loses', async () => {
    const s = new SqliteStore(join(dir, 'v.db'));
    expect(await s.writeAttempts([write(attempt('sbA-1'), 0)])).toEqual([{ ok: true, version: 1 }]);
    expect(await s.writeAttempts([write(attempt('sbA-1'), 0)])).toEqual([{ ok: false, why: 'version' }]);
    const res = await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS' }), 1), write(attempt('sbA-1', { state: 'FAILED' }), 1)]);
    expect(res).toEqual([{ ok: true, version: 2 }, { ok: false, why: 'version' }]);
    expect((await s.getAttempt('sbA-1'))?.state).toBe('SUCCESS');
    await s.close();
  });

  it('lists as active: not final, a late check due, and a late check in flight (chaos: cloud killed mid late check)', async () => {
    const s = new SqliteStore(join(dir, 'a.db'));
    await s.writeAttempts([
      write(attempt('sbA-1'), 0),
      write(attempt('sbA-2', { state: 'REVERSED', step: 'late_check', inFlight: null, nextAt: 5 }), 0),
      write(attempt('sbA-3', { state: 'REVERSED', step: 'late_check', inFlight: 'query', nextAt: null }), 0),
      write(attempt('sbA-4', { state: 'REVERSED', step: null, inFlight: null, nextAt: null }), 0),
      write(attempt('sbA-5', { state: 'SUCCESS', step: null, inFlight: null, nextAt: null }), 0),
    ]);
    expect((await s.listActiveAttempts()).map((a) => a.outTradeNo).sort()).toEqual(['sbA-1', 'sbA-2', 'sbA-3']);
    await s.close();
  });

  it('one sale can be claimed by one attempt only; a refused claim leaves no trace', async () => {
    const s = new SqliteStore(join(dir, 'c.db'));
    await s.writeAttempts([write(attempt('sbA-1'), 0), write(attempt('sbA-2'), 0)]);
    const res = await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS' }), 1, true), write(attempt('sbA-2', { state: 'SUCCESS' }), 1, true)]);
    expect(res).toEqual([{ ok: true, version: 2 }, { ok: false, why: 'sale_taken', winner: 'sbA-1' }]);
    expect((await s.getAttempt('sbA-2'))?.state).toBe('PAYING');
    expect(await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS' }), 2, true)])).toEqual([{ ok: true, version: 3 }]);
    await s.close();
  });

  it('keeps an append-only audit trail and a refund row', async () => {
    const path = join(dir, 'a.db');
    const s = new SqliteStore(path);
    await s.writeAttempts([write(attempt('sbA-1'), 0)]);
    await s.writeAttempts([{ ...write(attempt('sbA-1', { state: 'REFUND_PENDING', reason: 'DUPLICATE_PAYMENT' }), 1), fromState: 'PAYING' }]);
    expect((await s.attemptEvents('sbA-1')).map((e) => e.toState)).toEqual(['PAYING', 'REFUND_PENDING']);
    await s.close();
    const db = new Database(path);
    expect(db.prepare('SELECT state, amount FROM refunds').all()).toEqual([{ state: 'PENDING', amount: 100 }]);
    expect(() => db.prepare('DELETE FROM attempt_events').run()).toThrow(/append-only/);
    db.close();
  });
});
