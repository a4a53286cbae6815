import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PairErrorBody, PairResponse, PAIRING_CODE_PATTERN } from '../../protocol/index.js';
import { FakeClock } from '../support/fake-clock.js';
import { createPairingCode, redeemPairingCode } from '../../cloud/pairing/pairing.js';
import { ServerKey } from '../../cloud/pairing/server-key.js';
import { Metrics } from '../../cloud/metrics.js';
import { startCloud, type RunningCloud } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { ensureMerchant, FAST, postPair, tempDir } from './harness.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { join } from 'node:path';

/** POST /v1/pair with a clock the test moves, so expiry needs no waiting. */
const clock = new FakeClock(1_764_086_400_000);
let cloud: RunningCloud;
let remove: () => void;

beforeEach(async () => {
  const t = tempDir();
  remove = t.remove;
  cloud = await startCloud({
    gateway: new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }),
    dbPath: join(t.dir, 'cloud.db'),
    mqttPort: 0,
    httpPort: 0,
    metricsPort: 0,
    config: { ...FAST, pairRateLimit: { max: 5, windowS: 60 } },
    clock,
    logger: createLogger('silent'),
  });
});
afterEach(async () => {
  await cloud.close();
  remove();
});

const code = async () => (await ensureMerchant(cloud.store, 'M7'), createPairingCode({ store: cloud.store, clock, codeTtlS: 600 }, 'M7', 'S3'));
const body = (c: string, hardwareId = 'hw-1') => ({ v: 1, code: c, hardwareId, firmware: '0.1.0' });

describe('POST /v1/pair', () => {
  it('exchanges a code for a device id, a secret and the MQTT url; the store keeps only a hash', async () => {
    const issued = await code();
    expect(issued.code).toMatch(PAIRING_CODE_PATTERN);
    const res = await postPair(cloud.httpUrl, body(issued.code));
    expect(res.status).toBe(200);
    const pr = PairResponse.parse(res.body);
    expect(pr).toMatchObject({ mqttUrl: cloud.mqttUrl, merchantId: 'M7', storeId: 'S3' });
    const auth = await cloud.store.getDeviceAuth(pr.deviceId);
    expect(auth?.secretHash).toMatch(/^hmac-sha256\$/);
    expect(auth?.secretHash).not.toContain(pr.secret);
  });

  it('a code works once: the second use is 410 PAIRING_CODE_USED', async () => {
    const issued = await code();
    expect((await postPair(cloud.httpUrl, body(issued.code))).status).toBe(200);
    const again = await postPair(cloud.httpUrl, body(issued.code, 'hw-2'));
    expect(again.status).toBe(410);
    expect(PairErrorBody.parse(again.body).error.code).toBe('PAIRING_CODE_USED');
  });

  it('an expired code is 410 PAIRING_CODE_EXPIRED', async () => {
    const issued = await code();
    clock.advanceSync(600_000);
    const res = await postPair(cloud.httpUrl, body(issued.code));
    expect([res.status, res.body.error.code]).toEqual([410, 'PAIRING_CODE_EXPIRED']);
  });

  it('an unknown code is 404, a malformed body 400', async () => {
    expect((await postPair(cloud.httpUrl, body('0000000000'))).status).toBe(404);
    const bad = await postPair(cloud.httpUrl, { v: 1, code: 'lower', hardwareId: 'x' });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'SCHEMA_INVALID']);
    const res = await fetch(`${cloud.httpUrl}/v1/pair`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    expect(res.status).toBe(400);
  });

  it.each([['text/plain'], ['application/x-www-form-urlencoded'], [undefined]])('a body sent as %s is 415 UNSUPPORTED_MEDIA_TYPE and pairs nothing, even with a live code', async (type) => {
    const issued = await code();
    const res = await fetch(`${cloud.httpUrl}/v1/pair`, { method: 'POST', headers: type ? { 'content-type': type } : {}, body: Buffer.from(JSON.stringify(body(issued.code))) });
    expect([res.status, ((await res.json()) as PairErrorBody).error.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    expect((await postPair(cloud.httpUrl, body(issued.code))).status).toBe(200);
  });

  it('brute force is cut off with 429 RATE_LIMITED and a Retry-After, even for a valid code', async () => {
    const issued = await code();
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await postPair(cloud.httpUrl, body(`${i}`.padStart(10, '1')))).status);
    expect(statuses).toEqual([404, 404, 404, 404, 404]);
    const res = await fetch(`${cloud.httpUrl}/v1/pair`, { method: 'POST', body: JSON.stringify(body(issued.code)) });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await res.json()) as PairErrorBody).error.code).toBe('RATE_LIMITED');
    clock.advanceSync(61_000);
    expect((await postPair(cloud.httpUrl, body(issued.code))).status).toBe(200);
  });
});

describe('redeemPairingCode', () => {
  it('refuses an unknown, used or expired code before hashing a secret or opening a redeem transaction', async () => {
    const issued = await code();
    let redeems = 0;
    const store = Object.create(cloud.store) as RunningCloud['store'];
    store.redeemPairingCode = async (...args) => {
      redeems++;
      return cloud.store.redeemPairingCode(...args);
    };
    const deps = { store, key: ServerKey.random(), clock, logger: createLogger('silent'), metrics: new Metrics(), codeTtlS: 600, mqttUrl: () => 'mqtt://x:1' };
    await expect(redeemPairingCode(deps, { v: 1, code: '0000000000', hardwareId: 'hw-x' })).rejects.toMatchObject({ code: 'PAIRING_CODE_INVALID' });
    expect(redeems).toBe(0);
    await redeemPairingCode(deps, { v: 1, code: issued.code, hardwareId: 'hw-x' });
    expect(redeems).toBe(1);
    await expect(redeemPairingCode(deps, { v: 1, code: issued.code, hardwareId: 'hw-y' })).rejects.toMatchObject({ code: 'PAIRING_CODE_USED' });
    expect(redeems).toBe(1);
  });
});
