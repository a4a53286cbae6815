import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { report, type BenchResult } from './result.js';
import { ROOT } from './harness.js';

/**
 * `npm run bench` — every benchmark, each in its own Node process, one after another.
 * `npm run bench -- NAME [NAME…]` — only those. `--smoke` runs tiny sizes (what CI does: the figures
 * mean nothing, the point is that nothing rots). Any parameter can be overridden: `--sales 2000`.
 * Each benchmark writes bench/results/NAME.json (or $SCANBOX_BENCH_RESULTS/NAME.json).
 */
interface Bench {
  load(): Promise<{ run(p: never): Promise<BenchResult>; defaults: object; smoke: object }>;
}

const BENCHES: Record<string, Bench> = {
  latency: { load: async () => { const m = await import('./latency.js'); return { run: m.latency, defaults: m.LATENCY_DEFAULTS, smoke: m.LATENCY_SMOKE }; } },
  throughput: { load: async () => { const m = await import('./throughput.js'); return { run: m.throughput, defaults: m.THROUGHPUT_DEFAULTS, smoke: m.THROUGHPUT_SMOKE }; } },
  fleet: { load: async () => { const m = await import('./fleet.js'); return { run: m.fleet, defaults: m.FLEET_DEFAULTS, smoke: m.FLEET_SMOKE }; } },
  recovery: { load: async () => { const m = await import('./recovery.js'); return { run: m.recovery, defaults: m.RECOVERY_DEFAULTS, smoke: m.RECOVERY_SMOKE }; } },
  footprint: { load: async () => { const m = await import('./footprint.js'); return { run: m.footprint, defaults: m.FOOTPRINT_DEFAULTS, smoke: m.FOOTPRINT_SMOKE }; } },
  wallets: { load: async () => { const m = await import('./wallets.js'); return { run: m.wallets, defaults: m.WALLETS_DEFAULTS, smoke: m.WALLETS_SMOKE }; } },
  journal: { load: async () => { const m = await import('./journal.js'); return { run: m.journal, defaults: m.JOURNAL_DEFAULTS, smoke: m.JOURNAL_SMOKE }; } },
  dashboards: { load: async () => { const m = await import('./dashboards.js'); return { run: m.dashboards, defaults: m.DASHBOARDS_DEFAULTS, smoke: m.DASHBOARDS_SMOKE }; } },
};
export const BENCH_NAMES = Object.keys(BENCHES);

function parseArgs(argv: string[]): { names: string[]; smoke: boolean; build: boolean; overrides: Record<string, unknown>; passthrough: string[] } {
  const names: string[] = [];
  const overrides: Record<string, unknown> = {};
  const passthrough: string[] = [];
  let smoke = false;
  let build = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--no-build') build = false;
    else if (a === '--smoke') {
      smoke = true;
      passthrough.push(a);
    } else if (a.startsWith('--')) {
      const key = a.slice(2);
      const raw = argv[++i];
      if (raw === undefined) throw new Error(`${a} needs a value`);
      overrides[key] = /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
      passthrough.push(a, raw);
    } else names.push(a);
  }
  return { names, smoke, build, overrides, passthrough };
}

async function runOne(name: string, smoke: boolean, overrides: Record<string, unknown>): Promise<BenchResult> {
  const bench = BENCHES[name];
  if (!bench) throw new Error(`unknown benchmark "${name}"; one of: ${BENCH_NAMES.join(', ')}`);
  const m = await bench.load();
  const params = { ...(smoke ? m.smoke : m.defaults), ...overrides };
  const result = await m.run(params as never);
  result.params = { ...result.params, smoke };
  report(result);
  return result;
}

function runChild(name: string, passthrough: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', new URL('./run.ts', import.meta.url).pathname, name, ...passthrough], { stdio: 'inherit', cwd: ROOT });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

/**
 * `npm run build` first: the footprint benchmark measures the compiled agent, and the helper
 * processes (cloud, echo broker, fleet load) run compiled so the TypeScript loader is not measured.
 */
function build(): void {
  const t0 = Date.now();
  const r = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) {
    // tsc still emits on type errors (those are `npm run typecheck`'s to report); no output is fatal.
    if (!existsSync(path.join(ROOT, 'dist', 'device', 'cli.js'))) {
      console.error('bench: npm run build failed');
      process.exit(1);
    }
    console.error('bench: npm run build reported errors; measuring what it emitted');
  }
  console.log(`bench: built dist/ in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

const { names, smoke, build: doBuild, overrides, passthrough } = parseArgs(process.argv.slice(2));
for (const n of names) if (!BENCHES[n]) {
  console.error(`unknown benchmark "${n}"; one of: ${BENCH_NAMES.join(', ')}`);
  process.exit(2);
}
if (doBuild) build();
passthrough.push('--no-build');
if (names.length === 1) {
  try {
    const r = await runOne(names[0]!, smoke, overrides);
    process.exit(r.targets.some((t) => t.what === 'reconciliation' && !t.met) ? 1 : 0);
  } catch (err) {
    console.error(`bench ${names[0]}: ${(err as Error).stack ?? String(err)}`);
    process.exit(1);
  }
} else {
  const list = names.length ? names : BENCH_NAMES;
  const started = Date.now();
  const failed: string[] = [];
  for (const n of list) {
    const t0 = Date.now();
    const code = await runChild(n, passthrough);
    console.log(`   (${n}: ${((Date.now() - t0) / 1000).toFixed(1)} s${code ? `, exit ${code}` : ''})\n`);
    if (code) failed.push(n);
  }
  console.log(`bench: ${list.length} benchmarks in ${((Date.now() - started) / 1000).toFixed(1)} s${failed.length ? `; FAILED: ${failed.join(', ')}` : ''}`);
  // A full run at the real sizes into bench/results/ becomes bench/README.md's table.
  if (!smoke && names.length === 0 && Object.keys(overrides).length === 0 && !process.env.SCANBOX_BENCH_RESULTS) {
    const { updateReadme } = await import('./table.js');
    updateReadme();
    console.log('bench: bench/README.md table updated');
  }
  process.exit(failed.length ? 1 : 0);
}
