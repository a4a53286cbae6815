import { randomBytes, scrypt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateSecret, hashSecret } from '../../cloud/pairing/credentials.js';
import { DeviceAuthenticator } from '../../cloud/broker/device-auth.js';
import { Metrics } from '../../cloud/metrics.js';
import { ServerKey } from '../../cloud/pairing/server-key.js';
import type { CloudStore, DeviceAuth } from '../../cloud/store/store.js';
import { memoryLogger } from '../security/support.js';
import { FakeClock } from '../support/fake-clock.js';

/**
 * The authenticator on its own: a fake store of device hashes, a clock the test moves, and the
 * refusal delay recorded instead of slept. What it must guarantee: the right secret is never held
 * back, a wrong one is held back more the more it is tried (per device id and per address), a
 * flood of refusals writes a bounded number of log lines, and a legacy scrypt hash works once and
 * is then rewritten as a keyed hash.
 */
const BACKOFF = { baseMs: 100, maxMs: 1_600, windowMs: 60_000 };

function legacyScrypt(secret: string): Promise<string> {
  const salt = randomBytes(16);
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, 32, { N: 1024, r: 8, p: 1 }, (err, k) => (err ? reject(err) : resolve(['scrypt', 1024, 8, 1, salt.toString('base64url'), k.toString('base64url')].join('$')))),
  );
}

function setup() {
  const key = ServerKey.random();
  const devices = new Map<string, DeviceAuth>();
  const store = {
    getDeviceAuth: async (id: string) => devices.get(id),
    setSecretHash: async (id: string, secretHash: string) => void devices.set(id, { ...devices.get(id)!, secretHash }),
  } as unknown as CloudStore;
  const clock = new FakeClock(1_000_000);
  const delays: number[] = [];
  const log = memoryLogger();
  const metrics = new Metrics();
  const auth = new DeviceAuthenticator({ store, logger: log.logger, metrics, key, clock, backoff: BACKOFF, logIntervalMs: 10_000, delay: async (ms) => void delays.push(ms) });
  const add = (id: string, secretHash: string, status: DeviceAuth['status'] = 'active') => devices.set(id, { secretHash, status, hardwareId: `hw-${id}`, merchantId: 'M1' });
  const login = (id: string, secret: string, address = '10.1.1.1') => auth.check(id, id, Buffer.from(secret), address);
  return { key, auth, devices, add, login, delays, log, metrics, advance: (ms: number) => clock.advanceSync(ms) };
}

describe('device authentication', () => {
  it('accepts the right secret against its keyed hash; refuses a wrong one, an unknown id, a revoked box and a username that is not the client id', async () => {
    const t = setup();
    const secret = generateSecret();
    t.add('sbA', hashSecret(t.key, secret));
    t.add('sbR', hashSecret(t.key, secret), 'revoked');
    expect(await t.login('sbA', secret)).toEqual({ ok: true });
    expect(await t.login('sbA', generateSecret())).toMatchObject({ ok: false, returnCode: 4, why: 'wrong secret' });
    expect(await t.login('sbNONE', secret)).toMatchObject({ ok: false, returnCode: 4, why: 'unknown device' });
    expect(await t.login('sbR', secret)).toMatchObject({ ok: false, returnCode: 5 });
    expect(await t.auth.check('sbA', 'sbB', Buffer.from(secret), '10.1.1.1')).toMatchObject({ ok: false, returnCode: 4 });
    expect(t.metrics.get('auth_refused_total')).toBe(4);
  });

  it('holds a wrong secret back longer each time (per id, across addresses), never the right one', async () => {
    const t = setup();
    const secret = generateSecret();
    t.add('sbA', hashSecret(t.key, secret));
    for (let i = 0; i < 6; i++) await t.login('sbA', generateSecret(), `10.0.0.${i}`);
    expect(t.delays).toEqual([100, 200, 400, 800, 1_600, 1_600]);
    t.delays.length = 0;
    expect(await t.login('sbA', secret, '10.0.0.1')).toEqual({ ok: true });
    expect(t.delays).toEqual([]);
  });

  it('backs off per address too: one address spraying ids is held back as it goes on; quiet for the window, it starts over', async () => {
    const t = setup();
    for (let i = 0; i < 4; i++) await t.login(`sbX${i}`, generateSecret(), '10.9.9.9');
    expect(t.delays).toEqual([100, 200, 400, 800]);
    t.advance(BACKOFF.windowMs);
    await t.login('sbX9', generateSecret(), '10.9.9.9');
    expect(t.delays.at(-1)).toBe(100);
  });

  it('a flood of refusals writes one log line per device id and address per interval, with how many it held back', async () => {
    const t = setup();
    t.add('sbA', hashSecret(t.key, generateSecret()));
    for (let i = 0; i < 500; i++) await t.login('sbA', generateSecret());
    const refused = () => t.log.lines.filter((l) => l.includes('connection refused'));
    expect(refused()).toHaveLength(1);
    t.advance(10_000);
    await t.login('sbA', generateSecret());
    expect(refused()).toHaveLength(2);
    expect(JSON.parse(refused()[1]!)).toMatchObject({ deviceId: 'sbA', address: '10.1.1.1', suppressed: 499 });
    expect(t.metrics.get('auth_refused_total')).toBe(501);
  });

  it('a legacy scrypt hash verifies once and is rewritten as a keyed hash; a wrong secret leaves it as it was', async () => {
    const t = setup();
    const secret = generateSecret();
    const legacy = await legacyScrypt(secret);
    t.add('sbL', legacy);
    expect(await t.login('sbL', generateSecret())).toMatchObject({ ok: false, why: 'wrong secret' });
    expect(t.devices.get('sbL')!.secretHash).toBe(legacy);
    expect(await t.login('sbL', secret)).toEqual({ ok: true });
    expect(t.devices.get('sbL')!.secretHash).toBe(hashSecret(t.key, secret));
    expect(await t.login('sbL', secret)).toEqual({ ok: true });
  });

  it('a keyed hash made under another server key verifies nothing', async () => {
    const t = setup();
    const secret = generateSecret();
    t.add('sbA', hashSecret(ServerKey.random(), secret));
    expect(await t.login('sbA', secret)).toMatchObject({ ok: false, why: 'wrong secret' });
  });
});
