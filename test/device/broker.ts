import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Aedes, type Client } from 'aedes';

/**
 * An in-process aedes broker on a random loopback port, with TCP_NODELAY on its sockets. It can be
 * cut (every connection dropped, port closed) and restored on the same port, to test reconnects.
 */
export class TestBroker {
  port = 0;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly clients = new Map<Socket, Client>();

  private constructor(readonly aedes: Aedes) {}

  static async start(): Promise<TestBroker> {
    const b = new TestBroker(await Aedes.createBroker({ drainTimeout: 2000 } as never));
    await b.listen(0);
    return b;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async listen(port: number): Promise<void> {
    const server = createServer((s) => {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.on('close', () => {
        this.sockets.delete(s);
        this.clients.delete(s);
      });
      this.clients.set(s, this.aedes.handle(s));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** The network goes away: existing connections die and new ones are refused. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** One client's connection dies without a DISCONNECT (power cut): the broker publishes its will. */
  dropClient(clientId: string): boolean {
    for (const [socket, client] of this.clients) {
      if (client.id !== clientId) continue;
      socket.destroy();
      return true;
    }
    return false;
  }

  restore(): Promise<void> {
    return this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.cut();
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
  }
}
