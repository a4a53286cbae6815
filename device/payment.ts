import {
  ECR_CAPABILITIES,
  ECR_VERSION,
  ErrorCode,
  PROTOCOL_VERSION,
  UNKNOWN,
  isCharged,
  isFinal,
  makeOutTradeNo,
  maskPaymentCode,
  type AttemptState,
  type CancelMessage,
  type Currency,
  type EcrLineBody,
  type EcrOutboundV2,
  type DownMessage,
  type EcrStage,
  type PaymentCode,
  type Receipt,
  type ResultReason,
  type Unknown,
  type UpKind,
  type UpToSend,
  type Wallet,
  type WalletTotals,
} from '../protocol/index.js';
import type { Screen } from './display.js';
import { screens } from './screens.js';
import { Step } from './step.js';
import {
  isFinalBoxRefund,
  nextRefundWake,
  onEcrRefund,
  onEcrRefundDelivered,
  onRefundRefused,
  onRefundResult,
  recheckRefunds,
  reportUnreportedRefunds,
  type Refund,
  type RefundAsked,
} from './refund.js';
import { answerOverdueTotals, nextTotalsWake, onEcrTotals, onTotals, type TotalsRequest } from './totals.js';

/**
 * The box's payment rules as one pure function: (book, event, now) → (book, effects). No I/O, no
 * clock, no randomness, so every abnormal path is a table row in a unit test. The agent shell
 * commits the journal effects of one step in one transaction, and only then performs the outward
 * ones (publish, cash-register line, screen).
 */

export type SaleState = 'OPEN' | 'CANCELLING' | 'PAID' | 'NOT_PAID';
export const SALE_STATES = ['OPEN', 'CANCELLING', 'PAID', 'NOT_PAID'] as const satisfies readonly SaleState[];
/** Why a sale closed without payment: the cashier, its deadline, or the wallet charging another amount (AMOUNT_MISMATCH). */
export type SaleEndReason = 'CASHIER_CANCEL' | 'DEADLINE' | 'AMOUNT_MISMATCH';
type CancelReason = CancelMessage['reason'];

export interface Sale {
  saleId: string;
  ref: string;
  amount: number;
  currency: Currency;
  state: SaleState;
  /** Why the sale is being closed without payment; null while nobody gave up. */
  endReason: SaleEndReason | null;
  /** The attempt whose SUCCESS paid the sale. */
  paidBy: string | null;
  createdAt: number;
  updatedAt: number;
  deadline: number;
  /** The cash register has been sent this sale's final result line. */
  reported: boolean;
  /**
   * The `seq` of this sale's one result line, given when the sale becomes final (or, for a sale
   * finished before ECR v2, the first time its result is written). A re-sent result and every lookup
   * answer carry it. Absent while the sale is not final.
   */
  resultSeq?: number;
}

export interface Attempt {
  outTradeNo: string;
  saleId: string;
  saleRef: string;
  amount: number;
  currency: Currency;
  wallet: Wallet;
  state: AttemptState;
  reason: ResultReason | null;
  createdAt: number;
  updatedAt: number;
  /** Past this the box gives up and cancels (DESIGN device rule 3). */
  deadline: number;
  /** When to ask the cloud again in case a result was lost. Not journaled: a restart queries all. */
  nextCheckAt: number;
  /** The wallet's receipt, kept from the final result that carried it (protocol v2); absent until then. */
  receipt?: Receipt;
}

export interface PaymentRules {
  paymentDeadlineMs: number;
  saleDeadlineMs: number;
  recheckMs: number;
}

export interface Book {
  deviceId: string;
  rules: PaymentRules;
  online: boolean;
  nextAttemptSeq: number;
  nextSaleSeq: number;
  /** The `seq` of the next line to the cash register (ECR v2). */
  nextEcrSeq: number;
  /** Every `seq` below this is durably reserved in the journal: a line may use it without another write. */
  ecrSeqReservedTo: number;
  nextRefundSeq: number;
  sales: Record<string, Sale>;
  attempts: Record<string, Attempt>;
  /** Refunds not final or not reported, and those of the sales held here. */
  refunds: Record<string, Refund>;
  /** Totals the register asked for, waiting for the cloud's count. Not journaled: a restart forgets the question, never money. */
  totalsRequests: Record<string, TotalsRequest>;
}

export type PaymentEvent =
  | { type: 'ecrSale'; ref: string; amount: number; currency: Currency }
  | { type: 'ecrCancel'; ref: string }
  /** The register said hello; the shell passes this box's firmware version for the answer. */
  | { type: 'ecrHello'; firmware: string; registerVersion?: number; name?: string }
  | { type: 'ecrLookup'; ref: string }
  | ({ type: 'ecrRefund' } & RefundAsked)
  /** The register asked for a day's totals; the shell counts the journal's figures for the offline answer. */
  | { type: 'ecrTotals'; date: string; local: WalletTotals[] }
  | { type: 'ecrRefundDelivered'; refundId: string }
  | { type: 'refundResult'; message: DownMessage<'refund'> }
  | { type: 'totals'; message: DownMessage<'totals'> }
  /** A line from the register that could not be read: answered with its error line, nothing else changes. */
  | { type: 'ecrBadLine'; code: ErrorCode; message: string; ref?: string }
  | { type: 'ecrDelivered'; saleId: string }
  | { type: 'ecrReady' }
  | { type: 'scan'; code: PaymentCode }
  | { type: 'scanRejected'; code: ErrorCode; message: string }
  | { type: 'paySent'; outTradeNo: string }
  /** As read from the cloud: enum fields may be UNKNOWN (a newer cloud's value). */
  | { type: 'result'; message: DownMessage<'result'> }
  | { type: 'progress'; message: DownMessage<'progress'> }
  | { type: 'cloudError'; message: DownMessage<'error'> }
  | { type: 'linkUp' }
  | { type: 'linkDown' }
  | { type: 'resync' }
  | { type: 'restart' }
  | { type: 'tick' };
export type PaymentEventType = PaymentEvent['type'];

export type SendKind = Extract<UpKind, 'pay' | 'cancel' | 'query' | 'ack' | 'refund' | 'totals'>;
export type LogLevel = 'info' | 'warn' | 'error';

export type Effect =
  | { kind: 'saveSale'; sale: Sale; from: SaleState | null; cause: string }
  | { kind: 'saveAttempt'; attempt: Attempt; from: AttemptState | null; cause: string }
  | { kind: 'saveSeq'; nextAttemptSeq: number; nextSaleSeq: number }
  | { kind: 'saveRefund'; refund: Refund; from: Refund['state'] | null; cause: string }
  | { kind: 'saveRefundSeq'; nextRefundSeq: number }
  /** Reserve ECR line numbers below `reservedTo` (journaled before any line using them is written). */
  | { kind: 'saveEcrSeq'; reservedTo: number }
  /** Into the durable outbox, in order. */
  | { kind: 'send'; up: SendKind; outTradeNo: string; message: UpToSend<SendKind> }
  /** Take a not-yet-delivered pay back out of the outbox: it must never leave after a cancel or restart. */
  | { kind: 'withdrawPay'; outTradeNo: string }
  /** A line to the cash register, numbered; `finalFor` marks a sale's one result line, `refundFinalFor` a refund's. */
  | { kind: 'ecr'; line: EcrOutboundV2; finalFor?: string; refundFinalFor?: string }
  | { kind: 'display'; screen: Screen }
  | { kind: 'log'; level: LogLevel; msg: string; fields: Record<string, unknown> };

export interface StepResult {
  book: Book;
  effects: Effect[];
}

export const OPEN_ATTEMPT_STATES: readonly AttemptState[] = ['CREATED', 'PAYING'];
const INTERIM_RANK: Partial<Record<AttemptState, number>> = { CREATED: 0, PAYING: 1, CANCELLING: 2, REVERSE_PENDING: 3, REFUND_PENDING: 4 };

/** How many finished sales stay in memory (for repeated refs and late results); older ones live only in the journal. */
export const KEPT_FINISHED_SALES = 32;

export { ECR_SEQ_BLOCK } from './step.js';

export function emptyBook(deviceId: string, rules: PaymentRules): Book {
  return { deviceId, rules, online: false, nextAttemptSeq: 1, nextSaleSeq: 1, nextEcrSeq: 1, ecrSeqReservedTo: 1, nextRefundSeq: 1, sales: {}, attempts: {}, refunds: {}, totalsRequests: {} };
}

export function isOpenAttempt(a: Attempt): boolean {
  return OPEN_ATTEMPT_STATES.includes(a.state);
}

// ── outgoing messages ────────────────────────────────────────────────────────────────────────────

function cancelAttempt(t: Step, a: Attempt, reason: CancelReason): Attempt {
  if (a.state === 'CREATED') t.effects.push({ kind: 'withdrawPay', outTradeNo: a.outTradeNo });
  const next = t.setAttempt(a, { state: 'CANCELLING', nextCheckAt: t.now + t.book.rules.recheckMs }, `cancel: ${reason}`);
  const { outTradeNo, saleId, amount, currency } = a;
  t.send('cancel', outTradeNo, { outTradeNo, saleId, amount, currency, reason }, `cancel-${outTradeNo}`);
  t.log('info', 'attempt cancelling', { outTradeNo, reason });
  return next;
}

export { MAX_RECHECK_MS } from './step.js';

function query(t: Step, a: Attempt): void {
  t.book.attempts[a.outTradeNo] = { ...a, nextCheckAt: t.now + t.recheckDelay(a.createdAt) };
  t.send('query', a.outTradeNo, { outTradeNo: a.outTradeNo, saleId: a.saleId, amount: a.amount, currency: a.currency }, `query-${a.outTradeNo}-${t.now}`);
}

function ack(t: Step, a: Attempt): void {
  if (!isFinal(a.state)) return;
  t.send('ack', a.outTradeNo, { outTradeNo: a.outTradeNo, state: a.state }, `ack-${a.outTradeNo}-${a.state}`);
}

// ── sale outcome ─────────────────────────────────────────────────────────────────────────────────

/** Decide whether the sale is now final, and tell the cash register exactly once when it is. */
function settle(t: Step, saleId: string): void {
  const sale = t.book.sales[saleId];
  if (!sale) return;
  const attempts = t.attemptsOf(sale);
  const paid = attempts.find((a) => a.state === 'SUCCESS');
  if (sale.state === 'PAID') return repointPaidBy(t, sale, paid);
  if (sale.state === 'NOT_PAID') {
    // Unreachable by the rules (NOT_PAID needs every attempt final and uncharged), so say so loudly.
    if (paid) t.log('error', 'a sale reported NOT_PAID has a charged attempt; support must refund it', { outTradeNo: paid.outTradeNo, saleRef: sale.ref, code: ErrorCode.ATTEMPT_CONFLICT });
    return;
  }
  if (paid) return markPaid(t, sale, paid);
  if (sale.state === 'CANCELLING' && attempts.every((a) => isFinal(a.state))) markNotPaid(t, sale, attempts);
}

function markPaid(t: Step, sale: Sale, paid: Attempt): void {
  const resultSeq = t.nextEcrSeq();
  const next = t.setSale(sale, { state: 'PAID', paidBy: paid.outTradeNo, reported: false, resultSeq }, `attempt ${paid.outTradeNo} SUCCESS`);
  reportFinal(t, next);
  t.log('info', 'sale paid', { outTradeNo: paid.outTradeNo, saleRef: sale.ref, amount: sale.amount });
}

function markNotPaid(t: Step, sale: Sale, attempts: Attempt[]): void {
  const resultSeq = t.nextEcrSeq();
  const next = t.setSale(sale, { state: 'NOT_PAID', reported: false, resultSeq }, `closed: ${sale.endReason ?? 'CASHIER_CANCEL'}`);
  const last = attempts.at(-1)?.outTradeNo;
  reportFinal(t, next, last);
  t.log('info', 'sale not paid', { saleRef: sale.ref, reason: sale.endReason, ...(last ? { outTradeNo: last } : {}) });
}

type ResultBody = Extract<EcrLineBody, { type: 'result' }>;

/** The content of a final sale's result line: the same for the line itself, a re-send and every lookup answer. */
function resultBody(t: Step, sale: Sale, lastAttempt?: string): ResultBody {
  const base = { type: 'result' as const, ref: sale.ref, amount: sale.amount, currency: sale.currency };
  if (sale.state === 'PAID') {
    const a = sale.paidBy ? t.book.attempts[sale.paidBy] : undefined;
    const wallet = a ? { wallet: a.wallet } : {};
    return { ...base, outcome: 'PAID', ...(sale.paidBy ? { outTradeNo: sale.paidBy } : {}), ...wallet, ...receiptFields(a?.receipt) };
  }
  return { ...base, outcome: 'NOT_PAID', reason: sale.endReason ?? 'CASHIER_CANCEL', ...(lastAttempt ? { outTradeNo: lastAttempt } : {}) };
}

/** The sale's result line number; a sale finished before ECR v2 is given one now, journaled with it. */
function resultSeqOf(t: Step, sale: Sale): { sale: Sale; seq: number } {
  if (sale.resultSeq !== undefined) return { sale, seq: sale.resultSeq };
  const seq = t.nextEcrSeq();
  return { sale: t.setSale(sale, { resultSeq: seq }, `result line numbered ${seq}`), seq };
}

/** The one `result` line per sale (repeated after a restart only if it was never written, with its first `seq`). */
function reportFinal(t: Step, sale: Sale, lastAttempt?: string): void {
  const { sale: s, seq } = resultSeqOf(t, sale);
  const body = resultBody(t, s, lastAttempt);
  t.ecr(body, { seq, finalFor: s.saleId });
  if (body.outcome === 'PAID') {
    t.show(screens.success(s.amount), { saleRef: s.ref, ...(s.paidBy ? { outTradeNo: s.paidBy } : {}) });
    return;
  }
  t.show(body.reason === 'AMOUNT_MISMATCH' ? screens.amountMismatch() : screens.notPaid(), { saleRef: s.ref });
}

/**
 * A final sale's result again, as a lookup answer (`lookup: true`, the original line's `seq`): no
 * screen, no change to `reported` — it is an answer to the register, not the news itself.
 */
function answerFinal(t: Step, sale: Sale): void {
  const { sale: s, seq } = resultSeqOf(t, sale);
  t.ecr({ ...resultBody(t, s, t.attemptsOf(s).at(-1)?.outTradeNo), lookup: true as const }, { seq });
}

/** What a PAID line tells the cash register of the wallet's receipt, so it can print it. */
function receiptFields(r: Receipt | undefined): Pick<ResultBody, 'walletTradeNo' | 'paidAt' | 'buyerPaid' | 'discount'> {
  if (!r) return {};
  return {
    walletTradeNo: r.walletTradeNo,
    ...(r.paidAt !== undefined ? { paidAt: r.paidAt } : {}),
    ...(r.buyerPaid !== undefined ? { buyerPaid: r.buyerPaid } : {}),
    ...(r.discount !== undefined ? { discount: r.discount } : {}),
  };
}

/** A refunded duplicate may have been the attempt we called the payer; the other success is. */
function repointPaidBy(t: Step, sale: Sale, paid: Attempt | undefined): void {
  const current = sale.paidBy ? t.book.attempts[sale.paidBy] : undefined;
  if (current?.state === 'SUCCESS' || !current) return;
  if (paid) {
    t.setSale(sale, { paidBy: paid.outTradeNo }, `payer is ${paid.outTradeNo}; ${current.outTradeNo} was refunded`);
    return;
  }
  t.log('error', 'sale was reported PAID but no attempt of it is charged any more', { outTradeNo: current.outTradeNo, saleRef: sale.ref, code: ErrorCode.ATTEMPT_CONFLICT });
}

/** Cashier cancel or sale deadline: cancel what is in flight; final once every attempt is. */
function endSale(t: Step, sale: Sale, reason: SaleEndReason): void {
  const closing = t.setSale(sale, { state: 'CANCELLING', endReason: reason }, reason);
  // up/cancel has no AMOUNT_MISMATCH (a new reason would be a new protocol version): the box gives up on its own account.
  const cancelReason: CancelReason = reason === 'AMOUNT_MISMATCH' ? 'RECOVERY_CANCEL' : reason;
  for (const a of t.attemptsOf(closing)) if (isOpenAttempt(a)) cancelAttempt(t, a, cancelReason);
  settle(t, closing.saleId);
  const now = t.book.sales[closing.saleId];
  if (now?.state !== 'CANCELLING') return;
  t.progress(now, 'CANCELLING', reason === 'DEADLINE' ? 'sale deadline passed; cancelling' : 'cancelling; waiting for the cloud to confirm');
  t.show(screens.cancelling(), { saleRef: now.ref });
}

// ── event handlers ───────────────────────────────────────────────────────────────────────────────

type Handler<T extends PaymentEventType> = (t: Step, e: Extract<PaymentEvent, { type: T }>) => void;

const onEcrSale: Handler<'ecrSale'> = (t, e) => {
  const existing = t.saleByRef(e.ref);
  if (existing?.state === 'OPEN' && existing.amount === e.amount) return t.progress(existing, stageOf(t, existing), 'sale already in progress');
  if (existing?.state === 'OPEN' || existing?.state === 'CANCELLING') {
    return t.ecrError(ErrorCode.SALE_BUSY, `sale ${e.ref} is already ${existing.state === 'OPEN' ? 'open with another amount' : 'being cancelled'}`, e.ref);
  }
  if (existing?.state === 'PAID') return t.ecrError(ErrorCode.SALE_ALREADY_PAID, `sale ${e.ref} is already paid`, e.ref);
  if (existing?.state === 'NOT_PAID') {
    // A ref is used once: the register is told the earlier outcome again, nothing is charged.
    t.log('info', 'sale line for a ref already closed NOT_PAID; answered with its outcome, not reopened', { saleRef: e.ref, saleId: existing.saleId });
    return answerFinal(t, existing);
  }
  const open = t.openSale();
  if (open) return t.ecrError(ErrorCode.SALE_BUSY, `sale ${open.ref} is still waiting for payment; cancel it first`, e.ref);
  if (!t.book.online) {
    t.ecrError(ErrorCode.OFFLINE, 'box is offline: payment refused; take another payment method or retry when online', e.ref);
    return t.show(screens.offline(), { saleRef: e.ref });
  }
  createSale(t, e);
};

function createSale(t: Step, e: Extract<PaymentEvent, { type: 'ecrSale' }>): void {
  const saleId = `${t.book.deviceId}-s${t.book.nextSaleSeq}`;
  t.book.nextSaleSeq += 1;
  t.effects.push({ kind: 'saveSeq', nextAttemptSeq: t.book.nextAttemptSeq, nextSaleSeq: t.book.nextSaleSeq });
  const sale: Sale = {
    saleId,
    ref: e.ref,
    amount: e.amount,
    currency: e.currency,
    state: 'OPEN',
    endReason: null,
    paidBy: null,
    createdAt: t.now,
    updatedAt: t.now,
    deadline: t.now + t.book.rules.saleDeadlineMs,
    reported: false,
  };
  t.book.sales[saleId] = sale;
  t.effects.push({ kind: 'saveSale', sale, from: null, cause: 'ecr sale' });
  t.progress(sale, 'WAITING_CODE', 'show your payment code');
  t.show(screens.waitingCode(sale.amount), { saleRef: sale.ref });
  t.log('info', 'sale opened', { saleRef: sale.ref, saleId, amount: sale.amount });
}

function stageOf(t: Step, sale: Sale): EcrStage {
  return t.attemptsOf(sale).some(isOpenAttempt) ? 'PAYING' : 'WAITING_CODE';
}

const onEcrCancel: Handler<'ecrCancel'> = (t, e) => {
  const sale = t.saleByRef(e.ref);
  if (!sale) return t.ecrError(ErrorCode.SALE_UNKNOWN, `no sale with ref ${e.ref}`, e.ref);
  if (sale.state === 'PAID') return t.ecrError(ErrorCode.SALE_ALREADY_PAID, `sale ${e.ref} is already paid; refund it instead`, e.ref);
  if (sale.state === 'NOT_PAID') return t.ecrError(ErrorCode.SALE_UNKNOWN, `sale ${e.ref} is already closed as NOT_PAID`, e.ref);
  if (sale.state === 'CANCELLING') return t.progress(sale, 'CANCELLING', 'already cancelling');
  endSale(t, sale, 'CASHIER_CANCEL');
};

/** Its result again if final (a lookup answer), its current stage if not, or SALE_UNKNOWN. */
const onEcrLookup: Handler<'ecrLookup'> = (t, e) => {
  const sale = t.saleByRef(e.ref);
  if (!sale) return t.ecrError(ErrorCode.SALE_UNKNOWN, `no sale with ref ${e.ref}`, e.ref);
  if (sale.state === 'PAID' || sale.state === 'NOT_PAID') return answerFinal(t, sale);
  if (sale.state === 'CANCELLING') return t.progress(sale, 'CANCELLING', 'cancelling; waiting for the cloud to confirm', undefined, true);
  const inFlight = t.attemptsOf(sale).find(isOpenAttempt);
  if (inFlight) return t.progress(sale, 'PAYING', 'payment in progress; asking the wallet', inFlight.outTradeNo, true);
  t.progress(sale, 'WAITING_CODE', 'show your payment code', undefined, true);
};

const onEcrHello: Handler<'ecrHello'> = (t, e) => {
  t.log('info', 'cash register said hello', { registerVersion: e.registerVersion ?? 1, ...(e.name === undefined ? {} : { name: e.name }) });
  t.ecr({ type: 'hello', deviceId: t.book.deviceId, firmware: e.firmware, capabilities: [...ECR_CAPABILITIES] });
};

const onEcrBadLine: Handler<'ecrBadLine'> = (t, e) => {
  t.log('warn', 'bad line from the cash register', { code: e.code, reason: e.message });
  t.ecr({ type: 'error', ...(e.ref === undefined ? {} : { ref: e.ref }), code: e.code, message: e.message.slice(0, 200) });
};

const onEcrDelivered: Handler<'ecrDelivered'> = (t, e) => {
  const sale = t.book.sales[e.saleId];
  if (sale && !sale.reported) t.setSale(sale, { reported: true }, 'result line written to the cash register');
};

const onScan: Handler<'scan'> = (t, e) => {
  const masked = maskPaymentCode(e.code.code);
  const sale = t.openSale();
  if (!sale) {
    t.log('warn', 'code scanned but no sale is waiting', { code: ErrorCode.NO_SALE_WAITING, masked });
    return t.show(screens.noSale());
  }
  if (t.attemptsOf(sale).some(isOpenAttempt)) {
    t.log('warn', 'code scanned while a payment of this sale is in flight', { code: ErrorCode.SALE_BUSY, masked, saleRef: sale.ref });
    return t.show(screens.busy(), { saleRef: sale.ref });
  }
  if (!t.book.online) {
    t.log('warn', 'payment refused: box offline', { code: ErrorCode.OFFLINE, saleRef: sale.ref });
    t.ecrError(ErrorCode.OFFLINE, 'box is offline: payment refused; take another payment method or retry when online', sale.ref);
    return t.show(screens.offline(), { saleRef: sale.ref });
  }
  createAttempt(t, sale, e.code);
};

function createAttempt(t: Step, sale: Sale, code: PaymentCode): void {
  const outTradeNo = makeOutTradeNo(t.book.deviceId, t.book.nextAttemptSeq);
  t.book.nextAttemptSeq += 1;
  t.effects.push({ kind: 'saveSeq', nextAttemptSeq: t.book.nextAttemptSeq, nextSaleSeq: t.book.nextSaleSeq });
  const { saleId, amount, currency, ref: saleRef } = sale;
  const rules = t.book.rules;
  const attempt: Attempt = {
    ...{ outTradeNo, saleId, saleRef, amount, currency, wallet: code.wallet, state: 'CREATED', reason: null },
    ...{ createdAt: t.now, updatedAt: t.now, deadline: t.now + rules.paymentDeadlineMs, nextCheckAt: t.now + rules.recheckMs },
  };
  t.book.attempts[outTradeNo] = attempt;
  t.effects.push({ kind: 'saveAttempt', attempt, from: null, cause: 'code scanned' });
  t.send('pay', outTradeNo, { outTradeNo, saleId, amount, currency, saleRef, code: code.code, wallet: code.wallet }, `pay-${outTradeNo}`);
  t.progress(sale, 'PAYING', 'code accepted; asking the wallet', outTradeNo);
  t.show(screens.paying(amount), { saleRef, outTradeNo });
  t.log('info', 'attempt created', { outTradeNo, saleRef, wallet: code.wallet, masked: maskPaymentCode(code.code), amount });
}

const onPaySent: Handler<'paySent'> = (t, e) => {
  const a = t.book.attempts[e.outTradeNo];
  if (a?.state === 'CREATED') t.setAttempt(a, { state: 'PAYING' }, 'pay delivered to the broker');
};

const onProgress: Handler<'progress'> = (t, e) => {
  const m = e.message;
  const a = t.book.attempts[m.outTradeNo];
  if (!a || isFinal(a.state)) return t.log('info', 'progress for an attempt that is not in flight; ignored', { outTradeNo: m.outTradeNo, stage: m.stage });
  t.log('info', 'cloud progress', { outTradeNo: a.outTradeNo, stage: m.stage });
  if (m.stage !== 'USERPAYING' || !isOpenAttempt(a)) return;
  const cur = a.state === 'CREATED' ? t.setAttempt(a, { state: 'PAYING' }, 'cloud reports USERPAYING') : a;
  const sale = t.book.sales[cur.saleId];
  if (sale?.state !== 'OPEN') return;
  t.progress(sale, 'WAITING_PASSWORD', "waiting for the customer's password", cur.outTradeNo);
  t.show(screens.waitingPassword(), { saleRef: sale.ref, outTradeNo: cur.outTradeNo });
};

const onResult: Handler<'result'> = (t, e) => {
  const m = e.message;
  if (!hasKnownState(m)) return unknownState(t, m);
  const a = t.book.attempts[m.outTradeNo];
  if (!a) return t.log('warn', 'result for an attempt this box does not know; ignored', { outTradeNo: m.outTradeNo, code: ErrorCode.ATTEMPT_UNKNOWN });
  // Every result must match the journaled attempt: sale, amount and currency. The cloud echoes them
  // in every answer, a tombstone's too (a query carries the money fields), so any difference is a conflict.
  if (m.saleId !== a.saleId || m.amount !== a.amount || m.currency !== a.currency) {
    return t.log('error', 'result does not match the journaled attempt; ignored', { outTradeNo: a.outTradeNo, code: ErrorCode.ATTEMPT_CONFLICT, got: { saleId: m.saleId, amount: m.amount } });
  }
  if (!isFinal(m.state)) return applyInterim(t, a, m.state);
  if (!isFinal(a.state)) return applyFinal(t, a, m);
  if (a.state === m.state) return resent(t, a, m);
  applyChangedFinal(t, a, m);
};

/** A result whose state this box can act on; the reason may still be a newer cloud's. */
type KnownResult = DownMessage<'result'> & { state: AttemptState };
function hasKnownState(m: DownMessage<'result'>): m is KnownResult {
  return m.state !== UNKNOWN;
}

/**
 * A newer cloud's state this box cannot read: never success, never final. Nothing changes, so the
 * attempt stays open, its deadline still runs, and the next recheck asks again.
 */
function unknownState(t: Step, m: DownMessage<'result'>): void {
  t.log('warn', 'result with a state this box does not know; attempt kept open and queried again', { outTradeNo: m.outTradeNo, v: m.v, code: ErrorCode.UNSUPPORTED_VERSION });
}

/** A reason this box does not know is dropped: the state alone decides the money. */
function knownReason(reason: ResultReason | Unknown | undefined): ResultReason | null {
  return reason === undefined || reason === UNKNOWN ? null : reason;
}

function applyInterim(t: Step, a: Attempt, state: AttemptState): void {
  const from = INTERIM_RANK[a.state];
  const to = INTERIM_RANK[state];
  if (from === undefined || to === undefined || to <= from) return; // stale or out of order
  t.setAttempt(a, { state }, `cloud reports ${state}`);
}

/** The receipt a final result carries, kept with the attempt; one already kept stays when a later result has none. */
function withReceipt(a: Attempt, m: KnownResult): Pick<Attempt, 'receipt'> {
  const receipt = m.receipt ?? a.receipt;
  return receipt ? { receipt } : {};
}

/** A re-sent final result: ack it again (the earlier ack may have been lost), keeping a receipt it brings that the attempt lacks. */
function resent(t: Step, a: Attempt, m: KnownResult): void {
  const next = !a.receipt && m.receipt ? t.setAttempt(a, { receipt: m.receipt }, `cloud result ${m.state}: the wallet's receipt`) : a;
  ack(t, next);
}

function applyFinal(t: Step, a: Attempt, m: KnownResult): void {
  // Also when the cloud gave up on its own (deadline → CANCELLING → REVERSED): the cashier must
  // learn that this code is done and another may be scanned.
  const firstFinal = !isFinal(a.state);
  const reason = knownReason(m.reason);
  const next = t.setAttempt(a, { state: m.state, reason, ...withReceipt(a, m) }, `cloud result ${m.state}`);
  ack(t, next);
  t.log(m.state === 'SUCCESS' ? 'info' : 'warn', 'attempt final', { outTradeNo: a.outTradeNo, state: m.state, reason: m.reason });
  if (m.state === 'SUCCESS' && m.receipt && m.receipt.total !== a.amount) {
    // The cloud calls a charge of another amount AMOUNT_MISMATCH, never SUCCESS: the state decides, support is told.
    t.log('error', "a paid result's receipt shows another total than the attempt's amount", { outTradeNo: a.outTradeNo, amount: a.amount, total: m.receipt.total, code: ErrorCode.ATTEMPT_CONFLICT });
  }
  const sale = t.book.sales[a.saleId];
  if (!sale) return;
  if (m.state === 'SUCCESS' && sale.state === 'PAID') {
    t.log('warn', 'second success for one sale; the cloud refunds it', { outTradeNo: a.outTradeNo, saleRef: sale.ref, code: ErrorCode.DUPLICATE_PAYMENT });
  }
  if (reason === 'AMOUNT_MISMATCH') return amountMismatch(t, sale);
  settle(t, sale.saleId);
  if (firstFinal && m.state !== 'SUCCESS' && t.book.sales[sale.saleId]?.state === 'OPEN') {
    t.progress(sale, 'ATTEMPT_FAILED', `payment failed (${reason ?? m.state}); another code may be scanned`, a.outTradeNo);
    t.show(screens.attemptFailed(sale.amount, reason), { saleRef: sale.ref, outTradeNo: a.outTradeNo });
  }
}

/**
 * The wallet charged another amount than the sale's: nothing is paid, the cloud undoes the charge.
 * The sale ends NOT_PAID at once with that reason (the customer is still at the counter, and the
 * cash register must not wait for another code): an open sale is closed (any attempt still open is
 * cancelled first), a closing one reports it as its reason. A sale already final keeps its outcome.
 */
function amountMismatch(t: Step, sale: Sale): void {
  if (sale.state === 'OPEN') return endSale(t, sale, 'AMOUNT_MISMATCH');
  if (sale.state === 'CANCELLING') t.setSale(sale, { endReason: 'AMOUNT_MISMATCH' }, 'the wallet charged another amount');
  settle(t, sale.saleId);
}

/**
 * A final result that differs from the one applied. Not-charged ↔ not-charged (REVERSED → REFUNDED)
 * and SUCCESS → REFUNDED (a refunded duplicate) are real; anything that would turn a not-charged
 * attempt into a charged one, or undo a success otherwise, contradicts what the cashier was told
 * and is refused loudly for support to reconcile.
 */
function applyChangedFinal(t: Step, a: Attempt, m: KnownResult): void {
  const from = a.state as Parameters<typeof isCharged>[0];
  const to = m.state as Parameters<typeof isCharged>[0];
  const allowed = (!isCharged(from) && !isCharged(to)) || (from === 'SUCCESS' && to === 'REFUNDED');
  if (!allowed) {
    return t.log('error', 'cloud result contradicts a final state; ignored', { outTradeNo: a.outTradeNo, code: ErrorCode.ATTEMPT_CONFLICT, have: from, got: to });
  }
  const next = t.setAttempt(a, { state: to, reason: knownReason(m.reason) ?? a.reason, ...withReceipt(a, m) }, `cloud result changed ${from} → ${to}`);
  ack(t, next);
  t.log(from === 'SUCCESS' ? 'warn' : 'info', 'final result changed', { outTradeNo: a.outTradeNo, from, to, reason: m.reason });
  settle(t, a.saleId);
}

const onCloudError: Handler<'cloudError'> = (t, e) => {
  const m = e.message;
  t.log('warn', 'cloud reported an error', { code: m.code, message: m.message, refId: m.refId, outTradeNo: m.outTradeNo });
  if (onRefundRefused(t, m)) return;
  const a = m.outTradeNo ? t.book.attempts[m.outTradeNo] : undefined;
  if (!a || isFinal(a.state)) return;
  // The pay met a tombstone (cancelled before the cloud saw it): ask for the recorded state. Anything
  // else the cloud sends on down/error (a refused message, ATTEMPT_CONFLICT) is logged and changes nothing.
  if (m.code === ErrorCode.ATTEMPT_TOMBSTONED) query(t, a);
};

const onTick: Handler<'tick'> = (t) => {
  for (const a of Object.values(t.book.attempts)) {
    if (isOpenAttempt(a) && t.now >= a.deadline) attemptTimedOut(t, a);
  }
  for (const sale of Object.values(t.book.sales)) {
    if (sale.state === 'OPEN' && t.now >= sale.deadline) endSale(t, sale, 'DEADLINE');
  }
  answerOverdueTotals(t);
  if (!t.book.online) return;
  for (const a of Object.values(t.book.attempts)) if (!isFinal(a.state) && t.now >= a.nextCheckAt) query(t, a);
  recheckRefunds(t);
};

function attemptTimedOut(t: Step, a: Attempt): void {
  cancelAttempt(t, a, 'DEADLINE');
  const sale = t.book.sales[a.saleId];
  if (sale?.state !== 'OPEN') return;
  t.progress(sale, 'CANCELLING', 'payment timed out; cancelling it; the customer may scan again', a.outTradeNo);
  t.show(screens.timedOut(sale.amount), { saleRef: sale.ref, outTradeNo: a.outTradeNo });
}

const queryAll: Handler<'resync'> = (t) => {
  for (const a of Object.values(t.book.attempts)) if (!isFinal(a.state)) query(t, a);
  recheckRefunds(t, true);
};

const onLinkUp: Handler<'linkUp'> = (t) => {
  t.book.online = true;
  queryAll(t, { type: 'resync' });
  t.log('info', 'cloud link up; querying every attempt in flight');
};

const onLinkDown: Handler<'linkDown'> = (t) => {
  t.book.online = false;
  t.log('warn', 'cloud link down; new payments are refused until it is back');
  answerOverdueTotals(t, true);
};

/**
 * After a restart a pay still in the outbox is withdrawn: the code may have been used and lives only
 * about a minute, so the reconnect query decides the attempt's fate, never a second pay.
 */
const onRestart: Handler<'restart'> = (t) => {
  for (const a of Object.values(t.book.attempts)) {
    if (a.state !== 'CREATED') continue;
    t.effects.push({ kind: 'withdrawPay', outTradeNo: a.outTradeNo });
    t.log('info', 'restart: pay is never re-sent; the attempt will be queried', { outTradeNo: a.outTradeNo });
  }
};

/** The cash-register port is (back) up: write every final result it has not been sent. */
const onEcrReady: Handler<'ecrReady'> = (t) => {
  for (const sale of Object.values(t.book.sales)) {
    const final = sale.state === 'PAID' || sale.state === 'NOT_PAID';
    if (final && !sale.reported) reportFinal(t, sale, t.attemptsOf(sale).at(-1)?.outTradeNo);
  }
  reportUnreportedRefunds(t);
};

/** Noise from the scanner: told to the cashier only when the box is waiting for a code, never over a payment in progress. */
const onScanRejected: Handler<'scanRejected'> = (t, e) => {
  t.log('warn', 'scan rejected', { code: e.code, reason: e.message });
  if (e.code === ErrorCode.DUPLICATE_SCAN || e.code === ErrorCode.CODE_EMPTY) return;
  const sale = t.openSale();
  if (sale && !t.attemptsOf(sale).some(isOpenAttempt)) t.show(screens.badScan(), { saleRef: sale.ref });
};

const HANDLERS: { [T in PaymentEventType]: Handler<T> } = {
  ecrSale: onEcrSale,
  ecrCancel: onEcrCancel,
  ecrHello: onEcrHello,
  ecrLookup: onEcrLookup,
  ecrRefund: (t, { type: _type, ...asked }) => onEcrRefund(t, asked),
  ecrTotals: (t, e) => onEcrTotals(t, e.date, e.local),
  ecrRefundDelivered: (t, e) => onEcrRefundDelivered(t, e.refundId),
  refundResult: (t, e) => onRefundResult(t, e.message),
  totals: (t, e) => onTotals(t, e.message),
  ecrBadLine: onEcrBadLine,
  ecrDelivered: onEcrDelivered,
  ecrReady: onEcrReady,
  scan: onScan,
  scanRejected: onScanRejected,
  paySent: onPaySent,
  result: onResult,
  progress: onProgress,
  cloudError: onCloudError,
  linkUp: onLinkUp,
  linkDown: onLinkDown,
  resync: queryAll,
  restart: onRestart,
  tick: onTick,
};

export function step(book: Book, event: PaymentEvent, now: number): StepResult {
  const t = new Step(book, now);
  (HANDLERS[event.type] as Handler<PaymentEventType>)(t, event);
  return { book: prune(t.book), effects: t.effects };
}

/** The earliest moment a `tick` can change something, so the shell arms one timer instead of polling. */
export function nextWakeAt(book: Book): number | null {
  let next = Number.POSITIVE_INFINITY;
  for (const a of Object.values(book.attempts)) {
    if (isOpenAttempt(a)) next = Math.min(next, a.deadline);
    if (book.online && !isFinal(a.state)) next = Math.min(next, a.nextCheckAt);
  }
  for (const s of Object.values(book.sales)) if (s.state === 'OPEN') next = Math.min(next, s.deadline);
  next = Math.min(next, nextRefundWake(book.refunds, book.online), nextTotalsWake(book.totalsRequests));
  return Number.isFinite(next) ? next : null;
}

/** Memory stays flat over thousands of sales: finished ones beyond the newest few live only in the journal. */
export function prune(book: Book): Book {
  const sales = Object.values(book.sales);
  if (sales.length <= KEPT_FINISHED_SALES * 2) return book;
  const busy = new Set<string>();
  for (const a of Object.values(book.attempts)) if (!isFinal(a.state)) busy.add(a.saleId);
  for (const r of Object.values(book.refunds)) if (r.saleId && (!isFinalBoxRefund(r) || !r.reported)) busy.add(r.saleId);
  const finished = sales.filter((s) => (s.state === 'PAID' || s.state === 'NOT_PAID') && s.reported && !busy.has(s.saleId));
  if (finished.length <= KEPT_FINISHED_SALES * 2) return book;
  finished.sort((x, y) => y.updatedAt - x.updatedAt);
  const drop = new Set(finished.slice(KEPT_FINISHED_SALES).map((s) => s.saleId));
  const keptSales = Object.fromEntries(Object.entries(book.sales).filter(([id]) => !drop.has(id)));
  const attempts = Object.fromEntries(Object.entries(book.attempts).filter(([, a]) => !drop.has(a.saleId)));
  // A refund of another box's sale has no sale here: it stays while open or unreported, like the rest.
  const keep = (r: Refund) => (r.saleId ? !drop.has(r.saleId) : !isFinalBoxRefund(r) || !r.reported);
  const refunds = Object.fromEntries(Object.entries(book.refunds).filter(([, r]) => keep(r)));
  return { ...book, sales: keptSales, attempts, refunds };
}
