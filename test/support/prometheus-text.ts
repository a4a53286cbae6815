/**
 * A strict reader of the Prometheus text exposition format 0.0.4
 * (prometheus.io/docs/instrumenting/exposition_formats): it throws on the first line Prometheus
 * would refuse or misread, so a test that parses `/metrics` with it proves a scrape would work.
 * Written here rather than taken from prom-client, the library under test (which has no parser).
 */
export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string | undefined;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];
/** The sample names a family of each type may have, by suffix of its own name. */
const SUFFIXES: Record<MetricType, readonly string[]> = { counter: [''], gauge: [''], untyped: [''], histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] };

export class ExpositionError extends Error {}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (text.length > 0 && !text.endsWith('\n')) throw new ExpositionError('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const done = new Set<string>();
  const typed = new Set<string>();
  let current: Family | undefined;
  const enter = (f: Family, where: string) => {
    if (current === f) return;
    if (done.has(f.name)) throw new ExpositionError(`${where}: the lines of ${f.name} are not contiguous`);
    if (current) done.add(current.name);
    current = f;
  };

  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1} (${line.slice(0, 100)})`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!m) return; // an ordinary comment
      const [, keyword, name, rest = ''] = m as unknown as [string, 'HELP' | 'TYPE', string, string | undefined];
      if (!METRIC_NAME.test(name)) throw new ExpositionError(`${where}: "${name}" is not a metric name`);
      const f = families.get(name) ?? { name, type: 'untyped' as MetricType, help: undefined, samples: [] };
      families.set(name, f);
      enter(f, where);
      if (keyword === 'HELP') {
        if (f.help !== undefined) throw new ExpositionError(`${where}: a second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new ExpositionError(`${where}: HELP escapes only \\\\ and \\n`);
        f.help = rest.replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
      } else {
        if (typed.has(name)) throw new ExpositionError(`${where}: a second TYPE for ${name}`);
        if (f.samples.length > 0) throw new ExpositionError(`${where}: TYPE after samples of ${name}`);
        if (!TYPES.includes(rest.trim() as MetricType)) throw new ExpositionError(`${where}: unknown type "${rest}"`);
        f.type = rest.trim() as MetricType;
        typed.add(name);
      }
      return;
    }
    const s = parseSample(line, where);
    const f = familyOf(s.name, current, families) ?? { name: s.name, type: 'untyped' as MetricType, help: undefined, samples: [] };
    families.set(f.name, f);
    enter(f, where);
    f.samples.push(s);
  });

  for (const f of families.values()) checkFamily(f);
  return families;
}

/** The family a sample belongs to: the one being read when the name fits it, else the one of that exact name. */
function familyOf(sample: string, current: Family | undefined, families: Map<string, Family>): Family | undefined {
  const fits = (f: Family) => SUFFIXES[f.type].some((sfx) => f.name + sfx === sample);
  if (current && fits(current)) return current;
  const exact = families.get(sample);
  if (exact && fits(exact)) return exact;
  for (const f of families.values()) if (fits(f)) return f;
  return undefined;
}

function parseSample(line: string, where: string): Sample {
  const nameEnd = line.search(/[{\s]/);
  const name = nameEnd < 0 ? line : line.slice(0, nameEnd);
  if (!METRIC_NAME.test(name)) throw new ExpositionError(`${where}: "${name}" is not a metric name`);
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      if (line[i] === '}') break;
      const eq = line.indexOf('=', i);
      const label = eq < 0 ? '' : line.slice(i, eq);
      if (!LABEL_NAME.test(label)) throw new ExpositionError(`${where}: "${label}" is not a label name`);
      if (label in labels) throw new ExpositionError(`${where}: label ${label} twice`);
      if (line[eq + 1] !== '"') throw new ExpositionError(`${where}: the value of ${label} is not quoted`);
      let value = '';
      let j = eq + 2;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] !== '\\') {
          value += line[j];
          continue;
        }
        const esc = line[++j];
        if (esc === 'n') value += '\n';
        else if (esc === '\\' || esc === '"') value += esc;
        else throw new ExpositionError(`${where}: bad escape \\${esc ?? ''} in the value of ${label}`);
      }
      if (j >= line.length) throw new ExpositionError(`${where}: the value of ${label} is not closed`);
      labels[label] = value;
      i = j + 1;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new ExpositionError(`${where}: expected , or } after ${label}`);
    }
    i++;
  }
  const rest = line.slice(i);
  const m = /^ +(\S+)(?: +(-?\d+))? *$/.exec(rest);
  if (!m || !FLOAT.test(m[1]!)) throw new ExpositionError(`${where}: expected " <value> [<timestamp>]" after the name and labels`);
  const value = m[1]!.endsWith('Inf') ? (m[1]!.startsWith('-') ? -Infinity : Infinity) : Number(m[1]);
  return { name, labels, value };
}

function checkFamily(f: Family): void {
  if (f.type === 'counter') {
    for (const s of f.samples) if (!(s.value >= 0)) throw new ExpositionError(`counter ${f.name} has the value ${s.value}`);
  }
  if (f.type !== 'histogram') return;
  const series = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const one = series.get(key) ?? { buckets: [] };
    series.set(key, one);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined || !FLOAT.test(le)) throw new ExpositionError(`${f.name}_bucket without a valid le: ${JSON.stringify(s.labels)}`);
      one.buckets.push([le.endsWith('Inf') ? Infinity : Number(le), s.value]);
    } else if (le !== undefined) throw new ExpositionError(`${s.name} carries le`);
    else if (s.name === `${f.name}_sum`) one.sum = s.value;
    else one.count = s.value;
  }
  for (const [key, one] of series) {
    const b = one.buckets;
    if (b.length === 0 || b[b.length - 1]![0] !== Infinity) throw new ExpositionError(`${f.name}${key}: no +Inf bucket last`);
    for (let k = 1; k < b.length; k++) {
      if (!(b[k]![0] > b[k - 1]![0])) throw new ExpositionError(`${f.name}${key}: bucket bounds not increasing`);
      if (b[k]![1] < b[k - 1]![1]) throw new ExpositionError(`${f.name}${key}: bucket counts not cumulative`);
    }
    if (one.count !== b[b.length - 1]![1]) throw new ExpositionError(`${f.name}${key}: _count ${one.count} is not the +Inf bucket ${b[b.length - 1]![1]}`);
    if (one.sum === undefined) throw new ExpositionError(`${f.name}${key}: no _sum`);
  }
}

/** Sum of a sample's values over the series whose labels include all of `labels`. */
export function sampleValue(families: Map<string, Family>, sample: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const f of families.values()) {
    for (const s of f.samples) if (s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}
