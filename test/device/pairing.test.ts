import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../device/journal.js';
import { pairBox } from '../../device/pairing.js';
import { runCli } from './child-box.js';
import { FakePairingServer } from './fake-pairing-server.js';
import { useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();
const GOOD = 'ABCDE12345';
const USED = 'WWWWW00000';
const SECRET = 'paired-secret-0123456789abcdefghijklmnopqrstuvwxyz';
let cloud: FakePairingServer;
let url: string;
let requests: unknown[];

beforeEach(async () => {
  cloud = await new FakePairingServer(GOOD, USED, SECRET, 'mqtt://127.0.0.1:1883').start();
  url = cloud.url;
  requests = cloud.requests;
});

afterEach(() => cloud.close());

function credsOf(dir: string) {
  const j = Journal.open(dir);
  const c = j.credentials();
  j.close();
  return c;
}

describe('pairing client', () => {
  it('stores the issued id and secret in a 0600 journal, with a stable hardware id', async () => {
    const dir = tempDir();
    const out = await pairBox({ code: 'abcde-12345', cloudUrl: url, dataDir: dir });
    expect(out).toEqual({ deviceId: 'dev1', merchantId: 'm1', storeId: 's1', mqttUrl: 'mqtt://127.0.0.1:1883' });
    expect(JSON.stringify(out)).not.toContain(SECRET);
    expect(credsOf(dir)).toMatchObject({ deviceId: 'dev1', secret: SECRET, cloudUrl: url });
    expect(statSync(join(dir, 'journal.db')).mode & 0o777).toBe(0o600);
    expect(requests.at(-1)).toMatchObject({ v: 1, code: GOOD, hardwareId: expect.stringMatching(/^hw-/) });
  });

  it('refuses to pair over a paired box without reset; with reset it re-pairs', async () => {
    const dir = tempDir();
    await pairBox({ code: GOOD, cloudUrl: url, dataDir: dir });
    await expect(pairBox({ code: GOOD, cloudUrl: url, dataDir: dir })).rejects.toMatchObject({ code: 'ALREADY_PAIRED', message: expect.stringContaining('--reset') });
    const hw = (requests.at(-1) as { hardwareId: string }).hardwareId;
    const again = await pairBox({ code: GOOD, cloudUrl: url, dataDir: dir, reset: true });
    expect(again.deviceId).not.toBe('dev1');
    expect((requests.at(-1) as { hardwareId: string }).hardwareId).toBe(hw);
  });

  it.each([
    ['a wrong code', 'ZZZZZ99999', 'PAIRING_CODE_INVALID', 'unknown pairing code'],
    ['a used code', USED, 'PAIRING_CODE_USED', 'already used'],
    ['a malformed code', 'short', 'PAIRING_CODE_INVALID', 'pairing code must be'],
  ])('%s gives a clear error and leaves the box as it was', async (_what, code, errCode, text) => {
    const dir = tempDir();
    await pairBox({ code: GOOD, cloudUrl: url, dataDir: dir });
    const before = credsOf(dir);
    await expect(pairBox({ code, cloudUrl: url, dataDir: dir, reset: true })).rejects.toMatchObject({ code: errCode, message: expect.stringContaining(text) });
    expect(credsOf(dir)).toEqual(before);
  });

  it('an unreachable cloud is CLOUD_UNREACHABLE; the CLI prints it on stderr and exits 1, and never prints the secret', async () => {
    const dir = tempDir();
    await expect(pairBox({ code: GOOD, cloudUrl: 'http://127.0.0.1:9', dataDir: dir })).rejects.toMatchObject({ code: 'CLOUD_UNREACHABLE' });
    expect(credsOf(dir)).toBeNull();
    const cli = await runCli(['pair', '--code', GOOD, '--cloud', 'http://127.0.0.1:9', '--data', dir]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('CLOUD_UNREACHABLE');
    const ok = await runCli(['pair', '--code', GOOD, '--cloud', url, '--data', dir, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ deviceId: expect.any(String) });
    expect(ok.stdout + ok.stderr).not.toContain(SECRET);
  });
});
