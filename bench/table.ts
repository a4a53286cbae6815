import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/**
 * The latest results as one Markdown table (what bench/README.md keeps), from bench/results/*.json
 * (or $SCANBOX_BENCH_RESULTS):  node --import tsx bench/table.ts [--write]
 * `--write` puts it into bench/README.md (the runner does that after a full `npm run bench`).
 */
const NAMES = ['latency', 'throughput', 'fleet', 'recovery', 'footprint', 'wallets', 'journal', 'dashboards'];

interface ResultFile {
  name: string;
  machine: { node: string; cpus: number; cpuModel: string; memGiB: number; loadavg: number[]; at: string; platform: string };
  figures: Record<string, unknown>;
  targets: { what: string; target: string; actual: string; met: boolean }[];
}

export function resultsTable(dir = process.env.SCANBOX_BENCH_RESULTS ?? new URL('./results/', import.meta.url).pathname): string {
  const files = NAMES.map((n) => `${dir.replace(/\/?$/, '/')}${n}.json`).filter((f) => existsSync(f));
  const results = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as ResultFile);
  if (results.length === 0) return '(no results yet: run `npm run bench`)';
  const m = results[0]!.machine;
  const lines = [
    `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memGiB} GiB, ${m.platform}, Node ${m.node}.`,
    '',
    '| benchmark | figure | value |',
    '| --- | --- | --- |',
  ];
  for (const r of results) {
    for (const [k, v] of Object.entries(r.figures)) lines.push(`| ${r.name} | ${k} | ${String(v)} |`);
  }
  lines.push('', '| benchmark | target | actual | met | finished at (load avg 1/5/15 min, the benchmark itself included) |', '| --- | --- | --- | --- | --- |');
  for (const r of results) {
    for (const t of r.targets) lines.push(`| ${r.name} | ${t.what}: ${t.target} | ${t.actual} | ${t.met ? 'yes' : '**no**'} | ${r.machine.at.slice(0, 16).replace('T', ' ')} (${r.machine.loadavg.join(' / ')}) |`);
  }
  return lines.join('\n');
}

const BEGIN = '<!-- results:begin -->';
const END = '<!-- results:end -->';

/** Replace the table between the markers in bench/README.md. */
export function updateReadme(table = resultsTable()): void {
  const file = new URL('./README.md', import.meta.url);
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error('bench/README.md has no results markers');
  writeFileSync(file, `${text.slice(0, a + BEGIN.length)}\n${table}\n${text.slice(b)}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv.includes('--write')) updateReadme();
  else console.log(resultsTable());
}
