import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../cloud/metrics.js';
import { exportedSampleNames, metricNamesIn } from '../support/promql-names.js';

/**
 * deploy/grafana/scanbox.json: valid JSON Grafana can import, and every query reads only series the
 * cloud exports, taken from its registry in process: a renamed metric fails here instead of leaving
 * an empty panel.
 */
interface Target {
  expr: string;
  refId: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
}

const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/scanbox.json', import.meta.url), 'utf8')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: { name: string; type: string; query: string }[] };
  panels: Panel[];
};
const queried = dashboard.panels.filter((p) => p.type !== 'row');
const exprs = queried.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

describe('deploy/grafana/scanbox.json', () => {
  it('is a dashboard: uid, title, a Prometheus datasource variable every query uses, unique panel ids, each on the 24-column grid', () => {
    expect(dashboard).toMatchObject({ uid: 'scanbox-cloud', title: expect.any(String), schemaVersion: expect.any(Number) });
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    for (const p of queried) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
  });

  it('every query reads only series the cloud exports (its process series included)', () => {
    const exported = exportedSampleNames(new Metrics({ processMetrics: true }));
    const unknown = exprs.flatMap(({ panel, expr }) => metricNamesIn(expr).filter((n) => !exported.has(n)).map((n) => `${panel}: ${n}`));
    expect(unknown).toEqual([]);
  });

  it('shows payments by wallet and final state, abnormal flows, gateway latency, boxes online and stale, pending reverses and refunds and their age', () => {
    const used = new Set(exprs.flatMap(({ expr }) => metricNamesIn(expr)));
    for (const name of [
      'scanbox_cloud_attempts_final_total',
      'scanbox_cloud_gateway_call_duration_seconds_bucket',
      'scanbox_cloud_boxes',
      'scanbox_cloud_box_last_seen_timestamp_seconds',
      'scanbox_cloud_box_outbox_depth_bucket',
      'scanbox_cloud_attempts_pending',
      'scanbox_cloud_attempts_pending_oldest_age_seconds',
      'scanbox_cloud_refunds_total',
      'scanbox_cloud_auth_refused_total',
      'scanbox_cloud_messages_invalid_total',
    ]) {
      expect(used, name).toContain(name);
    }
  });
});

describe('the metric names of a PromQL expression (the oracle of the check above)', () => {
  it.each([
    ['histogram_quantile(0.99, sum by (le, call) (rate(scanbox_cloud_x_bucket{call=~"pay|query"}[$__rate_interval])))', ['scanbox_cloud_x_bucket']],
    ['sum(rate(a_total{kind="by(x)"}[5m])) by (kind) / on (kind) group_left b > bool 1e3 offset 5m', ['a_total', 'b']],
    ['time() - max without (instance) (last_seen{job="$job"}) and on() (hour() + 8) % 24 >= 9', ['last_seen']],
    ['sum by (wallet) (increase(scanbox_cloud_refunds_total{wallet=~"$wallet"}[$__range])) * $factor', ['scanbox_cloud_refunds_total']],
  ])('%s', (expr, names) => {
    expect(metricNamesIn(expr).sort()).toEqual([...names].sort());
  });

  it('a renamed series is caught', () => {
    const exported = exportedSampleNames();
    expect(metricNamesIn('sum(rate(scanbox_cloud_attempts_total[5m]))').filter((n) => !exported.has(n))).toEqual(['scanbox_cloud_attempts_total']);
  });
});
