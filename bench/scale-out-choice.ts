/**
 * Which cloud a benchmark measures: the default single process (embedded aedes broker, SQLite store),
 * or the scale-out — N worker processes on Mosquitto and PostgreSQL — chosen with `--broker mosquitto
 * --store postgres` and, for throughput, `--workers 1,2,3` (the counts compared side by side in one
 * run; `1|2|3` in quotes and a single number are read too). The two go together: several workers need
 * both a broker that shares the boxes' messages among them and a store they can share.
 */
export interface ScaleOutChoice {
  broker: string;
  store: string;
  workers?: string | number;
}

export const EMBEDDED = { broker: 'embedded', store: 'sqlite' } as const;

const MAX_WORKERS = 8;

export type Choice = { scaleOut: false } | { scaleOut: true; workers: number[] };

export function scaleOutChoice(p: ScaleOutChoice, defaultWorkers: string): Choice {
  if (p.broker !== 'embedded' && p.broker !== 'mosquitto') throw new Error(`--broker ${p.broker}: embedded (default) or mosquitto`);
  if (p.store !== 'sqlite' && p.store !== 'postgres') throw new Error(`--store ${p.store}: sqlite (default) or postgres`);
  const scaleOut = p.broker === 'mosquitto';
  if (scaleOut !== (p.store === 'postgres')) {
    throw new Error(`--broker ${p.broker} --store ${p.store}: the scale-out runs on --broker mosquitto --store postgres together; without both, the default single process (embedded, sqlite)`);
  }
  if (!scaleOut) {
    if (p.workers !== undefined) throw new Error(`--workers ${p.workers}: several workers need --broker mosquitto --store postgres`);
    return { scaleOut: false };
  }
  return { scaleOut: true, workers: parseWorkers(String(p.workers ?? defaultWorkers)) };
}

/** "1,2,3", "1|2|3", "2": each a whole number 1–8, no repeats. */
export function parseWorkers(text: string): number[] {
  const parts = text.split(/[\s,|]+/).filter(Boolean);
  const counts = parts.map(Number);
  const bad = parts.filter((x, i) => !Number.isInteger(counts[i]) || counts[i]! < 1 || counts[i]! > MAX_WORKERS);
  if (parts.length === 0 || bad.length) throw new Error(`--workers ${text}: worker counts 1–${MAX_WORKERS}, separated by commas (1,2,3)`);
  if (new Set(counts).size !== counts.length) throw new Error(`--workers ${text}: each count once`);
  return counts;
}
