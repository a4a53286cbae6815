import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ErrorCode, isProtocolError, MAX_PAYLOAD_BYTES, PairRequest, PAIRING_VERSION, ProtocolError, decodeJson, type PairErrorBody } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { redeemPairingCode, type PairingDeps } from '../pairing/pairing.js';
import { RateLimiter } from '../pairing/rate-limit.js';

/**
 * The cloud's public HTTP API: `POST /v1/pair` (protocol/pairing.ts) and `GET /healthz`; HTTPS
 * whenever the cloud has a TLS certificate, since a pairing answer carries a device secret. Pairing
 * requests are rate-limited per source address before anything else is looked at. `GET /metrics`
 * lives on its own listener (metrics-http.ts), and here only behind the metrics token.
 */
export interface HttpApiDeps {
  pairing: PairingDeps;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  host: string;
  port: number;
  rateLimit: { max: number; windowS: number };
  tls?: { certFile: string; keyFile: string } | undefined;
  metricsToken?: string | undefined;
  /** The operators' dashboard (cloud/dashboard/): everything under /dashboard goes to it. */
  dashboard?: { handle(req: IncomingMessage, res: ServerResponse): Promise<void> } | undefined;
  /** An external broker's login and topic checks (EMQX: emqx-auth.ts), on the paths it handles. */
  brokerAuth?: { handles(path: string): boolean; handle(req: IncomingMessage, res: ServerResponse): Promise<void> } | undefined;
}

export interface HttpApi {
  port: number;
  url: string;
  stopAccepting(): Promise<void>;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.BAD_JSON]: 400,
  [ErrorCode.SCHEMA_INVALID]: 400,
  [ErrorCode.UNSUPPORTED_VERSION]: 400,
  [ErrorCode.PAYLOAD_TOO_LARGE]: 400,
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: 415,
  [ErrorCode.HARDWARE_ID_IN_USE]: 409,
  [ErrorCode.PAIRING_CODE_INVALID]: 404,
  [ErrorCode.PAIRING_CODE_EXPIRED]: 410,
  [ErrorCode.PAIRING_CODE_USED]: 410,
  [ErrorCode.RATE_LIMITED]: 429,
};

export async function startHttpApi(deps: HttpApiDeps): Promise<HttpApi> {
  const limiter = new RateLimiter(deps.rateLimit.max, deps.rateLimit.windowS * 1000);
  const server = serverFor(deps.tls, (req, res) => {
    route(deps, limiter, req, res).catch((err: unknown) => sendError(res, err, deps.logger));
  });
  const port = await listen(server, deps.host, deps.port);
  return { port, url: `${deps.tls ? 'https' : 'http'}://${urlHost(deps.host)}:${port}`, stopAccepting: () => closeServer(server) };
}

function serverFor(tls: HttpApiDeps['tls'], handler: RequestListener): Server {
  if (!tls) return createServer(handler);
  return createHttpsServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, handler);
}

export async function listen(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** An IPv6 literal goes in brackets inside a URL. */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
    // A request still being answered gets a moment; then its connection goes too.
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
  });
}

async function route(deps: HttpApiDeps, limiter: RateLimiter, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/healthz') return sendJson(res, 200, { ok: true });
  if (req.method === 'GET' && path === '/metrics' && deps.metricsToken && bearerMatches(req, deps.metricsToken)) return sendMetrics(res, deps.metrics);
  if (req.method === 'POST' && path === '/v1/pair') return pair(deps, limiter, req, res);
  if (deps.dashboard && (path === '/dashboard' || path!.startsWith('/dashboard/'))) return deps.dashboard.handle(req, res);
  if (deps.brokerAuth?.handles(path!)) return deps.brokerAuth.handle(req, res);
  sendJson(res, 404, { v: PAIRING_VERSION, error: { code: ErrorCode.SCHEMA_INVALID, message: `no route ${req.method} ${path}` } });
}

async function pair(deps: HttpApiDeps, limiter: RateLimiter, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const source = req.socket.remoteAddress ?? 'unknown';
  const waitMs = limiter.take(source, deps.clock.now());
  if (waitMs > 0) {
    deps.metrics.inc('pairing_rate_limited_total');
    deps.logger.warn({ source }, 'pairing rate limit hit');
    res.setHeader('retry-after', String(Math.ceil(waitMs / 1000)));
    throw new ProtocolError(ErrorCode.RATE_LIMITED, `too many pairing attempts from this address; try again in ${Math.ceil(waitMs / 1000)} s`);
  }
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new ProtocolError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, `a pairing request must be sent as application/json, not "${type.slice(0, 60) || 'no content type'}"`);
  const body = decodeJson(PairRequest, await readBody(req), 'pairing request');
  sendJson(res, 200, await redeemPairingCode(deps.pairing, body));
}

/** Reads at most MAX_PAYLOAD_BYTES + 1 bytes, so an endless body cannot exhaust memory. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_PAYLOAD_BYTES) {
        req.pause();
        resolve(Buffer.concat([...chunks, c]).subarray(0, MAX_PAYLOAD_BYTES + 1));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendError(res: ServerResponse, err: unknown, logger: Logger): void {
  const pe = isProtocolError(err) ? err : new ProtocolError(ErrorCode.INTERNAL, 'internal error');
  if (!isProtocolError(err)) logger.error({ err: (err as Error)?.stack ?? String(err) }, 'HTTP handler failed');
  const body: PairErrorBody = { v: PAIRING_VERSION, error: { code: pe.code, message: pe.message.slice(0, 200) } };
  // The body of a refused request may be unread: close rather than read it to keep the connection.
  const close = pe.code === ErrorCode.PAYLOAD_TOO_LARGE || pe.code === ErrorCode.RATE_LIMITED || pe.code === ErrorCode.UNSUPPORTED_MEDIA_TYPE;
  sendJson(res, STATUS[pe.code] ?? 500, body, close);
}

function bearerMatches(req: IncomingMessage, token: string): boolean {
  const given = Buffer.from(req.headers.authorization ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function sendMetrics(res: ServerResponse, metrics: Metrics): void {
  metrics.text().then(
    (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
    () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
  );
}

function sendJson(res: ServerResponse, status: number, body: unknown, close = false): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json', ...(close ? { connection: 'close' } : {}) }).end(JSON.stringify(body));
}
