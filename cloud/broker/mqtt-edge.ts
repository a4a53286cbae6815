import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { ErrorCode, MAX_PAYLOAD_BYTES, ProtocolError, type ErrorCode as ErrorCodeT } from '../../protocol/index.js';
import { systemClock, type Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import { LogThrottle } from '../log-throttle.js';
import type { Metrics } from '../metrics.js';

/**
 * The guard between a client socket and aedes. aedes 1.x has no maximum packet size: its parser
 * keeps every byte of a packet until the packet is complete, so one CONNECT announcing 200 MB,
 * sent before any login, makes the cloud hold 200 MB. The guard reads each packet's fixed header as
 * the bytes stream past (nothing is buffered here) and cuts the socket as soon as a header announces
 * more than the protocol can legally carry, before aedes has buffered it. Until the broker has
 * accepted the login (a CONNACK with return code 0 on the way out) a connection is also held to a
 * byte budget, a deadline, and a per-address count.
 */

/**
 * Longest topic the guard lets through. The longest scanbox topic is 91 bytes:
 * `scanbox/v1/d/` (13) + a 64-character device id (DEVICE_ID_PATTERN) + `/down/progress` (14);
 * test/cloud/mqtt-edge.test.ts holds it under this bound. 256 leaves room for a
 * longer kind or root without a limit change; anything longer is no scanbox topic and would be
 * refused by the ACL anyway.
 */
export const MAX_TOPIC_BYTES = 256;
/** MQTT strings and binary fields carry a 2-byte length. */
const LEN = 2;
/** DEVICE_ID_PATTERN: client id = username = device id, at most 64 characters. */
const MAX_ID_BYTES = 64;
/** Secrets are 43 characters (32 random bytes, base64url); 128 leaves room for a longer scheme. */
const MAX_PASSWORD_BYTES = 128;
/** Type byte + a remaining length of at most 4 bytes. */
const MAX_FIXED_HEADER_BYTES = 5;

/** Largest remaining length after login: a PUBLISH of topic, packet id and the largest payload the protocol accepts. */
export const MAX_PACKET_BYTES = LEN + MAX_TOPIC_BYTES + 2 + MAX_PAYLOAD_BYTES;

/**
 * Largest remaining length of a CONNECT. Variable header: protocol name (`MQIsdp` of 3.1 is the
 * longer one), level, flags, keep-alive. Payload: client id, will topic, will message (a protocol
 * message, so at most MAX_PAYLOAD_BYTES), username, password.
 */
export const MAX_CONNECT_BYTES =
  LEN + 6 + 1 + 1 + 2 + (LEN + MAX_ID_BYTES) + (LEN + MAX_TOPIC_BYTES) + (LEN + MAX_PAYLOAD_BYTES) + (LEN + MAX_ID_BYTES) + (LEN + MAX_PASSWORD_BYTES);

/**
 * Bytes a connection may send before its login is accepted: the largest CONNECT, plus 1 KiB for
 * what a client may legally pipeline behind it before the CONNACK arrives (its SUBSCRIBE, a PINGREQ).
 */
export const PRE_AUTH_BYTES = MAX_FIXED_HEADER_BYTES + MAX_CONNECT_BYTES + 1024;

export interface MqttLimits {
  /** Largest remaining length of any packet but the CONNECT. */
  maxPacketBytes: number;
  /** Largest remaining length of the CONNECT. */
  maxConnectBytes: number;
  /** Bytes accepted from a socket before a successful CONNACK. */
  preAuthBytes: number;
  /** A connection without a successful CONNACK by then is cut. */
  connectTimeoutMs: number;
  /** Connections from one address that have not logged in yet, at once. */
  preAuthPerAddress: number;
}

export const DEFAULT_MQTT_LIMITS: Readonly<MqttLimits> = {
  maxPacketBytes: MAX_PACKET_BYTES,
  maxConnectBytes: MAX_CONNECT_BYTES,
  preAuthBytes: PRE_AUTH_BYTES,
  connectTimeoutMs: 10_000,
  preAuthPerAddress: 64,
};

export type CutReason = 'packet_too_large' | 'pre_auth_bytes' | 'connect_timeout' | 'pre_auth_per_address' | 'malformed_header' | 'not_connect_first';

const CUT_CODES: Record<CutReason, ErrorCodeT> = {
  packet_too_large: ErrorCode.PAYLOAD_TOO_LARGE,
  pre_auth_bytes: ErrorCode.PAYLOAD_TOO_LARGE,
  connect_timeout: ErrorCode.UNAUTHORIZED,
  pre_auth_per_address: ErrorCode.RATE_LIMITED,
  malformed_header: ErrorCode.SCHEMA_INVALID,
  not_connect_first: ErrorCode.UNAUTHORIZED,
};

const CONNECT = 1;
const AT_TYPE = 0;
const AT_LENGTH = 1;
const IN_BODY = 2;

/**
 * MQTT fixed headers of an incoming byte stream, chunk by chunk: type byte, remaining length
 * (1–4 bytes, 7 bits each), then `remaining` bytes skipped without being looked at, so a chunk
 * costs one step per packet in it, not one per byte.
 */
export class HeaderScanner {
  private state = AT_TYPE;
  private first = true;
  private remaining = 0;
  private multiplier = 1;
  private lengthBytes = 0;

  constructor(private readonly limits: Pick<MqttLimits, 'maxPacketBytes' | 'maxConnectBytes'>) {}

  /** Null while every header seen so far is acceptable; otherwise why the connection must be cut. */
  scan(chunk: Buffer): CutReason | null {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.state === IN_BODY) {
        const take = Math.min(this.remaining, n - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.state = AT_TYPE;
      } else if (this.state === AT_TYPE) {
        if (this.first && chunk[i]! >> 4 !== CONNECT) return 'not_connect_first';
        i++;
        this.state = AT_LENGTH;
        this.remaining = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else {
        const b = chunk[i++]!;
        this.remaining += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        if (++this.lengthBytes === 4 && b & 0x80) return 'malformed_header';
        if (b & 0x80) continue;
        const limit = this.first ? this.limits.maxConnectBytes : this.limits.maxPacketBytes;
        this.first = false;
        if (this.remaining > limit) return 'packet_too_large';
        this.state = this.remaining > 0 ? IN_BODY : AT_TYPE;
      }
    }
    return null;
  }
}

interface ConnectionHooks {
  /** `deviceId` only once the broker has accepted it: before that the id is a claim. */
  cut(why: CutReason, deviceId: string | undefined): void;
  /** Called once: on a successful CONNACK or on close, whichever comes first. */
  release(): void;
}

/**
 * What aedes gets instead of the socket. aedes reads it in paused mode (`read()` on 'readable'),
 * so the socket's 'data' goes through the scanner and is pushed here, with the socket paused while
 * aedes is behind. Writes go straight to the socket; before the login only, they are watched for
 * the CONNACK.
 */
export class GuardedConnection extends Duplex {
  /** Set by aedes (`conn.client = this`): names the box in the log line of a cut after its login. */
  client?: { id?: string | null };
  private readonly scanner: HeaderScanner;
  private authenticated = false;
  private preAuthBytes = 0;
  /** Bytes of `20 02 xx 00` (CONNACK, accepted) seen so far on the way out; -1: it was something else. */
  private connackSeen = 0;
  private released = false;
  private peerEnded = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly limits: MqttLimits,
    private readonly hooks: ConnectionHooks,
  ) {
    super();
    this.scanner = new HeaderScanner(limits);
    this.timer = setTimeout(() => this.cut('connect_timeout'), limits.connectTimeoutMs);
    this.timer.unref();
    socket.on('data', (chunk: Buffer) => this.incoming(chunk));
    socket.on('end', () => {
      this.peerEnded = true;
      this.push(null);
    });
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.socketClosed());
  }

  /** What code written against a net.Socket (`client.conn.remoteAddress`) expects to find. */
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  cut(why: CutReason): void {
    if (this.destroyed) return;
    this.hooks.cut(why, this.authenticated ? (this.client?.id ?? undefined) : undefined);
    this.destroy(new ProtocolError(CUT_CODES[why], `MQTT connection cut: ${why}`, { reason: why }));
  }

  private incoming(chunk: Buffer): void {
    if (this.destroyed) return;
    const bad = this.scanner.scan(chunk);
    if (bad) return this.cut(bad);
    if (!this.authenticated && (this.preAuthBytes += chunk.length) > this.limits.preAuthBytes) return this.cut('pre_auth_bytes');
    if (!this.push(chunk)) this.socket.pause();
  }

  override _read(): void {
    if (this.socket.isPaused()) this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (!this.authenticated) this.watchConnack(chunk);
    if (this.socket.write(chunk)) done();
    else this.socket.once('drain', () => done());
  }

  /** aedes corks while it writes a packet in pieces: one writev on the socket, as without the guard. */
  override _writev(chunks: { chunk: Buffer }[], done: (err?: Error | null) => void): void {
    this.socket.cork();
    let ok = true;
    for (let i = 0; i < chunks.length; i++) {
      const { chunk } = chunks[i]!;
      if (!this.authenticated) this.watchConnack(chunk);
      ok = this.socket.write(chunk);
    }
    this.socket.uncork();
    if (ok) done();
    else this.socket.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    clearTimeout(this.timer);
    this.release();
    this.socket.destroy();
    done(err);
  }

  /**
   * A peer that sends its last packets (a DISCONNECT, say) and closes at once: the socket is gone
   * before aedes has read them, so the end of the stream waits for aedes to read up to it (aedes
   * closes the client on 'end'), or the will would fire for a box that said goodbye.
   */
  private socketClosed(): void {
    if (!this.peerEnded || this.readableLength === 0) this.destroy();
    else this.once('end', () => this.destroy());
  }

  /** aedes writes nothing before the CONNACK, so the first four bytes out decide. */
  private watchConnack(chunk: Buffer): void {
    for (let i = 0; i < chunk.length && this.connackSeen >= 0 && this.connackSeen < 4; i++) {
      const b = chunk[i]!;
      const at = this.connackSeen;
      const fits = at === 0 ? b === 0x20 : at === 1 ? b === 0x02 : at === 2 ? b <= 1 : b === 0;
      this.connackSeen = fits ? at + 1 : -1;
    }
    if (this.connackSeen === 4) {
      this.authenticated = true;
      clearTimeout(this.timer);
      this.release();
    }
  }

  private release(): void {
    if (this.released) return;
    this.released = true;
    this.hooks.release();
  }
}

export interface MqttEdgeDeps {
  limits: MqttLimits;
  metrics: Metrics;
  logger: Logger;
  clock?: Clock;
  /** At most one warn line per address per interval about cut connections; the rest at debug. */
  logIntervalMs?: number;
}

/** One per listener: wraps each accepted socket, and counts each address's connections not logged in yet. */
export class MqttEdge {
  private readonly pending = new Map<string, number>();
  private readonly logs: LogThrottle;
  private readonly clock: Clock;

  constructor(private readonly deps: MqttEdgeDeps) {
    this.logs = new LogThrottle(deps.logIntervalMs ?? 60_000);
    this.clock = deps.clock ?? systemClock;
  }

  /** The stream to hand to aedes, or undefined when the socket was cut at once (nothing to hand). */
  guard(socket: Socket): GuardedConnection | undefined {
    const address = socket.remoteAddress;
    if (address === undefined || socket.destroyed) {
      // Gone before it was accepted: nothing to count.
      socket.destroy();
      return undefined;
    }
    const open = this.pending.get(address) ?? 0;
    if (open >= this.deps.limits.preAuthPerAddress) {
      this.record(address, 'pre_auth_per_address');
      socket.destroy();
      return undefined;
    }
    this.pending.set(address, open + 1);
    return new GuardedConnection(socket, this.deps.limits, {
      cut: (why, deviceId) => this.record(address, why, deviceId),
      release: () => this.release(address),
    });
  }

  /** Connections from `address` that have not logged in yet. */
  pendingFrom(address: string): number {
    return this.pending.get(address) ?? 0;
  }

  /** Addresses with such connections: the map holds no address at 0. */
  get pendingAddresses(): number {
    return this.pending.size;
  }

  private release(address: string): void {
    const open = (this.pending.get(address) ?? 1) - 1;
    if (open > 0) this.pending.set(address, open);
    else this.pending.delete(address);
  }

  private record(address: string, why: CutReason, deviceId?: string): void {
    this.deps.metrics.inc('mqtt_connections_cut_total', why);
    const fields = { address, why, ...(deviceId ? { deviceId } : {}) };
    const take = this.logs.take(address, this.clock.now());
    if (take) this.deps.logger.warn({ ...fields, suppressed: take.suppressed }, 'mqtt connection cut');
    else this.deps.logger.debug(fields, 'mqtt connection cut');
  }
}
