import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { GATEWAY_CALLS, type GatewayCall } from '../../cloud/gateway/gateway.js';
import { describeIssues, paymentCode } from '../../protocol/index.js';
import type { ScriptedGateway } from './scripted-gateway.js';
import { Outage, OUTAGE_PAGE } from './outage.js';
import { Scenario } from './scenario.js';

/**
 * The scripted gateway as an HTTP service on loopback, for a cloud running in another process.
 * Wire format: cloud/gateway.ts (`POST /v1/<call>`, outcome as JSON). Control endpoints:
 * `POST /v1/scenarios` binds codes to scenarios, `GET /v1/ledger` returns the ledger,
 * `GET /v1/health` says it is up.
 */
export interface GatewayServerDeps {
  gateway: ScriptedGateway;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  logger?: Logger;
}

export interface GatewayServer {
  url: string;
  port: number;
  /** A share of the gateway calls, from now on, refused with HTTP 503 before the wallet acts (0 heals it). */
  outage(share: number): void;
  /** Every gateway call this server received (before any outage), in order: which channel saw which attempt. */
  readonly calls: { call: GatewayCall; outTradeNo: string }[];
  close(): Promise<void>;
}

const Binding = z.strictObject({ code: paymentCode, scenario: Scenario });
export const ScenarioBindings = z.union([Binding, z.strictObject({ bindings: z.array(Binding).min(1) })]);
export type ScenarioBindings = z.input<typeof ScenarioBindings>;

const MAX_BODY_BYTES = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startGatewayServer(deps: GatewayServerDeps): Promise<GatewayServer> {
  const log = deps.logger ?? pino({ level: 'silent' });
  const outage = new Outage();
  const calls: GatewayServer['calls'] = [];
  const server = createServer((req, res) => {
    route(deps.gateway, req, res, { outage, calls }).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) log.error({ err, path: req.url }, 'gateway simulator request failed');
      send(res, status, { error: (err as Error).message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port ?? 0, deps.host ?? '127.0.0.1', resolve);
  });
  const { port, address } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}`,
    port,
    outage: (share) => outage.set(share),
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        // Hanging pays hold connections open on purpose; they must not keep the server alive.
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Wire {
  outage: Outage;
  calls: GatewayServer['calls'];
}

async function route(gateway: ScriptedGateway, req: IncomingMessage, res: ServerResponse, wire: Wire): Promise<void> {
  const path = (req.url ?? '').split('?')[0] ?? '';
  const call = /^\/v1\/(pay|query|reverse|refund)$/.exec(path)?.[1] as GatewayCall | undefined;
  if (req.method === 'POST' && call) return gatewayCall(gateway, call, req, res, wire);
  if (req.method === 'POST' && path === '/v1/scenarios') return bindScenarios(gateway, req, res);
  if (req.method === 'GET' && path === '/v1/ledger') return send(res, 200, gateway.ledger.entries());
  if (req.method === 'GET' && path === '/v1/health') return send(res, 200, { ok: true });
  throw new HttpError(404, `no route ${req.method} ${path}`);
}

async function gatewayCall(gateway: ScriptedGateway, call: GatewayCall, req: IncomingMessage, res: ServerResponse, wire: Wire): Promise<void> {
  const body = parse(GATEWAY_CALLS[call].request, await readJson(req), `${call} request`);
  wire.calls.push({ call, outTradeNo: body.outTradeNo });
  if (wire.outage.hit()) return void res.writeHead(503, { 'content-type': 'text/html' }).end(OUTAGE_PAGE);
  // The caller gave up (its timeout aborted the fetch): abort the call so a hang ends here too.
  const abort = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const outcome = await (gateway[call] as (r: unknown, o: { signal: AbortSignal }) => Promise<unknown>).call(gateway, body, { signal: abort.signal });
  if (!abort.signal.aborted) send(res, 200, outcome);
}

async function bindScenarios(gateway: ScriptedGateway, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = parse(ScenarioBindings, await readJson(req), 'scenario binding');
  const list = 'bindings' in body ? body.bindings : [body];
  for (const b of list) gateway.bind(b.code, b.scenario);
  send(res, 200, { bound: list.length });
}

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new HttpError(400, `${what} is invalid: ${describeIssues(r.error)}`);
  return r.data;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
