import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exportedSampleNames, metricNamesIn } from '../support/promql-names.js';

/**
 * deploy/prometheus/ as Prometheus itself reads it: promtool (Debian's `prometheus` package) checks
 * the rules and the scrape config, and runs each alert's cases in alerts.test.yml. Every series an
 * alert reads must be one the cloud exports: a renamed metric fails here, not silently in production.
 */
const DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));

function promtool(...args: string[]): { status: number; output: string } {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error('promtool is not installed: `apt-get install prometheus` (Debian) provides it; the service need not run');
  }
  if (r.error) throw r.error;
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

/** The `expr:` of each rule: one line, or a `|` block indented below it. */
function ruleExpressions(yaml: string): string[] {
  const lines = yaml.split('\n');
  const exprs: string[] = [];
  lines.forEach((line, i) => {
    const m = /^(\s*)expr:\s*(.*)$/.exec(line);
    if (!m) return;
    if (m[2] !== '|') return void exprs.push(m[2]!);
    const block: string[] = [];
    for (let j = i + 1; j < lines.length && (lines[j]!.trim() === '' || lines[j]!.search(/\S/) > m[1]!.length); j++) block.push(lines[j]!);
    exprs.push(block.join('\n'));
  });
  return exprs;
}

describe('deploy/prometheus', () => {
  it('promtool accepts the alert rules', () => {
    const r = promtool('check', 'rules', 'alerts.yml');
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/SUCCESS: 8 rules found/);
  });

  it("every alert's cases pass (promtool test rules alerts.test.yml)", () => {
    const r = promtool('test', 'rules', 'alerts.test.yml');
    expect(r.status, r.output).toBe(0);
  });

  it('promtool accepts the example scrape config', () => {
    const r = promtool('check', 'config', 'prometheus.yml');
    expect(r.status, r.output).toBe(0);
  });

  it('every alert reads only series the cloud exports (or Prometheus its `up`)', () => {
    const exprs = ruleExpressions(readFileSync(`${DIR}alerts.yml`, 'utf8'));
    expect(exprs).toHaveLength(8);
    const exported = exportedSampleNames();
    exported.add('up');
    const used = exprs.flatMap(metricNamesIn);
    expect(used).toContain('scanbox_cloud_box_last_seen_timestamp_seconds');
    expect(used.filter((n) => !exported.has(n))).toEqual([]);
  });
});
