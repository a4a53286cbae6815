import type { AttemptState } from '../../protocol/index.js';
import type { Journal } from '../../device/journal.js';
import type { Attempt, Sale, SaleState } from '../../device/payment.js';
import type { BoxRefundState, Refund } from '../../device/refund.js';
import { DAY_MS, type HeldRecords } from '../../device/retention.js';
import { T0 } from './payment-fixtures.js';

/** Journals written through `Journal.persist` (the agent's own write path) from a short description. */

export const RETENTION_MS = 30 * DAY_MS;
export const NOW = T0 + 100 * DAY_MS;
export const CUTOFF = NOW - RETENTION_MS;

export interface AttemptSpec {
  state: AttemptState;
  at: number;
  /** Something of it (its ack) is still in the outbox. */
  outboxed: boolean;
}
export interface RefundSpec {
  state: BoxRefundState;
  reported: boolean;
  at: number;
  /** An outbox row under the refund's id, or under the payment's outTradeNo it refunds. */
  outbox: 'none' | 'refundId' | 'outTradeNo';
  held: boolean;
}
export interface SaleSpec {
  state: SaleState;
  reported: boolean;
  at: number;
  held: boolean;
  attempts: AttemptSpec[];
  refunds: RefundSpec[];
}
/** A refund of a sale that is not in this journal (another box's, or pruned): `saleId` null or unknown here. */
export interface LoneRefundSpec extends RefundSpec {
  saleId: string | null;
}

export interface WrittenJournal {
  sales: { id: string; ref: string; spec: SaleSpec; attempts: { id: string; spec: AttemptSpec }[]; refunds: { id: string; outTradeNo: string; spec: RefundSpec }[] }[];
  lone: { id: string; outTradeNo: string; spec: LoneRefundSpec }[];
  outboxed: Set<string>;
  held: HeldRecords;
}

export function writeJournal(j: Journal, sales: SaleSpec[], lone: LoneRefundSpec[] = []): WrittenJournal {
  const out: WrittenJournal = { sales: [], lone: [], outboxed: new Set(), held: { saleIds: new Set(), refundIds: new Set() } };
  const saleIds = out.held.saleIds as Set<string>;
  const refundIds = out.held.refundIds as Set<string>;
  let attemptSeq = 0;
  let refundSeq = 0;
  const outbox = (kind: string, key: string) => {
    j.sql('INSERT INTO outbox (kind, out_trade_no, payload, created_at) VALUES (?, ?, ?, ?)').run(kind, key, '{}', NOW);
    out.outboxed.add(key);
  };
  const writeRefund = (spec: RefundSpec, saleId: string | null, saleRef: string | null, outTradeNo: string): string => {
    const refundId = `box1-r${++refundSeq}`;
    const r: Refund = {
      ...{ refundId, refundRef: `RF${refundSeq}`, saleId, saleRef, outTradeNo, amount: 100, currency: 'CNY', wallet: 'wechat' },
      ...{ state: 'REQUESTED', reason: null, refundedTotal: null, remaining: null, createdAt: spec.at - 10_000, updatedAt: spec.at - 10_000, nextCheckAt: 0, reported: false },
    };
    j.persist({ kind: 'saveRefund', refund: r, from: null, cause: 'ecr refund' });
    if (spec.state !== 'REQUESTED' || spec.reported) {
      j.persist({ kind: 'saveRefund', refund: { ...r, state: spec.state, updatedAt: spec.at, reported: spec.reported }, from: 'REQUESTED', cause: 'refund result' });
    }
    if (spec.outbox === 'refundId') outbox('refund', refundId);
    if (spec.outbox === 'outTradeNo') outbox('refund', outTradeNo);
    if (spec.held) refundIds.add(refundId);
    return refundId;
  };
  j.transaction(() => {
    sales.forEach((spec, i) => {
      const saleId = `box1-s${i + 1}`;
      const ref = `R${i + 1}`;
      const s: Sale = { saleId, ref, amount: 1000, currency: 'CNY', state: 'OPEN', endReason: null, paidBy: null, createdAt: spec.at - 60_000, updatedAt: spec.at - 60_000, deadline: spec.at + 240_000, reported: false };
      j.persist({ kind: 'saveSale', sale: s, from: null, cause: 'ecr sale' });
      const attempts = spec.attempts.map((a) => {
        const outTradeNo = `box1-${++attemptSeq}`;
        const row: Attempt = {
          ...{ outTradeNo, saleId, saleRef: ref, amount: 1000, currency: 'CNY', wallet: 'wechat', state: 'CREATED', reason: null },
          ...{ createdAt: a.at - 30_000, updatedAt: a.at - 30_000, deadline: a.at + 30_000, nextCheckAt: 0 },
        };
        j.persist({ kind: 'saveAttempt', attempt: row, from: null, cause: 'scan' });
        if (a.state !== 'CREATED') j.persist({ kind: 'saveAttempt', attempt: { ...row, state: a.state, updatedAt: a.at }, from: 'CREATED', cause: 'result' });
        if (a.outboxed) outbox('ack', outTradeNo);
        return { id: outTradeNo, spec: a };
      });
      if (spec.state !== 'OPEN' || spec.reported) {
        j.persist({ kind: 'saveSale', sale: { ...s, state: spec.state, updatedAt: spec.at, reported: spec.reported }, from: 'OPEN', cause: 'final' });
      }
      if (spec.held) saleIds.add(saleId);
      const refunds = spec.refunds.map((r, k) => {
        const outTradeNo = attempts[0]?.id ?? `other-${i + 1}-${k + 1}`;
        return { id: writeRefund(r, saleId, ref, outTradeNo), outTradeNo, spec: r };
      });
      out.sales.push({ id: saleId, ref, spec, attempts, refunds });
    });
    lone.forEach((spec, i) => {
      const outTradeNo = `other-box-${i + 1}`;
      out.lone.push({ id: writeRefund(spec, spec.saleId, null, outTradeNo), outTradeNo, spec });
    });
    j.persist({ kind: 'saveSeq', nextAttemptSeq: attemptSeq + 1, nextSaleSeq: sales.length + 1 });
    j.persist({ kind: 'saveEcrSeq', reservedTo: 4096 });
    j.persist({ kind: 'saveRefundSeq', nextRefundSeq: refundSeq + 1 });
  });
  return out;
}

/** A settled sale (paid, reported, acknowledged, one successful attempt) last changed at `at`. */
export function settledSale(at: number): SaleSpec {
  return { state: 'PAID', reported: true, at, held: false, attempts: [{ state: 'SUCCESS', at, outboxed: false }], refunds: [] };
}

/** Every row of the tables pruning may touch, and of those it must not, in a comparable form. */
export function snapshot(j: Journal) {
  const rows = (table: string, key: string) => new Map((j.db.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[]).map((r) => [String(r[key]), r]));
  return {
    sales: rows('sales', 'sale_id'),
    attempts: rows('attempts', 'out_trade_no'),
    refunds: rows('refunds', 'refund_id'),
    transitions: j.db.prepare('SELECT * FROM transitions ORDER BY id').all() as { id: number; sale_id: string; out_trade_no: string | null }[],
    outbox: j.db.prepare('SELECT * FROM outbox ORDER BY id').all(),
    seq: j.db.prepare('SELECT * FROM seq ORDER BY name').all(),
    config: j.db.prepare('SELECT * FROM config ORDER BY key').all(),
    credentials: j.db.prepare('SELECT * FROM credentials').all(),
  };
}
