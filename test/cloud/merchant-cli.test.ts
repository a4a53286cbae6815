import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { tempDir } from './harness.js';

/** `scanbox-cloud merchant add|set|list` and the pairing code's merchant, as a field engineer runs them. */
const run = promisify(execFile);
let dir: string;
let remove: () => void;
let db: string;
beforeEach(() => {
  ({ dir, remove } = tempDir());
  db = join(dir, 'cloud.db');
});
afterEach(() => remove());

const cli = (...args: string[]) => run(process.execPath, ['bin/scanbox-cloud.js', ...args, '--db', db]);
async function cliFails(...args: string[]): Promise<string> {
  const err = (await cli(...args).then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: number; stderr?: string } | undefined;
  expect(err?.code).toBe(1);
  return err!.stderr ?? '';
}
async function merchantsInStore() {
  const store = new SqliteStore(db);
  try {
    return await store.listMerchants();
  } finally {
    await store.close();
  }
}

describe('scanbox-cloud merchant', () => {
  it('adds a merchant with its wallet sub-ids, changes and clears them, and lists them without the Alipay token', async () => {
    const added = JSON.parse((await cli('merchant', 'add', 'M100', '--name', 'Tea House', '--wechat-sub-mch-id', '1900000109', '--alipay-app-auth-token', '202512BBa7c3', '--json')).stdout);
    expect(added).toMatchObject({ merchantId: 'M100', name: 'Tea House', wechatSubMchId: '1900000109', alipayAppAuthToken: 'set' });
    await cli('merchant', 'set', 'M100', '--wechat-sub-mch-id', '1900000110', '--alipay-app-auth-token', '');
    const listed = JSON.parse((await cli('merchant', 'list', '--json')).stdout);
    expect(listed).toEqual([expect.objectContaining({ merchantId: 'M100', name: 'Tea House', wechatSubMchId: '1900000110', alipayAppAuthToken: null })]);
    const text = (await cli('merchant', 'list')).stdout;
    expect(text).toContain('M100');
    await cli('merchant', 'set', 'M100', '--alipay-app-auth-token', '202512BBa7c3');
    expect((await cli('merchant', 'list')).stdout).not.toContain('202512BBa7c3');
  }, 120_000);

  it('refuses a second add, a set of an unknown merchant and a malformed sub-id, changing nothing', async () => {
    await cli('merchant', 'add', 'M100', '--wechat-sub-mch-id', '1900000109');
    expect(await cliFails('merchant', 'add', 'M100')).toContain('MERCHANT_EXISTS');
    expect(await cliFails('merchant', 'set', 'M404', '--name', 'x')).toContain('MERCHANT_UNKNOWN');
    expect(await cliFails('merchant', 'set', 'M100', '--wechat-sub-mch-id', '19000x')).toContain('CONFIG_INVALID');
    expect(await cliFails('merchant', 'add', 'M/1')).toContain('CONFIG_INVALID');
    expect((await merchantsInStore()).map((m) => [m.merchantId, m.wechatSubMchId])).toEqual([['M100', '1900000109']]);
  }, 120_000);

  it('a pairing code is bound to an existing merchant: unknown → MERCHANT_UNKNOWN, known → a code', async () => {
    expect(await cliFails('pair', 'create', '--merchant', 'M100', '--store', 'S1', '--json')).toContain('MERCHANT_UNKNOWN');
    await cli('merchant', 'add', 'M100');
    const issued = JSON.parse((await cli('pair', 'create', '--merchant', 'M100', '--store', 'S1', '--json')).stdout);
    expect(issued.code).toMatch(/\S{8,}/);
  }, 60_000);
});
