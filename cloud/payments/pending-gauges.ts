import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CloudStore } from '../store/store.js';

/** Attempts whose money is being given back and is not yet: each one a customer may be calling about. */
const PENDING = ['REVERSE_PENDING', 'REFUND_PENDING'] as const;

/**
 * Pending reverses and refunds on /metrics, read from the store at each scrape (one aggregate query
 * per state, on its index): how many, and how old the oldest is. Returns what unregisters it.
 */
export function exportPendingGauges(deps: { store: CloudStore; metrics: Metrics; clock: Clock; logger: Logger }): () => void {
  const { metrics } = deps;
  return metrics.onScrape('pending', async () => {
    const counts = await Promise.all(PENDING.map((state) => deps.store.countAttempts(state))).catch((err: unknown) => {
      deps.logger.warn({ err: (err as Error).message }, 'pending attempt gauges not read for this scrape');
      throw err;
    });
    const now = deps.clock.now();
    PENDING.forEach((state, i) => {
      const c = counts[i]!;
      metrics.set('attempts_pending', { state }, c.count);
      metrics.set('attempts_pending_oldest_age_seconds', { state }, c.oldestCreatedAt === null ? 0 : Math.max(0, now - c.oldestCreatedAt) / 1000);
    });
  });
}
