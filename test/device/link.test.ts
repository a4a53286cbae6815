import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes, type Client, type Subscription } from 'aedes';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../protocol/clock.js';
import { CloudLink } from '../../device/link.js';
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

afterEach(async () => {
  await link?.stop();
  link = undefined;
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

function startLink(url: string): { logs: Collector<LogLine>; connects: Collector<number> } {
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
    handlers: { onConnect: () => connects.push(Date.now()), onClose: () => undefined, onDown: () => undefined, onContact: () => undefined },
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
