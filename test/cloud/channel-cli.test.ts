import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from './harness.js';

/** `scanbox-cloud channel list|pin|disable|enable`, as an operator runs them next to a running cloud. */
const run = promisify(execFile);
let dir: string;
let remove: () => void;
let args: string[];
beforeEach(() => {
  ({ dir, remove } = tempDir());
  const config = join(dir, 'cloud.json');
  writeFileSync(
    config,
    JSON.stringify({
      channels: {
        'wx-a': { kind: 'http', url: 'http://127.0.0.1:9/', wallets: ['wechat'], cost: { bps: 20 } },
        'wx-b': { kind: 'http', url: 'http://127.0.0.1:9/', wallets: ['wechat'], cost: { bps: 38, fixedFen: 1 } },
      },
    }),
  );
  args = ['--db', join(dir, 'cloud.db'), '--config', config];
});
afterEach(() => remove());

const cli = (...a: string[]) => run(process.execPath, ['bin/scanbox-cloud.js', 'channel', ...a, ...args]);

describe('scanbox-cloud channel', () => {
  it('lists the channels with their wallets and cost; pin, disable and enable change what routing is told', async () => {
    const list = async () => JSON.parse((await cli('list', '--json')).stdout) as { channel: string; wallets: string[]; cost: string; operator: string | null }[];
    expect(await list()).toEqual([
      expect.objectContaining({ channel: 'wx-a', wallets: ['wechat'], cost: '20 bps + 0 fen', operator: null }),
      expect.objectContaining({ channel: 'wx-b', wallets: ['wechat'], cost: '38 bps + 1 fen', operator: null }),
    ]);
    await cli('pin', 'wx-b');
    await cli('disable', 'wx-a');
    expect((await list()).map((r) => r.operator)).toEqual(['disabled', 'pinned']);
    await cli('pin', 'wx-a'); // one pin per wallet: wx-b's gives way
    expect((await list()).map((r) => r.operator)).toEqual(['pinned', null]);
    await cli('enable', 'wx-a');
    expect((await list()).map((r) => r.operator)).toEqual([null, null]);
    expect((await cli('list')).stdout).toMatch(/^CHANNEL\tKIND\tWALLETS/);
    // Each command is its own process (about a second each; several on a loaded machine).
  }, 120_000);

  it('refuses a channel the config does not have, changing nothing', async () => {
    const err = (await cli('pin', 'wx-z').then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: number; stderr?: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('no channel wx-z');
    expect(JSON.parse((await cli('list', '--json')).stdout).map((r: { operator: unknown }) => r.operator)).toEqual([null, null]);
  }, 60_000);
});
