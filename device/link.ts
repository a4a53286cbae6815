import type { IClientOptions, MqttClient } from 'mqtt';
import {
  PROTOCOL_VERSION,
  backoffDelay,
  decodeDown,
  deviceDownFilter,
  encodeUp,
  parseTopic,
  upTopic,
  type BackoffPolicy,
  type DeviceStatus,
  type DownKind,
  type DownMessage,
  type HeartbeatMessage,
  OFFLINE_WILL_ID,
} from '../protocol/index.js';
import type { Logger } from 'pino';
import type { Clock } from '../protocol/clock.js';
import type { Publisher } from './outbox.js';

// The last will is a heartbeat with protocol's OFFLINE_WILL_ID and scanner/ECR `closed`: schema-valid
// for any cloud, and marked offline at once by one that knows the id.
//
// The heartbeat's `v` is this box's protocol version: its announcement. It adds no field, so even a
// cloud that still refuses unknown fields reads it (protocol/README.md "Evolution rules").

const STOP_GRACE_MS = 2_000;

export type MqttConnect = (url: string, opts: IClientOptions) => MqttClient;

export interface LinkHandlers {
  onConnect(): void;
  onClose(): void;
  onDown<K extends DownKind>(kind: K, msg: DownMessage<K>): void;
  /** A heartbeat or outbox row was acknowledged: the cloud's broker is reachable. */
  onContact(): void;
}

export interface CloudLinkOptions {
  url: string;
  deviceId: string;
  secret: string;
  heartbeatIntervalS: number;
  backoff: BackoffPolicy;
  connectTimeoutMs: number;
  keepaliveS: number;
  /** PEM of a private CA for an mqtts:// broker; the system roots otherwise. */
  ca?: string;
  clock: Clock;
  random: () => number;
  connect: MqttConnect;
  logger: Logger;
  status(): DeviceStatus;
  handlers: LinkHandlers;
}

/**
 * The MQTT link to the cloud: client id = username = device id, password = secret, QoS 1, a
 * persistent session, TCP_NODELAY, and reconnects with full-jitter backoff (mqtt.js's own fixed
 * period is off) so a fleet that lost the cloud together does not come back together.
 */
export class CloudLink implements Publisher {
  private client: MqttClient | null = null;
  private failures = 0;
  private reconnectTimer: unknown = null;
  private heartbeatTimer: unknown = null;
  private stopped = false;
  private seq = 0;
  /** A cloud must not send newer shapes than this box announced; said once per connection if it does. */
  private newerCloudSeen = false;
  connected = false;

  constructor(private readonly opts: CloudLinkOptions) {}

  start(): void {
    const o = this.opts;
    const will = this.encodeHeartbeat(this.will());
    const client = o.connect(o.url, {
      clientId: o.deviceId,
      username: o.deviceId,
      password: o.secret,
      clean: false,
      protocolVersion: 4,
      keepalive: o.keepaliveS,
      connectTimeout: o.connectTimeoutMs,
      reconnectPeriod: 0,
      ...(o.ca ? { ca: o.ca } : {}),
      // Without a valid will the cloud still marks the box stale after three silent intervals.
      ...(will === null ? {} : { will: { topic: upTopic(o.deviceId, 'heartbeat'), payload: Buffer.from(will), qos: 1, retain: false } }),
    });
    this.client = client;
    client.on('connect', () => this.onConnect(client));
    client.on('close', () => this.onClose());
    client.on('error', (err) => o.logger.warn({ err: err.message }, 'mqtt error'));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  publish(topic: string, payload: string, done: (err?: Error) => void): void {
    if (!this.client) return done(new Error('link not started'));
    this.client.publish(topic, payload, { qos: 1 }, (err) => {
      if (!err) this.opts.handlers.onContact();
      done(err ?? undefined);
    });
  }

  /** Drop the connection so it is re-established (mqtt.js then re-sends what is in flight). */
  reconnectNow(why: string): void {
    if (!this.client || !this.connected) return;
    this.opts.logger.warn({ why }, 'dropping the cloud connection to recover');
    this.client.stream.destroy();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.reconnectTimer);
    this.opts.clock.clearTimeout(this.heartbeatTimer);
    const client = this.client;
    this.client = null;
    this.connected = false;
    if (!client) return;
    // A clean DISCONNECT (no will), unless the broker does not take it within a moment.
    const clean = client.endAsync(false).catch(() => undefined);
    let timer: unknown = null;
    const late = new Promise<'late'>((resolve) => (timer = this.opts.clock.setTimeout(() => resolve('late'), STOP_GRACE_MS)));
    const first = await Promise.race([clean, late]);
    this.opts.clock.clearTimeout(timer);
    if (first === 'late') await client.endAsync(true).catch(() => undefined);
  }

  private will(): HeartbeatMessage {
    const status = { ...this.opts.status(), scanner: 'closed', ecr: 'closed' } as const;
    return { v: PROTOCOL_VERSION, id: OFFLINE_WILL_ID, ts: this.opts.clock.now(), status };
  }

  private onConnect(client: MqttClient): void {
    const stream = client.stream as { setNoDelay?: (on: boolean) => void };
    stream.setNoDelay?.(true);
    this.failures = 0;
    this.newerCloudSeen = false;
    this.opts.logger.info({ url: this.opts.url }, 'cloud link connected');
    client.subscribe(deviceDownFilter(this.opts.deviceId), { qos: 1 }, (err) => {
      if (err) {
        // Without the down/ subscription no result can arrive: drop the connection and try again.
        // The level says what happened. An error with a SUBACK attached (mqtt.js's ErrorWithSubackPacket:
        // return code 128) is the broker refusing this box its own topic, a defect. Without one (mqtt.js's
        // "Connection closed") the link dropped before the answer: a network fault the reconnect handles.
        const suback = (err as { packet?: { granted?: unknown } }).packet;
        if (suback) {
          this.opts.logger.error({ err: err.message, granted: suback.granted }, 'broker refused the down/ subscription; reconnecting');
        } else {
          this.opts.logger.warn({ err: err.message }, 'subscribe to down/ cut short by a dropped connection; reconnecting');
        }
        return client.stream.destroy();
      }
      this.connected = true;
      this.heartbeat();
      this.opts.handlers.onConnect();
    });
  }

  private onClose(): void {
    const was = this.connected;
    this.connected = false;
    this.opts.clock.clearTimeout(this.heartbeatTimer);
    if (was) this.opts.handlers.onClose();
    if (this.stopped) return;
    const delay = backoffDelay(this.failures++, this.opts.random, this.opts.backoff);
    this.opts.logger.warn({ retryInMs: delay }, 'cloud link closed; reconnecting');
    this.opts.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = this.opts.clock.setTimeout(() => {
      if (!this.stopped) this.client?.reconnect();
    }, delay);
  }

  private heartbeat(): void {
    this.opts.clock.clearTimeout(this.heartbeatTimer);
    if (!this.connected || !this.client) return;
    const msg: HeartbeatMessage = { v: PROTOCOL_VERSION, id: `hb-${this.opts.clock.now()}-${++this.seq}`, ts: this.opts.clock.now(), status: this.opts.status() };
    const payload = this.encodeHeartbeat(msg);
    if (payload !== null) {
      this.client.publish(upTopic(this.opts.deviceId, 'heartbeat'), payload, { qos: 1 }, (err) => {
        if (!err) this.opts.handlers.onContact();
      });
    }
    this.heartbeatTimer = this.opts.clock.setTimeout(() => this.heartbeat(), this.opts.heartbeatIntervalS * 1000);
  }

  private onMessage(topic: string, payload: Buffer): void {
    let decoded: { kind: DownKind; msg: DownMessage };
    try {
      const t = parseTopic(topic);
      if (t.direction !== 'down' || t.deviceId !== this.opts.deviceId) throw new Error("not this box's down/ topic");
      decoded = { kind: t.kind, msg: decodeDown(t.kind, payload) };
    } catch (err) {
      // A bad message from the cloud is logged and dropped; it never touches money state.
      this.opts.logger.warn({ topic, err: (err as Error).message, code: (err as { code?: string }).code }, 'bad message from the cloud; ignored');
      return;
    }
    this.opts.handlers.onContact();
    this.noteCloudVersion(decoded.msg.v);
    this.opts.handlers.onDown(decoded.kind, decoded.msg);
  }

  /** Read all the same, by the fields this box knows; but the cloud broke the rule, so say so. */
  private noteCloudVersion(v: number): void {
    if (v <= PROTOCOL_VERSION || this.newerCloudSeen) return;
    this.newerCloudSeen = true;
    this.opts.logger.warn({ cloudVersion: v, boxVersion: PROTOCOL_VERSION }, 'cloud sent a newer protocol version than this box announced; reading the fields it knows');
  }

  /** Strict on sending: an off-contract heartbeat is a defect of this box, logged and never sent. */
  private encodeHeartbeat(msg: HeartbeatMessage): string | null {
    try {
      return encodeUp('heartbeat', msg);
    } catch (err) {
      this.opts.logger.error({ err: (err as Error).message, code: (err as { code?: string }).code }, 'heartbeat is off-contract; not sent');
      return null;
    }
  }
}
