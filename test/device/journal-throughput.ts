/**
 * Not a test: a measurement. Journal commits per second with WAL + synchronous=FULL on this disk,
 * through the device's own Journal API — single-row commits, and commits of one whole payment step
 * (attempt row + transition + seq + outbox row, what a scan costs).
 *   node --import tsx test/device/journal-throughput.ts [commits]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from '../../device/journal.js';
import { Outbox } from '../../device/outbox.js';
import { emptyBook, step, type Book } from '../../device/payment.js';

const dir = mkdtempSync(join(tmpdir(), 'journal-bench-'));
const j = Journal.open(dir);
const o = new Outbox(j);
const N = Number(process.argv[2] ?? 2000);
let book: Book = { ...emptyBook('bench', { paymentDeadlineMs: 60000, saleDeadlineMs: 300000, recheckMs: 15000 }), online: true };
const r0 = step(book, { type: 'ecrSale', ref: 'B', amount: 100, currency: 'CNY' }, Date.now());
j.transaction(() => r0.effects.forEach((e) => j.persist(e)));
book = r0.book;
// plain single-row commits
let t = process.hrtime.bigint();
for (let i = 0; i < N; i++) j.setSetting('k', String(i));
const plain = N / (Number(process.hrtime.bigint() - t) / 1e9);
// a full payment step per commit (attempt + transition + seq + outbox row)
t = process.hrtime.bigint();
for (let i = 0; i < N; i++) {
  const sale = Object.values(book.sales)[0]!;
  const b = { ...book, attempts: {} };
  const r = step(b, { type: 'scan', code: { wallet: 'wechat', code: '134567890123456789' } }, Date.now());
  j.transaction(() => {
    for (const e of r.effects) {
      if (e.kind === 'send') o.add(e.up, e.outTradeNo, e.message, 1);
      else j.persist(e);
    }
  });
  book = { ...r.book, attempts: {}, sales: { [sale.saleId]: sale } };
}
const stepRate = N / (Number(process.hrtime.bigint() - t) / 1e9);
console.log(JSON.stringify({ commits: N, singleRowCommitsPerS: Math.round(plain), paymentStepCommitsPerS: Math.round(stepRate), synchronous: j.db.pragma('synchronous', { simple: true }), journal_mode: j.db.pragma('journal_mode', { simple: true }) }));
j.close();
rmSync(dir, { recursive: true, force: true });
