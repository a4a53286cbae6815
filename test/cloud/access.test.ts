import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downTopic, upTopic, type PairResponse } from '../../protocol/index.js';
import type { RunningCloud } from '../../cloud/index.js';
import { systemClock } from '../../protocol/clock.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import { ensureMerchant, envelope, pairBox, payMsg, postPair, startTestCloud, TestBox, until } from './harness.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';

const run = promisify(execFile);

/** Identity and authorisation: each box is itself, and only itself. */
let cloud: RunningCloud & { dir: string };
let gw: ScriptedGateway;
let a: PairResponse;
let b: PairResponse;
const open: TestBox[] = [];

/**
 * The cloud polls the store for revocations every `revocationPollMs` (≤ 500 ms in production, so a
 * revoked box is off "within a second"). Here it polls every 100 ms and the bound is one poll plus
 * 1.4 s for a loaded machine: scheduling noise cannot fail it; a watcher that never polls, or only
 * every 1.5 s or more, still does.
 */
const REVOCATION_POLL_MS = 100;
const REVOCATION_BOUND_MS = REVOCATION_POLL_MS + 1_400;

beforeEach(async () => {
  gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  cloud = await startTestCloud(gw, { revocationPollMs: REVOCATION_POLL_MS });
  a = await pairBox(cloud, 'hw-a');
  b = await pairBox(cloud, 'hw-b');
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
  await cloud.close();
});

async function connect(creds: PairResponse): Promise<TestBox> {
  const box = await TestBox.of(cloud, creds);
  open.push(box);
  return box;
}

/** The CONNACK return code of a refused connection. */
async function refusedWith(deviceId: string, password: string): Promise<number> {
  const err = await TestBox.connect(cloud.mqttUrl, deviceId, password).then(
    (box) => {
      open.push(box);
      return undefined;
    },
    (e: Error & { code?: number }) => e,
  );
  if (!err) throw new Error('connection was accepted');
  return err.code ?? -1;
}

describe('broker authentication', () => {
  it('issues short device ids that keep outTradeNo within 32 characters', () => {
    expect(a.deviceId).toMatch(/^sb[0-9A-HJKMNP-TV-Z]{10}$/);
    expect(`${a.deviceId}-${'9'.repeat(19)}`.length).toBeLessThanOrEqual(32);
  });

  it('refuses a wrong password (bad username or password) and counts it', async () => {
    expect(await refusedWith(a.deviceId, b.secret)).toBe(4);
    expect(await refusedWith('sbUNKNOWN000', a.secret)).toBe(4);
    expect(cloud.metrics.get('auth_refused_total')).toBe(2);
  });

  it('refuses a client id that differs from the username', async () => {
    const err = await TestBox.connect(cloud.mqttUrl, a.deviceId, a.secret, { clientId: b.deviceId }).catch((e: Error & { code?: number }) => e);
    expect((err as { code?: number }).code).toBe(4);
  });

  it('a revoked box is disconnected within one revocation poll (plus margin) and then refused (not authorized)', async () => {
    const box = await connect(a);
    const closedAt = new Promise<number>((resolve) => box.client.once('close', () => resolve(Date.now())));
    await run(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../cloud/cli.ts'), 'devices', 'revoke', a.deviceId, '--db', join(cloud.dir, 'cloud.db')], {
      env: { ...process.env, SCANBOX_CLOUD_LOG_LEVEL: 'silent' },
    });
    const revokedAt = Date.now(); // the CLI has committed and exited
    expect((await closedAt) - revokedAt).toBeLessThanOrEqual(REVOCATION_BOUND_MS);
    expect(await refusedWith(a.deviceId, a.secret)).toBe(5);
  });

  it('re-pairing a hardware id within its merchant revokes its old credentials', async () => {
    const again = await pairBox(cloud, 'hw-a');
    expect(again.deviceId).not.toBe(a.deviceId);
    expect(await refusedWith(a.deviceId, a.secret)).toBe(5);
    await connect(again);
  });
});

describe("re-pairing across merchants (a code of one merchant must not switch off another merchant's box)", () => {
  const repair = async (hardwareId: string, previous?: { deviceId: string; secret: string }) => {
    await ensureMerchant(cloud.store, 'M-OTHER');
    const { code } = await createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: 600 }, 'M-OTHER', 'S9');
    return { code, ...(await postPair(cloud.httpUrl, { v: 1, code, hardwareId, ...(previous ? { previous } : {}) })) };
  };

  it('is refused with 409 HARDWARE_ID_IN_USE; the box keeps its credentials and its session; the code stays unused', async () => {
    const boxA = await connect(a);
    const res = await repair('hw-a');
    expect([res.status, res.body.error.code]).toEqual([409, 'HARDWARE_ID_IN_USE']);
    expect(res.body.error.message).toContain(`devices revoke ${a.deviceId}`);
    expect((await cloud.store.getDevice(a.deviceId))?.status).toBe('active');
    expect(boxA.client.connected).toBe(true);
    expect((await cloud.store.listDevices()).map((d) => d.merchantId)).not.toContain('M-OTHER');
    expect(await cloud.store.checkPairingCode(res.code, Date.now())).toBeUndefined();
  });

  it('a wrong proof of the old secret counts as none', async () => {
    const res = await repair('hw-a', { deviceId: a.deviceId, secret: b.secret });
    expect(res.status).toBe(409);
    const other = await repair('hw-a', { deviceId: b.deviceId, secret: b.secret }); // b's secret, but b is not this hardware
    expect(other.status).toBe(409);
    expect((await cloud.store.getDevice(b.deviceId))?.status).toBe('active');
  });

  it('goes through with proof of the old secret (the box moving itself), and the old credentials stop working', async () => {
    const res = await repair('hw-a', { deviceId: a.deviceId, secret: a.secret });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ merchantId: 'M-OTHER' });
    expect(await refusedWith(a.deviceId, a.secret)).toBe(5);
  });

  it('goes through once an operator revoked the old box', async () => {
    await cloud.store.revokeDevice(a.deviceId, Date.now());
    expect((await repair('hw-a')).status).toBe(200);
  });
});

describe('topic access', () => {
  it("a box cannot subscribe to another box's down/ topics, nor to up/ topics (granted 128, counted)", async () => {
    const boxB = await connect(b);
    const topics = [downTopic(a.deviceId, 'result'), `scanbox/v1/d/${a.deviceId}/down/+`, upTopic(a.deviceId, 'pay'), 'scanbox/#', downTopic(b.deviceId, 'result')];
    const err = (await boxB.client.subscribeAsync(topics, { qos: 1 }).catch((e: unknown) => e)) as { packet?: { granted: number[] } };
    expect(err.packet?.granted).toEqual([128, 128, 128, 128, 1]);
    expect(cloud.metrics.get('subscribe_refused_total')).toBe(4);
  });

  it("a box cannot publish on another box's up/ topic: dropped, counted, connection closed, no attempt", async () => {
    const boxB = await connect(b);
    const closed = new Promise<void>((resolve) => boxB.client.once('close', () => resolve()));
    boxB.client.publish(upTopic(a.deviceId, 'pay'), JSON.stringify(payMsg(a.deviceId, 1)), { qos: 1 });
    await closed;
    expect(cloud.metrics.get('publish_refused_total')).toBe(1);
    expect(await cloud.store.listAttempts({})).toEqual([]);
    expect(gw.count('pay')).toBe(0);
  });

  it("a box cannot publish on a down/ topic (impersonating the cloud)", async () => {
    const boxA = await connect(a);
    const boxB = await connect(b);
    const closed = new Promise<void>((resolve) => boxB.client.once('close', () => resolve()));
    const forged = { ...envelope(), outTradeNo: `${a.deviceId}-7`, saleId: 's7', amount: 1234, currency: 'CNY', state: 'SUCCESS' };
    boxB.client.publish(downTopic(a.deviceId, 'result'), JSON.stringify(forged), { qos: 1 });
    await closed;
    // A later answer to A on its own connection: had the broker forwarded the forgery, it came first.
    await boxA.send('query', { ...envelope(), outTradeNo: `${a.deviceId}-8`, saleId: 's8', amount: 1, currency: 'CNY' });
    await boxA.next('result', (m) => m.outTradeNo === `${a.deviceId}-8`);
    expect(boxA.received.filter((r) => r.kind === 'result')).toEqual([]);
    expect(cloud.metrics.get('publish_refused_total')).toBe(1);
  });

  it("a box cannot spend another box's outTradeNo from its own topic", async () => {
    const boxB = await connect(b);
    await boxB.send('pay', { ...payMsg(a.deviceId, 1) });
    expect(await boxB.next('error')).toMatchObject({ code: 'FORBIDDEN' });
    expect(await cloud.store.listAttempts({})).toEqual([]);
    expect(cloud.metrics.get('messages_forbidden_total')).toBe(1);
  });

  it('the service re-checks the device: a revoked box still connected cannot pay', async () => {
    const boxA = await connect(a);
    // Revoked with a time before the revocation watcher's horizon, so the watcher never cuts the box
    // off (a revocation time in the future is seen by its next poll, and the box raced it): only the
    // service's own re-check stands between this box and a payment.
    await cloud.store.revokeDevice(a.deviceId, 1);
    await boxA.send('pay', payMsg(a.deviceId, 1)).catch(() => undefined);
    await until('refusal counted', () => cloud.metrics.get('messages_invalid_total') >= 1 || cloud.metrics.get('messages_forbidden_total') >= 1);
    expect(gw.count('pay')).toBe(0);
    expect(await cloud.store.listAttempts({})).toEqual([]);
  });

  it('a box can use its own topics', async () => {
    const boxA = await connect(a);
    await boxA.send('query', { ...envelope(), outTradeNo: `${a.deviceId}-77`, saleId: 's', amount: 100, currency: 'CNY' });
    expect(await boxA.next('result')).toMatchObject({ outTradeNo: `${a.deviceId}-77` });
  });
});
