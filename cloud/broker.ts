import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { ALL_UP_FILTER, DOWN_KINDS, deviceDownFilter, downTopic, parseTopic } from '../protocol/index.js';
import { digest, generateSecret, sameDigest } from './credentials.js';
import { DeviceAuthenticator } from './device-auth.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { CloudStore } from './store.js';

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) with the cloud's identity rules: a box is its
 * device id, may publish only under its own `up/` and subscribe only to its own `down/`. The
 * cloud's own services connect as one privileged client whose credentials are made at start and
 * kept only as a digest here (the plain password lives in the service's memory, nowhere else).
 */
export interface BrokerDeps {
  store: CloudStore;
  logger: Logger;
  metrics: Metrics;
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string } | undefined;
  drainTimeoutMs: number;
}

export interface ServiceCredentials {
  clientId: string;
  username: string;
  password: string;
}

export interface BrokerEvents {
  onDeviceConnected?: (deviceId: string, persistentSession: boolean) => void;
  /** A box subscribed (granted): from now on it receives what is sent to it. */
  onDeviceSubscribed?: (deviceId: string) => void;
  onDeviceDisconnected?: (deviceId: string) => void;
}

export interface EmbeddedBroker {
  port: number;
  url: string;
  /** PEM of the TLS certificate, so the in-process service client can pin it. */
  caPem: string | undefined;
  service: ServiceCredentials;
  /** Who really published this message, when the broker saw it (the service's second check). */
  publisherOf(topic: string, payload: Buffer): string | undefined;
  disconnect(deviceId: string): void;
  setEvents(events: BrokerEvents): void;
  /** Stop accepting new connections; existing ones keep working. */
  stopAccepting(): Promise<void>;
  close(): Promise<void>;
}

/** How long the broker remembers a publisher for the service's check. */
const PUBLISHER_TTL_MS = 30_000;

export async function startBroker(deps: BrokerDeps): Promise<EmbeddedBroker> {
  const { logger, metrics } = deps;
  const auth = new DeviceAuthenticator(deps);
  const service: ServiceCredentials = { clientId: `_cloud_${randomBytes(6).toString('hex')}`, username: '', password: generateSecret() };
  service.username = service.clientId;
  const serviceDigest = digest(service.password);
  const privileged = new WeakSet<Client>();
  const publishers = new PublisherLog();
  let events: BrokerEvents = {};

  const aedes = await Aedes.createBroker({
    drainTimeout: deps.drainTimeoutMs,
    authenticate(client, username, password, done) {
      if (client.id === service.clientId) {
        const ok = username === service.username && password !== undefined && sameDigest(digest(password), serviceDigest);
        if (ok) privileged.add(client);
        return done(ok ? null : refusal(4, 'bad service credentials'), ok);
      }
      auth.check(client.id, username, password).then(
        (v) => (v.ok ? done(null, true) : done(refusal(v.returnCode, v.why), false)),
        (err: Error) => {
          logger.error({ err: err.message }, 'authentication failed with an internal error');
          done(refusal(3, 'server unavailable'), false);
        },
      );
    },
    authorizePublish(client, packet, cb) {
      const why = client ? publishRefusal(client, packet, privileged.has(client)) : 'will of a departed client';
      if (!why) return cb(null);
      metrics.inc('publish_refused_total');
      logger.warn({ deviceId: client?.id, topic: packet.topic.slice(0, 120), why }, 'publish refused; connection closed');
      cb(new Error(why));
    },
    authorizeSubscribe(client, sub, cb) {
      const why = subscribeRefusal(client, sub, privileged.has(client));
      if (!why) return cb(null, sub);
      metrics.inc('subscribe_refused_total');
      logger.warn({ deviceId: client.id, topic: sub.topic.slice(0, 120), why }, 'subscription refused');
      cb(null, null);
    },
  });

  aedes.on('publish', (packet, client) => {
    if (client && !privileged.has(client)) publishers.record(packet.topic, packet.payload as Buffer, client.id);
  });
  aedes.on('client', (client) => {
    if (!privileged.has(client)) events.onDeviceConnected?.(client.id, !client.clean);
  });
  aedes.on('subscribe', (subs, client) => {
    if (client && !privileged.has(client) && subs.length > 0) events.onDeviceSubscribed?.(client.id);
  });
  aedes.on('clientDisconnect', (client) => {
    if (!privileged.has(client)) events.onDeviceDisconnected?.(client.id);
  });
  aedes.on('clientError', (client, err) => logger.debug({ deviceId: client.id, err: err.message }, 'client error'));

  const caPem = deps.tls ? readFileSync(deps.tls.certFile, 'utf8') : undefined;
  const server = listenerFor(deps, aedes);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const sweeper = setInterval(() => publishers.sweep(Date.now()), PUBLISHER_TTL_MS).unref();

  // net.Server#close stops accepting at once but calls back only when the last connection ends.
  const serverClosed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  const stopAccepting = async () => {
    if (server.listening) server.close();
  };
  return {
    port,
    url: `${deps.tls ? 'mqtts' : 'mqtt'}://${deps.host}:${port}`,
    caPem,
    service,
    publisherOf: (topic, payload) => publishers.take(topic, payload),
    disconnect(deviceId) {
      auth.forget(deviceId);
      (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[deviceId]?.close();
    },
    setEvents(e) {
      events = e;
    },
    stopAccepting,
    async close() {
      clearInterval(sweeper);
      await stopAccepting();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await serverClosed;
    },
  };
}

function refusal(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function listenerFor(deps: BrokerDeps, aedes: Aedes): Server {
  // TCP_NODELAY on the broker's sockets: without it Nagle + delayed ACK add ~40 ms per hop.
  const accept = (socket: Socket) => {
    socket.setNoDelay(true);
    aedes.handle(socket);
  };
  if (!deps.tls) return createServer(accept);
  return createTlsServer({ cert: readFileSync(deps.tls.certFile), key: readFileSync(deps.tls.keyFile) }, accept);
}

/** Null when allowed, else why not. A device: own `up/` only. The service: any device's `down/`. */
function publishRefusal(client: Client, packet: PublishPacket, isService: boolean): string | null {
  let t;
  try {
    t = parseTopic(packet.topic);
  } catch {
    return 'topic is not a scanbox topic';
  }
  if (isService) return t.direction === 'down' ? null : 'the service publishes only on down/ topics';
  if (t.direction !== 'up') return 'a device publishes only on its up/ topics';
  return t.deviceId === client.id ? null : "a device may not publish on another device's topics";
}

function subscribeRefusal(client: Client, sub: Subscription, isService: boolean): string | null {
  if (isService) return sub.topic === ALL_UP_FILTER ? null : `the service subscribes only to ${ALL_UP_FILTER}`;
  const own = new Set([deviceDownFilter(client.id), ...DOWN_KINDS.map((k) => downTopic(client.id, k))]);
  return own.has(sub.topic) ? null : "a device may subscribe only to its own down/ topics";
}

/** Recent (topic, payload) → publishing client id, consumed by the service when the message arrives. */
class PublisherLog {
  private readonly seen = new Map<string, { clientId: string; at: number }>();

  private key(topic: string, payload: Buffer): string {
    return `${topic}\n${digest(payload).toString('base64')}`;
  }

  record(topic: string, payload: Buffer, clientId: string): void {
    this.seen.set(this.key(topic, payload), { clientId, at: Date.now() });
  }

  take(topic: string, payload: Buffer): string | undefined {
    const k = this.key(topic, payload);
    const hit = this.seen.get(k);
    this.seen.delete(k);
    return hit?.clientId;
  }

  sweep(now: number): void {
    for (const [k, v] of this.seen) if (now - v.at > PUBLISHER_TTL_MS) this.seen.delete(k);
  }
}
