import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { SerialEnd } from './serial-end.js';

/**
 * The far end of a box's serial port when the box runs on serialport's mock binding
 * (`scanbox-device start --serial mock`, device/mock-serial-port.ts): a Unix socket at the path
 * the box is given as its port. The simulator's scanner or cash register listens here; the box
 * connects when it opens the port. One box at a time (a second connection is turned away, as a
 * locked port); `unplug` takes the line away (the box's port closes with `disconnected`) and
 * `replug` brings it back at the same path. Bytes written while no box is connected wait, as they
 * would in a pseudo-terminal's buffer.
 */
/** device/mock-serial-port.ts LINE_GREETING: the simulator imports nothing from device/, a test holds the two equal. */
export const SOCKET_LINE_GREETING = 0x06;
const LINE_GREETING = Buffer.from([SOCKET_LINE_GREETING]);

export interface SocketLineOptions {
  dir: string;
  /** The box's end is `<dir>/<name>.sock`. */
  name: string;
}

export class SocketLine implements SerialEnd {
  /** The path the box's agent opens (`--scanner` / `--ecr`). */
  readonly a: string;
  private server: Server | null = null;
  private box: Socket | null = null;
  private pending: Buffer[] = [];
  private readonly listeners = new Set<(chunk: Buffer) => void>();

  private constructor(opts: SocketLineOptions) {
    this.a = join(opts.dir, `${opts.name}.sock`);
  }

  static async create(opts: SocketLineOptions): Promise<SocketLine> {
    const line = new SocketLine(opts);
    await line.replug();
    return line;
  }

  /** There is no device path for an outside program (a POS) on this line: only the simulator's own end. */
  get b(): string {
    throw new Error(`${this.a}: a box on the mock binding has no pseudo-terminal for an outside program; install socat (sudo apt-get install -y socat) and use pseudo-terminals`);
  }

  get plugged(): boolean {
    return this.server !== null;
  }

  /** This line is its own far end: the simulator's side of it. */
  async openEnd(): Promise<SerialEnd> {
    return this;
  }

  write(data: Buffer | string): Promise<void> {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    const box = this.box;
    if (!box) {
      this.pending.push(buf);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => box.write(buf, (err) => (err ? reject(err) : resolve())));
  }

  onData(listener: (chunk: Buffer) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async replug(): Promise<void> {
    if (this.server) return;
    // A socket file left by a killed simulator would refuse the listen.
    rmSync(this.a, { force: true });
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.a, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** The cable is pulled: the box's open port closes, and opening fails until `replug`. */
  async unplug(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.box?.destroy();
    this.box = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.a, { force: true });
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.unplug();
  }

  private accept(socket: Socket): void {
    if (this.box) {
      socket.destroy();
      return;
    }
    this.box = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const l of this.listeners) l(chunk);
    });
    socket.on('error', () => undefined); // 'close' follows
    // On 'end' already: the box waits for this side's hang-up before its close returns, and may open again at once.
    const gone = () => {
      if (this.box === socket) this.box = null;
    };
    socket.on('end', gone);
    socket.on('close', gone);
    const queued = Buffer.concat([LINE_GREETING, ...this.pending]);
    this.pending = [];
    socket.write(queued);
  }
}
