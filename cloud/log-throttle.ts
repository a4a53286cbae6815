/**
 * "At most one log line per key per interval": an attacker's loop of refused logins or cut
 * connections must not fill the disk with log lines, while the first refusal for a device or an
 * address is still logged at once. What was held back is reported as `suppressed` on the next line.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly intervalMs: number, private readonly maxKeys = 10_000) {}

  /** Undefined: stay silent. Otherwise log now, with how many lines this key held back since the last one. */
  take(key: string, now: number): { suppressed: number } | undefined {
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return undefined;
    }
    this.last.set(key, { at: now, suppressed: 0 });
    if (this.last.size > this.maxKeys) this.sweep(now);
    return { suppressed: seen?.suppressed ?? 0 };
  }

  private sweep(now: number): void {
    for (const [k, v] of this.last) if (now - v.at >= this.intervalMs) this.last.delete(k);
  }
}
