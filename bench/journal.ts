import path from 'node:path';
import { DAY_MS } from '../device/retention.js';
import { median } from '../simulator/stats.js';
import { agentSettings } from './footprint.js';
import { fmt, scratch, spawnHelper, type IpcMessage } from './harness.js';
import type { BenchResult } from './result.js';
import type { JournalLoadParams, JournalSample } from './children/journal-load.js';

/**
 * 7. journal — the box's journal over 100,000 sales with housekeeping: does it stay bounded? The
 * payment state machine and the journal run in their own process (`children/journal-load.ts`, with
 * the shipped unit's node flags and environment), a sale every `saleEveryMs` of simulated time, and
 * `pruneJournal` every simulated hour with a `retentionDays` retention. Sampled every `sampleEvery`
 * sales: the process's RSS and the journal's file sizes.
 *
 * Pruning starts removing sales once the first ones are older than the retention (sale R = retention
 * ÷ saleEveryMs). "Flat" compares the medians of the second half of the run (sales N/2 … N) with those
 * of the first plateau (sales 2R … max(3R, N/4): the retention window has turned over once and freed
 * pages are being reused; wide enough that V8's first mark-compact, which ends its heap's warm-up, is
 * one sample among many), and reports the ratio.
 */
export interface JournalParams {
  sales: number;
  retentionDays: number;
  saleEveryMs: number;
  pruneEveryMs: number;
  sampleEvery: number;
  seed: string;
}

/**
 * A sale every 30 s (2,880 a day: a very busy counter) with the shortest retention the config allows,
 * one day: about 2,900 sales stay in the journal, and pruning starts at sale 2,880. A housekeeping
 * run walks the whole journal, so the run's total pruning work is sales × retention in hours whatever
 * the rate; one day keeps it to seconds. What is measured, the journal staying at its plateau, does
 * not depend on the retention's length.
 */
export const JOURNAL_DEFAULTS: JournalParams = { sales: 100_000, retentionDays: 1, saleEveryMs: 30_000, pruneEveryMs: 3_600_000, sampleEvery: 1_000, seed: 'bench-journal' };
export const JOURNAL_SMOKE: JournalParams = { ...JOURNAL_DEFAULTS, sales: 1_200, retentionDays: 1, saleEveryMs: 300_000, sampleEvery: 100 };

interface Done {
  seconds: number;
  runs: { sales: number; transitions: number; pagesFreed: number; atSale: number; ms: number }[];
  bookSales: number;
}

export async function journal(p: JournalParams): Promise<BenchResult> {
  const tmp = scratch('journal');
  const settings = agentSettings({ agentNodeFlags: 'shipped', agentEnv: 'shipped' });
  const samples: JournalSample[] = [];
  try {
    const params: JournalLoadParams = { ...p, dataDir: path.join(tmp.dir, 'box') };
    const child = spawnHelper('children/journal-load.ts', [JSON.stringify(params)], { nodeArgs: settings.nodeFlags, env: settings.env });
    const done = await new Promise<Done>((resolve, reject) => {
      child.on('message', (m: IpcMessage) => {
        if (m.type === 'sample') samples.push(m.sample as JournalSample);
        else if (m.type === 'done') resolve(m as unknown as Done);
      });
      child.once('exit', (code) => reject(new Error(`journal load exited (${code}) before it was done`)));
    });

    const retentionSales = Math.round((p.retentionDays * DAY_MS) / p.saleEveryMs);
    const within = (from: number, to: number) => samples.filter((s) => s.n > from && s.n <= to);
    const plateau = within(2 * retentionSales, Math.max(3 * retentionSales, p.sales / 4));
    const secondHalf = within(p.sales / 2, p.sales);
    const med = (xs: JournalSample[], f: (s: JournalSample) => number) => (xs.length ? median(xs.map(f)) : Number.NaN);
    const disk = (s: JournalSample) => s.fileMiB + s.walMiB;
    const figure = (f: (s: JournalSample) => number) => ({ plateau: med(plateau, f), secondHalf: med(secondHalf, f), ratio: med(secondHalf, f) / med(plateau, f) });
    const rss = figure((s) => s.rssMiB);
    const file = figure(disk);
    const before = samples.filter((s) => s.n <= retentionSales);
    const last = samples.at(-1)!;
    // Without housekeeping the file would keep growing at its rate before the first sale was pruned.
    const perSale = before.length >= 2 ? (before.at(-1)!.fileMiB - before[0]!.fileMiB) / (before.at(-1)!.n - before[0]!.n) : Number.NaN;
    const unpruned = before.length ? before.at(-1)!.fileMiB + perSale * (p.sales - before.at(-1)!.n) + before.at(-1)!.walMiB : Number.NaN;
    const pruning = done.runs.filter((r) => r.atSale > 2 * retentionSales);
    // 2 MiB over the second half would be a leak; the file may not grow more than 10 %.
    const rssAllowed = Math.max(2, rss.plateau * 0.025);
    const r1 = (x: number) => Math.round(x * 10) / 10;
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    return {
      name: 'journal',
      params: { ...p, agentSettings: settings, retentionSales },
      figures: {
        sales: p.sales,
        'journal.db + WAL MiB: first plateau → second half (medians)': `${fmt(file.plateau, 2)} → ${fmt(file.secondHalf, 2)}`,
        'journal second half ÷ first plateau': r3(file.ratio),
        'RSS MiB: first plateau → second half (medians)': `${fmt(rss.plateau, 1)} → ${fmt(rss.secondHalf, 1)}`,
        'RSS second half ÷ first plateau': r3(rss.ratio),
        'journal.db / WAL MiB at the end': `${fmt(last.fileMiB, 2)} / ${fmt(last.walMiB, 2)}`,
        'journal.db + WAL MiB without housekeeping (extrapolated)': r1(unpruned),
        'RSS MiB max over the second half': r1(Math.max(...secondHalf.map((s) => s.rssMiB))),
        'sales rows at the end': last.salesRows,
        'housekeeping run ms (median, plateau on)': r1(median(pruning.map((r) => r.ms))),
        'housekeeping run ms (max)': r1(Math.max(...done.runs.map((r) => r.ms))),
        'sales/s (journal only, no fsync)': Math.round(p.sales / done.seconds),
      },
      targets: [
        { what: 'journal file flat over the second half', target: '≤ 1.10 × the first plateau', actual: `${fmt(file.ratio, 3)} ×`, met: file.ratio <= 1.1 },
        { what: 'RSS flat over the second half', target: `≤ +${fmt(rssAllowed, 1)} MiB over the first plateau`, actual: `${fmt(rss.secondHalf - rss.plateau, 1)} MiB`, met: rss.secondHalf - rss.plateau <= rssAllowed },
      ],
      raw: {
        seconds: r1(done.seconds),
        bookSalesAtEnd: done.bookSales,
        pruneRuns: done.runs.length,
        prunedSales: done.runs.reduce((a, r) => a + r.sales, 0),
        samples: samples.map((s) => ({ n: s.n, rssMiB: r1(s.rssMiB), heapMiB: r1(s.heapMiB), fileMiB: r3(s.fileMiB), walMiB: r3(s.walMiB), salesRows: s.salesRows, transitionRows: s.transitionRows, freePages: s.freePages })),
      },
    };
  } finally {
    tmp.remove();
  }
}
