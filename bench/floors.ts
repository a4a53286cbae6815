import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EventEmitter, once } from 'node:events';
import { Aedes } from 'aedes';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';

/**
 * The physical floors a payment cannot beat on this machine: one MQTT QoS 1 round trip through an
 * embedded aedes broker (publish → a service echoes → receive), and one durable SQLite commit
 * (WAL, synchronous=FULL) on the disk the journals live on.
 */
export interface EchoBroker {
  url: string;
  close(): Promise<void>;
}

/** aedes on loopback TCP with TCP_NODELAY on both ends, plus an echo service: up/<id> → down/<id>. */
export async function startEchoBroker(): Promise<EchoBroker> {
  const broker = await Aedes.createBroker({ drainTimeout: 5000 });
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    broker.handle(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const echo = await connectNoDelay(url, 'echo');
  await echo.subscribeAsync('floor/up/+', { qos: 1 });
  echo.on('message', (topic, payload) => echo.publish(topic.replace('/up/', '/down/'), payload, { qos: 1 }));
  return {
    url,
    async close() {
      await echo.endAsync(true);
      await new Promise<void>((r) => broker.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function connectNoDelay(url: string, clientId: string, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = mqtt.connect(url, { clientId, reconnectPeriod: 1000, ...opts });
  c.on('connect', () => (c.stream as net.Socket).setNoDelay?.(true));
  await once(c as unknown as EventEmitter, 'connect');
  (c.stream as net.Socket).setNoDelay?.(true);
  return c;
}

/** One client: `n` sequential QoS 1 round trips; returns each in ms. */
export async function mqttRoundTrips(client: MqttClient, id: string, n: number): Promise<number[]> {
  await client.subscribeAsync(`floor/down/${id}`, { qos: 1 });
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    const back = once(client as unknown as EventEmitter, 'message');
    client.publish(`floor/up/${id}`, `{"i":${i}}`, { qos: 1 });
    await back;
    samples.push(performance.now() - started);
  }
  return samples;
}

export interface CommitFloor {
  commit(): number;
  close(): void;
}

/** A journal-shaped table on `dir`'s disk; each commit() is one durable transaction, timed in ms. */
export function openCommitFloor(dir = os.tmpdir()): CommitFloor {
  const tmp = mkdtempSync(path.join(dir, 'floor-'));
  const db = new Database(path.join(tmp, 'floor.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, state TEXT NOT NULL, at INTEGER NOT NULL)');
  const insert = db.prepare('INSERT INTO t (state, at) VALUES (?, ?)');
  return {
    commit() {
      const started = performance.now();
      insert.run('CREATED', Date.now());
      return performance.now() - started;
    },
    close() {
      db.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
