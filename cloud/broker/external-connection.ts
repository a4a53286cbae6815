import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';
import type { Logger } from '../log.js';

/**
 * One MQTT 5 connection of this worker to the external broker, as the user in the `--broker` URL.
 * Clean start with a session that ends with the connection: should the worker die, the broker
 * forgets its subscription once it notices (1.5 keepalives), and its share of the boxes' messages
 * goes to the other workers instead of queueing for a worker that is gone. mqtt.js reconnects
 * forever and subscribes again on each connection.
 */
export interface ExternalBrokerTarget {
  /** `mqtt(s)://user:password@host:port` */
  url: string;
  keepaliveS: number;
  /** PEM CA for an mqtts:// broker with a private CA. */
  caFile?: string | undefined;
  reconnectMs?: number;
  connectTimeoutMs?: number;
}

export interface ExternalBrokerAddress {
  /** The URL without its credentials: what boxes are given, and what logs may show. */
  publicUrl: string;
  port: number;
  username: string;
}

const DEFAULT_PORTS: Record<string, number> = { 'mqtt:': 1883, 'mqtts:': 8883 };

/** Refuses, before anything connects, a URL a worker could not log in with. */
export function parseBrokerUrl(url: string): ExternalBrokerAddress & { password: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, 'the broker URL is not a URL: expected mqtt(s)://user:password@host:port');
  }
  if (!(u.protocol in DEFAULT_PORTS)) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `the broker URL must be mqtt:// or mqtts://, not ${u.protocol}//`);
  if (!u.username || !u.password) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `the broker URL must carry the cloud's user and password: ${u.protocol}//user:password@${u.host}`);
  const port = u.port ? Number(u.port) : DEFAULT_PORTS[u.protocol]!;
  return { publicUrl: `${u.protocol}//${u.host}`, port, username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

/** Unique per process and role: two connections with one client id would take each other over. */
export function workerClientId(role: string): string {
  return `scanbox-cloud-${hostname().slice(0, 20)}-${process.pid}-${randomBytes(3).toString('hex')}-${role}`;
}

export async function connectExternal(target: ExternalBrokerTarget, role: string, logger: Logger, extra: IClientOptions = {}): Promise<MqttClient> {
  const addr = parseBrokerUrl(target.url);
  const client = mqtt.connect(addr.publicUrl, {
    protocolVersion: 5,
    clientId: workerClientId(role),
    username: addr.username,
    password: addr.password,
    clean: true,
    keepalive: target.keepaliveS,
    reconnectPeriod: target.reconnectMs ?? 1_000,
    connectTimeout: target.connectTimeoutMs ?? 10_000,
    properties: { sessionExpiryInterval: 0 },
    ...(target.caFile ? { ca: readFileSync(target.caFile) } : {}),
    ...extra,
  });
  let first = true;
  client.on('connect', () => {
    // Nagle + delayed ACK cost ~40 ms a hop (STACK-NOTES.md).
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    if (!first) logger.info({ broker: addr.publicUrl, role }, 'external broker connection back');
    first = false;
  });
  client.on('offline', () => logger.warn({ broker: addr.publicUrl, role }, 'external broker connection lost; reconnecting'));
  await new Promise<void>((resolve, reject) => {
    const connectTimeoutMs = target.connectTimeoutMs ?? 10_000;
    const timer = setTimeout(() => done(new ProtocolError(ErrorCode.CONFIG_INVALID, `no answer from the broker ${addr.publicUrl} within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      client.off('connect', ok);
      client.off('error', failed);
      if (!err) return resolve();
      client.end(true);
      reject(err);
    };
    const ok = () => done();
    const failed = (err: Error & { code?: number | string }) => {
      // A CONNACK refusal (4, 5; 134, 135 in MQTT 5) will not change by trying again.
      const refused = typeof err.code === 'number';
      done(
        refused
          ? new ProtocolError(ErrorCode.CONFIG_INVALID, `the broker ${addr.publicUrl} refused the cloud's login as ${addr.username} (${err.message}): check the user and password of --broker`)
          : new ProtocolError(ErrorCode.CONFIG_INVALID, `cannot reach the broker ${addr.publicUrl}: ${err.message}`),
      );
    };
    client.once('connect', ok);
    client.once('error', failed);
  });
  client.on('error', (err) => logger.warn({ broker: addr.publicUrl, role, err: err.message }, 'external broker connection error'));
  return client;
}
