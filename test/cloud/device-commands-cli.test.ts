import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import type { DeviceCommandRow } from '../../cloud/store/store.js';
import { tempDir } from './harness.js';

/** `scanbox-cloud devices reboot|unpair|commands`, as an operator runs them next to a running cloud (which sends them: command-watch.test.ts). */
const run = promisify(execFile);
let dir: string;
let remove: () => void;
let db: string;

beforeEach(async () => {
  ({ dir, remove } = tempDir());
  db = join(dir, 'cloud.db');
  const store = new SqliteStore(db);
  await store.addMerchant('M1', {}, 1_000);
  await store.createPairingCode({ code: 'CODE000001', merchantId: 'M1', storeId: 'S1', createdAt: 1_000, expiresAt: Date.now() + 60_000 });
  await store.redeemPairingCode('CODE000001', 'hw1', 2_000, { deviceId: 'box1', secretHash: 'h', firmware: null });
  await store.close();
});
afterEach(() => remove());

const cli = (...a: string[]) => run(process.execPath, ['bin/scanbox-cloud.js', ...a, '--db', db]);
const failure = (p: Promise<unknown>) => p.then(() => expect.fail('the command succeeded'), (err: { code: number; stderr: string }) => err);

describe('scanbox-cloud devices reboot|unpair', () => {
  it('queues a command for the box once: a repeat answers the one queued; `devices commands` lists it', async () => {
    const first = JSON.parse((await cli('devices', 'unpair', 'box1', '--json')).stdout) as DeviceCommandRow & { created: boolean };
    expect(first).toMatchObject({ deviceId: 'box1', command: 'unpair', created: true, sentAt: null, outcome: null });
    expect(first.id).toMatch(/^cmd-[a-z0-9]+-[0-9a-f]{12}$/);
    const again = await cli('device', 'unpair', 'box1');
    expect(again.stdout).toContain(`unpair of box1 is already queued (command ${first.id}, not sent yet)`);
    const list = JSON.parse((await cli('devices', 'commands', 'box1', '--json')).stdout) as DeviceCommandRow[];
    expect(list).toEqual([{ id: first.id, deviceId: 'box1', command: 'unpair', createdAt: first.createdAt, sentAt: null, doneAt: null, outcome: null }]);
    // Each command is its own process (seconds each on a loaded machine).
  }, 120_000);

  it('refuses a box that does not exist, queueing nothing', async () => {
    const err = await failure(cli('devices', 'reboot', 'box9'));
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('NOT_PAIRED');
    expect(err.stderr).toContain('box9');
    const store = new SqliteStore(db);
    try {
      expect(await store.listDeviceCommands()).toEqual([]);
    } finally {
      await store.close();
    }
  }, 120_000);
});
