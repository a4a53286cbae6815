import type { Metrics } from '../metrics.js';
import type { CloudStore } from '../store/store.js';
import { PREFIX } from '../metrics.js';

/**
 * Payments and abnormal flows per minute over the last hour, for the dashboard's charts, made from
 * the counters the cloud keeps for /metrics anyway — never by counting attempts in the store. Each
 * sample reads the running totals and adds what moved since the last sample to the current minute's
 * row in the store (traffic_minutes), where every worker adds its own: a dashboard served by one
 * worker charts the payments all of them drove, and a restart loses no minute. The live feed samples
 * once per push (2 s), whoever is watching; the chart reads the minutes back only for a watcher.
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

/** Where the minutes are kept: the store, so every worker's payments are on one chart and a restart loses none. */
export type TrafficLog = Pick<CloudStore, 'addTraffic' | 'trafficSince' | 'pruneTraffic'>;

export class TrafficSeries {
  /** The counters as last sampled: zero when this process started, as its counters did. */
  private last: FlowCounts = zero();
  /** Moved since the last sample the store took: a store that failed keeps it for the next one. */
  private unsent: FlowCounts = zero();
  private prunedAt = 0;

  constructor(
    private readonly totals: () => Promise<FlowCounts>,
    private readonly log: TrafficLog,
    private readonly minutes = 60,
  ) {}

  /** Adds what the counters moved since the last sample to now's minute in the store; a write only when something moved. */
  async sample(now: number): Promise<void> {
    const totals = await this.totals();
    for (const f of FLOWS) this.unsent[f.key] += Math.max(0, totals[f.key] - this.last[f.key]);
    this.last = totals;
    const at = Math.floor(now / MINUTE) * MINUTE;
    if (FLOWS.some((f) => this.unsent[f.key] > 0)) {
      await this.log.addTraffic(at, this.unsent);
      this.unsent = zero();
    }
    // Once a minute is enough: the chart reads only its last `minutes`, and every worker prunes.
    if (at > this.prunedAt) {
      this.prunedAt = at;
      await this.log.pruneTraffic(at - 2 * this.minutes * MINUTE);
    }
  }

  /** The last `minutes` minutes up to and including now's, oldest first, minutes without activity as zeros. */
  async window(now: number): Promise<MinuteBucket[]> {
    const end = Math.floor(now / MINUTE) * MINUTE;
    const start = end - (this.minutes - 1) * MINUTE;
    const buckets = new Map<number, FlowCounts>();
    const known = new Set<string>(FLOWS.map((f) => f.key));
    for (const r of await this.log.trafficSince(start)) {
      // A flow an older or newer worker adds that this one does not chart is left out.
      if (r.minute > end || !known.has(r.flow)) continue;
      const b = buckets.get(r.minute) ?? zero();
      b[r.flow as FlowKey] += r.count;
      buckets.set(r.minute, b);
    }
    return Array.from({ length: this.minutes }, (_, i) => {
      const at = start + i * MINUTE;
      return { at, counts: buckets.get(at) ?? zero() };
    });
  }
}
