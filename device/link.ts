import type { IClientOptions, MqttClient } from 'mqtt';
import {
  ErrorCode,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  backoffDelay,
  decodeDown,
  deviceDownFilter,
  encodeUp,
  parseTopic,
  reencodeUp,
  salvageMessageId,
  upTopic,
  type AnyVersion,
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
//
// Clouds released before tolerant reading refuse any `v` but 1 with UNSUPPORTED_VERSION. When the
// cloud refuses the heartbeat (or any message this box sent in its own version on this connection)
// that way, the box speaks v1 to it until it reconnects: up/ shapes are the same in v1 but for `v`.
// What was refused is sent again in v1 at once, so the queries and acks sent on connect, before the
// answer came, are not lost. The last will is always v1: it is registered before any answer, and
// every cloud reads it (the cloud takes no announcement from a will).

const STOP_GRACE_MS = 2_000;
/** Messages sent in this box's own version that may still be refused, by id: the newest few of the connection. */
const REMEMBERED_OWN_VERSION = 64;

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
  /** The protocol version spoken on this connection: this box's own, or v1 to a cloud that refused it. */
  private speaking: number = PROTOCOL_VERSION;
  /** Sent in this box's own version on this connection, by message id, so a refusal of its `v` can be answered. */
  private readonly sentInOwnVersion = new Map<string, { topic: string; payload: string }>();
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
    this.client.publish(topic, this.spoken(topic, payload), { qos: 1 }, (err) => {
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

  /** v1, which every cloud reads: the will is registered before the cloud could refuse anything newer. */
  private will(): AnyVersion<HeartbeatMessage> {
    const status = { ...this.opts.status(), scanner: 'closed', ecr: 'closed' } as const;
    return { v: MIN_PROTOCOL_VERSION, id: OFFLINE_WILL_ID, ts: this.opts.clock.now(), status };
  }

  private onConnect(client: MqttClient): void {
    const stream = client.stream as { setNoDelay?: (on: boolean) => void };
    stream.setNoDelay?.(true);
    this.failures = 0;
    this.newerCloudSeen = false;
    // A new connection may be to another cloud (or a newer one): announce this box's own version again.
    this.speaking = PROTOCOL_VERSION;
    this.sentInOwnVersion.clear();
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
    const msg: AnyVersion<HeartbeatMessage> = { v: this.speaking, id: `hb-${this.opts.clock.now()}-${++this.seq}`, ts: this.opts.clock.now(), status: this.opts.status() };
    const payload = this.encodeHeartbeat(msg);
    if (payload !== null) {
      const topic = upTopic(this.opts.deviceId, 'heartbeat');
      this.client.publish(topic, this.spoken(topic, payload), { qos: 1 }, (err) => {
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
    if (decoded.kind === 'error' && this.ownVersionRefused(decoded.msg as DownMessage<'error'>)) return;
    this.opts.handlers.onDown(decoded.kind, decoded.msg);
  }

  /** Read all the same, by the fields this box knows; but the cloud broke the rule, so say so. */
  private noteCloudVersion(v: number): void {
    if (v <= this.speaking || this.newerCloudSeen) return;
    this.newerCloudSeen = true;
    this.opts.logger.warn({ cloudVersion: v, boxVersion: this.speaking }, 'cloud sent a newer protocol version than this box announced; reading the fields it knows');
  }

  /**
   * The payload as it leaves on this connection: as encoded (the box's own version, remembered in
   * case the cloud refuses it) or, to a cloud that refused that version, again in v1.
   */
  private spoken(topic: string, payload: string): string {
    if (this.speaking === PROTOCOL_VERSION) {
      const id = salvageMessageId(payload);
      if (id !== undefined) {
        this.sentInOwnVersion.delete(id);
        this.sentInOwnVersion.set(id, { topic, payload });
        if (this.sentInOwnVersion.size > REMEMBERED_OWN_VERSION) this.sentInOwnVersion.delete(this.sentInOwnVersion.keys().next().value!);
      }
      return payload;
    }
    try {
      const t = parseTopic(topic);
      return t.direction === 'up' ? reencodeUp(t.kind, payload, this.speaking) : payload;
    } catch (err) {
      // Up/ shapes are the same in v1 but for `v`, so this is a defect: the cloud refuses it, no money moves.
      this.opts.logger.error({ topic, err: (err as Error).message, code: (err as { code?: string }).code }, `message cannot be said in protocol v${this.speaking}; sent as it is`);
      return payload;
    }
  }

  /**
   * The cloud refused the `v` of a message this box sent in its own version on this connection: it
   * is a cloud released before tolerant reading (a later one reads every v ≥ 1). Speak v1 to it
   * until the next connection (one warn line), and send that message again in v1. Returns whether
   * the error was this, and so is handled here.
   */
  private ownVersionRefused(m: DownMessage<'error'>): boolean {
    if (m.code !== ErrorCode.UNSUPPORTED_VERSION || m.refId === undefined) return false;
    const refused = this.sentInOwnVersion.get(m.refId);
    if (!refused || !this.client) return false;
    this.sentInOwnVersion.delete(m.refId);
    if (this.speaking !== MIN_PROTOCOL_VERSION) {
      // What else was sent in v2 before this answer stays remembered: its refusal is answered the same way.
      this.speaking = MIN_PROTOCOL_VERSION;
      this.opts.logger.warn(
        { boxVersion: PROTOCOL_VERSION, speaking: MIN_PROTOCOL_VERSION, refId: m.refId, cloudSaid: m.message },
        `the cloud does not read protocol v${PROTOCOL_VERSION} (UNSUPPORTED_VERSION): speaking v${MIN_PROTOCOL_VERSION} to it until the next connection`,
      );
    }
    const heartbeat = refused.topic === upTopic(this.opts.deviceId, 'heartbeat');
    this.opts.logger.info({ topic: refused.topic, refId: m.refId }, `sending the refused message again in protocol v${this.speaking}`);
    if (heartbeat) {
      // A fresh one: the old cloud marks the box online now, not an interval later.
      this.heartbeat();
    } else {
      this.client.publish(refused.topic, this.spoken(refused.topic, refused.payload), { qos: 1 }, (err) => {
        if (!err) this.opts.handlers.onContact();
      });
    }
    return true;
  }

  /** Strict on sending: an off-contract heartbeat is a defect of this box, logged and never sent. */
  private encodeHeartbeat(msg: AnyVersion<HeartbeatMessage>): string | null {
    try {
      return encodeUp('heartbeat', msg, msg.v);
    } catch (err) {
      this.opts.logger.error({ err: (err as Error).message, code: (err as { code?: string }).code }, 'heartbeat is off-contract; not sent');
      return null;
    }
  }
}
