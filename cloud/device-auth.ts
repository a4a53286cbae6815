import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import type { CloudStore } from './store.js';
import { digest, sameDigest, verifySecret } from './credentials.js';

/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3) the cloud uses. */
export const CONNACK = { BAD_USERNAME_OR_PASSWORD: 4, NOT_AUTHORIZED: 5 } as const;

export type AuthVerdict = { ok: true } | { ok: false; returnCode: (typeof CONNACK)[keyof typeof CONNACK]; why: string };

export interface DeviceAuthDeps {
  store: CloudStore;
  logger: Logger;
  metrics: Metrics;
}

/**
 * Checks a box's MQTT credentials (client id = username = device id, password = secret) against
 * the scrypt hash in the store. A secret that verified once is remembered as a SHA-256 digest,
 * so a fleet reconnecting after a blip costs one lookup per box, not one scrypt each; the status
 * is still read from the store on every connect, so a revocation takes effect at once.
 */
export class DeviceAuthenticator {
  private readonly verified = new Map<string, Buffer>();

  constructor(private readonly deps: DeviceAuthDeps) {}

  async check(clientId: string, username: string | undefined, password: Buffer | undefined): Promise<AuthVerdict> {
    const verdict = await this.decide(clientId, username, password);
    if (!verdict.ok) {
      this.deps.metrics.inc('auth_refused_total', verdict.why);
      this.deps.logger.warn({ deviceId: clientId.slice(0, 64), why: verdict.why }, 'connection refused');
    }
    return verdict;
  }

  private async decide(clientId: string, username: string | undefined, password: Buffer | undefined): Promise<AuthVerdict> {
    const bad = (why: string): AuthVerdict => ({ ok: false, returnCode: CONNACK.BAD_USERNAME_OR_PASSWORD, why });
    if (!username || !password || username !== clientId) return bad('username must equal the client id');
    const auth = await this.deps.store.getDeviceAuth(clientId);
    if (!auth) return bad('unknown device');
    if (auth.status !== 'active') return { ok: false, returnCode: CONNACK.NOT_AUTHORIZED, why: 'device revoked' };
    const d = digest(password);
    const cached = this.verified.get(clientId);
    if (cached && sameDigest(cached, d)) return { ok: true };
    if (!(await verifySecret(password.toString(), auth.secretHash))) return bad('wrong secret');
    this.verified.set(clientId, d);
    return { ok: true };
  }

  forget(deviceId: string): void {
    this.verified.delete(deviceId);
  }
}
