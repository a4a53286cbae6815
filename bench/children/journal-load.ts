import { statSync } from 'node:fs';
import path from 'node:path';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { JOURNAL_FILE, Journal } from '../../device/journal.js';
import { Outbox } from '../../device/outbox.js';
import { emptyBook, step, type Book, type Effect, type PaymentEvent } from '../../device/payment.js';
import { DAY_MS, heldIn, pruneJournal, type PruneReport } from '../../device/retention.js';
import { validCode } from '../../simulator/devices/codes.js';
import { createRandom } from '../../simulator/random.js';
import { procSample, tell } from '../harness.js';

/**
 * The box's journal under a long run of sales, in its own process (started with the shipped unit's
 * node flags and environment): the payment state machine's own steps and journal writes, the outbox
 * filled and drained as PUBACKs would, and `pruneJournal` (what the agent's housekeeping runs) every
 * simulated hour. Simulated time: a sale every `saleEveryMs`. Samples RSS and the journal's files
 * every `sampleEvery` sales and sends them to the bench over IPC.
 *
 * Args: one JSON object, JournalLoadParams.
 */
export interface JournalLoadParams {
  dataDir: string;
  sales: number;
  retentionDays: number;
  saleEveryMs: number;
  pruneEveryMs: number;
  sampleEvery: number;
  seed: string;
}

export interface JournalSample {
  n: number;
  rssMiB: number;
  heapMiB: number;
  /** journal.db, journal.db-wal. */
  fileMiB: number;
  walMiB: number;
  salesRows: number;
  transitionRows: number;
  freePages: number;
}

const p = JSON.parse(process.argv[2] ?? '{}') as JournalLoadParams;
const START = Date.UTC(2026, 0, 1);
const random = createRandom(p.seed);
const journal = Journal.open(p.dataDir);
const outbox = new Outbox(journal);
journal.saveCredentials({ deviceId: 'bench1', secret: 's'.repeat(40), mqttUrl: 'mqtt://127.0.0.1:1', merchantId: 'M', storeId: 'S', cloudUrl: 'http://127.0.0.1:1', pairedAt: START });
let book: Book = emptyBook('bench1', { paymentDeadlineMs: 60_000, saleDeadlineMs: 300_000, recheckMs: 15_000 });

/** One step as the agent's shell commits it: the journal effects in the caller's transaction. */
function apply(event: PaymentEvent, now: number): Effect[] {
  const r = step(book, event, now);
  book = r.book;
  for (const e of r.effects) {
    if (e.kind === 'send') outbox.add(e.up, e.outTradeNo, e.message, now);
    else if (e.kind === 'withdrawPay') outbox.withdrawPay(e.outTradeNo);
    else if (e.kind !== 'ecr' && e.kind !== 'display' && e.kind !== 'log') journal.persist(e);
  }
  return r.effects;
}

/** The outbox drained in order, as PUBACKs come: a pay's PUBACK is also the CREATED → PAYING step. */
function deliverAll(now: number): void {
  for (let row = outbox.head(); row; row = outbox.head()) {
    if (row.kind === 'pay') apply({ type: 'paySent', outTradeNo: row.outTradeNo }, now);
    outbox.remove(row.id);
  }
}

/**
 * A paid sale, the cash register's line to the scan's result. Its steps write the rows the agent
 * writes, in one transaction without fsync: the agent commits each step, three of them with an fsync,
 * which changes neither the rows nor the pages, only the time (100,000 sales × 3 fsyncs is minutes
 * on this disk).
 */
function oneSale(n: number, t: number): void {
  journal.transaction(() => {
    const opened = apply({ type: 'ecrSale', ref: `J-${n}`, amount: random.int(1, 99_999), currency: 'CNY' }, t);
    const sale = opened.find((e): e is Extract<Effect, { kind: 'saveSale' }> => e.kind === 'saveSale')!.sale;
    const scanned = apply({ type: 'scan', code: { wallet: 'wechat', code: validCode(random, 'wechat') } }, t + 1_000);
    const pay = scanned.find((e): e is Extract<Effect, { kind: 'send' }> => e.kind === 'send' && e.up === 'pay');
    if (!pay) throw new Error(`sale ${n}: no pay after the scan`);
    deliverAll(t + 1_010);
    apply({ type: 'result', message: { v: PROTOCOL_VERSION, id: `r-${n}`, ts: t + 2_000, outTradeNo: pay.outTradeNo, saleId: sale.saleId, amount: sale.amount, currency: 'CNY', state: 'SUCCESS' } }, t + 2_000);
    apply({ type: 'ecrDelivered', saleId: sale.saleId }, t + 2_001);
    deliverAll(t + 2_010);
  }, 'relaxed');
}

function sample(n: number): JournalSample {
  const size = (f: string) => {
    try {
      return statSync(path.join(p.dataDir, f)).size / 2 ** 20;
    } catch {
      return 0;
    }
  };
  const count = (table: string) => (journal.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  const proc = procSample(process.pid);
  return {
    n,
    rssMiB: proc.rssMiB,
    heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
    fileMiB: size(JOURNAL_FILE),
    walMiB: size(`${JOURNAL_FILE}-wal`),
    salesRows: count('sales'),
    transitionRows: count('transitions'),
    freePages: journal.db.pragma('freelist_count', { simple: true }) as number,
  };
}

apply({ type: 'linkUp' }, START);
const runs: (PruneReport & { atSale: number; ms: number })[] = [];
let nextPrune = START + p.pruneEveryMs;
const t0 = performance.now();
for (let n = 1; n <= p.sales; n++) {
  const t = START + n * p.saleEveryMs;
  oneSale(n, t);
  if (t + 2_010 >= nextPrune) {
    const started = performance.now();
    const r = await pruneJournal(journal, { now: nextPrune, retentionMs: p.retentionDays * DAY_MS, held: () => heldIn(book) });
    runs.push({ ...r, atSale: n, ms: performance.now() - started });
    nextPrune += p.pruneEveryMs;
  }
  if (n % p.sampleEvery === 0 || n === p.sales) tell({ type: 'sample', sample: sample(n) });
}
const seconds = (performance.now() - t0) / 1000;
const bookSales = Object.keys(book.sales).length;
journal.close();
tell({ type: 'done', seconds, runs, bookSales });
process.exit(0);
