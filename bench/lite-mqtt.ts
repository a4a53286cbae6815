import net from 'node:net';

/**
 * A deliberately small MQTT 3.1.1 client for load generation: CONNECT, SUBSCRIBE, PUBLISH QoS 0/1
 * both ways, PUBACK, PINGREQ. No reconnect, no offline queue, no QoS 2. One socket and a few
 * closures per connection, so one process can hold 5,000–10,000 boxes and the load generator costs
 * far less CPU per message than the cloud it measures. TCP_NODELAY on, like the box and the cloud.
 */
export interface LiteOptions {
  host: string;
  port: number;
  clientId: string;
  username?: string;
  password?: string;
  clean?: boolean;
  keepaliveS?: number;
  /** Source address (any of 127.0.0.0/8 on loopback): boxes of different shops come from different addresses. */
  localAddress?: string;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

export class LiteClient {
  private socket!: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private nextId = 1;
  private readonly pending = new Map<number, () => void>();
  private connack: ((code: number) => void) | null = null;
  private closedReject: ((err: Error) => void) | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private lastSent = 0;
  onMessage: MessageHandler = () => undefined;
  onClose: () => void = () => undefined;
  connected = false;

  constructor(private readonly opts: LiteOptions) {}

  /** Resolves on CONNACK 0; rejects with the return code otherwise, or when the socket dies first. */
  connect(): Promise<void> {
    this.buf = Buffer.alloc(0); // a reconnect: nothing of the old socket's stream carries over
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: this.opts.host, port: this.opts.port, ...(this.opts.localAddress ? { localAddress: this.opts.localAddress } : {}) });
      this.socket = s;
      s.setNoDelay(true);
      this.closedReject = reject;
      this.connack = (code) => {
        this.closedReject = null;
        if (code === 0) {
          this.connected = true;
          const ka = this.opts.keepaliveS ?? 0;
          // PINGREQ only when nothing else went out for half the keep-alive, as mqtt.js does.
          if (ka > 0)
            this.pinger = setInterval(() => {
              if (performance.now() - this.lastSent >= (ka * 1000) / 2) this.send(Buffer.from([0xc0, 0]));
            }, (ka * 1000) / 4).unref();
          resolve();
        } else reject(new Error(`CONNACK ${code}`));
      };
      s.on('connect', () => s.write(this.connectPacket()));
      s.on('data', (d) => this.onData(d));
      s.on('error', () => undefined);
      s.on('close', () => {
        this.connected = false;
        if (this.pinger) clearInterval(this.pinger);
        this.closedReject?.(new Error('socket closed before CONNACK'));
        this.closedReject = null;
        this.onClose();
      });
    });
  }

  subscribe(filter: string): Promise<void> {
    const id = this.packetId();
    const body = Buffer.concat([u16(id), str(filter), Buffer.from([1])]);
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.send(frame(0x82, body));
    });
  }

  /** QoS 1: resolves on PUBACK. QoS 0: resolves once written. */
  publish(topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<void> {
    const data = typeof payload === 'string' ? Buffer.from(payload) : payload;
    if (qos === 0) {
      this.send(frame(0x30, Buffer.concat([str(topic), data])));
      return Promise.resolve();
    }
    const id = this.packetId();
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.send(frame(0x32, Buffer.concat([str(topic), u16(id), data])));
    });
  }

  /** Clean DISCONNECT, then close. */
  end(): Promise<void> {
    return new Promise((resolve) => {
      if (this.pinger) clearInterval(this.pinger);
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end(Buffer.from([0xe0, 0]));
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private send(packet: Buffer): void {
    this.lastSent = performance.now();
    this.socket.write(packet);
  }

  private packetId(): number {
    const id = this.nextId;
    this.nextId = this.nextId === 65535 ? 1 : this.nextId + 1;
    return id;
  }

  private connectPacket(): Buffer {
    const o = this.opts;
    let flags = o.clean === false ? 0 : 0x02;
    const parts = [str('MQTT'), Buffer.from([4]), Buffer.alloc(1), u16(o.keepaliveS ?? 0), str(o.clientId)];
    if (o.username !== undefined) {
      flags |= 0x80;
      parts.push(str(o.username));
    }
    if (o.password !== undefined) {
      flags |= 0x40;
      parts.push(str(o.password));
    }
    parts[2] = Buffer.from([flags]);
    return frame(0x10, Buffer.concat(parts));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.buf.length < 2) return;
      let len = 0;
      let mul = 1;
      let i = 1;
      for (;;) {
        const b = this.buf[i];
        if (b === undefined) return;
        len += (b & 0x7f) * mul;
        mul *= 128;
        i++;
        if ((b & 0x80) === 0) break;
      }
      if (this.buf.length < i + len) return;
      const type = this.buf[0]! >> 4;
      const qos = (this.buf[0]! >> 1) & 3;
      const body = this.buf.subarray(i, i + len);
      this.buf = this.buf.subarray(i + len);
      this.packet(type, qos, body);
    }
  }

  private packet(type: number, qos: number, body: Buffer): void {
    switch (type) {
      case 2: // CONNACK
        this.connack?.(body[1]!);
        this.connack = null;
        return;
      case 3: {
        // PUBLISH
        const tlen = body.readUInt16BE(0);
        const topic = body.toString('utf8', 2, 2 + tlen);
        let at = 2 + tlen;
        if (qos > 0) {
          const id = body.readUInt16BE(at);
          at += 2;
          this.send(Buffer.from([0x40, 2, id >> 8, id & 0xff]));
        }
        // Copy: the receive buffer is reused for the next packets.
        this.onMessage(topic, Buffer.from(body.subarray(at)));
        return;
      }
      case 4: // PUBACK
      case 9: {
        // SUBACK
        const id = body.readUInt16BE(0);
        const done = this.pending.get(id);
        this.pending.delete(id);
        done?.();
        return;
      }
      default:
        return; // PINGRESP and anything else
    }
  }
}

function u16(n: number): Buffer {
  return Buffer.from([n >> 8, n & 0xff]);
}

function str(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([u16(b.length), b]);
}

function frame(header: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    len.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([header, ...len]), body]);
}

export function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}
