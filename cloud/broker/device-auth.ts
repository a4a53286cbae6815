import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../../protocol/clock.js';
import { hashSecret, isLegacyHash, verifyKeyed, verifyLegacyScrypt } from '../pairing/credentials.js';
import type { Logger } from '../log.js';
import { ConcurrencyLimit } from '../payments/concurrency-limit.js';
import { LogThrottle } from '../log-throttle.js';
import type { Metrics } from '../metrics.js';
import type { ServerKey } from '../pairing/server-key.js';
import type { CloudStore } from '../store/store.js';

/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3) the cloud uses. */
export const CONNACK = { SERVER_UNAVAILABLE: 3, BAD_USERNAME_OR_PASSWORD: 4, NOT_AUTHORIZED: 5 } as const;

export type AuthVerdict = { ok: true } | { ok: false; returnCode: (typeof CONNACK)[keyof typeof CONNACK]; why: string };

export interface LoginBackoff {
  /** Delay of the first refusal; doubled per further failure of the same device id or address. */
  baseMs: number;
  /** Ceiling of the delay: below the box's 10 s connect timeout, so a refused box hears why. */
  maxMs: number;
  /** Failures older than this are forgotten. */
  windowMs: number;
}

export const DEFAULT_LOGIN_BACKOFF: LoginBackoff = { baseMs: 250, maxMs: 5_000, windowMs: 60_000 };

export interface DeviceAuthDeps {
  store: CloudStore;
  logger: Logger;
  metrics: Metrics;
  key: ServerKey;
  clock: Clock;
  backoff?: LoginBackoff;
  /** At most one "connection refused" line per device id and per address in this interval. */
  logIntervalMs?: number;
  delay?: (ms: number) => Promise<void>;
}

/**
 * Checks a box's MQTT credentials (client id = username = device id, password = secret) against
 * the keyed hash in the store, reading the device's status on every connect so a revocation takes
 * effect at once. The right secret is answered at once, always; a wrong one is answered after a
 * delay that grows per device id and per address, so a loop of guesses holds its own connections
 * (capped per address by mqtt-edge.ts) instead of the cloud's time. A legacy scrypt hash is checked
 * one at a time (two thread-pool threads at most) and rewritten as a keyed hash on success.
 */
export class DeviceAuthenticator {
  private readonly failures = new Map<string, { count: number; at: number }>();
  private readonly logs: LogThrottle;
  private readonly backoff: LoginBackoff;
  private readonly delay: (ms: number) => Promise<void>;
  private readonly legacy = new ConcurrencyLimit(2);

  constructor(private readonly deps: DeviceAuthDeps) {
    this.backoff = deps.backoff ?? DEFAULT_LOGIN_BACKOFF;
    this.logs = new LogThrottle(deps.logIntervalMs ?? 60_000);
    this.delay = deps.delay ?? ((ms) => sleep(ms).then(() => undefined));
  }

  async check(clientId: string, username: string | undefined, password: Buffer | undefined, address = 'unknown'): Promise<AuthVerdict> {
    const verdict = await this.decide(clientId, username, password);
    if (verdict.ok) return verdict;
    const id = clientId.slice(0, 64);
    this.deps.metrics.inc('auth_refused_total', verdict.why);
    this.logRefusal(id, address, verdict.why);
    await this.delay(this.failed(id, address));
    return verdict;
  }

  private async decide(clientId: string, username: string | undefined, password: Buffer | undefined): Promise<AuthVerdict> {
    const bad = (why: string): AuthVerdict => ({ ok: false, returnCode: CONNACK.BAD_USERNAME_OR_PASSWORD, why });
    if (!username || !password || username !== clientId) return bad('username must equal the client id');
    const auth = await this.deps.store.getDeviceAuth(clientId);
    if (!auth) return bad('unknown device');
    if (auth.status !== 'active') return { ok: false, returnCode: CONNACK.NOT_AUTHORIZED, why: 'device revoked' };
    if (!isLegacyHash(auth.secretHash)) return verifyKeyed(this.deps.key, password, auth.secretHash) ? { ok: true } : bad('wrong secret');
    if (!(await this.legacy.run(() => verifyLegacyScrypt(password, auth.secretHash)))) return bad('wrong secret');
    await this.deps.store.setSecretHash(clientId, hashSecret(this.deps.key, password));
    this.deps.logger.info({ deviceId: clientId }, 'legacy secret hash rewritten as a keyed hash');
    return { ok: true };
  }

  /** Counts a failure for the id and the address; returns how long to hold the refusal. */
  private failed(id: string, address: string): number {
    const now = this.deps.clock.now();
    const counts = [`id:${id}`, `addr:${address}`].map((key) => {
      const f = this.failures.get(key);
      const count = f && now - f.at < this.backoff.windowMs ? f.count + 1 : 1;
      this.failures.set(key, { count, at: now });
      return count;
    });
    if (this.failures.size > 10_000) this.sweep(now);
    return Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (Math.max(...counts) - 1));
  }

  private sweep(now: number): void {
    for (const [k, f] of this.failures) if (now - f.at >= this.backoff.windowMs) this.failures.delete(k);
  }

  private logRefusal(deviceId: string, address: string, why: string): void {
    const now = this.deps.clock.now();
    const byId = this.logs.take(`id:${deviceId}`, now);
    const byAddress = this.logs.take(`addr:${address}`, now);
    if (!byId || !byAddress) return;
    const suppressed = Math.max(byId.suppressed, byAddress.suppressed);
    this.deps.logger.warn({ deviceId, address, why, ...(suppressed ? { suppressed } : {}) }, 'connection refused');
  }
}
