import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { machineFacts } from './machine.js';

export interface BenchResult {
  name: string;
  params: Record<string, unknown>;
  /** Headline figures: what the table shows and bench/README.md keeps. */
  figures: Record<string, number | string | boolean>;
  /** Targets from the issue, each with whether this run met it. */
  targets: Array<{ what: string; target: string; actual: string; met: boolean }>;
  raw?: Record<string, unknown>;
}

/** bench/results/, or SCANBOX_BENCH_RESULTS (the CI smoke test writes its tiny runs elsewhere). */
function resultsDir(): URL {
  const dir = process.env.SCANBOX_BENCH_RESULTS;
  return dir ? pathToFileURL(dir.endsWith('/') ? dir : `${dir}/`) : new URL('./results/', import.meta.url);
}

/** Write bench/results/NAME.json atomically and print a short table. */
export function report(result: BenchResult): string {
  const RESULTS = resultsDir();
  mkdirSync(RESULTS, { recursive: true });
  const file = new URL(`${result.name}.json`, RESULTS);
  const tmp = new URL(`${result.name}.json.tmp`, RESULTS);
  writeFileSync(tmp, `${JSON.stringify({ machine: machineFacts(), ...result }, null, 2)}\n`);
  renameSync(tmp, file);
  const rows = [
    ...Object.entries(result.figures).map(([k, v]) => `  ${k.padEnd(34)} ${v}`),
    ...result.targets.map((t) => `  ${t.met ? 'MET ' : 'MISS'} ${t.what}: ${t.actual} (target ${t.target})`),
  ];
  const text = `== ${result.name} ==\n${rows.join('\n')}\n  → ${file.pathname}`;
  console.log(text);
  return text;
}
