import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ATTEMPT_STATES, FINAL_STATES, type AttemptState } from '../../protocol/index.js';
import { Journal } from '../../device/journal.js';
import { SALE_STATES, type Book, type SaleState } from '../../device/payment.js';
import { BOX_REFUND_STATES, type BoxRefundState } from '../../device/refund.js';
import { DAY_MS, pruneJournal } from '../../device/retention.js';
import { RULES } from './payment-fixtures.js';
import { CUTOFF, NOW, RETENTION_MS, snapshot, writeJournal, type LoneRefundSpec, type RefundSpec, type SaleSpec, type WrittenJournal } from './retention-fixtures.js';
import { useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();

/**
 * Journal pruning against an oracle of its own: random journals (sales, attempts and refunds in every
 * state, reported or not, outboxed or not, held in memory or not, changed just before, at or just
 * after the cutoff) are pruned, and what is left is compared with what the rules in the brief say,
 * written here from the description rather than from the SQL.
 */
const FINAL_ATTEMPT: readonly string[] = FINAL_STATES;
const FINAL_REFUND = ['REFUNDED', 'NOT_REFUNDED'];
const FINAL_SALE = ['PAID', 'NOT_PAID'];

/** True about one time in `n`. */
const sometimes = (n: number) => fc.integer({ min: 1, max: n }).map((x) => x === 1);
/** Settled values drawn more often than their share, so that whole sales are often prunable; any value stays possible. */
const mostly = <T,>(settled: fc.Arbitrary<T>, any: fc.Arbitrary<T>) => fc.oneof({ arbitrary: settled, weight: 3 }, { arbitrary: any, weight: 1 });
/** Changed a day or a millisecond before the cutoff, at it (not older: kept), or after it. */
const at = mostly(fc.constantFrom(-DAY_MS, -1), fc.constantFrom(-DAY_MS, -1, 0, 1, DAY_MS)).map((d) => CUTOFF + d);
const refundSpec: fc.Arbitrary<RefundSpec> = fc.record({
  state: mostly(fc.constantFrom<BoxRefundState>('REFUNDED', 'NOT_REFUNDED'), fc.constantFrom(...BOX_REFUND_STATES)),
  reported: sometimes(5).map((x) => !x),
  at,
  outbox: mostly(fc.constant<RefundSpec['outbox']>('none'), fc.constantFrom<RefundSpec['outbox']>('none', 'refundId', 'outTradeNo')),
  held: sometimes(6),
});
const saleSpec: fc.Arbitrary<SaleSpec> = fc.record({
  state: mostly(fc.constantFrom<SaleState>('PAID', 'NOT_PAID'), fc.constantFrom(...SALE_STATES)),
  reported: sometimes(5).map((x) => !x),
  at,
  held: sometimes(6),
  attempts: fc.array(fc.record({ state: mostly(fc.constantFrom<AttemptState>(...FINAL_STATES), fc.constantFrom(...ATTEMPT_STATES)), at, outboxed: sometimes(5) }), { maxLength: 3 }),
  refunds: fc.array(refundSpec, { maxLength: 2 }),
});
const loneRefund: fc.Arbitrary<LoneRefundSpec> = fc.tuple(fc.constantFrom(null, 'box9-s1'), refundSpec).map(([saleId, r]) => ({ ...r, saleId }));
const journalSpec = fc.record({
  sales: fc.array(saleSpec, { maxLength: 24, size: 'medium' }),
  lone: fc.array(loneRefund, { maxLength: 4 }),
  batch: fc.integer({ min: 1, max: 9 }),
});

const old = (t: number) => t < CUTOFF;

/** What the rules say goes: the oracle. */
function expectedGone(w: WrittenJournal) {
  const refundSettled = (r: { id: string; outTradeNo: string; spec: RefundSpec }) =>
    FINAL_REFUND.includes(r.spec.state) && r.spec.reported && old(r.spec.at) && !r.spec.held && !w.outboxed.has(r.id) && !w.outboxed.has(r.outTradeNo);
  const sales = w.sales.filter(
    (s) =>
      FINAL_SALE.includes(s.spec.state) && s.spec.reported && old(s.spec.at) && !s.spec.held &&
      s.attempts.every((a) => FINAL_ATTEMPT.includes(a.spec.state) && old(a.spec.at) && !w.outboxed.has(a.id)) &&
      s.refunds.every(refundSettled),
  );
  return {
    sales: new Set(sales.map((s) => s.id)),
    attempts: new Set(sales.flatMap((s) => s.attempts.map((a) => a.id))),
    refunds: new Set([...sales.flatMap((s) => s.refunds.map((r) => r.id)), ...w.lone.filter(refundSettled).map((r) => r.id)]),
  };
}

/** The part of a loaded book that is not settled: what must come back identical after pruning. */
function unsettled(book: Book) {
  const openSales = new Set(Object.values(book.attempts).filter((a) => !FINAL_ATTEMPT.includes(a.state)).map((a) => a.saleId));
  for (const s of Object.values(book.sales)) if (!FINAL_SALE.includes(s.state) || !s.reported) openSales.add(s.saleId);
  for (const r of Object.values(book.refunds)) if (r.saleId && (!FINAL_REFUND.includes(r.state) || !r.reported)) openSales.add(r.saleId);
  const pick = <T,>(rec: Record<string, T>, keep: (x: T) => boolean) => Object.fromEntries(Object.entries(rec).filter(([, x]) => keep(x)));
  return {
    ...book,
    sales: pick(book.sales, (s) => openSales.has(s.saleId)),
    attempts: pick(book.attempts, (a) => openSales.has(a.saleId)),
    refunds: pick(book.refunds, (r) => !FINAL_REFUND.includes(r.state) || !r.reported || (r.saleId !== null && openSales.has(r.saleId))),
  };
}

describe('journal pruning (property)', () => {
  it('keeps every non-final, unreported, outboxed, recent or held record as it was, and removes exactly what is settled and old', async () => {
    await fc.assert(
      fc.asyncProperty(journalSpec, async ({ sales, lone, batch }) => {
        const j = Journal.open(tempDir());
        try {
          j.saveCredentials({ deviceId: 'box1', secret: 's'.repeat(40), mqttUrl: 'mqtt://127.0.0.1:1', merchantId: 'm', storeId: 's', cloudUrl: 'http://127.0.0.1:1', pairedAt: 1 });
          j.setSetting('hardware_id', 'hw-1');
          const w = writeJournal(j, sales, lone);
          const before = snapshot(j);
          const bookBefore = j.loadBook('box1', RULES, NOW);

          await pruneJournal(j, { now: NOW, retentionMs: RETENTION_MS, batch, held: () => w.held });
          const after = snapshot(j);

          // 1. Nothing that must stay went, and what stayed is unchanged.
          const outboxed = (a: Record<string, unknown>) => w.outboxed.has(String(a.out_trade_no));
          for (const [id, s] of before.sales) {
            const mustStay = !FINAL_SALE.includes(String(s.state)) || s.reported !== 1 || !old(Number(s.updated_at)) || w.held.saleIds.has(id);
            if (mustStay || after.sales.has(id)) expect(after.sales.get(id), `sale ${id}`).toEqual(s);
          }
          for (const [id, a] of before.attempts) {
            const mustStay = !FINAL_ATTEMPT.includes(String(a.state)) || !old(Number(a.updated_at)) || outboxed(a);
            if (mustStay) expect(after.sales.has(String(a.sale_id)), `sale of attempt ${id}`).toBe(true);
            if (mustStay || after.attempts.has(id)) expect(after.attempts.get(id), `attempt ${id}`).toEqual(a);
          }
          for (const [id, r] of before.refunds) {
            const mustStay = !FINAL_REFUND.includes(String(r.state)) || r.reported !== 1 || !old(Number(r.updated_at)) || w.outboxed.has(id) || outboxed(r) || w.held.refundIds.has(id);
            if (mustStay || after.refunds.has(id)) expect(after.refunds.get(id), `refund ${id}`).toEqual(r);
            // A refund of a sale still here stays with it: the paid amount is checked against all of them.
            if (r.sale_id !== null && after.sales.has(String(r.sale_id))) expect(after.refunds.has(id), `refund ${id} of a kept sale`).toBe(true);
          }
          // 2. Everything settled and old went (a run that prunes nothing would pass 1).
          const gone = expectedGone(w);
          expect(new Set(after.sales.keys())).toEqual(new Set([...before.sales.keys()].filter((id) => !gone.sales.has(id))));
          expect(new Set(after.attempts.keys())).toEqual(new Set([...before.attempts.keys()].filter((id) => !gone.attempts.has(id))));
          expect(new Set(after.refunds.keys())).toEqual(new Set([...before.refunds.keys()].filter((id) => !gone.refunds.has(id))));
          // 3. Transitions go with their owner, and only then.
          const owned = (t: { sale_id: string; out_trade_no: string | null }) =>
            t.out_trade_no === null ? after.sales.has(t.sale_id) : after.attempts.has(t.out_trade_no) || after.refunds.has(t.out_trade_no);
          expect(after.transitions).toEqual(before.transitions.filter(owned));
          // 4. Never touched: the outbox, sequence numbers (ids are never reused), settings, credentials.
          expect({ outbox: after.outbox, seq: after.seq, config: after.config, credentials: after.credentials }).toEqual({
            outbox: before.outbox,
            seq: before.seq,
            config: before.config,
            credentials: before.credentials,
          });
          // 5. The state machine starts from the same unfinished book.
          expect(unsettled(j.loadBook('box1', RULES, NOW))).toEqual(unsettled(bookBefore));
        } finally {
          j.close();
        }
      }),
      { numRuns: 100 },
    );
  }, 120_000);
});
