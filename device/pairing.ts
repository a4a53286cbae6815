import {
  ERROR_CODES,
  ErrorCode,
  PROTOCOL_VERSION,
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
 * the cloud said yes; an already paired box is only re-paired with `reset`.
 */
export interface PairOptions {
  code: string;
  cloudUrl: string;
  dataDir: string;
  reset?: boolean;
  hardwareId?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

/** What pairing reports; never the secret. */
export interface PairOutcome {
  deviceId: string;
  merchantId: string;
  storeId: string;
  mqttUrl: string;
}

export async function pairBox(opts: PairOptions): Promise<PairOutcome> {
  const code = normalisePairingCode(opts.code);
  const cloudUrl = checkCloudUrl(opts.cloudUrl);
  const journal = Journal.open(opts.dataDir);
  try {
    refuseOverExisting(journal, opts.reset ?? false);
    const body: PairRequest = { v: PROTOCOL_VERSION, code, hardwareId: opts.hardwareId ?? journal.hardwareId(), firmware: FIRMWARE_VERSION };
    const res = await postPair(opts.fetch ?? fetch, cloudUrl, body, opts.timeoutMs ?? 10_000);
    const { deviceId, secret, mqttUrl, merchantId, storeId } = res;
    const creds: Credentials = { deviceId, secret, mqttUrl, merchantId, storeId, cloudUrl, pairedAt: Date.now() };
    journal.saveCredentials(creds);
    return { deviceId: res.deviceId, merchantId: res.merchantId, storeId: res.storeId, mqttUrl: res.mqttUrl };
  } finally {
    journal.close();
  }
}

function checkCloudUrl(url: string): string {
  if (!/^https?:\/\/\S+$/.test(url)) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `cloud URL "${url.slice(0, 80)}" must start with http:// or https://`);
  return url.replace(/\/+$/, '');
}

function refuseOverExisting(journal: Journal, reset: boolean): void {
  const existing = journal.credentials();
  if (!existing) return;
  if (!reset) {
    throw new ProtocolError(ErrorCode.ALREADY_PAIRED, `box is already paired as ${existing.deviceId}; pass --reset to pair it again (the old credentials stop working)`);
  }
  const pending = journal.pendingAttempts();
  if (pending > 0) {
    throw new ProtocolError(ErrorCode.ALREADY_PAIRED, `box ${existing.deviceId} has ${pending} payment(s) in flight; start it until they are final before re-pairing`);
  }
}

async function postPair(doFetch: typeof fetch, cloudUrl: string, body: PairRequest, timeoutMs: number) {
  let res: Response;
  let text: string;
  try {
    res = await doFetch(`${cloudUrl}/v1/pair`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    const why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    throw new ProtocolError(ErrorCode.CLOUD_UNREACHABLE, `cannot reach the cloud at ${cloudUrl} (${why}); check the address and the network, then try again`);
  }
  if (res.ok) return validate(PairResponse, parseJson(text), 'pairing response');
  throw pairingRefused(res.status, text);
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
    return new ProtocolError(body.data.error.code, `pairing refused: ${body.data.error.message}`, { status });
  }
  const code = status === 429 ? ErrorCode.RATE_LIMITED : status === 404 ? ErrorCode.PAIRING_CODE_INVALID : ErrorCode.CLOUD_UNREACHABLE;
  return new ProtocolError(code, `pairing refused with HTTP ${status}`, { status });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
