import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_UP_FILTER, downTopic, upTopic } from '../../protocol/index.js';
import { DeviceAuthenticator } from '../../cloud/broker/device-auth.js';
import { sharedUpFilter } from '../../cloud/broker/external-link.js';
import { BROKER_SECRET_HEADER, EMQX_AUTHN_PATH, EMQX_AUTHZ_PATH, EmqxAuth } from '../../cloud/http/emqx-auth.js';
import { startCloud } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { Metrics } from '../../cloud/metrics.js';
import { generateSecret, hashSecret } from '../../cloud/pairing/credentials.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import { ServerKey } from '../../cloud/pairing/server-key.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { FakeClock } from '../support/fake-clock.js';
import { useMosquitto } from '../support/mosquitto.js';
import { memoryLogger } from '../security/support.js';
import { ensureMerchant, FAST, pairBox, tempDir } from './harness.js';
import { openAccounts } from './external-kit.js';

/**
 * EMQX's HTTP authenticator and authorizer as the cloud serves them (cloud/http/emqx-auth.ts),
 * driven with plain HTTP requests shaped as EMQX 5 sends them with the templates of deploy/README.md:
 * POST, JSON, the shared-secret header. No EMQX is needed: its side of the contract is the request
 * shape and the meaning of `{"result": …}`.
 */
const SECRET = 'emqx-shared-secret-0123456789abcdefghij';
const SERVICE = { username: 'scanbox-cloud', password: 'service-password-0123456789', group: 'scanbox-cloud' };
const BACKOFF = { baseMs: 100, maxMs: 1_600, windowMs: 60_000 };

let server: Server;
let base: string;
let store: SqliteStore;
let remove: () => void;
const metrics = new Metrics();
const log = memoryLogger();
const delays: number[] = [];
const key = ServerKey.random();
const secretA = generateSecret();
const A = 'sbEMQXA00001';
const B = 'sbEMQXB00001';
const REVOKED = 'sbEMQXR00001';

beforeAll(async () => {
  const t = tempDir();
  remove = t.remove;
  store = new SqliteStore(join(t.dir, 'cloud.db'));
  await store.whenReady();
  const clock = new FakeClock(1_764_086_400_000);
  await ensureMerchant(store, 'M1', clock.now());
  // Devices as pairing leaves them: a keyed hash of each secret.
  const addDevice = async (deviceId: string, secret: string, hardwareId: string) => {
    const { code } = await createPairingCode({ store, clock, codeTtlS: 600 }, 'M1', 'S1');
    await store.redeemPairingCode(code, hardwareId, clock.now(), { deviceId, secretHash: hashSecret(key, secret), firmware: null });
  };
  await addDevice(A, secretA, 'hw-a');
  await addDevice(B, generateSecret(), 'hw-b');
  await addDevice(REVOKED, secretA, 'hw-r');
  await store.revokeDevice(REVOKED, clock.now());
  const auth = new DeviceAuthenticator({ store, logger: log.logger, metrics, key, clock, backoff: BACKOFF, delay: async (ms) => void delays.push(ms) });
  const emqx = new EmqxAuth({ auth, secret: SECRET, service: SERVICE, logger: log.logger, metrics, clock });
  server = createServer((req, res) => void emqx.handle(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  await store.close();
  remove();
});

/** A request as EMQX sends it: POST, JSON, the configured header. */
async function ask(path: string, body: unknown, headers: Record<string, string> = { [BROKER_SECRET_HEADER]: SECRET }, method = 'POST'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(method === 'POST' ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
const authn = (clientid: string, username: string, password: string | undefined, peerhost = '10.0.0.7') => ask(EMQX_AUTHN_PATH, { clientid, username, ...(password === undefined ? {} : { password }), peerhost });
const authz = (clientid: string, username: string, topic: string, action: string) => ask(EMQX_AUTHZ_PATH, { clientid, username, topic, action });

describe('EMQX HTTP authentication', () => {
  it("allows a box with its own secret (200, never a superuser) and denies a wrong secret, someone else's id, a revoked or unknown box, a missing password", async () => {
    expect(await authn(A, A, secretA)).toEqual({ status: 200, body: { result: 'allow', is_superuser: false } });
    for (const [clientid, username, password] of [
      [A, A, generateSecret()],
      [B, B, secretA],
      [A, B, secretA],
      [REVOKED, REVOKED, secretA],
      ['sbNOBODY0001', 'sbNOBODY0001', secretA],
      [A, A, undefined],
    ] as const) {
      expect(await authn(clientid, username, password), `${clientid}/${username}`).toEqual({ status: 200, body: { result: 'deny', is_superuser: false } });
    }
  });

  it('holds a wrong secret back as the embedded broker does (growing per id), never the right one', async () => {
    delays.length = 0;
    await authn(B, B, 'wrong-1', '10.9.9.1');
    await authn(B, B, 'wrong-2', '10.9.9.2');
    await authn(B, B, 'wrong-3', '10.9.9.3');
    expect(delays).toEqual([expect.any(Number), expect.any(Number), expect.any(Number)]);
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
    expect(delays[2]!).toBeGreaterThan(delays[1]!);
    delays.length = 0;
    expect((await authn(A, A, secretA)).body.result).toBe('allow');
    expect(delays).toEqual([]);
  });

  it("allows the cloud's own workers with the --broker user's password only", async () => {
    expect((await authn('scanbox-cloud-w1-link', SERVICE.username, SERVICE.password)).body).toEqual({ result: 'allow', is_superuser: false });
    expect((await authn('scanbox-cloud-w1-link', SERVICE.username, 'not-the-password')).body.result).toBe('deny');
  });
});

describe('EMQX HTTP authorization', () => {
  it.each([
    ['publish', upTopic(A, 'pay'), 'allow'],
    ['publish', upTopic(A, 'heartbeat'), 'allow'],
    ['publish', upTopic(B, 'pay'), 'deny'],
    ['publish', downTopic(A, 'result'), 'deny'],
    ['publish', 'scanbox/v1/d/sbEMQXA00001/up/nonsense', 'deny'],
    ['publish', '$SYS/x', 'deny'],
    ['subscribe', `scanbox/v1/d/${A}/down/+`, 'allow'],
    ['subscribe', downTopic(A, 'result'), 'allow'],
    ['subscribe', `scanbox/v1/d/${B}/down/+`, 'deny'],
    ['subscribe', `scanbox/v1/d/${A}/#`, 'deny'],
    ['subscribe', '#', 'deny'],
    ['subscribe', ALL_UP_FILTER, 'deny'],
    ['subscribe', sharedUpFilter(SERVICE.group), 'deny'],
  ])('box A: %s %s → %s', async (action, topic, result) => {
    expect(await authz(A, A, topic, action)).toEqual({ status: 200, body: { result } });
  });

  it('a box whose username is not its client id may do nothing; an action other than publish or subscribe is denied', async () => {
    expect((await authz(A, B, upTopic(A, 'pay'), 'publish')).body.result).toBe('deny');
    expect((await authz(A, A, upTopic(A, 'pay'), 'all')).body.result).toBe('deny');
  });

  it.each([
    ['subscribe', sharedUpFilter(SERVICE.group), 'allow'],
    ['subscribe', ALL_UP_FILTER, 'allow'],
    ['subscribe', sharedUpFilter('another-group'), 'deny'],
    ['subscribe', '#', 'deny'],
    ['publish', downTopic(A, 'result'), 'allow'],
    ['publish', downTopic(B, 'command'), 'allow'],
    ['publish', upTopic(A, 'pay'), 'deny'],
  ])("the cloud's worker: %s %s → %s", async (action, topic, result) => {
    expect((await authz('scanbox-cloud-w1-link', SERVICE.username, topic, action)).body).toEqual({ result });
  });

  it('refusals are counted as the embedded broker counts them', async () => {
    const pub0 = metrics.get('publish_refused_total');
    const sub0 = metrics.get('subscribe_refused_total');
    await authz(A, A, upTopic(B, 'pay'), 'publish');
    await authz(A, A, '#', 'subscribe');
    expect(metrics.get('publish_refused_total')).toBe(pub0 + 1);
    expect(metrics.get('subscribe_refused_total')).toBe(sub0 + 1);
  });
});

describe('requests not from EMQX, or malformed, are denied (never an error status: EMQX reads one as "ignore")', () => {
  it.each([
    ['no shared-secret header', () => ask(EMQX_AUTHN_PATH, { clientid: A, username: A, password: secretA }, {}), /no x-scanbox-broker-secret header, or a wrong one/],
    ['a wrong shared secret', () => ask(EMQX_AUTHN_PATH, { clientid: A, username: A, password: secretA }, { [BROKER_SECRET_HEADER]: `${SECRET}x` }), /no x-scanbox-broker-secret header, or a wrong one/],
    ['an authorization without the header', () => ask(EMQX_AUTHZ_PATH, { clientid: A, username: A, topic: upTopic(A, 'pay'), action: 'publish' }, {}), /no x-scanbox-broker-secret header/],
    ['a body that is not JSON', () => ask(EMQX_AUTHN_PATH, '{"clientid":'), /is not valid JSON \(check the request body template in EMQX\)/],
    ['a body without the client id (a template missing ${clientid})', () => ask(EMQX_AUTHZ_PATH, { username: A, topic: upTopic(A, 'pay'), action: 'publish' }), /clientid.*check the request body template in EMQX/],
    ['a GET', () => ask(EMQX_AUTHN_PATH, undefined, { [BROKER_SECRET_HEADER]: SECRET }, 'GET'), /GET instead of POST/],
  ])('%s → 200 deny, and the cause logged', async (_name, send, cause) => {
    const res = await send();
    expect(res).toEqual({ status: 200, body: expect.objectContaining({ result: 'deny' }) });
    // At most a line a minute per cause: the first request of each cause wrote it.
    expect(log.lines.filter((l) => l.includes('EMQX auth request refused')).join('')).toMatch(cause);
  });

  it('a flood of one cause writes no more lines within the minute', async () => {
    const before = log.lines.length;
    for (let i = 0; i < 20; i++) await ask(EMQX_AUTHN_PATH, { clientid: A, username: A, password: secretA }, {});
    expect(log.lines.slice(before).filter((l) => l.includes('EMQX auth request refused'))).toEqual([]);
  });
});

describe('on a running cloud', () => {
  const mosquitto = useMosquitto();

  it('a cloud whose external broker asks it (accounts "http") serves both endpoints on its HTTP listener, for the boxes it pairs', async () => {
    // The broker's role for the workers is granted as on Mosquitto: here only the link needs a broker.
    await (await openAccounts(mosquitto(), { group: 'scanbox-emqx' })).close();
    const { dir, remove: rm } = tempDir();
    const cloud = await startCloud({
      gateway: new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }),
      dbPath: join(dir, 'cloud.db'),
      httpPort: 0,
      metricsPort: 0,
      config: { ...FAST, broker: { url: mosquitto().adminUrl, group: 'scanbox-emqx', accounts: 'http', httpAuthSecret: SECRET } },
      logger: createLogger('silent'),
    });
    try {
      const box = await pairBox(cloud, 'hw-emqx');
      expect(box.mqttUrl).toBe(mosquitto().url);
      const post = (path: string, body: unknown, secret = SECRET) =>
        fetch(`${cloud.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', [BROKER_SECRET_HEADER]: secret }, body: JSON.stringify(body) }).then((r) => r.json());
      expect(await post(EMQX_AUTHN_PATH, { clientid: box.deviceId, username: box.deviceId, password: box.secret, peerhost: '10.0.0.8' })).toEqual({ result: 'allow', is_superuser: false });
      expect(await post(EMQX_AUTHN_PATH, { clientid: box.deviceId, username: box.deviceId, password: box.secret }, 'not-the-secret-0123456789abcdefghijkl')).toEqual({ result: 'deny', is_superuser: false });
      expect(await post(EMQX_AUTHZ_PATH, { clientid: box.deviceId, username: box.deviceId, topic: upTopic(box.deviceId, 'pay'), action: 'publish' })).toEqual({ result: 'allow' });
    } finally {
      await cloud.close();
      rm();
    }
  });
});
