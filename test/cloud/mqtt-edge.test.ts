import { generate, type IConnectPacket } from 'mqtt-packet';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../protocol/clock.js';
import { FakeClock } from '../support/fake-clock.js';
import { createLogger, type Logger } from '../../cloud/log.js';
import { Metrics } from '../../cloud/metrics.js';
import {
  DEFAULT_MQTT_LIMITS,
  HeaderScanner,
  MAX_CONNECT_BYTES,
  MAX_PACKET_BYTES,
  MAX_TOPIC_BYTES,
  MqttEdge,
  PRE_AUTH_BYTES,
  type GuardedConnection,
  type MqttLimits,
} from '../../cloud/broker/mqtt-edge.js';
import { DOWN_KINDS, downTopic, MAX_PAYLOAD_BYTES, upTopic, UP_KINDS } from '../../protocol/index.js';
import { memoryLogger, publishPacket, remainingLength, startProbeCloud, upMsg, type ProbeCloud } from '../security/support.js';
import { pairBox, payMsg, TestBox } from './harness.js';

/**
 * The guard between a client socket and aedes (cloud/mqtt-edge.ts): its fixed-header scanner on
 * byte streams cut anywhere, the guard on real sockets in front of a stand-in for aedes that reads
 * the way aedes does (paused mode, `read()` on 'readable'), and a real cloud behind it.
 */

const CONNACK_OK = Buffer.from([0x20, 0x02, 0x00, 0x00]);
const PINGREQ = Buffer.from([0xc0, 0x00]);

function connectPacket(extra: Partial<IConnectPacket> = {}): Buffer {
  return generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, keepalive: 30, clientId: 'sbTEST000001', ...extra });
}

/** A packet of `type` with a remaining length of exactly `remaining` (body of zeros). */
function packetOf(type: number, remaining: number): Buffer {
  return Buffer.concat([Buffer.from([type << 4, ...remainingLength(remaining)]), Buffer.alloc(remaining)]);
}

/** The remaining length a generated packet announces. */
function remainingOf(packet: Buffer): number {
  let value = 0;
  for (let i = 1, mul = 1; ; i++, mul *= 128) {
    value += (packet[i]! & 0x7f) * mul;
    if (!(packet[i]! & 0x80)) return value;
  }
}

function scanInPieces(scanner: HeaderScanner, bytes: Buffer, cuts: number[]): (string | null)[] {
  const verdicts: (string | null)[] = [];
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    verdicts.push(scanner.scan(bytes.subarray(from, to)));
    from = to;
  }
  return verdicts;
}

describe('the limits, derived from the protocol', () => {
  it('every scanbox topic fits MAX_TOPIC_BYTES (the longest is 91 bytes)', () => {
    const id = 'x'.repeat(64);
    const longest = Math.max(...[...UP_KINDS.map((k) => upTopic(id, k)), ...DOWN_KINDS.map((k) => downTopic(id, k))].map((t) => Buffer.byteLength(t)));
    expect(longest).toBe(91);
    expect(longest).toBeLessThanOrEqual(MAX_TOPIC_BYTES);
  });

  it('MAX_PACKET_BYTES is the remaining length of a QoS 1 PUBLISH of the longest topic and the largest payload', () => {
    const p = generate({ cmd: 'publish', topic: 't'.repeat(MAX_TOPIC_BYTES), payload: Buffer.alloc(MAX_PAYLOAD_BYTES), qos: 1, messageId: 1, dup: false, retain: false });
    expect(remainingOf(p)).toBe(MAX_PACKET_BYTES);
    expect(MAX_PACKET_BYTES).toBe(4356);
  });

  it('MAX_CONNECT_BYTES is the remaining length of the largest CONNECT a box can legitimately send', () => {
    const p = connectPacket({
      protocolId: 'MQIsdp',
      protocolVersion: 3,
      clientId: 'i'.repeat(64),
      username: 'u'.repeat(64),
      password: Buffer.alloc(128, 0x61),
      will: { topic: 't'.repeat(MAX_TOPIC_BYTES), payload: Buffer.alloc(MAX_PAYLOAD_BYTES), qos: 1, retain: false },
    });
    expect(remainingOf(p)).toBe(MAX_CONNECT_BYTES);
    expect(MAX_CONNECT_BYTES).toBe(4630);
    expect(PRE_AUTH_BYTES).toBe(5 + MAX_CONNECT_BYTES + 1024);
    expect(DEFAULT_MQTT_LIMITS).toEqual({ maxPacketBytes: 4356, maxConnectBytes: 4630, preAuthBytes: 5659, connectTimeoutMs: 10_000, preAuthPerAddress: 64 });
  });
});

describe('HeaderScanner', () => {
  const limits = { maxConnectBytes: 300, maxPacketBytes: 200 };
  const stream = Buffer.concat([packetOf(1, 300), packetOf(3, 200), PINGREQ, packetOf(3, 127), packetOf(3, 128), packetOf(8, 0), PINGREQ]);

  it('follows a valid stream whole, and split after every byte', () => {
    expect(new HeaderScanner(limits).scan(stream)).toBeNull();
    const scanner = new HeaderScanner(limits);
    for (let i = 0; i < stream.length; i++) expect(scanner.scan(stream.subarray(i, i + 1))).toBeNull();
  });

  it('follows a valid stream split at every pair of places', () => {
    for (let a = 1; a < 40; a++) for (let b = a; b < stream.length; b += 37) expect(scanInPieces(new HeaderScanner(limits), stream, [a, b])).toEqual([null, null, null]);
  });

  it('reads a remaining length split between two chunks', () => {
    const p = packetOf(3, 200); // 0x30 0xC8 0x01 …
    const scanner = new HeaderScanner(limits);
    expect(scanner.scan(packetOf(1, 10))).toBeNull();
    expect(scanInPieces(scanner, p, [1, 2, 3])).toEqual([null, null, null, null]);
    const over = packetOf(3, 201);
    const scanner2 = new HeaderScanner(limits);
    scanner2.scan(packetOf(1, 10));
    // The verdict comes with the last byte of the length, not before.
    expect(scanInPieces(scanner2, over.subarray(0, 3), [1, 2])).toEqual([null, null, 'packet_too_large']);
  });

  it('accepts a packet of exactly the limit and cuts one byte more (CONNECT and after)', () => {
    expect(new HeaderScanner(limits).scan(packetOf(1, 300))).toBeNull();
    expect(new HeaderScanner(limits).scan(packetOf(1, 301))).toBe('packet_too_large');
    const s = new HeaderScanner(limits);
    expect(s.scan(packetOf(1, 300))).toBeNull();
    expect(s.scan(packetOf(3, 200))).toBeNull();
    expect(s.scan(packetOf(3, 201))).toBe('packet_too_large');
  });

  it('cuts at the header of a 200 MB CONNECT, before any of its body', () => {
    expect(new HeaderScanner(DEFAULT_MQTT_LIMITS).scan(Buffer.from([0x10, 0x80, 0x80, 0xe8, 0x5f]))).toBe('packet_too_large');
  });

  it('calls a fifth remaining-length byte malformed; four are legal', () => {
    const s = new HeaderScanner(limits);
    s.scan(packetOf(1, 0));
    expect(s.scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff]))).toBe('malformed_header');
    const four = new HeaderScanner({ maxConnectBytes: 300, maxPacketBytes: 268_435_455 });
    four.scan(packetOf(1, 0));
    expect(four.scan(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))).toBeNull();
  });

  it('wants a CONNECT first', () => {
    expect(new HeaderScanner(limits).scan(packetOf(3, 10))).toBe('not_connect_first');
    expect(new HeaderScanner(limits).scan(PINGREQ)).toBe('not_connect_first');
    expect(new HeaderScanner(limits).scan(Buffer.from('GET / HTTP/1.1\r\n'))).toBe('not_connect_first');
  });
});

/** A listener with the guard in front of a stand-in for aedes that reads the way aedes does. */
interface Accepted {
  conn: GuardedConnection;
  received: number;
  closed: Promise<void>;
  /** Start reading (the stand-in reads at once unless told to hold back). */
  read(): void;
}

interface EdgeBench {
  edge: MqttEdge;
  metrics: Metrics;
  port: number;
  accepted: Accepted[];
  nextAccepted(): Promise<Accepted>;
  close(): Promise<void>;
}

async function edgeBench(limits: Partial<MqttLimits> = {}, opts: { holdReads?: boolean; logger?: Logger; clock?: Clock } = {}): Promise<EdgeBench> {
  const metrics = new Metrics();
  const edge = new MqttEdge({ limits: { ...DEFAULT_MQTT_LIMITS, ...limits }, metrics, logger: opts.logger ?? createLogger('silent'), ...(opts.clock ? { clock: opts.clock } : {}) });
  const accepted: Accepted[] = [];
  const waiting: ((a: Accepted) => void)[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const conn = edge.guard(socket);
    if (!conn) return;
    conn.on('error', () => undefined);
    const a: Accepted = {
      conn,
      received: 0,
      closed: new Promise((resolve) => conn.on('close', () => resolve())),
      read: () => {
        const drain = () => {
          for (let b = conn.read() as Buffer | null; b !== null; b = conn.read() as Buffer | null) a.received += b.length;
        };
        conn.on('readable', drain);
        drain();
      },
    };
    if (!opts.holdReads) a.read();
    accepted.push(a);
    waiting.shift()?.(a);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  let taken = 0;
  return {
    edge,
    metrics,
    port: (server.address() as { port: number }).port,
    accepted,
    nextAccepted: () => (taken < accepted.length ? Promise.resolve(accepted[taken++]!) : new Promise((resolve) => waiting.push((a) => (taken++, resolve(a))))),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A raw client socket, connected; errors (resets from the cut) are expected and ignored. */
async function rawClient(port: number): Promise<{ socket: Socket; closed: Promise<number> }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.resume(); // what the server sends is not looked at, but must be read for 'end' (and 'close') to come
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('close', () => reject(new Error('closed before connecting')));
  });
  return { socket, closed };
}

function cuts(metrics: Metrics): Record<string, number> {
  return Object.fromEntries(metrics.series('mqtt_connections_cut_total').map((s) => [s.labels.kind!, s.value]));
}

/** Resolves once the stand-in has received `n` bytes (polled: the stand-in has no event of its own). */
async function receivedAtLeast(a: Accepted, n: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (a.received < n) {
    if (Date.now() > deadline) throw new Error(`received ${a.received} of ${n} bytes`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('the guard on real sockets', () => {
  let bench: EdgeBench;
  afterEach(async () => {
    await bench?.close();
  });

  it('passes a login and a packet of exactly maxPacketBytes, then cuts one of maxPacketBytes + 1', async () => {
    bench = await edgeBench();
    const { socket, closed } = await rawClient(bench.port);
    const server = await bench.nextAccepted();
    expect(bench.edge.pendingFrom('127.0.0.1')).toBe(1);
    const hello = connectPacket();
    socket.write(hello);
    await receivedAtLeast(server, hello.length);
    server.conn.write(CONNACK_OK);
    const exact = publishPacket('t'.repeat(MAX_TOPIC_BYTES), Buffer.alloc(MAX_PAYLOAD_BYTES), 1);
    expect(remainingOf(exact)).toBe(MAX_PACKET_BYTES);
    socket.write(exact);
    await receivedAtLeast(server, hello.length + exact.length);
    expect(bench.edge.pendingFrom('127.0.0.1')).toBe(0);
    expect(bench.edge.pendingAddresses).toBe(0);
    socket.write(publishPacket('t'.repeat(MAX_TOPIC_BYTES + 1), Buffer.alloc(MAX_PAYLOAD_BYTES), 1));
    await Promise.all([closed, server.closed]);
    expect(server.received).toBe(hello.length + exact.length);
    expect(cuts(bench.metrics)).toEqual({ packet_too_large: 1 });
  });

  it('cuts a CONNECT of maxConnectBytes + 1 and passes one of exactly maxConnectBytes', async () => {
    bench = await edgeBench();
    const ok = await rawClient(bench.port);
    const okServer = await bench.nextAccepted();
    ok.socket.write(packetOf(1, MAX_CONNECT_BYTES));
    const big = await rawClient(bench.port);
    const bigServer = await bench.nextAccepted();
    big.socket.write(packetOf(1, MAX_CONNECT_BYTES + 1));
    await big.closed;
    await bigServer.closed;
    expect(bigServer.received).toBe(0);
    await receivedAtLeast(okServer, MAX_CONNECT_BYTES + 3);
    expect(okServer.conn.destroyed).toBe(false);
    expect(cuts(bench.metrics)).toEqual({ packet_too_large: 1 });
  });

  it('cuts a header split byte by byte as soon as its length is known', async () => {
    bench = await edgeBench({ maxConnectBytes: 300 });
    const { socket, closed } = await rawClient(bench.port);
    const server = await bench.nextAccepted();
    socket.setNoDelay(true);
    const header = Buffer.from([0x10, 0xae, 0x02]); // CONNECT, remaining 302
    for (const b of header) {
      socket.write(Buffer.from([b]));
      await new Promise((r) => setTimeout(r, 10));
    }
    await closed;
    await server.closed;
    expect(cuts(bench.metrics)).toEqual({ packet_too_large: 1 });
  });

  it('cuts a remaining length with a fifth byte (malformed)', async () => {
    bench = await edgeBench();
    const { socket, closed } = await rawClient(bench.port);
    socket.write(Buffer.concat([connectPacket(), Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01])]));
    await closed;
    expect(cuts(bench.metrics)).toEqual({ malformed_header: 1 });
  });

  it('cuts a connection whose first packet is not a CONNECT, before the stand-in sees a byte', async () => {
    bench = await edgeBench();
    const { socket, closed } = await rawClient(bench.port);
    const server = await bench.nextAccepted();
    socket.write(publishPacket('scanbox/v1/d/x/up/pay', '{}', 0));
    await closed;
    await server.closed;
    expect(server.received).toBe(0);
    expect(cuts(bench.metrics)).toEqual({ not_connect_first: 1 });
  });

  it('holds a connection to preAuthBytes until the CONNACK, and lifts the cap after it', async () => {
    bench = await edgeBench({ preAuthBytes: 400 });
    const pings = Buffer.concat(Array.from({ length: 200 }, () => PINGREQ)); // 400 bytes
    const hello = connectPacket();

    const before = await rawClient(bench.port);
    before.socket.write(Buffer.concat([hello, pings]));
    await before.closed;
    expect(cuts(bench.metrics)).toEqual({ pre_auth_bytes: 1 });

    const after = await rawClient(bench.port);
    const server = await bench.nextAccepted(); // the first one's stand-in
    expect(server.conn.destroyed).toBe(true);
    const server2 = await bench.nextAccepted();
    after.socket.write(hello);
    await receivedAtLeast(server2, hello.length);
    server2.conn.write(CONNACK_OK);
    for (let i = 0; i < 10; i++) after.socket.write(pings);
    await receivedAtLeast(server2, hello.length + 10 * pings.length);
    expect(server2.conn.destroyed).toBe(false);
    expect(cuts(bench.metrics)).toEqual({ pre_auth_bytes: 1 });
  });

  it('sees a CONNACK written in pieces; a refusing CONNACK does not count as a login', async () => {
    bench = await edgeBench();
    const a = await rawClient(bench.port);
    const serverA = await bench.nextAccepted();
    const b = await rawClient(bench.port);
    const serverB = await bench.nextAccepted();
    expect(bench.edge.pendingFrom('127.0.0.1')).toBe(2);
    serverA.conn.write(Buffer.from([0x20]));
    serverA.conn.write(Buffer.from([0x02, 0x01]));
    expect(bench.edge.pendingFrom('127.0.0.1')).toBe(2);
    serverA.conn.write(Buffer.from([0x00]));
    await new Promise((r) => setImmediate(r));
    expect(bench.edge.pendingFrom('127.0.0.1')).toBe(1);
    serverB.conn.write(Buffer.from([0x20, 0x02, 0x00, 0x05])); // not authorized
    serverB.conn.write(CONNACK_OK); // whatever follows is not the CONNACK
    await new Promise((r) => setImmediate(r));
    expect(bench.edge.pendingFrom('127.0.0.1')).toBe(1);
    b.socket.destroy();
    await serverB.closed;
    expect(bench.edge.pendingFrom('127.0.0.1')).toBe(0);
    expect(bench.edge.pendingAddresses).toBe(0);
    a.socket.destroy();
  });

  it('cuts a connection without a successful CONNACK after connectTimeoutMs, and not one with it', async () => {
    bench = await edgeBench({ connectTimeoutMs: 300 });
    const loggedIn = await rawClient(bench.port);
    const loggedInServer = await bench.nextAccepted();
    loggedInServer.conn.write(CONNACK_OK);
    const t0 = Date.now();
    const silent = await rawClient(bench.port);
    const talking = await rawClient(bench.port);
    talking.socket.write(connectPacket());
    const [silentAt, talkingAt] = await Promise.all([silent.closed, talking.closed]);
    expect(silentAt - t0).toBeGreaterThanOrEqual(250);
    expect(silentAt - t0).toBeLessThan(3_000);
    expect(talkingAt - t0).toBeLessThan(3_000);
    expect(cuts(bench.metrics)).toEqual({ connect_timeout: 2 });
    // Opened before the two that were cut, past the same deadline: still open.
    expect(loggedInServer.conn.destroyed).toBe(false);
    expect(loggedIn.socket.destroyed).toBe(false);
    loggedIn.socket.destroy();
  });

  it('cuts the connection over preAuthPerAddress at once; a login or a close frees a place', async () => {
    const cap = 3;
    bench = await edgeBench({ preAuthPerAddress: cap });
    const clients = [];
    for (let i = 0; i < cap; i++) clients.push(await rawClient(bench.port));
    const servers = await Promise.all(clients.map(() => bench.nextAccepted()));
    const over = await rawClient(bench.port);
    await over.closed;
    expect(cuts(bench.metrics)).toEqual({ pre_auth_per_address: 1 });
    expect(bench.accepted).toHaveLength(cap);
    expect(bench.edge.pendingFrom('127.0.0.1')).toBe(cap);

    servers[0]!.conn.write(CONNACK_OK); // logged in: no longer pending
    const afterLogin = await rawClient(bench.port);
    const afterLoginServer = await bench.nextAccepted();
    expect(afterLoginServer.conn.destroyed).toBe(false);

    clients[1]!.socket.destroy();
    await servers[1]!.closed;
    const afterClose = await rawClient(bench.port);
    await bench.nextAccepted();

    const overAgain = await rawClient(bench.port);
    await overAgain.closed;
    expect(cuts(bench.metrics)).toEqual({ pre_auth_per_address: 2 });

    for (const c of [...clients, afterLogin, afterClose]) c.socket.destroy();
    await Promise.all(bench.accepted.map((a) => a.closed));
    expect(bench.edge.pendingAddresses).toBe(0);
  });

  it('pauses the socket while the reader is behind, and loses nothing', async () => {
    bench = await edgeBench({}, { holdReads: true });
    const { socket } = await rawClient(bench.port);
    const server = await bench.nextAccepted();
    const hello = connectPacket();
    socket.write(hello);
    server.conn.write(CONNACK_OK);
    const burst = Buffer.concat(Array.from({ length: 50_000 }, () => PINGREQ)); // 100 KB
    const total = hello.length + 8 * burst.length;
    for (let i = 0; i < 8; i++) socket.write(burst);
    // Nobody reads: the guard holds about one high-water mark and leaves the rest in the kernel.
    await new Promise<void>((resolve) => {
      const check = () => (server.conn.readableLength >= server.conn.readableHighWaterMark ? resolve() : setTimeout(check, 5));
      check();
    });
    expect(server.conn.readableLength).toBeLessThan(server.conn.readableHighWaterMark + 128 * 1024);
    server.read();
    await receivedAtLeast(server, total);
    expect(server.received).toBe(total);
    socket.destroy();
  });

  it('logs one warn line per address per interval, however many cuts; the rest at debug', async () => {
    const clock = new FakeClock(1_000_000);
    const log = memoryLogger();
    bench = await edgeBench({}, { logger: log.logger, clock });
    const cutOnce = async () => {
      const { socket, closed } = await rawClient(bench.port);
      socket.write(PINGREQ);
      await closed;
    };
    for (let i = 0; i < 5; i++) await cutOnce();
    clock.advanceSync(60_000);
    await cutOnce();
    const lines = log.lines.map((l) => JSON.parse(l) as { level: number; msg: string; address: string; why: string; suppressed?: number });
    const cutLines = lines.filter((l) => l.msg === 'mqtt connection cut');
    expect(cutLines.filter((l) => l.level === 40).map((l) => [l.address, l.why, l.suppressed])).toEqual([
      ['127.0.0.1', 'not_connect_first', 0],
      ['127.0.0.1', 'not_connect_first', 4],
    ]);
    expect(cutLines.filter((l) => l.level === 20)).toHaveLength(4);
    expect(cuts(bench.metrics)).toEqual({ not_connect_first: 6 });
  });

  it('a peer that sends and closes at once: everything it sent is still read', async () => {
    bench = await edgeBench({}, { holdReads: true });
    const { socket, closed } = await rawClient(bench.port);
    const server = await bench.nextAccepted();
    const hello = connectPacket();
    socket.end(Buffer.concat([hello, PINGREQ, Buffer.from([0xe0, 0x00])])); // … DISCONNECT, FIN
    await closed;
    // The socket is gone; the stream stays readable up to its end.
    expect(server.conn.destroyed).toBe(false);
    const ended = new Promise<void>((resolve) => server.conn.on('end', () => resolve()));
    server.read();
    await ended;
    expect(server.received).toBe(hello.length + 4);
    await server.closed;
    expect(bench.edge.pendingAddresses).toBe(0);
  });
});

describe('a real cloud behind the guard', () => {
  let cloud: ProbeCloud;
  beforeAll(async () => {
    cloud = await startProbeCloud();
  });
  afterAll(async () => {
    await cloud.close();
  });

  it('an mqtt.js box connects, pays and receives its result; nothing is cut', async () => {
    const creds = await pairBox(cloud, 'hw-edge-normal');
    const box = await TestBox.of(cloud, creds);
    await box.send('pay', payMsg(creds.deviceId, 1));
    expect(await box.next('result')).toMatchObject({ outTradeNo: `${creds.deviceId}-1`, state: 'SUCCESS' });
    await box.close();
    const again = await TestBox.of(cloud, creds);
    await again.send('query', upMsg('query', creds.deviceId, 1));
    expect(await again.next('result')).toMatchObject({ state: 'SUCCESS' });
    await again.close();
    expect(cloud.metrics.get('mqtt_connections_cut_total')).toBe(0);
  });

  it('takes its limits from the config: over the per-address cap cut at once, silent ones cut at the deadline, then a box logs in', async () => {
    const small = await startProbeCloud({ config: { mqttLimits: { preAuthPerAddress: 2, connectTimeoutMs: 500 } } });
    try {
      const creds = await pairBox(small, 'hw-edge-cap');
      const silent = [await rawClient(small.mqttPort), await rawClient(small.mqttPort)];
      const third = await rawClient(small.mqttPort);
      await third.closed;
      expect(cuts(small.metrics)).toEqual({ pre_auth_per_address: 1 });
      await Promise.all(silent.map((s) => s.closed));
      expect(cuts(small.metrics)).toEqual({ pre_auth_per_address: 1, connect_timeout: 2 });
      const box = await TestBox.of(small, creds);
      await box.send('pay', payMsg(creds.deviceId, 1));
      expect(await box.next('result')).toMatchObject({ state: 'SUCCESS' });
      await box.close();
    } finally {
      await small.close();
    }
  });
});
