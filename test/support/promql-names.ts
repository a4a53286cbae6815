import { Histogram } from 'prom-client';
import { Metrics } from '../../cloud/metrics.js';

/**
 * The metric names a PromQL expression reads, so that a dashboard or an alert naming a series the
 * cloud does not export (a renamed metric) fails its test. Not a PromQL parser: strings, label
 * matchers, ranges and label lists are blanked out, then every identifier that is not a function,
 * an aggregation, a keyword or a Grafana `$variable` is a metric name.
 */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

export function metricNamesIn(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = s[m.index - 1] ?? ' ';
    if (/[0-9.$]/.test(before)) continue; // 1e3, 5m, $wallet
    if (s.slice(m.index + m[0].length).trimStart().startsWith('(')) continue; // rate(, sum(
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Every sample name a cloud's /metrics can carry (a histogram's _bucket, _sum and _count), read from its registry. */
export function exportedSampleNames(metrics: Metrics = new Metrics()): Set<string> {
  const out = new Set<string>();
  for (const m of metrics.registry.getMetricsAsArray()) {
    const suffixes = m instanceof Histogram ? ['_bucket', '_sum', '_count'] : [''];
    for (const sfx of suffixes) out.add(m.name + sfx);
  }
  return out;
}
