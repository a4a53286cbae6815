import { EventEmitter, once } from 'node:events';
import type { MqttClient } from 'mqtt';
import { deviceDownFilter, PAIRING_VERSION, upTopic, type PairResponse, type ResultMessage } from '../protocol/index.js';
import { connectNoDelay } from './floors.js';

/**
 * The cloud's share of a payment, without a box: a paired client publishes `up/pay` and waits for
 * the SUCCESS on `down/result`, one payment at a time, through the cloud's own broker. That is one
 * broker round trip, the cloud's two durable commits (PAYING before the gateway call, SUCCESS before
 * the result) and the gateway call. (Formerly cloud/bench/pay-round-trip.ts; the latency benchmark
 * now measures it interleaved with the end-to-end sales and the floors.)
 */
export interface PayProbe {
  deviceId: string;
  client: MqttClient;
  /** n sequential payments; each round trip in ms. */
  roundTrips(n: number): Promise<number[]>;
  close(): Promise<void>;
}

export async function pairProbe(httpUrl: string, code: string, mqttUrl: string): Promise<PayProbe> {
  const res = await fetch(`${httpUrl}/v1/pair`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ v: PAIRING_VERSION, code, hardwareId: 'bench-pay-probe' }) });
  if (!res.ok) throw new Error(`pairing the pay probe: HTTP ${res.status} ${await res.text()}`);
  const creds = (await res.json()) as PairResponse;
  const client = await connectNoDelay(mqttUrl, creds.deviceId, { username: creds.deviceId, password: creds.secret, reconnectPeriod: 0 });
  await client.subscribeAsync(deviceDownFilter(creds.deviceId), { qos: 1 });
  let seq = 0;
  return {
    deviceId: creds.deviceId,
    client,
    async roundTrips(n) {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const s = ++seq;
        const outTradeNo = `${creds.deviceId}-${s}`;
        const msg = { v: 1, id: `probe-${s}`, ts: Date.now(), outTradeNo, saleId: `${creds.deviceId}-s${s}`, saleRef: `P${s}`, amount: 100, currency: 'CNY', code: `1345678901${String(s % 1e8).padStart(8, '0')}`, wallet: 'wechat' };
        const t0 = performance.now();
        const done = waitResult(client, outTradeNo);
        client.publish(upTopic(creds.deviceId, 'pay'), JSON.stringify(msg), { qos: 1 });
        const r = await done;
        out.push(performance.now() - t0);
        if (r.state !== 'SUCCESS') throw new Error(`probe payment ${outTradeNo}: ${r.state}`);
        client.publish(upTopic(creds.deviceId, 'ack'), JSON.stringify({ v: 1, id: `probe-ack-${s}`, ts: Date.now(), outTradeNo, state: r.state }), { qos: 1 });
      }
      return out;
    },
    close: () => client.endAsync(true),
  };
}

async function waitResult(client: MqttClient, outTradeNo: string): Promise<ResultMessage> {
  for (;;) {
    const [topic, payload] = (await once(client as unknown as EventEmitter, 'message')) as [string, Buffer];
    if (!topic.endsWith('/down/result')) continue;
    const r = JSON.parse(payload.toString()) as ResultMessage;
    if (r.outTradeNo === outTradeNo) return r;
  }
}
