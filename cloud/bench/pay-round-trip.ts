/**
 * Pay round trip through the embedded broker with the instant gateway: a box publishes up/pay and
 * waits for the SUCCESS on down/result, one payment at a time (closed loop), N times.
 *
 *   node --import tsx cloud/bench/pay-round-trip.ts [N=1000] [logLevel=warn]
 *
 * Prints median, p90, p99 and max in milliseconds. Every payment is committed to SQLite
 * (synchronous=FULL) before the result goes out, so this includes one fsync per payment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { deviceDownFilter, upTopic, type PairResponse } from '../../protocol/index.js';
import { systemClock } from '../clock.js';
import { startCloud } from '../index.js';
import { instantGateway } from '../instant-gateway.js';
import { createLogger } from '../log.js';
import { createPairingCode } from '../pairing.js';

const n = Number(process.argv[2] ?? 1000);
const level = process.argv[3] ?? 'warn';
const dir = mkdtempSync(join(tmpdir(), 'scanbox-bench-'));
const cloud = await startCloud({ gateway: instantGateway(), dbPath: join(dir, 'cloud.db'), mqttPort: 0, httpPort: 0, logger: createLogger(level) });

const { code } = await createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: 600 }, 'bench', 'bench');
const res = await fetch(`${cloud.httpUrl}/v1/pair`, { method: 'POST', body: JSON.stringify({ v: 1, code, hardwareId: 'bench-1' }) });
const creds = (await res.json()) as PairResponse;
const box = await mqtt.connectAsync(cloud.mqttUrl, { clientId: creds.deviceId, username: creds.deviceId, password: creds.secret });
(box.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
await box.subscribeAsync(deviceDownFilter(creds.deviceId), { qos: 1 });

let waiting: ((outTradeNo: string) => void) | undefined;
box.on('message', (_topic, payload) => {
  const m = JSON.parse(payload.toString()) as { outTradeNo?: string; state?: string };
  if (m.state === 'SUCCESS' && m.outTradeNo) waiting?.(m.outTradeNo);
});

async function payOnce(seq: number): Promise<number> {
  const outTradeNo = `${creds.deviceId}-${seq}`;
  const msg = { v: 1, id: `b-${seq}`, ts: Date.now(), outTradeNo, saleId: `${creds.deviceId}-s${seq}`, saleRef: `R${seq}`, amount: 100, currency: 'CNY', code: '134567890123456789', wallet: 'wechat' };
  const t0 = process.hrtime.bigint();
  const done = new Promise<void>((resolve) => (waiting = (o) => o === outTradeNo && resolve()));
  box.publish(upTopic(creds.deviceId, 'pay'), JSON.stringify(msg), { qos: 1 });
  await done;
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

for (let i = 1; i <= 50; i++) await payOnce(i); // warm-up
const times: number[] = [];
for (let i = 0; i < n; i++) times.push(await payOnce(1000 + i));
times.sort((a, b) => a - b);
const pct = (p: number) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)]!.toFixed(2);
console.log(JSON.stringify({ payments: n, logLevel: level, medianMs: pct(50), p90Ms: pct(90), p99Ms: pct(99), maxMs: times.at(-1)!.toFixed(2) }));

await box.endAsync();
await cloud.close();
rmSync(dir, { recursive: true, force: true });
