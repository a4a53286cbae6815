import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import {
  decodeDown,
  deviceDownFilter,
  MIN_PROTOCOL_VERSION,
  OFFLINE_WILL_ID,
  parseTopic,
  upTopic,
  type DownKind,
  type DownMessage,
  type PairResponse,
  type UpKind,
  type UpMessage,
} from '../../protocol/index.js';
import { systemClock } from '../../protocol/clock.js';
import type { CloudConfigInput } from '../../cloud/config.js';
import type { Gateway } from '../../cloud/gateway/gateway.js';
import { startCloud, type RunningCloud } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import { EMBEDDED_SQLITE, type CloudPlace, type TestStack } from './stacks.js';

export { STACKS, tempDir, useStack, type CloudPlace, type StackKind, type TestStack } from './stacks.js';

/** Timings that make a 45-second wallet conversation take well under a second. */
export const FAST: CloudConfigInput = {
  gatewayCallTimeoutMs: 2_000,
  queryFirstDelayMs: 50,
  queryIntervalMs: 50,
  pollDeadlineMs: { wechat: 600, alipay: 600, unionpay: 600 },
  reverseMinDelayMs: 100,
  reverseRetryMs: 50,
  reverseRetryMaxMs: 200,
  lateCheckDelayMs: 100,
  heartbeatIntervalS: 0.2,
  logLevel: 'silent',
};

export type TestCloud = RunningCloud & { dir: string; place: CloudPlace };

/**
 * A cloud in this process on `stack` (default the embedded broker and SQLite), on a fresh place of
 * its own that goes with it on close; or on `place`, which outlives it (a restart is a second cloud
 * on the first one's place). `config` comes last: a test may still name its own store or broker.
 */
export async function startTestCloud(gateway: Gateway, config: CloudConfigInput = {}, opts: { stack?: TestStack; place?: CloudPlace } = {}): Promise<TestCloud> {
  const place = opts.place ?? (await (opts.stack ?? EMBEDDED_SQLITE).place());
  const owned = opts.place === undefined;
  let cloud: RunningCloud;
  try {
    cloud = await startCloud({
      gateway,
      mqttPort: 0,
      httpPort: 0,
      metricsPort: 0,
      config: { ...FAST, ...place.config, ...config },
      logger: createLogger(config.logLevel ?? 'silent'),
    });
  } catch (err) {
    if (owned) place.remove();
    throw err;
  }
  return {
    ...cloud,
    dir: place.dir,
    place,
    close: async () => {
      await cloud.close();
      if (owned) place.remove();
    },
  };
}

/** POST /v1/pair as JSON; over https with `ca` trusted (Node's fetch takes no CA of its own). */
export function postPair(httpUrl: string, body: unknown, ca?: Buffer): Promise<{ status: number; body: any }> {
  const send = httpUrl.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(`${httpUrl}/v1/pair`, { method: 'POST', headers: { 'content-type': 'application/json' }, ...(ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

export { ensureMerchant } from '../../cloud/merchants/merchant.js';
import { ensureMerchant as ensureMerchantOf } from '../../cloud/merchants/merchant.js';

export async function pairBox(cloud: RunningCloud, hardwareId = `hw-${Math.random().toString(36).slice(2)}`, opts: { merchant?: string; ca?: Buffer } = {}): Promise<PairResponse> {
  await ensureMerchantOf(cloud.store, opts.merchant ?? 'M1');
  const { code } = await createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: 600 }, opts.merchant ?? 'M1', 'S1');
  const res = await postPair(cloud.httpUrl, { v: 1, code, hardwareId, firmware: '0.1.0' }, opts.ca);
  if (res.status !== 200) throw new Error(`pairing failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as PairResponse;
}

/** A box's MQTT side as the tests need it: publish up/, await down/ messages. */
export class TestBox {
  readonly received: { kind: DownKind; msg: DownMessage }[] = [];
  private listeners: (() => void)[] = [];

  private constructor(readonly client: MqttClient, readonly deviceId: string) {
    client.on('message', (topic, payload) => {
      const t = parseTopic(topic);
      if (t.direction !== 'down') return;
      this.received.push({ kind: t.kind, msg: decodeDown(t.kind, payload) });
      const l = this.listeners;
      this.listeners = [];
      l.forEach((f) => f());
    });
  }

  static async connect(url: string, deviceId: string, password: string, extra: IClientOptions = {}): Promise<TestBox> {
    const client = mqtt.connect(url, { clientId: deviceId, username: deviceId, password, reconnectPeriod: 0, clean: true, ...extra });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
      client.once('close', () => reject(new Error('connection closed before CONNACK')));
    });
    (client.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    const box = new TestBox(client, deviceId);
    await client.subscribeAsync(deviceDownFilter(deviceId), { qos: 1 });
    return box;
  }

  static async of(cloud: RunningCloud, creds: PairResponse): Promise<TestBox> {
    return TestBox.connect(cloud.mqttUrl, creds.deviceId, creds.secret);
  }

  async send<K extends UpKind>(kind: K, msg: UpMessage<K>): Promise<void> {
    await this.client.publishAsync(upTopic(this.deviceId, kind), JSON.stringify(msg), { qos: 1 });
  }

  /** The first message of `kind` (already received or arriving) matching `match`. */
  async next<K extends DownKind>(kind: K, match: (m: DownMessage<K>) => boolean = () => true, timeoutMs = 5_000): Promise<DownMessage<K>> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < this.received.length; seen++) {
        const r = this.received[seen]!;
        if (r.kind === kind && match(r.msg as DownMessage<K>)) {
          this.received.splice(seen, 1);
          return r.msg as DownMessage<K>;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no down/${kind} within ${timeoutMs} ms; received ${JSON.stringify(this.received.map((r) => r.msg))}`);
      await new Promise<void>((resolve) => {
        this.listeners.push(resolve);
        setTimeout(resolve, left);
      });
    }
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/**
 * A box's last will as device/link.ts registers it: a v1 heartbeat with the protocol's
 * OFFLINE_WILL_ID, sent by the broker when the connection dies without a DISCONNECT (TestBox.close).
 */
export function boxWill(deviceId: string): NonNullable<IClientOptions['will']> {
  const status = { firmware: '0.1.0', uptimeS: 0, outboxDepth: 0, pendingAttempts: 0, scanner: 'closed', ecr: 'closed' };
  const msg = { v: MIN_PROTOCOL_VERSION, id: OFFLINE_WILL_ID, ts: Date.now(), status };
  return { topic: upTopic(deviceId, 'heartbeat'), payload: Buffer.from(JSON.stringify(msg)), qos: 1, retain: false };
}

let msgSeq = 0;
export function envelope() {
  return { v: 1 as const, id: `t-${++msgSeq}`, ts: Date.now() };
}

export function payMsg(deviceId: string, seq: number, extra: Partial<UpMessage<'pay'>> = {}): UpMessage<'pay'> {
  return {
    ...envelope(),
    outTradeNo: `${deviceId}-${seq}`,
    saleId: `${deviceId}-s${seq}`,
    saleRef: `R${seq}`,
    amount: 1234,
    currency: 'CNY',
    code: '134567890123456789',
    wallet: 'wechat',
    ...extra,
  };
}

/** Wait until `check` holds, polling; for store state that has no event of its own. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
