import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIPv4 } from 'node:net';
import {
  ERROR_CODES,
  ErrorCode,
  PAIRING_VERSION,
  PairErrorBody,
  PairResponse,
  ProtocolError,
  normalisePairingCode,
  validate,
  type PairRequest,
} from '../protocol/index.js';
import { Journal, type Credentials } from './journal.js';
import { FIRMWARE_VERSION } from './version.js';

/**
 * Pairing: exchange a one-time code for this box's device id and secret over the cloud's
 * `POST /v1/pair`, and keep them in the journal (file mode 0600). Nothing on the box changes unless
 * the cloud said yes; an already paired box is only re-paired with `reset`. The answer carries the
 * secret, so it travels over TLS unless the cloud is on this machine or the engineer says `insecure`.
 */
export interface PairOptions {
  code: string;
  cloudUrl: string;
  dataDir: string;
  reset?: boolean;
  hardwareId?: string;
  timeoutMs?: number;
  /** PEM of the (private) CA the cloud's certificate chains to; the system roots otherwise. */
  ca?: string | Buffer;
  /** Allow plain http:// to a host that is not loopback. */
  insecure?: boolean;
  /** Told once when `insecure` is what let a plain-HTTP pairing through. */
  warn?: (message: string) => void;
  /** The HTTP POST, replaceable so a test can see that nothing was sent. */
  post?: PostJson;
}

/** What pairing reports; never the secret. */
export interface PairOutcome {
  deviceId: string;
  merchantId: string;
  storeId: string;
  mqttUrl: string;
}

export interface PostJsonOptions {
  timeoutMs: number;
  ca?: string | Buffer;
}
export interface PostJsonAnswer {
  status: number;
  text: string;
}
export type PostJson = (url: URL, body: string, opts: PostJsonOptions) => Promise<PostJsonAnswer>;

/** A pairing answer is a few hundred bytes; a cloud (or impostor) streaming more is cut off. */
export const MAX_PAIR_RESPONSE_BYTES = 64 * 1024;

export async function pairBox(opts: PairOptions): Promise<PairOutcome> {
  const code = normalisePairingCode(opts.code);
  const cloudUrl = checkCloudUrl(opts.cloudUrl);
  const transport = checkTransport(new URL(cloudUrl), opts.insecure ?? false);
  const journal = Journal.open(opts.dataDir);
  try {
    const previous = previousCredentials(journal, opts.reset ?? false);
    const body: PairRequest = {
      v: PAIRING_VERSION,
      code,
      hardwareId: opts.hardwareId ?? journal.hardwareId(),
      firmware: FIRMWARE_VERSION,
      // The old secret proves this is the box being re-paired, so the cloud may revoke it anywhere.
      ...(previous ? { previous: { deviceId: previous.deviceId, secret: previous.secret } } : {}),
    };
    if (transport === 'insecure') opts.warn?.(`pairing with ${new URL(cloudUrl).host} over plain HTTP (--insecure): the device secret crosses the network unencrypted`);
    const res = await postPair(opts, cloudUrl, body);
    const { deviceId, secret, mqttUrl, merchantId, storeId } = res;
    const creds: Credentials = { deviceId, secret, mqttUrl, merchantId, storeId, cloudUrl, pairedAt: Date.now() };
    journal.saveCredentials(creds);
    return { deviceId: res.deviceId, merchantId: res.merchantId, storeId: res.storeId, mqttUrl: res.mqttUrl };
  } finally {
    journal.close();
  }
}

function checkCloudUrl(url: string): string {
  const bad = () => new ProtocolError(ErrorCode.CONFIG_INVALID, `cloud URL "${url.slice(0, 80)}" must start with http:// or https://`);
  if (!/^https?:\/\/\S+$/.test(url) || !URL.canParse(url)) throw bad();
  return url.replace(/\/+$/, '');
}

/** `localhost`, 127.0.0.0/8 and ::1: traffic that never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

export type PairTransport = 'tls' | 'loopback' | 'insecure';

/**
 * Where the secret may travel: over https:// anywhere, over http:// only to loopback unless the
 * engineer said `insecure`. Decided from the parsed URL, the same one the request goes to, so
 * `http://127.1` or `http://0x7f.0.0.1` cannot be judged differently from where they connect.
 */
export function checkTransport(url: URL, insecure: boolean): PairTransport {
  if (url.protocol === 'https:') return 'tls';
  if (isLoopbackHost(url.hostname)) return 'loopback';
  if (insecure) return 'insecure';
  throw new ProtocolError(
    ErrorCode.INSECURE_TRANSPORT,
    `refusing to pair over plain http:// with ${url.host}: the cloud's answer carries the device secret; use https:// (with --ca FILE for a private CA), or pass --insecure if this network is trusted`,
  );
}

function previousCredentials(journal: Journal, reset: boolean): Credentials | null {
  const existing = journal.credentials();
  if (!existing) return null;
  if (!reset) {
    throw new ProtocolError(ErrorCode.ALREADY_PAIRED, `box is already paired as ${existing.deviceId}; pass --reset to pair it again (the old credentials stop working)`);
  }
  const pending = journal.pendingAttempts();
  if (pending > 0) {
    throw new ProtocolError(ErrorCode.ALREADY_PAIRED, `box ${existing.deviceId} has ${pending} payment(s) in flight; start it until they are final before re-pairing`);
  }
  return existing;
}

async function postPair(opts: PairOptions, cloudUrl: string, body: PairRequest): Promise<PairResponse> {
  const post = opts.post ?? postJson;
  let answer: PostJsonAnswer;
  try {
    answer = await post(new URL(`${cloudUrl}/v1/pair`), JSON.stringify(body), { timeoutMs: opts.timeoutMs ?? 10_000, ...(opts.ca ? { ca: opts.ca } : {}) });
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw unreachable(cloudUrl, err);
  }
  if (answer.status >= 200 && answer.status < 300) return validate(PairResponse, parseJson(answer.text), 'pairing response');
  throw pairingRefused(answer.status, answer.text);
}

function unreachable(cloudUrl: string, err: unknown): ProtocolError {
  const why = (err as { code?: string }).code ?? (err as Error).name;
  const hint = /CERT|SIGNATURE|ISSUER|SELF_SIGNED|ERR_TLS|ERR_SSL/.test(why)
    ? "the cloud's TLS certificate is not trusted: if it is signed by a private CA, pass --ca FILE (config caFile) with that CA's PEM certificate"
    : 'check the address and the network, then try again';
  return new ProtocolError(ErrorCode.CLOUD_UNREACHABLE, `cannot reach the cloud at ${cloudUrl} (${why}); ${hint}`, { cause: why });
}

/**
 * POST a JSON body and read the whole answer, over node:http(s) rather than fetch: Node's fetch
 * takes no per-request CA without undici. One connection per call (a box pairs once in a while).
 */
export function postJson(url: URL, body: string, opts: PostJsonOptions): Promise<PostJsonAnswer> {
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(url, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
    const timer = setTimeout(() => fail(Object.assign(new Error(`no answer within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })), opts.timeoutMs);
    const fail = (err: unknown) => {
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    req.on('error', fail);
    req.on('response', (res) => {
      readCapped(res, MAX_PAIR_RESPONSE_BYTES).then((text) => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, text });
      }, fail);
    });
    req.end(body);
  });
}

function readCapped(res: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        res.destroy();
        return reject(new ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, `the cloud answered pairing with more than ${maxBytes} bytes`));
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError(ErrorCode.BAD_JSON, 'the cloud answered pairing with something that is not JSON');
  }
}

function pairingRefused(status: number, text: string): ProtocolError {
  const body = PairErrorBody.safeParse(safeJson(text));
  if (body.success && ERROR_CODES.includes(body.data.error.code)) {
    const { code, message } = body.data.error;
    return new ProtocolError(code, `pairing refused: ${message}${advice(code, message)}`, { status });
  }
  const code = status === 429 ? ErrorCode.RATE_LIMITED : status === 404 ? ErrorCode.PAIRING_CODE_INVALID : ErrorCode.CLOUD_UNREACHABLE;
  return new ProtocolError(code, `pairing refused with HTTP ${status}`, { status });
}

/** What the engineer at the box can do about a refusal, unless the cloud's own words already say it. */
function advice(code: string, message: string): string {
  if (code !== ErrorCode.HARDWARE_ID_IN_USE || message.includes('devices revoke')) return '';
  return ". This hardware is still paired to another merchant's box: revoke that box in the cloud (`scanbox-cloud devices revoke <deviceId>`), or re-pair with --reset from the box that still holds its credentials";
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
