/**
 * Counters the cloud keeps about what it refused and why. Plain numbers, exposed on `GET /metrics`
 * in the Prometheus text format, so tests can assert "refused and counted" and operators can alert.
 */
export type CounterName =
  | 'auth_refused_total'
  | 'publish_refused_total'
  | 'subscribe_refused_total'
  | 'messages_invalid_total'
  | 'messages_forbidden_total'
  | 'messages_total'
  | 'pairing_refused_total'
  | 'pairing_rate_limited_total'
  | 'devices_paired_total'
  | 'gateway_calls_total'
  | 'results_sent_total'
  | 'mqtt_connections_cut_total'
  | 'channel_transitions_total';

export class Metrics {
  private readonly counts = new Map<string, number>();

  inc(name: CounterName, label?: string, by = 1): void {
    const key = label ? `${name}{kind="${label}"}` : name;
    this.counts.set(key, (this.counts.get(key) ?? 0) + by);
  }

  /** Total of a counter across all its labels. */
  get(name: CounterName): number {
    let total = 0;
    for (const [key, v] of this.counts) if (key === name || key.startsWith(`${name}{`)) total += v;
    return total;
  }

  text(): string {
    return [...this.counts].map(([k, v]) => `scanbox_cloud_${k} ${v}`).join('\n') + '\n';
  }
}
