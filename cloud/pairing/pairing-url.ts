import { isIP } from 'node:net';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';
import type { CloudConfig } from '../config.js';
import { urlHost } from '../http/public-api.js';

/**
 * The address a pairing code sends a box to (`scanbox-cloud pair create`): the one the engineer
 * gave, else the cloud's public address from its config, else its HTTP(S) listener from that config.
 * Never an address no box could use: a listener on every interface or on a port picked at start
 * names no address, so that is refused with what to set instead.
 */
export interface PairingUrl {
  url: string;
  /** Where it came from, in words for the engineer: "--cloud-url", "publicHttpUrl in …", "the HTTP listener in …". */
  from: string;
  /** Only a box on the machine that runs the cloud can reach it. */
  loopback: boolean;
}

/** `source`: what the config was read from, e.g. "--config /etc/scanbox-cloud/cloud.json" or "defaults (no --config)". */
export function pairingCloudUrl(config: Pick<CloudConfig, 'host' | 'httpPort' | 'tls' | 'publicHttpUrl'>, opts: { flag?: string; source: string }): PairingUrl {
  if (opts.flag !== undefined) return given(opts.flag, '--cloud-url', '--cloud-url');
  if (config.publicHttpUrl) return given(config.publicHttpUrl, 'publicHttpUrl', `publicHttpUrl in ${opts.source}`);
  const fix = 'set publicHttpUrl in the config to the address boxes reach the cloud at, or pass --cloud-url';
  if (config.httpPort === 0) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `the cloud's httpPort in ${opts.source} is 0 (any free port): its address is known only to the running cloud (the httpUrl of its ready line); ${fix}`);
  }
  if (isWildcard(config.host)) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `the cloud listens on every address (host ${config.host} in ${opts.source}), which is no address a box can call; ${fix}`);
  }
  const scheme = config.tls ? 'https' : 'http';
  return {
    url: `${scheme}://${urlHost(config.host)}:${config.httpPort}`,
    from: `the ${scheme.toUpperCase()} listener in ${opts.source} (host, httpPort${config.tls ? ', tls' : ''})`,
    loopback: isLoopback(config.host),
  };
}

function given(raw: string, what: string, from: string): PairingUrl {
  const url = checked(raw, what);
  return { url, from, loopback: isLoopback(new URL(url).hostname) };
}

function checked(raw: string, what: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what} "${raw}" is not a URL (e.g. https://cloud.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what} "${raw}" is not http:// or https://`);
  if (isWildcard(url.hostname.replace(/^\[|\]$/g, ''))) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what} "${raw}" names every address, not one a box can call`);
  // The box appends /v1/pair itself: a trailing slash would make it //v1/pair.
  return raw.replace(/\/+$/, '');
}

function isWildcard(host: string): boolean {
  return host === '' || host === '0.0.0.0' || (isIP(host) === 6 && /^[0:]+$/.test(host));
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

export interface CloudProbe {
  ok: boolean;
  detail: string;
}

/**
 * Whether something answers `GET <url>/healthz` as the cloud does: the engineer learns now, not at
 * the counter, that a code points at an address where no cloud listens. Checked with the system's
 * CAs, so a cloud under a private CA is reported as not verified, which is a warning only.
 */
export async function probeCloud(url: string, timeoutMs: number, fetchFn: typeof fetch = fetch): Promise<CloudProbe> {
  const target = `${url}/healthz`;
  try {
    const res = await fetchFn(target, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json().catch(() => null)) as { ok?: unknown } | null;
    if (res.ok && body?.ok === true) return { ok: true, detail: `GET ${target} answered` };
    return { ok: false, detail: `GET ${target} answered HTTP ${res.status}, not the cloud's {"ok":true}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { ok: false, detail: `GET ${target} failed: ${why}` };
  }
}
