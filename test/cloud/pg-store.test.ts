import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PgConnection } from '../../cloud/store/pg-connection.js';
import { migratePostgres } from '../../cloud/store/pg-migrate.js';
import { PgStore } from '../../cloud/store/pg-store.js';
import { PG_MIGRATIONS } from '../../cloud/store/pg-schema.js';
import type { RunningCloud } from '../../cloud/index.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { PartProcess, runPart } from '../../simulator/processes.js';
import { usePostgres } from '../support/postgres.js';
import { attempt, write } from '../conformance/store.js';
import { pairBox, payMsg, startTestCloud, tempDir, TestBox } from './harness.js';

/**
 * The PostgreSQL store beyond the conformance suite: its schema is applied by `scanbox-cloud
 * migrate` only, a worker refuses a database not at its version, what the SQL itself guards, and a
 * cloud taking a payment on it end to end.
 */
const postgres = usePostgres();
const fresh = () => postgres().createSchema('pgstore');
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function migrated(): Promise<string> {
  const url = await fresh();
  const db = new PgConnection(url, { max: 1 });
  await migratePostgres(db).finally(() => db.close());
  return url;
}

async function sql(url: string, statement: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(statement);
  } finally {
    await c.end();
  }
}

describe('scanbox-cloud migrate --store postgres://…', () => {
  it('brings a new database to the schema once; run again it has nothing to do', async () => {
    const url = await fresh();
    const first = await runPart('cloud', ['migrate', '--store', url]);
    expect(first).toMatchObject({ code: 0, stdout: expect.stringContaining(`schema version 0 → ${PG_MIGRATIONS.length}`) });
    const again = await runPart('cloud', ['migrate', '--store', url]);
    expect(again).toMatchObject({ code: 0, stdout: expect.stringContaining(`schema version ${PG_MIGRATIONS.length}, nothing to do`) });
    expect((await sql(url, 'SELECT version FROM schema_version ORDER BY version')).rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    const store = await PgStore.open(url);
    cleanup.push(() => store.close());
    expect(await store.listMerchants()).toEqual([]);
  });

  it('never prints the password of the connection string', async () => {
    const url = (await fresh()).replace('scanbox@', 'scanbox:hunter2-secret@');
    const r = await runPart('cloud', ['migrate', '--store', url]);
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toContain('hunter2-secret');
    expect(r.stdout).toContain('scanbox:***@');
  });

  it('refuses a database of a newer cloud (STORE_TOO_NEW), and so does a worker; without --store it says what it needs', async () => {
    const url = await migrated();
    await sql(url, `INSERT INTO schema_version (version) VALUES (${PG_MIGRATIONS.length + 1})`);
    const r = await runPart('cloud', ['migrate', '--store', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('STORE_TOO_NEW');
    await expect(PgStore.open(url)).rejects.toMatchObject({ code: 'STORE_TOO_NEW' });
    const { SCANBOX_CLOUD_STORE: _, ...env } = process.env;
    const none = await runPart('cloud', ['migrate'], 30_000, env);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('--store postgres://');
  });
});

describe('PgStore', () => {
  it('refuses a database that was not migrated, naming the command (STORE_UNAVAILABLE), and changes nothing in it', async () => {
    const url = await fresh();
    await expect(PgStore.open(url)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('scanbox-cloud migrate --store') });
    expect((await sql(url, `SELECT to_regclass('schema_version') AS t`)).rows[0].t).toBeNull();
  });

  it('a server that cannot be reached is STORE_UNAVAILABLE, with the address but not the password', async () => {
    const url = 'postgres://scanbox:hunter2-secret@127.0.0.1:1/nowhere';
    const err = (await PgStore.open(url).then(() => undefined, (e: unknown) => e)) as Error & { code?: string };
    expect(err.code).toBe('STORE_UNAVAILABLE');
    expect(err.message).toContain('127.0.0.1:1');
    expect(err.message).not.toContain('hunter2-secret');
  });

  it("a worker's name is held for its life: a second live worker under it is refused; once the first is gone, it starts", async () => {
    const url = await migrated();
    const first = await PgStore.open(url, { worker: 'w1' });
    await expect(PgStore.open(url, { worker: 'w1' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('--worker-id') });
    const other = await PgStore.open(url, { worker: 'w2' });
    await other.close();
    await first.close();
    const again = await PgStore.open(url, { worker: 'w1' });
    await again.close();
  });

  it('the audit trail is append-only in the database itself', async () => {
    const url = await migrated();
    const store = await PgStore.open(url);
    cleanup.push(() => store.close());
    await store.writeAttempts([write(attempt('sbA-1'), 0)]);
    await expect(sql(url, `UPDATE attempt_events SET note='edited'`)).rejects.toThrow(/append-only/);
    await expect(sql(url, 'DELETE FROM attempt_events')).rejects.toThrow(/append-only/);
    expect(await store.attemptEvents('sbA-1')).toHaveLength(1);
  });

  it('the register refunds’ history (refund_events) is append-only in the database itself', async () => {
    const url = await migrated();
    await sql(url, `INSERT INTO refund_events (refund_id, out_trade_no, at, event, from_state, to_state, note) VALUES ('sbA-r1', 'sbA-1', 1, 'request', NULL, 'PENDING', 'taken')`);
    await expect(sql(url, `UPDATE refund_events SET note='edited'`)).rejects.toThrow(/append-only/);
    await expect(sql(url, 'DELETE FROM refund_events')).rejects.toThrow(/append-only/);
    expect((await sql(url, 'SELECT note FROM refund_events')).rows).toEqual([{ note: 'taken' }]);
  });

  it("orders lists byte by byte as SQLite does, even in a database whose collation is English (ICU): 'M-Z' before 'm-b'", async () => {
    await sql(postgres().url('postgres'), `CREATE DATABASE english TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
    const url = postgres().url('english');
    // The database itself sorts the other way: the store's columns are what keep the order.
    expect((await sql(url, `SELECT x FROM (VALUES ('M-Z'), ('m-b')) v(x) ORDER BY x`)).rows.map((r) => r.x)).toEqual(['m-b', 'M-Z']);
    const db = new PgConnection(url, { max: 1 });
    await migratePostgres(db).finally(() => db.close());
    const store = await PgStore.open(url);
    cleanup.push(() => store.close());
    await store.addMerchant('m-b', {}, 1);
    await store.addMerchant('M-Z', {}, 1);
    expect((await store.listMerchants()).map((m) => m.merchantId)).toEqual(['M-Z', 'm-b']);
    await store.writeAttempts([write(attempt('sba-1'), 0), write(attempt('sbZ-1'), 0)]);
    expect((await store.listAttempts({})).map((a) => a.outTradeNo)).toEqual(['sbZ-1', 'sba-1']);
  });
});

describe('a cloud on PostgreSQL', () => {
  let cloud: RunningCloud | undefined;
  let box: TestBox | undefined;
  afterEach(async () => {
    await box?.close();
    await cloud?.close();
    box = cloud = undefined;
  });

  it('without a named server key it refuses to start: every worker must hash device secrets under the same one', async () => {
    const url = await migrated();
    await expect(startTestCloud(new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }), { store: url })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('pairs a box and takes its payment: SUCCESS, with its history, in the database', async () => {
    const url = await migrated();
    const { dir, remove } = tempDir();
    cleanup.push(remove);
    const gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
    cloud = await startTestCloud(gw, { store: url, secretKeyFile: join(dir, 'server.key') });
    box = await TestBox.of(cloud, await pairBox(cloud));
    await box.send('pay', payMsg(box.deviceId, 1));
    expect(await box.next('result', (m) => m.outTradeNo === `${box!.deviceId}-1`)).toMatchObject({ state: 'SUCCESS', reason: 'PAID' });
    const rows = await sql(url, `SELECT e.to_state FROM attempt_events e JOIN attempts a ON a.id = e.attempt_id WHERE a.out_trade_no = '${box.deviceId}-1' ORDER BY e.seq`);
    expect(rows.rows.map((r) => r.to_state)).toEqual(['PAYING', 'SUCCESS']);
  });

  it('scanbox-cloud start --store --worker-id: the ready line names the database without its password, and the worker; refused before migrate', async () => {
    const { dir, remove } = tempDir();
    cleanup.push(remove);
    const url = (await fresh()).replace('scanbox@', 'scanbox:hunter2-secret@');
    const args = ['start', '--store', url, '--worker-id', 'w1', '--mqtt-port', '0', '--http-port', '0', '--metrics-port', '0', '--gateway', 'instant'];
    const env = { ...process.env, SCANBOX_CLOUD_SECRET_KEY_FILE: join(dir, 'server.key'), SCANBOX_CLOUD_LOG_LEVEL: 'warn' };
    const refused = await runPart('cloud', args, 30_000, env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('scanbox-cloud migrate');
    expect((await runPart('cloud', ['migrate', '--store', url])).code).toBe(0);
    const started = PartProcess.start('cloud', args, undefined, env);
    try {
      const ready = await started.waitForMsg('ready', 20_000);
      expect(ready.db).toMatch(/^postgres:\/\/scanbox:\*\*\*@127\.0\.0\.1:\d+\//);
      expect(ready.worker).toBe('w1');
      expect(JSON.stringify(started.lines) + started.stderr.join('')).not.toContain('hunter2-secret');
    } finally {
      expect(await started.stop()).toBe(0);
    }
  });
});
