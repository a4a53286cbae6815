import net from 'node:net';
import { EventEmitter, once } from 'node:events';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../simulator/chaos/fault-proxy.js';
import { MqttFramer, connectClientId } from '../../simulator/chaos/mqtt-frames.js';

let broker: Aedes;
let server: net.Server;
let proxy: FaultProxy;
const clients: MqttClient[] = [];

beforeEach(async () => {
  broker = await Aedes.createBroker();
  server = net.createServer((s) => broker.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy = new FaultProxy({ targetPort: (server.address() as net.AddressInfo).port });
  await proxy.start();
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true);
  await proxy.stop();
  await new Promise<void>((r) => broker.close(() => r()));
  await new Promise<void>((r) => server.close(() => r()));
});

async function connect(clientId: string, port = proxy.port): Promise<MqttClient> {
  const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 50, connectTimeout: 2000 });
  clients.push(c);
  await once(c as unknown as EventEmitter, 'connect');
  return c;
}

function nextMessage(c: MqttClient, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no message')), timeoutMs);
    c.once('message', (_topic, payload) => {
      clearTimeout(t);
      resolve(payload.toString());
    });
  });
}

function collect(c: MqttClient): string[] {
  const got: string[] = [];
  c.on('message', (_t, p) => got.push(p.toString()));
  return got;
}

describe('fault proxy', () => {
  it('forwards MQTT both ways and learns each client id', async () => {
    const sub = await connect('box-a');
    await sub.subscribeAsync('t/1', { qos: 1 });
    const pub = await connect('box-b');
    const got = nextMessage(sub);
    await pub.publishAsync('t/1', 'hello', { qos: 1 });
    expect(await got).toBe('hello');
    expect(proxy.openLinks).toBe(2);
  });

  it('drops every connection; clients come back through it', async () => {
    const c = await connect('box-a');
    const reconnected = once(c as unknown as EventEmitter, 'connect');
    proxy.dropAll();
    await reconnected;
    expect(proxy.counts).toMatchObject({ drops: 1, connections: 2 });
  });

  it('cuts one box and refuses it for a while, leaving others alone', async () => {
    const a = await connect('box-a');
    const b = await connect('box-b');
    let bClosed = false;
    b.on('close', () => (bClosed = true));
    const aClosed = once(a as unknown as EventEmitter, 'close');
    proxy.cut('box-a', 400);
    await aClosed;
    const started = Date.now();
    await once(a as unknown as EventEmitter, 'connect');
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(bClosed).toBe(false);
    expect(proxy.counts.cuts).toBe(1);
  });

  it('holds traffic in a black hole and delivers it after', async () => {
    const sub = await connect('box-a');
    await sub.subscribeAsync('t/1', { qos: 1 });
    const pub = await connect('box-b');
    const arrived = nextMessage(sub).then((m) => ({ m, at: Date.now() }));
    proxy.blackHole(300);
    const sent = Date.now();
    pub.publish('t/1', 'late', { qos: 1 });
    // Held, not lost: it arrives, and not before the hole closed (timed at arrival, no sleep-then-look).
    const { m, at } = await arrived;
    expect(m).toBe('late');
    expect(at - sent).toBeGreaterThanOrEqual(250);
  });

  it('duplicates PUBLISH packets when asked', async () => {
    const sub = await connect('box-a', proxy.port);
    await sub.subscribeAsync('t/1', { qos: 0 });
    const pub = await connect('box-b');
    const got = collect(sub);
    proxy.setDuplicateRate(1);
    pub.publish('t/1', 'twice', { qos: 0 });
    await expect.poll(() => got.length, { timeout: 3000 }).toBeGreaterThanOrEqual(2);
    expect(got.every((m) => m === 'twice')).toBe(true);
    expect(proxy.counts.duplicatedPublishes).toBeGreaterThan(0);
  });

  it('adds latency', async () => {
    const sub = await connect('box-a');
    await sub.subscribeAsync('t/1', { qos: 0 });
    const pub = await connect('box-b');
    proxy.setDelay(200);
    const started = Date.now();
    const got = nextMessage(sub);
    pub.publish('t/1', 'slow', { qos: 0 });
    expect(await got).toBe('slow');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('refuses a target off the loopback', () => {
    expect(() => new FaultProxy({ targetPort: 1883, targetHost: '10.0.0.1' })).toThrow(/loopback only/);
  });
});

describe('MQTT framing', () => {
  it('reassembles packets split across chunks and reads the CONNECT client id', () => {
    // CONNECT v3.1.1, client id "box-7", clean session, keep-alive 60
    const id = Buffer.from('box-7');
    const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from('MQTT'), Buffer.from([4, 2, 0, 60, 0, id.length]), id]);
    const connect = Buffer.concat([Buffer.from([0x10, body.length]), body]);
    const pingreq = Buffer.from([0xc0, 0]);
    const stream = Buffer.concat([connect, pingreq]);
    const framer = new MqttFramer();
    const packets = [...framer.push(stream.subarray(0, 5)), ...framer.push(stream.subarray(5, 20)), ...framer.push(stream.subarray(20))];
    expect(packets.map((p) => p.length)).toEqual([connect.length, 2]);
    expect(connectClientId(packets[0]!)).toBe('box-7');
    expect(connectClientId(packets[1]!)).toBeUndefined();
  });
});
