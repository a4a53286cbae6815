import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskPaymentCode, type PairResponse } from '../../protocol/index.js';
import { pairBox, payMsg, TestBox, until } from '../cloud/harness.js';
import { closedWithin, cloudCli, memoryLogger, startProbeCloud, type ProbeCloud } from './support.js';

/**
 * Secrets never appear in logs. The cloud's pino output (every level, trace included, and without
 * the redaction net of cloud/log.ts: a secret must never reach a log call at all) is captured in
 * memory through pairing, connects (good and bad), a payment and a revocation, together with what
 * `scanbox-cloud devices --json` and `attempts --json` print. None of it may contain an issued
 * secret, a stored secret hash (or its salt/key parts), a password tried and refused, or a full
 * payment code.
 */
const log = memoryLogger();
let cloud: ProbeCloud;
let a: PairResponse;
let b: PairResponse;
const paymentCode = '139876543210987654'; // WeChat: 18 digits, prefix 13; only its last 4 may show
const wrongPassword = 'not-the-secret-but-also-sensitive-0123456789';
let cliOut = '';
let hashes: string[] = [];

beforeAll(async () => {
  cloud = await startProbeCloud({ logger: log.logger });
  a = await pairBox(cloud, 'hw-log-a');
  b = await pairBox(cloud, 'hw-log-b');
  hashes = await Promise.all([a, b].map(async (p) => (await cloud.store.getDeviceAuth(p.deviceId))!.secretHash));

  const boxA = await TestBox.of(cloud, a);
  await TestBox.connect(cloud.mqttUrl, a.deviceId, b.secret).then((x) => x.close(), () => undefined); // B's secret under A's id
  await TestBox.connect(cloud.mqttUrl, b.deviceId, wrongPassword).then((x) => x.close(), () => undefined);
  await boxA.send('pay', payMsg(a.deviceId, 1, { code: paymentCode }));
  expect(await boxA.next('result')).toMatchObject({ state: 'SUCCESS' });
  // A forged pay with the code in a refused message (B spending A's outTradeNo) is logged too: still masked.
  const boxB = await TestBox.of(cloud, b);
  await boxB.send('pay', payMsg(a.deviceId, 2, { code: paymentCode }));
  await boxB.next('error');
  const closed = closedWithin(boxA.client, 2_000);
  await cloud.store.revokeDevice(a.deviceId, Date.now()); // the same store call the CLI makes
  await closed;
  await TestBox.connect(cloud.mqttUrl, a.deviceId, a.secret).then((x) => x.close(), () => undefined); // refused: revoked
  await until('revoked box marked offline', async () => (await cloud.store.getDevice(a.deviceId))?.connectivity === 'offline');
  await boxB.close();

  const [devices, attempts, history] = await Promise.all([
    cloudCli(['devices', '--db', cloud.dbPath, '--json']),
    cloudCli(['attempts', '--db', cloud.dbPath, '--json']),
    cloudCli(['attempts', '--db', cloud.dbPath, '--id', `${a.deviceId}-1`]),
  ]);
  cliOut = devices + attempts + history;
});
afterAll(async () => {
  await cloud.close();
});

function secretsAndTheirParts(): string[] {
  const parts = hashes.flatMap((h) => [h, ...h.split('$').filter((p) => p.length >= 16)]);
  return [a.secret, b.secret, ...parts, wrongPassword, paymentCode, paymentCode.slice(0, 12)];
}

describe('secrets never appear in logs or CLI output', () => {
  it('the capture is real: it saw pairing, both refusals, the payment (masked) and the revocation', () => {
    const text = log.text();
    for (const msg of ['device paired', 'connection refused', 'pay received', 'attempt transition', 'message refused', 'device revoked: disconnecting']) {
      expect(text, msg).toContain(`"msg":"${msg}"`);
    }
    expect(text).toContain(a.deviceId);
    expect(text).toContain(maskPaymentCode(paymentCode));
    expect(log.lines.length).toBeGreaterThan(10);
    expect(JSON.parse(cliOut.split('\n')[0]!)).toEqual(expect.arrayContaining([expect.objectContaining({ deviceId: a.deviceId, status: 'revoked' })]));
  });

  it('no issued secret, secret hash (or its salt / key), refused password, or full payment code in the cloud logs', () => {
    const text = log.text();
    for (const s of secretsAndTheirParts()) expect(text.includes(s), `log contains ${s.slice(0, 6)}…`).toBe(false);
  });

  it('none of them in `devices --json`, `attempts --json` or `attempts --id` either', () => {
    expect(cliOut).toContain(`${a.deviceId}-1`);
    for (const s of secretsAndTheirParts()) expect(cliOut.includes(s), `CLI output contains ${s.slice(0, 6)}…`).toBe(false);
  });
});
