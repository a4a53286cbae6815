import type { Attempt } from './transaction.js';
import { ConcurrencyLimit } from './concurrency-limit.js';

/**
 * The channel a gateway call goes through: what one set of provider credentials reaches, and so
 * what a wallet's rate limit counts. An attempt recorded before channels existed used its wallet's.
 */
export function channelOf(a: Pick<Attempt, 'wallet' | 'channel'>): string {
  return a.channel ?? a.wallet ?? 'none';
}

/**
 * At most `width` gateway calls in flight per channel; the others wait in arrival order (so the
 * calls of one attempt, which never overlap anyway, cannot overtake each other). One channel
 * crowding its wallet does not hold back the calls of another. One instance serves the payments'
 * and the refunds' services: a provider's limit counts every call made with its credentials.
 * Channels are few (one per provider account), so the map is never pruned.
 */
export class ChannelLimits {
  private readonly limits = new Map<string, ConcurrencyLimit>();

  constructor(private readonly width: number) {
    if (!Number.isInteger(width) || width < 1) throw new RangeError(`gateway concurrency must be a whole number ≥ 1, not ${width}`);
  }

  run<T>(channel: string, task: () => Promise<T>): Promise<T> {
    let limit = this.limits.get(channel);
    if (!limit) this.limits.set(channel, (limit = new ConcurrencyLimit(this.width)));
    return limit.run(task);
  }
}

/**
 * How long a restart spreads the first calls of `count` resumed attempts of one channel over: long
 * enough that they start at about `ratePerS` on average, never longer than `maxMs`. A handful of
 * attempts starts at once (a lone resumed payment is not kept waiting for nothing); thousands get
 * the whole window.
 */
export function resumeWindowMs(count: number, o: { maxMs: number; ratePerS: number }): number {
  return Math.min(o.maxMs, (count * 1000) / o.ratePerS);
}
