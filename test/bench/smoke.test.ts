import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * CI smoke of every benchmark at tiny sizes (`--smoke`), so they cannot rot. No assertion on any
 * time or rate: only that each run finishes, writes its JSON with the expected fields, and that
 * reconciliation passed where the benchmark reconciles. Nothing is written into the checkout: the
 * results go to a scratch directory, not bench/results/, and the compiled code to a temporary
 * directory (SCANBOX_BENCH_DIST), not dist/.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
let out: string;
let dist: string;

beforeAll(() => {
  out = mkdtempSync(path.join(os.tmpdir(), 'scanbox-bench-smoke-'));
  dist = mkdtempSync(path.join(os.tmpdir(), 'scanbox-bench-dist-'));
  // The footprint benchmark runs the compiled agent; the helpers prefer compiled code when current.
  // Type errors are `npm run typecheck`'s to report; tsc emits regardless, and that is what runs here.
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const b = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', dist], { cwd: ROOT, encoding: 'utf8' });
  expect(existsSync(path.join(dist, 'device/cli.js')), b.stdout + b.stderr).toBe(true);
  // Compiled ESM outside the checkout: it needs the package type, and resolves packages from here.
  writeFileSync(path.join(dist, 'package.json'), `${JSON.stringify({ type: 'module', private: true })}\n`);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dist, 'node_modules'), 'dir');
}, 120_000);

afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(dist, { recursive: true, force: true });
});

function runBench(name: string): Record<string, any> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/run.ts'), name, '--smoke', '--no-build'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, SCANBOX_BENCH_RESULTS: out, SCANBOX_BENCH_DIST: dist },
    timeout: 170_000,
  });
  expect(r.status, `bench ${name} exited ${r.status}\n${r.stdout}\n${r.stderr}`).toBe(0);
  const json = JSON.parse(readFileSync(path.join(out, `${name}.json`), 'utf8'));
  expect(json.name).toBe(name);
  expect(json.machine).toMatchObject({ node: expect.any(String), cpus: expect.any(Number), cpuModel: expect.any(String) });
  expect(json.params.smoke).toBe(true);
  expect(Array.isArray(json.targets)).toBe(true);
  for (const t of json.targets) expect(t).toMatchObject({ what: expect.any(String), target: expect.any(String), actual: expect.any(String), met: expect.any(Boolean) });
  return json;
}

function reconciled(json: Record<string, any>): void {
  const t = json.targets.find((x: { what: string }) => x.what === 'reconciliation');
  expect(t, 'a reconciliation target').toBeDefined();
  expect(t.met, JSON.stringify(json.raw?.reconcile ?? json.raw, null, 1)).toBe(true);
}

describe('benchmarks (smoke: tiny sizes, figures not asserted)', () => {
  it('latency', () => {
    const j = runBench('latency');
    expect(j.figures).toMatchObject({ 'e2e p50 ms': expect.any(Number), 'e2e p99 ms': expect.any(Number), 'floor ms (rtt + 4 commits)': expect.any(Number), 'e2e p50 / floor': expect.any(Number) });
    expect(j.raw.e2eMs.n).toBeGreaterThan(0);
    reconciled(j);
  }, 180_000);

  it('throughput', () => {
    const j = runBench('throughput');
    expect(j.figures).toMatchObject({ 'cloud payments/s (median)': expect.any(Number), 'raw QoS1 round trips/s (median)': expect.any(Number), 'cloud / raw': expect.any(Number) });
    expect(j.figures['payments reconciled']).toBeGreaterThan(0);
    reconciled(j);
  }, 180_000);

  it('fleet', () => {
    const j = runBench('fleet');
    expect(j.figures).toMatchObject({ boxes: 20, 'connected (all subscribed)': 20, 'online in registry': 20, 'cloud RSS MiB (steady)': expect.any(Number), 'connect all s': expect.any(Number), 'cloud restart → 20 boxes reconnected s': expect.any(Number) });
    expect(j.raw.heartbeatSamplesMatched).toBeGreaterThan(0);
    reconciled(j);
  }, 180_000);

  it('recovery', () => {
    const j = runBench('recovery');
    expect(j.figures).toMatchObject({ 'box: attempts': 20, 'box: ECR result lines': 20, 'cloud: attempts': 50, 'box: spawn → all final s': expect.any(Number), 'cloud: start → all final s': expect.any(Number) });
    reconciled(j);
  }, 180_000);

  it('footprint', () => {
    const j = runBench('footprint');
    expect(j.figures).toMatchObject({ 'cold start → ready ms (median)': expect.any(Number), 'idle RSS MiB': expect.any(Number), 'idle CPU % (heartbeats)': expect.any(Number) });
    expect(j.raw.rssEvery1000MiB.length).toBeGreaterThan(0);
    expect(j.figures['growth over the second half MiB']).toEqual(expect.any(Number));
    // Measured as shipped: the unit's settings, and the agent process really ran with them.
    expect(j.params.agentSettings.from).toEqual({ nodeFlags: 'deploy/systemd/scanbox-device.service', env: 'deploy/systemd/scanbox-device.service' });
    expect(j.raw.agentProcess.argv).toEqual(j.params.agentSettings.nodeFlags);
    expect([...j.raw.agentProcess.env].sort()).toEqual(Object.entries(j.params.agentSettings.env).map(([k, v]) => `${k}=${v}`).sort());
    expect(j.raw.agentProcess.env).toContain('MALLOC_ARENA_MAX=2');
  }, 180_000);

  it('journal', () => {
    const j = runBench('journal');
    expect(j.figures).toMatchObject({ 'journal second half ÷ first plateau': expect.any(Number), 'RSS second half ÷ first plateau': expect.any(Number) });
    expect(j.raw.prunedSales).toBeGreaterThan(0);
    expect(j.raw.samples.length).toBeGreaterThan(0);
  }, 180_000);

  it('dashboards', () => {
    const j = runBench('dashboards');
    expect(j.figures).toMatchObject({ 'payments/s, no dashboard (median)': expect.any(Number), 'payments/s, 2 dashboards (median)': expect.any(Number), '2 dashboards ÷ none': expect.any(Number) });
    // The streams were open and read during their phases.
    expect(j.raw.liveBytesPerS[0]).toBeGreaterThan(0);
    reconciled(j);
  }, 180_000);

  it('wallets', () => {
    const j = runBench('wallets');
    for (const w of ['wechat', 'alipay']) {
      expect(j.figures).toMatchObject({ [`${w} keep-alive on: pay p50 ms`]: expect.any(Number), [`${w} keep-alive off: pay p99 ms`]: expect.any(Number), [`${w} off / on (p50)`]: expect.any(Number) });
      // Counts, not times: keep-alive off opens a connection per call (reset), on far fewer.
      const on = j.raw.connections[`${w}-on`];
      const off = j.raw.connections[`${w}-off`];
      expect(off.accepted).toBe(off.calls);
      expect(on.accepted).toBeLessThan(off.accepted);
      expect(j.raw.adapterPayMs[`${w}-on`].n).toBe(j.params.calls);
    }
    expect(j.figures).toMatchObject({ 'cloud payments/s, WeChat adapter (median)': expect.any(Number), 'cloud payments/s, scripted gateway (median)': expect.any(Number), 'adapter / scripted': expect.any(Number) });
    expect(j.figures["cloud's WeChat TLS connections, most in a phase"]).toBeGreaterThan(0);
    reconciled(j);
  }, 180_000);
});
