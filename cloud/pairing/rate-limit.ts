/**
 * Fixed-window counter per key (the source address of a pairing request). Small and in memory:
 * its job is to make guessing a 50-bit pairing code hopeless, not to be exact across restarts.
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(private readonly max: number, private readonly windowMs: number) {}

  /** Counts one request; returns 0 when allowed, else the milliseconds until the next window. */
  take(key: string, now: number): number {
    const w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      this.windows.set(key, { start: now, count: 1 });
      if (this.windows.size > 10_000) this.sweep(now);
      return 0;
    }
    w.count++;
    return w.count <= this.max ? 0 : w.start + this.windowMs - now;
  }

  private sweep(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
  }
}
