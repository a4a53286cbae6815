import net from 'node:net';
import { MqttFramer, PACKET_PUBLISH, connectClientId, packetType } from './mqtt-frames.js';

/**
 * A TCP proxy between boxes and the broker that breaks the link the ways shops do: everything
 * dropped at once (router reboot), a black hole (Wi-Fi up, nothing passes: TCP keeps the bytes and
 * delivers them late, if the peers have not given up), added latency, one box cut off, and
 * duplicated MQTT PUBLISH packets (a redelivery the protocol must shrug off). Loopback only.
 */
export interface FaultProxyOptions {
  /** The broker. Must be a loopback address. */
  targetPort: number;
  targetHost?: string;
  listenPort?: number;
  /** Refuse connections beyond this many, so a runaway client cannot exhaust the machine. */
  maxConnections?: number;
  random?: () => number;
}

export interface FaultCounts {
  connections: number;
  drops: number;
  blackHoles: number;
  cuts: number;
  duplicatedPublishes: number;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket;
  clientId: string | undefined;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export class FaultProxy {
  private server: net.Server | undefined;
  private readonly links = new Set<Link>();
  private blackHoleUntil = 0;
  private delayMs = 0;
  private duplicateRate = 0;
  private readonly refused = new Map<string, number>();
  private readonly opts: Required<FaultProxyOptions>;
  readonly counts: FaultCounts = { connections: 0, drops: 0, blackHoles: 0, cuts: 0, duplicatedPublishes: 0 };

  constructor(opts: FaultProxyOptions) {
    this.opts = { targetHost: '127.0.0.1', listenPort: 0, maxConnections: 20_000, random: Math.random, ...opts };
    if (!LOOPBACK.test(this.opts.targetHost)) throw new Error(`fault proxy targets loopback only, not ${this.opts.targetHost}`);
  }

  async start(): Promise<number> {
    const server = net.createServer((client) => this.accept(client));
    server.maxConnections = this.opts.maxConnections;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.listenPort, '127.0.0.1', () => resolve());
    });
    return this.port;
  }

  get port(): number {
    const addr = this.server?.address();
    if (!addr || typeof addr === 'string') throw new Error('fault proxy is not listening');
    return addr.port;
  }

  get openLinks(): number {
    return this.links.size;
  }

  /** Every connection reset at once; clients reconnect through the proxy as usual. */
  dropAll(): void {
    this.counts.drops++;
    for (const link of this.links) this.close(link);
  }

  /** Nothing passes either way for `ms`; bytes are held (as TCP would) and released after. */
  blackHole(ms: number): void {
    this.counts.blackHoles++;
    this.blackHoleUntil = Math.max(this.blackHoleUntil, Date.now() + ms);
    for (const link of this.links) this.hold(link, ms);
  }

  /** Added one-way latency for every chunk from now on (0 to stop). */
  setDelay(ms: number): void {
    this.delayMs = Math.max(0, ms);
  }

  /** Share of PUBLISH packets, either way, sent twice (0 to stop). */
  setDuplicateRate(rate: number): void {
    this.duplicateRate = Math.min(1, Math.max(0, rate));
  }

  /** Cut one box (by MQTT client id) and refuse its reconnects for `ms`. */
  cut(clientId: string, ms: number): void {
    this.counts.cuts++;
    this.refused.set(clientId, Date.now() + ms);
    for (const link of this.links) if (link.clientId === clientId) this.close(link);
  }

  async stop(): Promise<void> {
    for (const link of this.links) this.close(link);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: net.Socket): void {
    this.counts.connections++;
    client.setNoDelay(true);
    const upstream = net.connect({ port: this.opts.targetPort, host: this.opts.targetHost });
    upstream.setNoDelay(true);
    const link: Link = { client, upstream, clientId: undefined };
    this.links.add(link);
    const remaining = this.blackHoleUntil - Date.now();
    if (remaining > 0) this.hold(link, remaining);
    this.pipe(link, client, upstream, true);
    this.pipe(link, upstream, client, false);
    for (const s of [client, upstream]) {
      s.on('error', () => this.close(link));
      s.on('close', () => this.close(link));
    }
  }

  private pipe(link: Link, from: net.Socket, to: net.Socket, fromClient: boolean): void {
    const framer = new MqttFramer();
    from.on('data', (chunk: Buffer) => {
      let packets: Buffer[];
      try {
        packets = framer.push(chunk);
      } catch {
        this.close(link);
        return;
      }
      for (const packet of packets) this.forward(link, to, packet, fromClient);
    });
  }

  private forward(link: Link, to: net.Socket, packet: Buffer, fromClient: boolean): void {
    if (fromClient && link.clientId === undefined) {
      link.clientId = connectClientId(packet);
      if (link.clientId && (this.refused.get(link.clientId) ?? 0) > Date.now()) {
        this.close(link);
        return;
      }
    }
    const copies = packetType(packet) === PACKET_PUBLISH && this.opts.random() < this.duplicateRate ? 2 : 1;
    if (copies === 2) this.counts.duplicatedPublishes++;
    const send = () => {
      for (let i = 0; i < copies; i++) if (!to.destroyed) to.write(packet);
    };
    if (this.delayMs > 0) setTimeout(send, this.delayMs).unref();
    else send();
  }

  private hold(link: Link, ms: number): void {
    link.client.pause();
    link.upstream.pause();
    setTimeout(() => {
      if (Date.now() < this.blackHoleUntil) return;
      link.client.resume();
      link.upstream.resume();
    }, ms).unref();
  }

  private close(link: Link): void {
    if (!this.links.delete(link)) return;
    link.client.destroy();
    link.upstream.destroy();
  }
}
