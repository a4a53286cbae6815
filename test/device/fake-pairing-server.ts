import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { PairRequest } from '../../protocol/index.js';

/**
 * A stand-in for the cloud's `POST /v1/pair`: one good code, one used code, everything else unknown.
 * Over HTTPS when started with a key and certificate.
 */
export class FakePairingServer {
  readonly requests: unknown[] = [];
  readonly contentTypes: (string | undefined)[] = [];
  issued = 0;
  /** A hardware id paired to another merchant's box: refused with 409 unless the request proves the old secret. */
  hardwareInUse: string | null = null;
  url = '';
  private server: Server | null = null;

  constructor(
    readonly goodCode: string,
    readonly usedCode: string,
    readonly secret: string,
    private readonly mqttUrl: string,
    private readonly deviceIdOf: (n: number) => string = (n) => `dev${n}`,
  ) {}

  async start(tls?: { key: string; cert: string }): Promise<this> {
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      this.contentTypes.push(req.headers['content-type']);
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => this.answer(body, (status, obj) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      }));
    };
    this.server = tls ? createTlsServer(tls, handle) : createServer(handle);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private answer(body: string, reply: (status: number, obj: object) => void): void {
    const json = JSON.parse(body) as unknown;
    this.requests.push(json);
    const parsed = PairRequest.safeParse(json);
    if (!parsed.success) return reply(400, { v: 1, error: { code: 'SCHEMA_INVALID', message: 'bad request' } });
    if (parsed.data.code === this.usedCode) return reply(410, { v: 1, error: { code: 'PAIRING_CODE_USED', message: 'this pairing code was already used' } });
    if (parsed.data.code !== this.goodCode) return reply(404, { v: 1, error: { code: 'PAIRING_CODE_INVALID', message: 'unknown pairing code' } });
    if (parsed.data.hardwareId === this.hardwareInUse && !parsed.data.previous) {
      return reply(409, { v: 1, error: { code: 'HARDWARE_ID_IN_USE', message: 'this hardware id is paired to box dev-old of another merchant' } });
    }
    this.issued += 1;
    reply(200, { v: 1, deviceId: this.deviceIdOf(this.issued), secret: this.secret, mqttUrl: this.mqttUrl, merchantId: 'm1', storeId: 's1' });
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
