import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { DeviceAuthenticator } from './device-auth.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { MqttEdge, type MqttLimits } from './mqtt-edge.js';
import { embeddedServiceLink, type ServiceLink } from './service-link.js';
import { publishRefusal, subscribeRefusal } from './topic-rules.js';

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) with the cloud's identity rules: a box is its
 * device id, may publish only under its own `up/` and subscribe only to its own `down/`. The
 * cloud's own services are in-process subscribers (service-link.ts), not clients: nothing on the
 * network can log in as them.
 */
const LISTEN_BACKLOG = 8192;

export interface BrokerDeps {
  auth: DeviceAuthenticator;
  logger: Logger;
  metrics: Metrics;
  host: string;
  port: number;
  tls?: { certFile: string; keyFile: string } | undefined;
  drainTimeoutMs: number;
  mqttLimits: MqttLimits;
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
  /** The services' side of the broker: up/ messages in, down/ messages out. */
  serviceLink: ServiceLink;
  disconnect(deviceId: string): void;
  setEvents(events: BrokerEvents): void;
  /** Stop accepting new connections; existing ones keep working. */
  stopAccepting(): Promise<void>;
  close(): Promise<void>;
}

export async function startBroker(deps: BrokerDeps): Promise<EmbeddedBroker> {
  const { logger, metrics, auth } = deps;
  let events: BrokerEvents = {};

  const aedes = await Aedes.createBroker({
    drainTimeout: deps.drainTimeoutMs,
    // aedes' own timer stops at the CONNECT; the edge's runs until the CONNACK (same deadline).
    connectTimeout: deps.mqttLimits.connectTimeoutMs,
    authenticate(client, username, password, done) {
      auth.check(client.id, username, password, remoteAddress(client)).then(
        (v) => (v.ok ? done(null, true) : done(refusal(v.returnCode, v.why), false)),
        (err: Error) => {
          logger.error({ err: err.message }, 'authentication failed with an internal error');
          done(refusal(3, 'server unavailable'), false);
        },
      );
    },
    authorizePublish(client, packet, cb) {
      const why = client ? publishRefusal(client.id, packet.topic) : 'will of a departed client';
      if (!why) return cb(null);
      metrics.inc('publish_refused_total');
      logger.warn({ deviceId: client?.id, topic: packet.topic.slice(0, 120), why }, 'publish refused; connection closed');
      cb(new Error(why));
    },
    authorizeSubscribe(client, sub, cb) {
      const why = subscribeRefusal(client.id, sub.topic);
      if (!why) return cb(null, sub);
      metrics.inc('subscribe_refused_total');
      logger.warn({ deviceId: client.id, topic: sub.topic.slice(0, 120), why }, 'subscription refused');
      cb(null, null);
    },
  });

  aedes.on('client', (client) => events.onDeviceConnected?.(client.id, !client.clean));
  aedes.on('subscribe', (subs, client) => {
    if (client && subs.length > 0) events.onDeviceSubscribed?.(client.id);
  });
  aedes.on('clientDisconnect', (client) => events.onDeviceDisconnected?.(client.id));
  aedes.on('clientError', (client, err) => logger.debug({ deviceId: client.id, err: err.message }, 'client error'));

  const serviceLink = await embeddedServiceLink(aedes);
  const server = listenerFor(deps, aedes);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A restarted cloud meets its whole fleet at once: Node's default backlog of 511 drops SYNs
    // past it, and a dropped SYN costs its box a 1 s, 3 s, 7 s… kernel retransmit (the kernel caps
    // this at net.core.somaxconn).
    server.listen({ port: deps.port, host: deps.host, backlog: LISTEN_BACKLOG }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  // net.Server#close stops accepting at once but calls back only when the last connection ends.
  const serverClosed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  const stopAccepting = async () => {
    if (server.listening) server.close();
  };
  return {
    port,
    url: `${deps.tls ? 'mqtts' : 'mqtt'}://${deps.host}:${port}`,
    serviceLink,
    disconnect(deviceId) {
      (aedes as unknown as { clients: Record<string, Client | undefined> }).clients[deviceId]?.close();
    },
    setEvents(e) {
      events = e;
    },
    stopAccepting,
    async close() {
      await stopAccepting();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await serverClosed;
    },
  };
}

/** The connection's source address, for the per-address login backoff. */
function remoteAddress(client: Client): string {
  const conn = client.conn as { remoteAddress?: string; socket?: { remoteAddress?: string } };
  return conn.remoteAddress ?? conn.socket?.remoteAddress ?? 'unknown';
}

function refusal(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

function listenerFor(deps: BrokerDeps, aedes: Aedes): Server {
  const edge = new MqttEdge({ limits: deps.mqttLimits, metrics: deps.metrics, logger: deps.logger });
  // TCP_NODELAY on the broker's sockets: without it Nagle + delayed ACK add ~40 ms per hop.
  const accept = (socket: Socket) => {
    socket.setNoDelay(true);
    const conn = edge.guard(socket);
    if (conn) aedes.handle(conn);
  };
  if (!deps.tls) return createServer(accept);
  // A TLS socket reaches `accept` only after its handshake: that gets the same deadline.
  const handshakeTimeout = deps.mqttLimits.connectTimeoutMs;
  return createTlsServer({ cert: readFileSync(deps.tls.certFile), key: readFileSync(deps.tls.keyFile), handshakeTimeout }, accept);
}
