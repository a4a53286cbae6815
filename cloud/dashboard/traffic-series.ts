import type { Metrics } from '../metrics.js';
import { PREFIX } from '../metrics.js';

/**
 * Payments and abnormal flows per minute over the last hour, for the dashboard's charts, made from
 * the counters the cloud keeps for /metrics anyway — never from the store. Each sample reads the
 * running totals and adds what moved since the last sample to the current minute; the live stream
 * samples once per push, whoever is watching. What happened before the first sample (before this
 * process started) is not on the chart.
 */
export const FLOWS = [
  { key: 'paid', label: 'paid', colour: '#2e7d32' },
  { key: 'userpaying', label: 'USERPAYING', colour: '#f9a825' },
  { key: 'reversed', label: 'reversed', colour: '#6a1b9a' },
  { key: 'refunded', label: 'refunded', colour: '#1565c0' },
  { key: 'duplicate', label: 'duplicate', colour: '#d84315' },
  { key: 'flagged', label: 'flagged', colour: '#c62828' },
  { key: 'registerRefunds', label: 'register refunds', colour: '#00838f' },
] as const;
export type FlowKey = (typeof FLOWS)[number]['key'];
export type FlowCounts = Record<FlowKey, number>;

export interface MinuteBucket {
  /** Start of the minute (epoch ms). */
  at: number;
  counts: FlowCounts;
}

const MINUTE = 60_000;
const zero = (): FlowCounts => Object.fromEntries(FLOWS.map((f) => [f.key, 0])) as FlowCounts;

/** The totals so far, as /metrics would show them. USERPAYING is the pay calls answered "in progress". */
export async function flowTotals(metrics: Metrics): Promise<FlowCounts> {
  const final = (labels: Record<string, string>) => metrics.get('attempts_final_total', labels);
  return {
    paid: final({ state: 'SUCCESS' }),
    userpaying: await histogramCount(metrics, 'gateway_call_duration_seconds', { call: 'pay', outcome: 'in_progress' }),
    reversed: final({ state: 'REVERSED' }),
    refunded: final({ state: 'REFUNDED' }),
    duplicate: final({ reason: 'DUPLICATE_PAYMENT' }),
    // An amount mismatch is final twice (FAILED at once, then REVERSED or REFUNDED): counted at the first.
    flagged: final({ state: 'FAILED', reason: 'AMOUNT_MISMATCH' }) + metrics.get('refunds_flagged_total'),
    registerRefunds: metrics.get('refunds_total'),
  };
}

/** How many observations a histogram holds over its series whose labels include all of `labels`. */
async function histogramCount(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.registry.getSingleMetric(PREFIX + name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const want = Object.entries(labels);
  return values
    // A histogram's values carry their series name (_bucket, _sum, _count); prom-client's type leaves it out.
    .filter((v) => (v as { metricName?: string }).metricName === `${PREFIX}${name}_count` && want.every(([k, x]) => v.labels[k] === x))
    .reduce((n, v) => n + v.value, 0);
}

export class TrafficSeries {
  private readonly buckets = new Map<number, FlowCounts>();
  private last: FlowCounts | undefined;

  constructor(private readonly totals: () => Promise<FlowCounts>, private readonly minutes = 60) {}

  async sample(now: number): Promise<void> {
    const totals = await this.totals();
    const before = this.last;
    this.last = totals;
    if (!before) return;
    const at = Math.floor(now / MINUTE) * MINUTE;
    const bucket = this.buckets.get(at) ?? zero();
    for (const f of FLOWS) bucket[f.key] += Math.max(0, totals[f.key] - before[f.key]);
    this.buckets.set(at, bucket);
    for (const key of this.buckets.keys()) if (key <= at - this.minutes * MINUTE) this.buckets.delete(key);
  }

  /** The last `minutes` minutes up to and including now's, oldest first, minutes without activity as zeros. */
  window(now: number): MinuteBucket[] {
    const end = Math.floor(now / MINUTE) * MINUTE;
    return Array.from({ length: this.minutes }, (_, i) => {
      const at = end - (this.minutes - 1 - i) * MINUTE;
      return { at, counts: { ...(this.buckets.get(at) ?? zero()) } };
    });
  }
}
