import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes, type Client, type Subscription } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../protocol/clock.js';
import {
  ALL_UP_FILTER,
  ErrorCode,
  PROTOCOL_VERSION,
  UP_SHAPES,
  decodeUp,
  downTopic,
  encodeUp,
  isProtocolError,
  parseTopic,
  salvageMessageId,
  upTopic,
  validate,
  type DownKind,
  type DownMessage,
  type UpKind,
} from '../../protocol/index.js';
import { CloudLink, type LinkHandlers } from '../../device/link.js';
import { Collector } from './collector.js';
import type { LogLine } from './agent-harness.js';

/**
 * The link's log levels say what happened to the down/ subscription: a broker's refusal (SUBACK
 * 128) is an error, a subscribe cut short by a dropped connection is a warning; both reconnect.
 */
type SubscribeHook = (client: Client, sub: Subscription, cb: (err: Error | null, sub?: Subscription | null) => void) => void;

let server: Server | undefined;
let aedes: Aedes | undefined;
let link: CloudLink | undefined;
let cloud: StandInCloud | undefined;

afterEach(async () => {
  await link?.stop();
  link = undefined;
  await cloud?.close();
  cloud = undefined;
  if (server) await new Promise<void>((r) => server!.close(() => r()));
  if (aedes) await new Promise<void>((r) => aedes!.close(() => r()));
  server = undefined;
  aedes = undefined;
});

async function brokerWith(onSubscribe: SubscribeHook): Promise<string> {
  aedes = await Aedes.createBroker({ authorizeSubscribe: onSubscribe } as never);
  const sockets = new Set<Socket>();
  server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    aedes!.handle(s);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function startLink(url: string, handlers: Partial<LinkHandlers> = {}): { logs: Collector<LogLine>; connects: Collector<number> } {
  const logs = new Collector<LogLine>();
  const connects = new Collector<number>();
  const logger = pino({ level: 'info' }, { write: (s: string) => logs.push(JSON.parse(s) as LogLine) });
  link = new CloudLink({
    url,
    deviceId: 'box1',
    secret: 'x'.repeat(40),
    heartbeatIntervalS: 60,
    backoff: { baseMs: 20, maxMs: 50 },
    connectTimeoutMs: 2_000,
    keepaliveS: 30,
    clock: systemClock,
    random: Math.random,
    connect: mqtt.connect,
    logger,
    status: () => ({ firmware: 't', uptimeS: 0, outboxDepth: 0, pendingAttempts: 0, scanner: 'open', ecr: 'open' }),
    handlers: {
      onClose: () => undefined,
      onDown: () => undefined,
      onContact: () => undefined,
      ...handlers,
      onConnect: () => {
        connects.push(Date.now());
        handlers.onConnect?.();
      },
    },
  });
  link.start();
  return { logs, connects };
}

const errors = (logs: Collector<LogLine>) => logs.filter((l) => (l.level as number) >= 50);

describe('cloud link: the down/ subscription', () => {
  it("a broker's refusal (SUBACK 128) is logged at error level with what was granted, then the link reconnects", async () => {
    let refusals = 0;
    const url = await brokerWith((_c, sub, cb) => (refusals++ < 1 ? cb(null, null) : cb(null, sub)));
    const { logs, connects } = startLink(url);
    const refused = await logs.find((l) => l.msg === 'broker refused the down/ subscription; reconnecting', 'refusal logged');
    expect(refused).toMatchObject({ level: 50, granted: [128] });
    await connects.find(() => true, 'subscribed on the second connection');
    expect(logs.filter((l) => String(l.msg).includes('cut short'))).toEqual([]);
  });

  it('a subscribe cut short by a dropped connection is a warning, never an error, and the link comes back', async () => {
    let drops = 0;
    const url = await brokerWith((client, sub, cb) => {
      // The connection dies before the SUBACK (a router reboot, the fault proxy's link_drop).
      if (drops++ < 1) return void (client.conn as unknown as Socket).destroy();
      cb(null, sub);
    });
    const { logs, connects } = startLink(url);
    const cut = await logs.find((l) => l.msg === 'subscribe to down/ cut short by a dropped connection; reconnecting', 'cut short logged');
    expect(cut).toMatchObject({ level: 40, err: 'Connection closed' });
    await connects.find(() => true, 'subscribed on the second connection');
    expect(errors(logs)).toEqual([]);
  });
});

/**
 * A stand-in cloud on every box's up/ topics. `old`: a cloud released before tolerant reading: it
 * reads the v1 shapes strictly and answers any other `v` with UNSUPPORTED_VERSION on down/error,
 * naming the refused message's id (as those clouds' refuse() did). Otherwise a tolerant one.
 */
class StandInCloud {
  readonly read = new Collector<{ kind: UpKind; msg: Record<string, unknown> }>();
  readonly refused = new Collector<{ kind: UpKind; v: unknown; id: string | undefined }>();
  private seq = 0;

  private constructor(
    private readonly client: MqttClient,
    private readonly old: boolean,
  ) {
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  static async start(url: string, kind: 'old' | 'tolerant'): Promise<StandInCloud> {
    const client = await mqtt.connectAsync(url, { clientId: `stand-in-${kind}-${process.pid}`, reconnectPeriod: 0, clean: true });
    await client.subscribeAsync(ALL_UP_FILTER, { qos: 1 });
    return new StandInCloud(client, kind === 'old');
  }

  send(deviceId: string, kind: DownKind, body: Record<string, unknown>, v = 1): void {
    this.client.publish(downTopic(deviceId, kind), JSON.stringify({ v, id: `sc-${++this.seq}`, ts: Date.now(), ...body }), { qos: 1 });
  }

  private onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (t.direction !== 'up') return;
    try {
      const msg = this.old ? validate(UP_SHAPES[1]![t.kind]!, JSON.parse(payload.toString()), `up/${t.kind} message`) : decodeUp(t.kind, payload);
      this.read.push({ kind: t.kind, msg: msg as Record<string, unknown> });
    } catch (err) {
      if (!isProtocolError(err)) throw err;
      const refId = salvageMessageId(payload);
      this.refused.push({ kind: t.kind, v: (JSON.parse(payload.toString()) as { v?: unknown }).v, id: refId });
      this.send(t.deviceId, 'error', { code: err.code, message: err.message.slice(0, 200), ...(refId ? { refId } : {}) });
    }
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

const query = (n: number) => encodeUp('query', { v: PROTOCOL_VERSION, id: `query-${n}`, ts: Date.now(), outTradeNo: `box1-${n}`, saleId: 'box1-s1', amount: 100, currency: 'CNY' });
const noop = () => undefined;
const FALLBACK = `the cloud does not read protocol v${PROTOCOL_VERSION} (UNSUPPORTED_VERSION): speaking v1 to it until the next connection`;
const OWN = PROTOCOL_VERSION;
const NEWER = PROTOCOL_VERSION + 1;

describe('cloud link: a cloud released before tolerant reading (refuses any v but 1)', () => {
  it('refuses the v2 heartbeat: the box speaks v1 for the rest of the connection, with one warn line, and re-sends what was refused', async () => {
    const url = await brokerWith((_c, sub, cb) => cb(null, sub));
    cloud = await StandInCloud.start(url, 'old');
    const down = new Collector<{ kind: DownKind; msg: DownMessage }>();
    // On connecting a box publishes its outbox at once (the pump), before any answer can come back.
    const { logs } = startLink(url, { onConnect: () => link!.publish(upTopic('box1', 'query'), query(1), noop), onDown: (kind, msg) => down.push({ kind, msg }) });

    // Both went out in the box's own version and were refused: the heartbeat, and the query sent before the answer.
    await cloud.refused.find((r) => r.kind === 'heartbeat' && r.v === OWN, 'the own-version heartbeat refused');
    await cloud.refused.find((r) => r.kind === 'query' && r.id === 'query-1', 'the own-version query refused');
    // Both again, in v1, and read.
    const hb = await cloud.read.find((r) => r.kind === 'heartbeat', 'a v1 heartbeat read');
    expect(hb.msg.v).toBe(1);
    const q1 = await cloud.read.find((r) => r.kind === 'query', 'the query read in v1');
    expect(q1.msg).toMatchObject({ v: 1, id: 'query-1', outTradeNo: 'box1-1' });

    // From now on, on this connection, everything leaves as v1 at once.
    const mark = cloud.refused.mark();
    link!.publish(upTopic('box1', 'query'), query(2), noop);
    const q2 = await cloud.read.find((r) => r.kind === 'query' && r.msg.id === 'query-2', 'the next query read');
    expect(q2.msg.v).toBe(1);
    expect(cloud.refused.items.slice(mark)).toEqual([]);

    expect(logs.filter((l) => l.msg === FALLBACK)).toEqual([expect.objectContaining({ level: 40, boxVersion: OWN, speaking: 1 })]);
    expect(logs.filter((l) => (l.level as number) >= 40 && l.msg !== FALLBACK)).toEqual([]);
    // The refusals were the link's to answer: the payment machine never saw them.
    expect(down.items).toEqual([]);
  });

  it('until it reconnects: the next connection announces its own version again (and falls back again, one warn line each)', async () => {
    const url = await brokerWith((_c, sub, cb) => cb(null, sub));
    cloud = await StandInCloud.start(url, 'old');
    const { logs, connects } = startLink(url);
    await logs.find((l) => l.msg === FALLBACK, 'the first fallback');
    await cloud.read.find((r) => r.kind === 'heartbeat', 'a v1 heartbeat read');
    const refusedBefore = cloud.refused.mark();
    link!.reconnectNow('test: a new connection');
    await connects.find(() => connects.items.length >= 2, 'the second connection', 10_000, 1);
    const again = await cloud.refused.find((r) => r.kind === 'heartbeat', 'the own-version heartbeat of the new connection', 10_000, refusedBefore);
    expect(again.v).toBe(OWN);
    await waitFor(() => logs.filter((l) => l.msg === FALLBACK).length === 2, logs, 'a second fallback');
    expect(cloud.read.filter((r) => r.kind === 'heartbeat').every((r) => r.msg.v === 1)).toBe(true);
  });
});

describe('cloud link: a tolerant cloud', () => {
  it('reads the box\'s version: the box keeps speaking it; an UNSUPPORTED_VERSION about a message it did not send goes to the payment machine', async () => {
    const url = await brokerWith((_c, sub, cb) => cb(null, sub));
    cloud = await StandInCloud.start(url, 'tolerant');
    const down = new Collector<{ kind: DownKind; msg: DownMessage }>();
    const { logs } = startLink(url, { onDown: (kind, msg) => down.push({ kind, msg }) });
    const hb = await cloud.read.find((r) => r.kind === 'heartbeat', 'the heartbeat');
    expect(hb.msg.v).toBe(OWN);
    cloud.send('box1', 'error', { code: ErrorCode.UNSUPPORTED_VERSION, message: 'not about this box', refId: 'someone-else-1' }, OWN);
    const passed = await down.find((d) => d.kind === 'error', 'the error passed on');
    expect(passed.msg).toMatchObject({ code: 'UNSUPPORTED_VERSION', refId: 'someone-else-1' });
    link!.publish(upTopic('box1', 'query'), query(3), noop);
    expect((await cloud.read.find((r) => r.kind === 'query', 'the query')).msg.v).toBe(OWN);
    expect(cloud.refused.items).toEqual([]);
    expect(logs.filter((l) => l.msg === FALLBACK)).toEqual([]);
  });

  it('a cloud that sends the box its own version is within the rule; one that sends a newer one is warned about once per connection', async () => {
    const url = await brokerWith((_c, sub, cb) => cb(null, sub));
    cloud = await StandInCloud.start(url, 'tolerant');
    const down = new Collector<{ kind: DownKind; msg: DownMessage }>();
    const { logs } = startLink(url, { onDown: (kind, msg) => down.push({ kind, msg }) });
    await cloud.read.find((r) => r.kind === 'heartbeat', 'the heartbeat');
    cloud.send('box1', 'command', { command: 'resync' }, OWN);
    await down.find((d) => d.msg.id === 'sc-1', 'the own-version command');
    expect(logs.filter((l) => l.msg.startsWith('cloud sent a newer protocol version'))).toEqual([]);
    cloud.send('box1', 'command', { command: 'resync' }, NEWER);
    cloud.send('box1', 'command', { command: 'resync' }, NEWER);
    await down.find((d) => d.msg.id === 'sc-3', 'both newer commands, read all the same');
    expect(logs.filter((l) => l.msg.startsWith('cloud sent a newer protocol version'))).toEqual([expect.objectContaining({ level: 40, cloudVersion: NEWER, boxVersion: OWN })]);
  });
});

/** Until `cond` holds, re-checked on every log line (the link's progress shows in its log). */
async function waitFor(cond: () => boolean, logs: Collector<LogLine>, what: string): Promise<void> {
  while (!cond()) await logs.find(() => true, what, 10_000, logs.mark());
}
