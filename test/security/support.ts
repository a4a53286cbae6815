import type { MqttClient } from 'mqtt';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { UP_EXAMPLES } from '../../protocol/examples.js';
import type { UpKind, UpMessage } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { CloudConfigInput } from '../../cloud/config.js';
import { startCloud, type RunningCloud } from '../../cloud/index.js';
import { createLogger, type Logger } from '../../cloud/log.js';
import type { Attempt } from '../../cloud/payments/transaction.js';
import { envelope, FAST, tempDir } from '../cloud/harness.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { startMosquitto } from '../support/mosquitto.js';
import { embeddedUnderTest, mosquittoUnderTest, onMosquitto, type BrokerKind, type BrokerUnderTest } from './brokers-under-test.js';

/**
 * What the security probes and the cloud-side fuzzers share on top of test/cloud/harness.ts:
 * a cloud with an injectable clock and log sink, a scrape of GET /metrics, a raw MQTT PUBLISH
 * (so a topic the mqtt.js client would refuse still reaches the broker), and a money snapshot.
 */
export type ProbeCloud = RunningCloud & { dir: string; dbPath: string; gw: ScriptedGateway; broker: BrokerUnderTest };

/** `broker: 'mosquitto'` starts a Mosquitto with dynamic security for this cloud (and stops it with the cloud). */
export async function startProbeCloud(opts: { config?: CloudConfigInput; clock?: Clock; logger?: Logger; broker?: BrokerKind } = {}): Promise<ProbeCloud> {
  const { dir, remove } = tempDir();
  const gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  const dbPath = join(dir, 'cloud.db');
  const mosquitto = opts.broker === 'mosquitto' ? await startMosquitto() : undefined;
  let cloud: RunningCloud;
  try {
    cloud = await startCloud({
      gateway: gw,
      dbPath,
      mqttPort: 0,
      httpPort: 0,
      metricsPort: 0,
      config: { ...FAST, ...opts.config, ...(mosquitto ? onMosquitto(mosquitto) : {}) },
      ...(opts.clock ? { clock: opts.clock } : {}),
      logger: opts.logger ?? createLogger('silent'),
    });
  } catch (err) {
    await mosquitto?.stop();
    remove();
    throw err;
  }
  return {
    ...cloud,
    dir,
    dbPath,
    gw,
    broker: mosquitto ? mosquittoUnderTest(mosquitto) : embeddedUnderTest(() => scrape(cloud.metricsUrl)),
    close: async () => {
      await cloud.close();
      await mosquitto?.stop();
      remove();
    },
  };
}

/** A pino logger at trace level that keeps every line in memory (no redaction: secrets must never reach a log call). */
export function memoryLogger(): { logger: Logger; text: () => string; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level: 'trace', base: { svc: 'scanbox-cloud' } }, { write: (s: string) => void lines.push(s) });
  return { logger, lines, text: () => lines.join('') };
}

/** GET /metrics (the cloud's metricsUrl), summed per counter over its labels. */
export async function scrape(metricsUrl: string): Promise<(name: string) => number> {
  const res = await fetch(metricsUrl);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  const text = await res.text();
  const totals = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^scanbox_cloud_([a-z_]+)(?:\{[^}]*\})? (\d+)$/.exec(line);
    if (m) totals.set(m[1]!, (totals.get(m[1]!) ?? 0) + Number(m[2]));
  }
  return (name) => totals.get(name) ?? 0;
}

/** MQTT's remaining-length varint (7 bits a byte, low first), for headers that announce any size at all. */
export function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** MQTT 3.1.1 PUBLISH packet built by hand, so no client-side topic validation gets in the way. */
export function publishPacket(topic: string, payload: Buffer | string, qos: 0 | 1, messageId = 1): Buffer {
  const t = Buffer.from(topic, 'utf8');
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
  if (t.length > 0xffff) throw new Error('topic longer than 65535 bytes cannot be encoded');
  const varHeader = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, qos ? Buffer.from([messageId >> 8, messageId & 0xff]) : Buffer.alloc(0)]);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1), ...remainingLength(varHeader.length + p.length)]), varHeader, p]);
}

export function rawPublish(client: MqttClient, topic: string, payload: Buffer | string, qos: 0 | 1 = 1): void {
  (client.stream as unknown as { write(b: Buffer): boolean }).write(publishPacket(topic, payload, qos, 0xfff0));
}

/** Resolves with the time the connection closed; rejects if it stays open longer than `timeoutMs`. */
export function closedWithin(client: MqttClient, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    if (!client.connected && client.disconnected) return resolve(Date.now());
    const timer = setTimeout(() => reject(new Error(`connection still open after ${timeoutMs} ms`)), timeoutMs);
    client.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now());
    });
  });
}

/** Everything that is money: the cloud's attempts (all fields, including version) and what the gateway saw. */
export interface MoneySnapshot {
  attempts: Attempt[];
  gatewayCalls: number;
  ledger: number;
}

export async function money(cloud: ProbeCloud): Promise<MoneySnapshot> {
  return { attempts: await cloud.store.listAttempts({}), gatewayCalls: cloud.gw.calls.length, ledger: cloud.gw.ledger.entries().length };
}

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../cloud/cli.ts');

/** Run `scanbox-cloud ARGS` as a child process (as an operator would); returns its stdout. */
export async function cloudCli(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', CLI, ...args], {
    env: { ...process.env, SCANBOX_CLOUD_LOG_LEVEL: 'silent' },
    timeout: 20_000,
  });
  return stdout;
}

/**
 * A valid up/ message of `kind` for attempt `<deviceId>-<seq>`, built from protocol/examples.ts so it
 * follows the schema as it stands (fresh id and ts; outTradeNo/saleId of this device).
 */
export function upMsg<K extends UpKind>(kind: K, deviceId: string, seq: number, extra: Partial<UpMessage<K>> = {}): UpMessage<K> {
  const base: Record<string, unknown> = { ...UP_EXAMPLES[kind], ...envelope() };
  if ('outTradeNo' in base) base.outTradeNo = `${deviceId}-${seq}`;
  if ('saleId' in base) base.saleId = `${deviceId}-s${seq}`;
  return { ...base, ...extra } as UpMessage<K>;
}
