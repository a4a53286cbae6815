import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * CI smoke of the scale-out throughput benchmark (`throughput --broker mosquitto --store postgres`)
 * at tiny sizes, ~10–15 s: PostgreSQL and Mosquitto started, workers started and drained between
 * phases, every worker's ledger reconciled with the store and what the boxes saw. No figure is
 * asserted. The helpers run from source (an empty SCANBOX_BENCH_DIST), so no build is needed; the
 * results go to a scratch directory. (The scale-out fleet smoke, ~20 s, is left to a manual
 * `npm run bench -- fleet --smoke --broker mosquitto --store postgres`.)
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const out = mkdtempSync(path.join(os.tmpdir(), 'scanbox-bench-scaleout-'));
const noDist = mkdtempSync(path.join(os.tmpdir(), 'scanbox-bench-nodist-'));
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(noDist, { recursive: true, force: true });
});

describe('scale-out throughput benchmark (smoke: tiny sizes, figures not asserted)', () => {
  it('measures 1 and 2 workers on Mosquitto and PostgreSQL in one run, and reconciles every worker\'s payments', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/run.ts'), 'throughput', '--smoke', '--no-build', '--broker', 'mosquitto', '--store', 'postgres', '--workers', '1,2'], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, SCANBOX_BENCH_RESULTS: out, SCANBOX_BENCH_DIST: noDist },
      timeout: 110_000,
    });
    expect(r.status, `bench exited ${r.status}\n${r.stdout}\n${r.stderr}`).toBe(0);
    const j = JSON.parse(readFileSync(path.join(out, 'throughput-scaleout.json'), 'utf8'));
    expect(j.name).toBe('throughput-scaleout');
    expect(j.params).toMatchObject({ smoke: true, workers: [1, 2] });
    expect(j.figures).toMatchObject({ 'payments/s, 1 worker (median)': expect.any(Number), 'payments/s, 2 workers (median)': expect.any(Number), '2 workers ÷ 1 worker': expect.any(Number) });
    // Each count was measured with that many worker processes, each seen on /proc.
    expect(j.raw.phases.map((p: { workers: number }) => p.workers)).toEqual([1, 2]);
    for (const p of j.raw.phases) expect(p.cpu.workers).toHaveLength(p.workers);
    expect(j.figures['payments reconciled']).toBeGreaterThan(0);
    const t = j.targets.find((x: { what: string }) => x.what === 'reconciliation');
    expect(t.met, JSON.stringify(j.raw.reconcile, null, 1)).toBe(true);
  }, 120_000);
});
