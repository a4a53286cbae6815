import type { DashboardConfig } from './dashboard-config.js';

/**
 * Refused dashboard logins, counted per operator name and per source address: the MQTT login's
 * doubling backoff (broker/device-auth.ts), turned into a refusal with Retry-After instead of a held
 * answer, since an HTTP request held open costs the cloud a socket. The first few failures are free
 * (a typo); after that each try must wait `baseMs` doubled per further failure since the last one,
 * up to `maxMs`, and a try while waiting is refused without looking at the password. A success
 * clears its operator's count, not its address's: one right password among many guesses from an
 * address does not reset the guesses.
 *
 * A trade-off, on purpose: someone who knows an operator's name can make that operator wait (at
 * most `maxMs`). Never letting a guess through unthrottled is worth more on a payments console.
 */
type Limits = DashboardConfig['loginLimit'];

export class LoginThrottle {
  private readonly failures = new Map<string, { count: number; at: number }>();

  constructor(private readonly limits: Limits) {}

  /** Milliseconds until a login for `operator` from `address` may be tried; 0: now. */
  waitMs(operator: string, address: string, now: number): number {
    const waits = this.keys(operator, address).map(([key, free]) => {
      const f = this.current(key, now);
      if (!f || f.count < free) return 0;
      const delay = Math.min(this.limits.maxMs, this.limits.baseMs * 2 ** (f.count - free));
      return Math.max(0, f.at + delay - now);
    });
    return Math.max(...waits);
  }

  failed(operator: string, address: string, now: number): void {
    for (const [key] of this.keys(operator, address)) {
      const f = this.current(key, now);
      this.failures.set(key, { count: (f?.count ?? 0) + 1, at: now });
    }
    if (this.failures.size > 10_000) this.sweep(now);
  }

  succeeded(operator: string): void {
    this.failures.delete(`op:${operator}`);
  }

  private keys(operator: string, address: string): [string, number][] {
    return [
      [`op:${operator}`, this.limits.operatorFree],
      [`addr:${address}`, this.limits.addressFree],
    ];
  }

  private current(key: string, now: number): { count: number; at: number } | undefined {
    const f = this.failures.get(key);
    return f && now - f.at < this.limits.windowMs ? f : undefined;
  }

  private sweep(now: number): void {
    for (const [k, f] of this.failures) if (now - f.at >= this.limits.windowMs) this.failures.delete(k);
  }
}
