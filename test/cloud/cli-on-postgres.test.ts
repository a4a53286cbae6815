import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { commandConfig, openCommandStore } from '../../cloud/command-store.js';
import { PgStore } from '../../cloud/store/pg-store.js';
import { runPart } from '../../simulator/processes.js';
import { attempt, write } from '../conformance/store.js';
import { usePostgres } from '../support/postgres.js';
import { tempDir } from './harness.js';

/**
 * The support commands on the workers' PostgreSQL store: a config file naming a postgres:// store,
 * given with --config, puts them there, and no SQLite file is made beside it. Each check reads the
 * other side: what a command wrote is read from the database directly, and what is written to the
 * database directly is what a command lists.
 */
const postgres = usePostgres();
const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function scratch(): string {
  const { dir, remove } = tempDir();
  cleanup.push(remove);
  return dir;
}

describe('scanbox-cloud support commands with --config naming a PostgreSQL store', () => {
  it('merchant add and pair create write the database; attempts, refunds and devices list what it holds', async () => {
    const dir = scratch();
    const url = await postgres().createSchema('cli');
    const sqliteFile = join(dir, 'cloud.db');
    const configFile = join(dir, 'cloud.json');
    writeFileSync(configFile, JSON.stringify({ store: url, dbPath: sqliteFile }), { mode: 0o600 });
    const cli = async <T>(args: string[]): Promise<T> => {
      const r = await runPart('cloud', [...args, '--config', configFile]);
      expect(r.code, `scanbox-cloud ${args.join(' ')}: ${r.stderr}`).toBe(0);
      return (args.includes('--json') ? JSON.parse(r.stdout) : r.stdout) as T;
    };

    await cli(['migrate']);
    await cli(['merchant', 'add', 'M-PG', '--name', 'Noodle bar', '--json']);
    const store = await PgStore.open(url);
    cleanup.push(() => store.close());
    expect(await store.listMerchants()).toMatchObject([{ merchantId: 'M-PG', name: 'Noodle bar' }]);

    const pairing = await cli<{ code: string }>(['pair', 'create', '--merchant', 'M-PG', '--store', 'S-7', '--cloud-url', 'http://127.0.0.1:9', '--json']);
    const now = Date.now();
    expect(await store.checkPairingCode(pairing.code, now)).toBeUndefined();

    // What a worker records as a box pairs, pays and asks a refund.
    expect(await store.redeemPairingCode(pairing.code, 'hw-pg-1', now, { deviceId: 'sbPG1', secretHash: 'x', firmware: '1.0.0' })).toMatchObject({ ok: true, merchantId: 'M-PG', storeId: 'S-7' });
    const paid = attempt('sbPG1-1', { state: 'SUCCESS', step: null, inFlight: null, charged: 100, merchantId: 'M-PG', createdAt: now, updatedAt: now });
    expect(await store.writeAttempts([write(paid, 0, true)])).toMatchObject([{ ok: true }]);
    expect(await store.requestRefund({ refundId: 'sbPG1-r1', deviceId: 'sbPG1', refundRef: 'RF-1', outTradeNo: 'sbPG1-1', amount: 40, currency: 'CNY', at: now })).toMatchObject({ kind: 'created', refund: { state: 'PENDING' } });

    const [attempts, refunds, devices] = await Promise.all([
      cli<unknown[]>(['attempts', '--json']),
      cli<unknown[]>(['refunds', '--json']),
      cli<unknown[]>(['devices', '--json']),
    ]);
    expect(attempts).toMatchObject([{ outTradeNo: 'sbPG1-1', state: 'SUCCESS', amount: 100 }]);
    expect(refunds).toMatchObject([{ refundId: 'sbPG1-r1', state: 'PENDING', amount: 40, storeId: 'S-7' }]);
    expect(devices).toMatchObject([{ deviceId: 'sbPG1', merchantId: 'M-PG', storeId: 'S-7', status: 'active' }]);
    expect(existsSync(sqliteFile)).toBe(false);
  }, 60_000);

  it('refuses --db beside a config naming PostgreSQL, and a --db file that is not there where a read would make one', async () => {
    const dir = scratch();
    const configFile = join(dir, 'pg.json');
    writeFileSync(configFile, JSON.stringify({ store: 'postgres://scanbox@127.0.0.1:1/none' }), { mode: 0o600 });
    const db = join(dir, 'cloud.db');
    expect(() => commandConfig({ db, config: configFile })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('give one or the other') }));
    await expect(openCommandStore(commandConfig({ db }), { mustExist: true })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: `there is no cloud store at ${db}` });
    expect(existsSync(db)).toBe(false);
  });
});
