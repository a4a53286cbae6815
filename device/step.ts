import { ECR_VERSION, PROTOCOL_VERSION, type EcrLineBody, type EcrOutboundV2, type EcrStage, type ErrorCode, type UpToSend } from '../protocol/index.js';
import type { Screen } from './display.js';
import type { Attempt, Book, Effect, LogLevel, Sale, SendKind } from './payment.js';
import type { Refund } from './refund.js';

/**
 * ECR line numbers are reserved in blocks: one journal write per this many lines, so a burst of
 * noise on the register's port does not cost an fsync per answer. After a restart numbering goes on
 * from the end of the last reserved block (it may jump; it never repeats).
 */
export const ECR_SEQ_BLOCK = 64;
export const MAX_RECHECK_MS = 600_000;

/** One step's working copy: the book is copied on write, effects collected in order. */
export class Step {
  readonly book: Book;
  readonly effects: Effect[] = [];

  constructor(
    book: Book,
    readonly now: number,
  ) {
    this.book = { ...book, sales: { ...book.sales }, attempts: { ...book.attempts }, refunds: { ...book.refunds }, totalsRequests: { ...book.totalsRequests } };
  }

  attemptsOf(sale: Sale): Attempt[] {
    return Object.values(this.book.attempts).filter((a) => a.saleId === sale.saleId);
  }

  saleByRef(ref: string): Sale | undefined {
    let found: Sale | undefined;
    for (const s of Object.values(this.book.sales)) if (s.ref === ref && (!found || s.createdAt >= found.createdAt)) found = s;
    return found;
  }

  openSale(): Sale | undefined {
    return Object.values(this.book.sales).find((s) => s.state === 'OPEN');
  }

  setSale(sale: Sale, patch: Partial<Sale>, cause: string): Sale {
    const next = { ...sale, ...patch, updatedAt: this.now };
    this.book.sales[sale.saleId] = next;
    this.effects.push({ kind: 'saveSale', sale: next, from: sale.state, cause });
    return next;
  }

  setRefund(r: Refund, patch: Partial<Refund>, cause: string): Refund {
    const next = { ...r, ...patch, updatedAt: this.now };
    this.book.refunds[r.refundId] = next;
    this.effects.push({ kind: 'saveRefund', refund: next, from: r.state, cause });
    return next;
  }

  setAttempt(a: Attempt, patch: Partial<Attempt>, cause: string): Attempt {
    const next = { ...a, ...patch, updatedAt: this.now };
    this.book.attempts[a.outTradeNo] = next;
    this.effects.push({ kind: 'saveAttempt', attempt: next, from: a.state, cause });
    return next;
  }

  send(up: SendKind, outTradeNo: string, body: Record<string, unknown>, id: string): void {
    const message = { v: PROTOCOL_VERSION, id, ts: this.now, ...body } as UpToSend<SendKind>;
    this.effects.push({ kind: 'send', up, outTradeNo, message });
  }

  /**
   * Re-asking gets sparser with age (a quarter of the age, at least `recheckMs`, at most 10 minutes):
   * an attempt or refund stuck for days must not cost a write every few seconds.
   */
  recheckDelay(createdAt: number): number {
    return Math.max(this.book.rules.recheckMs, Math.min(MAX_RECHECK_MS, (this.now - createdAt) / 4));
  }

  /** The next ECR line number; reserves a new block in the journal (same transaction) when the last one is used up. */
  nextEcrSeq(): number {
    const seq = this.book.nextEcrSeq;
    this.book.nextEcrSeq = seq + 1;
    if (seq >= this.book.ecrSeqReservedTo) {
      this.book.ecrSeqReservedTo = seq + ECR_SEQ_BLOCK;
      this.effects.push({ kind: 'saveEcrSeq', reservedTo: this.book.ecrSeqReservedTo });
    }
    return seq;
  }

  /** One line to the cash register, stamped `v` and `seq` (a new number unless it repeats a numbered line). */
  ecr(body: EcrLineBody, opts: { seq?: number; finalFor?: string; refundFinalFor?: string } = {}): void {
    const { type, ...rest } = body;
    const line = { type, v: ECR_VERSION, seq: opts.seq ?? this.nextEcrSeq(), ...rest } as EcrOutboundV2;
    this.effects.push({
      kind: 'ecr',
      line,
      ...(opts.finalFor === undefined ? {} : { finalFor: opts.finalFor }),
      ...(opts.refundFinalFor === undefined ? {} : { refundFinalFor: opts.refundFinalFor }),
    });
  }

  progress(sale: Sale, stage: EcrStage, message: string, outTradeNo?: string, lookup = false): void {
    this.ecr({ type: 'progress', ref: sale.ref, stage, ...(outTradeNo === undefined ? {} : { outTradeNo }), message, ...(lookup ? { lookup: true as const } : {}) });
  }

  ecrError(code: ErrorCode, message: string, ref: string): void {
    this.ecr({ type: 'error', ref, code, message });
  }

  show(screen: Screen, about?: { outTradeNo?: string; saleRef?: string }): void {
    this.effects.push({ kind: 'display', screen: { ...screen, ...about } });
  }

  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    this.effects.push({ kind: 'log', level, msg, fields });
  }
}

