import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FINAL_REFUND_STATES, WALLETS } from '../protocol/index.js';

/**
 * Every series the cloud exports, declared once. On the wire a key `x` is `scanbox_cloud_x`, with
 * its unit in the name (`_seconds`, `_total`). `deploy/prometheus/alerts.yml` and
 * `deploy/grafana/scanbox.json` use these names; their tests fail when one is renamed.
 */
interface Spec {
  help: string;
  labels: readonly string[];
}
interface HistogramSpec extends Spec {
  buckets: readonly number[];
}

export const PREFIX = 'scanbox_cloud_';

export const COUNTERS = {
  auth_refused_total: { help: 'MQTT logins refused, by why (kind).', labels: ['kind'] },
  publish_refused_total: { help: 'Publishes refused by the broker ACL (the connection is closed).', labels: ['kind'] },
  subscribe_refused_total: { help: 'Subscriptions refused by the broker ACL.', labels: ['kind'] },
  messages_total: { help: 'Messages received on up/ topics, by message kind.', labels: ['kind'] },
  messages_invalid_total: { help: 'Messages from boxes refused as invalid (bad JSON, schema, unpaired or revoked box), by error code.', labels: ['kind'] },
  messages_forbidden_total: { help: 'Messages refused because their publisher does not own the topic or the attempt, by error code.', labels: ['kind'] },
  pairing_refused_total: { help: 'Pairing requests refused, by why.', labels: ['kind'] },
  pairing_rate_limited_total: { help: 'Pairing requests refused by the per-address rate limit.', labels: ['kind'] },
  devices_paired_total: { help: 'Boxes paired.', labels: ['kind'] },
  gateway_calls_total: { help: 'Gateway calls started, by call (their answers: gateway_call_duration_seconds).', labels: ['kind'] },
  results_sent_total: { help: 'Final results sent to boxes (a result not acknowledged is sent again).', labels: ['kind'] },
  mqtt_connections_cut_total: { help: 'MQTT connections cut by the edge before or during login, by why.', labels: ['kind'] },
  channel_transitions_total: { help: 'Channel breaker transitions, as <channel>:<state>.', labels: ['kind'] },
  attempts_final_total: {
    help: 'Payment attempts reaching a final state, counted when that state is committed, by state, wallet (none: cancelled before any pay) and reason (DUPLICATE_PAYMENT, AMOUNT_MISMATCH, DEADLINE…). An attempt undone later (REVERSED, then a late success REFUNDED) counts in each final state it reaches.',
    labels: ['state', 'wallet', 'reason'],
  },
  refunds_total: { help: 'Cashier refunds reaching a final state: REFUNDED, FAILED (the wallet declined) or REFUSED (the cloud refused before any wallet call), by wallet.', labels: ['state', 'wallet'] },
  refunds_flagged_total: { help: 'Cashier refunds still PENDING after refundFlagAfterMs, flagged for an operator (scanbox-cloud refunds --flagged), by wallet.', labels: ['wallet'] },
  scrape_errors_total: { help: 'Scrapes where a gauge read from the store failed (its gauges keep their last values), by gauge group.', labels: ['kind'] },
  leases_claimed_total: { help: 'Attempts and refunds this worker claimed because nobody held them (its own at start, a dead worker\'s once its leases ran out), by kind (attempt, refund).', labels: ['kind'] },
  broker_accounts_total: { help: 'Box accounts on an external broker (Mosquitto dynamic security), by what happened: created, removed, repaired, failed, and missing (an active box the broker has no account for, found at start: it cannot log in until paired again).', labels: ['kind'] },
} as const satisfies Record<string, Spec>;

export const HISTOGRAMS = {
  gateway_call_duration_seconds: {
    help: 'Gateway calls by call, channel and outcome (the outcome kind; for unknown also its code: TIMEOUT, HTTP_5XX, SYSTEMERROR…), from start to answer or timeout.',
    labels: ['call', 'channel', 'outcome', 'code'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30],
  },
  box_outbox_depth: {
    // A distribution, not a sum: one box stuck with 500 queued messages and 500 boxes with one each
    // are different problems. Boxes heartbeat at one interval, so each weighs the same.
    help: 'Messages waiting in a box outbox, one observation per heartbeat.',
    labels: [],
    buckets: [0, 1, 2, 5, 10, 25, 50, 100, 250, 1000],
  },
} as const satisfies Record<string, HistogramSpec>;

export const GAUGES = {
  boxes: { help: 'Active (paired, not revoked) boxes by connectivity: online, stale (no heartbeat for 3 intervals), offline, never (paired, never connected).', labels: ['connectivity'] },
  box_last_seen_timestamp_seconds: { help: 'For each active box that is offline or stale (the 1,000 most recently seen): when it was last heard from (unix seconds).', labels: ['device_id', 'merchant_id', 'store_id', 'connectivity'] },
  attempts_pending: { help: 'Attempts whose charge is being undone and has not been yet: REVERSE_PENDING and REFUND_PENDING.', labels: ['state'] },
  attempts_pending_oldest_age_seconds: { help: 'Age (since the attempt was created) of the oldest attempt in each pending state; 0 when there is none.', labels: ['state'] },
} as const satisfies Record<string, Spec>;

export type CounterName = keyof typeof COUNTERS;
export type HistogramName = keyof typeof HISTOGRAMS;
export type GaugeName = keyof typeof GAUGES;
type LabelOf<S> = S extends { labels: readonly (infer L)[] } ? L & string : never;
/** The labels a series declares, each optional (one left out is not exported). */
export type LabelsOf<S> = Partial<Record<LabelOf<S>, string>>;
/** A bare string is the `kind` label, for the series that have one. */
type CounterLabels<N extends CounterName> = LabelsOf<(typeof COUNTERS)[N]> | ('kind' extends LabelOf<(typeof COUNTERS)[N]> ? string : never);

export interface MetricsOptions {
  /** Also export Node's process series (CPU, memory, event-loop lag, GC): for a running cloud, not for each test cloud. */
  processMetrics?: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly counters;
  private readonly histograms;
  private readonly gauges;
  /** What each counter holds, readable without awaiting the registry (tests, the CLI). */
  private readonly counts = new Map<CounterName, Map<string, { labels: Record<string, string>; value: number }>>();
  private readonly scrapeHooks = new Map<string, () => Promise<void>>();

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    const built = <S extends Spec, M>(specs: Record<string, S>, make: (name: string, s: S) => M) =>
      Object.fromEntries(Object.entries(specs).map(([key, s]) => [key, make(PREFIX + key, s)]));
    this.counters = built(COUNTERS, (name, s) => new Counter({ name, help: s.help, labelNames: s.labels, registers })) as Record<CounterName, Counter>;
    this.histograms = built(HISTOGRAMS, (name, s) => new Histogram({ name, help: s.help, labelNames: s.labels, buckets: [...s.buckets], registers })) as Record<HistogramName, Histogram>;
    this.gauges = built(GAUGES, (name, s) => new Gauge({ name, help: s.help, labelNames: s.labels, registers })) as Record<GaugeName, Gauge>;
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry });
    // A labelled series exists from its first increment, and increase() cannot see that first one:
    // refunds start at 0 for every wallet, so an alert sees a wallet's first failed or stuck refund.
    for (const wallet of WALLETS) {
      for (const state of FINAL_REFUND_STATES) this.inc('refunds_total', { state, wallet }, 0);
      this.inc('refunds_flagged_total', { wallet }, 0);
    }
  }

  inc<N extends CounterName>(name: N, labels?: CounterLabels<N>, by = 1): void {
    const l: Record<string, string> = typeof labels === 'string' ? { kind: labels } : { ...(labels as Record<string, string> | undefined) };
    this.counters[name].inc(l, by);
    const key = JSON.stringify(Object.entries(l).sort());
    const series = this.counts.get(name) ?? new Map<string, { labels: Record<string, string>; value: number }>();
    this.counts.set(name, series);
    const s = series.get(key) ?? { labels: l, value: 0 };
    s.value += by;
    series.set(key, s);
  }

  observe<N extends HistogramName>(name: N, labels: LabelsOf<(typeof HISTOGRAMS)[N]>, value: number): void {
    this.histograms[name].observe(labels as Record<string, string>, value);
  }

  set<N extends GaugeName>(name: N, labels: LabelsOf<(typeof GAUGES)[N]>, value: number): void {
    this.gauges[name].set(labels as Record<string, string>, value);
  }

  /** Drops every series of a gauge: one rebuilt from a snapshot must not keep a box that came back. */
  reset(name: GaugeName): void {
    this.gauges[name].reset();
  }

  /** A counter's total over its series whose labels include all of `labels` (a string: the `kind`). */
  get(name: CounterName, labels: Record<string, string> | string = {}): number {
    const want = Object.entries(typeof labels === 'string' ? { kind: labels } : labels);
    let total = 0;
    for (const s of this.counts.get(name)?.values() ?? []) if (want.every(([k, v]) => s.labels[k] === v)) total += s.value;
    return total;
  }

  /** Each series of a counter with its labels. */
  series(name: CounterName): { labels: Record<string, string>; value: number }[] {
    return [...(this.counts.get(name)?.values() ?? [])].map((s) => ({ labels: { ...s.labels }, value: s.value }));
  }

  /**
   * Runs before every scrape, to set gauges from the store. A failing hook is counted
   * (scrape_errors_total{kind=<group>}) and leaves its gauges as they were: the rest is served.
   * Returns what unregisters it.
   */
  onScrape(group: string, hook: () => Promise<void>): () => void {
    this.scrapeHooks.set(group, hook);
    return () => void this.scrapeHooks.delete(group);
  }

  /** The Prometheus text exposition (format 0.0.4), after the scrape hooks ran. */
  async text(): Promise<string> {
    await Promise.all([...this.scrapeHooks].map(([group, hook]) => hook().catch(() => this.inc('scrape_errors_total', group))));
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
