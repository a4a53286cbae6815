import {
  backoffDelay,
  classifyPaymentCode,
  isFinal,
  isProtocolError,
  type AttemptState,
  type CancelMessage,
  type Currency,
  type ErrorCode,
  type FinalState,
  type ProgressMessage,
  type ResultReason,
  type Wallet,
} from '../../protocol/index.js';
import type { PayOutcome, PayRequest, QueryOutcome, QueryRequest, RefundOutcome, RefundRequest, ReverseOutcome, ReverseRequest } from '../gateway/gateway.js';
import { withinReverseWindow, type ReverseWindow } from '../gateway/wallet-rules.js';

/**
 * The cloud's payment-attempt state machine, pure: (attempt, event, context) → (attempt, effects).
 * It never reads a clock, a database or the network; the shell (attempts-service.ts) persists the
 * new attempt and only then performs the effects. Everything needed to resume after a crash is in
 * the Attempt record, so a restarted process continues from the store alone.
 */

/** Which timed step an attempt is on; together with `state` it says what the next tick does. */
export type Step = 'pay' | 'poll' | 'reverse' | 'verify' | 'refund' | 'late_check';
export type GatewayCallName = 'pay' | 'query' | 'reverse' | 'refund';
export type CancelReason = CancelMessage['reason'];
/** Why an attempt needs a person: the wallet charged another amount than the sale's (undone, but someone must look). */
export type AttemptFlag = 'AMOUNT_MISMATCH';

export type ProgressStage = ProgressMessage['stage'];

export interface Attempt {
  outTradeNo: string;
  deviceId: string;
  /** The merchant the box was paired to when the pay arrived: whose wallet sub-account is charged. */
  merchantId: string | null;
  /** The provider account the attempt started on; every later call of the attempt goes through it. */
  channel: string | null;
  saleId: string;
  saleRef: string | null;
  amount: number;
  currency: Currency;
  wallet: Wallet | null;
  state: AttemptState;
  reason: ResultReason | null;
  createdAt: number;
  updatedAt: number;
  /**
   * The latest moment the wallet can have seen the pay: when its answer arrived (or its call timed
   * out), or when the cloud resumed with it still in flight. A reverse waits reverseMinDelayMs after
   * it: counted from when the pay was received, a wallet measuring on its side saw reverses 14.96 s
   * after a pay that took a while to reach it.
   */
  payAt: number | null;
  /** End of query polling; past it the attempt is reversed. */
  deadlineAt: number | null;
  /** When the next timed step is due; null when nothing is scheduled. */
  nextAt: number | null;
  step: Step | null;
  /** The gateway call currently awaited; its outcome must carry `callSeq` to be accepted. */
  inFlight: GatewayCallName | null;
  callSeq: number;
  /** Retries of the current step (reverse, refund, late check). */
  tries: number;
  cancelReason: CancelReason | null;
  gatewayTradeNo: string | null;
  /** The receipt as the wallet reported it. `charged`: the total it charged — what an undo gives back. */
  charged: number | null;
  walletPaidAt: number | null;
  buyerPaid: number | null;
  discount: number | null;
  flag: AttemptFlag | null;
  /** The final state the device confirmed it applied; results are re-sent until this matches. */
  ackedState: FinalState | null;
  /** Optimistic-concurrency version, bumped by the store on every write. */
  version: number;
}

export interface MachineConfig {
  queryFirstDelayMs: number;
  queryIntervalMs: number;
  pollDeadlineMs: Record<Wallet, number>;
  /** Least time between the pay (its answer or timeout) and a reverse, per wallet (wallet-rules.ts). */
  reverseMinDelayMs: Record<Wallet, number>;
  /** How long a wallet still reverses a pay; past it the attempt is refunded (wallet-rules.ts). */
  reverseWindows: Record<Wallet, ReverseWindow>;
  /** Base of the reverse/refund retry backoff. */
  reverseRetryMs: number;
  /** Cap of the background (REVERSE_PENDING / REFUND_PENDING) retry interval. */
  reverseRetryMaxMs: number;
  /** Reverse tries in the foreground (CANCELLING) before the attempt goes REVERSE_PENDING. */
  reverseFastRetries: number;
  lateCheckDelayMs: number;
  lateCheckTries: number;
}

export interface MachineContext {
  now: number;
  config: MachineConfig;
  /** [0, 1): jitter for retries, injected so the machine stays deterministic under test. */
  random: () => number;
}

type Outcome<C extends GatewayCallName, O> = { type: 'outcome'; call: C; seq: number; outcome: O };
export type AttemptEvent =
  | {
      type: 'pay';
      outTradeNo: string;
      deviceId: string;
      merchantId: string;
      channel: string;
      saleId: string;
      saleRef: string;
      amount: number;
      currency: Currency;
      wallet: Wallet;
      code: string;
    }
  | { type: 'cancel'; outTradeNo: string; deviceId: string; saleId: string; amount: number; currency: Currency; reason: CancelReason }
  | { type: 'query'; outTradeNo: string; deviceId: string; saleId: string; amount: number; currency: Currency }
  | { type: 'ack'; state: FinalState }
  /** `saleWinner` is set by the shell when the store refused this attempt's claim on its sale. */
  | (Outcome<'pay', PayOutcome> & { saleWinner?: string })
  | (Outcome<'query', QueryOutcome> & { saleWinner?: string })
  | Outcome<'reverse', ReverseOutcome>
  | Outcome<'refund', RefundOutcome>
  | { type: 'tick' }
  | { type: 'resume' };

export type GatewayEffect =
  | { type: 'gateway'; call: 'pay'; seq: number; req: PayRequest }
  | { type: 'gateway'; call: 'query'; seq: number; req: QueryRequest }
  | { type: 'gateway'; call: 'reverse'; seq: number; req: ReverseRequest }
  | { type: 'gateway'; call: 'refund'; seq: number; req: RefundRequest };
export type Effect =
  | GatewayEffect
  /** Send the attempt's current state on down/result. */
  | { type: 'result' }
  | { type: 'progress'; stage: ProgressStage }
  | { type: 'error'; code: ErrorCode; message: string };

export interface Transition {
  attempt: Attempt | undefined;
  /** Whether `attempt` must be written before the effects run. */
  changed: boolean;
  effects: Effect[];
  /** The attempt becomes SUCCESS: the store must atomically claim its sale for it. */
  claimSale: boolean;
  /** One line for the audit trail. */
  note: string;
}

const FAIL_REASON = { INSUFFICIENT_FUNDS: 'INSUFFICIENT_FUNDS', CODE_EXPIRED: 'CODE_EXPIRED', CODE_INVALID: 'CODE_INVALID', DECLINED: 'DECLINED' } as const;
type Success = Extract<PayOutcome, { kind: 'success' }>;

export function refundNoOf(outTradeNo: string): string {
  return `${outTradeNo}-R`;
}

export function transition(a: Attempt | undefined, e: AttemptEvent, ctx: MachineContext): Transition {
  switch (e.type) {
    case 'pay':
      return a ? onRepeatedPay(a, e) : onNewPay(e, ctx);
    case 'cancel':
      return onCancel(a, e, ctx);
    case 'query':
      return a ? onKnownQuery(a, e) : tombstone(e, 'UNKNOWN_ATTEMPT', ctx);
    case 'ack':
      return a ? onAck(a, e.state, ctx) : same(a, 'ack for an unknown attempt ignored');
    case 'outcome':
      return a ? onOutcome(a, e, ctx) : same(a, 'outcome for an unknown attempt ignored');
    case 'tick':
      return a ? onTick(a, ctx) : same(a, 'tick for an unknown attempt ignored');
    case 'resume':
      return a ? onResume(a, ctx) : same(a, 'nothing to resume');
  }
}

// ── building blocks ─────────────────────────────────────────────────────────────────────────────

function same(a: Attempt | undefined, note: string, effects: Effect[] = []): Transition {
  return { attempt: a, changed: false, effects, claimSale: false, note };
}

function moved(a: Attempt, patch: Partial<Attempt>, ctx: MachineContext, note: string, effects: Effect[] = []): Transition {
  return { attempt: { ...a, ...patch, updatedAt: ctx.now }, changed: true, effects, claimSale: false, note };
}

/** A final state: nothing more is scheduled (except the late check after REVERSED) and the device is told. */
function finish(a: Attempt, state: FinalState, reason: ResultReason | null, ctx: MachineContext, note: string, extra: Partial<Attempt> = {}): Transition {
  const late = state === 'REVERSED' ? { step: 'late_check' as const, nextAt: ctx.now + ctx.config.lateCheckDelayMs, tries: 0 } : { step: null, nextAt: null };
  return moved(a, { state, reason, inFlight: null, ...late, ...extra }, ctx, note, [{ type: 'result' }]);
}

/** Start a gateway call: mark it in flight (so a tick cannot start a second one) and emit it. */
function call(t: Transition, name: Exclude<GatewayCallName, 'pay'>): Transition {
  const a = t.attempt!;
  const seq = a.callSeq + 1;
  const attempt: Attempt = { ...a, inFlight: name, callSeq: seq, nextAt: null };
  const base = { outTradeNo: a.outTradeNo, wallet: a.wallet!, merchant: a.merchantId!, channel: a.channel ?? a.wallet! };
  // An undo gives back what the wallet charged, which is not the sale's amount after a mismatch.
  const charged = a.charged ?? a.amount;
  const effect: GatewayEffect =
    name === 'refund'
      ? { type: 'gateway', call: name, seq, req: { ...base, refundNo: refundNoOf(a.outTradeNo), amount: charged, total: charged, currency: a.currency } }
      : { type: 'gateway', call: name, seq, req: base };
  return { ...t, attempt, changed: true, effects: [...t.effects, effect] };
}

function backoff(tries: number, ctx: MachineContext, capMs: number): number {
  return backoffDelay(tries, ctx.random, { baseMs: ctx.config.reverseRetryMs, maxMs: Math.max(capMs, ctx.config.reverseRetryMs) });
}

function reverseAt(a: Attempt, ctx: MachineContext): number {
  return Math.max(ctx.now, (a.payAt ?? ctx.now) + ctx.config.reverseMinDelayMs[a.wallet!]);
}

/**
 * Undo by reverse, at the wallet's earliest moment — or, past the wallet's reverse window (WeChat 7
 * days, Alipay the day of the trade), by finding out whether it was charged and refunding: a reverse
 * the wallet would refuse is never sent.
 */
function reverseOrRefund(t: Transition, ctx: MachineContext): Transition {
  const a = t.attempt!;
  if (withinReverseWindow(ctx.config.reverseWindows[a.wallet!], a.createdAt, ctx.now)) return callAt(t, 'reverse', reverseAt(a, ctx), ctx);
  const verify = { ...a, state: isFinal(a.state) ? a.state : ('REFUND_PENDING' as const), step: 'verify' as const, tries: 0 };
  return call({ ...t, attempt: verify, changed: true, note: `${t.note}; past the reverse window: verify, then refund` }, 'query');
}

/** Either call now or wait until `at`. */
function callAt(t: Transition, name: Exclude<GatewayCallName, 'pay'>, at: number, ctx: MachineContext): Transition {
  if (at <= ctx.now) return call(t, name);
  return { ...t, attempt: { ...t.attempt!, nextAt: at }, changed: true };
}

function startReverse(a: Attempt, reason: CancelReason | 'DEADLINE', ctx: MachineContext, note: string): Transition {
  const t = moved(a, { state: 'CANCELLING', reason, cancelReason: a.cancelReason ?? (reason === 'DEADLINE' ? 'DEADLINE' : reason), step: 'reverse', tries: 0 }, ctx, note, [
    { type: 'progress', stage: 'REVERSING' },
  ]);
  return a.inFlight ? t : reverseOrRefund(t, ctx);
}

function startRefund(a: Attempt, reason: ResultReason, ctx: MachineContext, note: string): Transition {
  const t = moved(a, { state: 'REFUND_PENDING', reason, step: 'refund', tries: 0, inFlight: null }, ctx, note, [{ type: 'progress', stage: 'REFUNDING' }]);
  return call(t, 'refund');
}

function conflicts(a: Attempt, e: { saleId: string; amount?: number; currency?: Currency }): boolean {
  if (a.saleId !== e.saleId) return true;
  if (e.amount === undefined) return false;
  return a.amount !== e.amount || a.currency !== e.currency;
}

function conflict(a: Attempt): Transition {
  return same(a, 'message conflicts with the recorded attempt', [
    { type: 'error', code: 'ATTEMPT_CONFLICT', message: `${a.outTradeNo} is already recorded with another sale or amount; nothing was charged for this message` },
  ]);
}

// ── device messages ─────────────────────────────────────────────────────────────────────────────

type NewFields = { outTradeNo: string; deviceId: string; saleId: string; amount: number; currency: Currency };

function newAttempt(e: NewFields, ctx: MachineContext): Attempt {
  return {
    outTradeNo: e.outTradeNo,
    deviceId: e.deviceId,
    merchantId: null,
    channel: null,
    saleId: e.saleId,
    saleRef: null,
    amount: e.amount,
    currency: e.currency,
    wallet: null,
    state: 'CREATED',
    reason: null,
    createdAt: ctx.now,
    updatedAt: ctx.now,
    payAt: null,
    deadlineAt: null,
    nextAt: null,
    step: null,
    inFlight: null,
    callSeq: 0,
    tries: 0,
    cancelReason: null,
    gatewayTradeNo: null,
    charged: null,
    walletPaidAt: null,
    buyerPaid: null,
    discount: null,
    flag: null,
    ackedState: null,
    version: 0,
  };
}

function onNewPay(e: Extract<AttemptEvent, { type: 'pay' }>, ctx: MachineContext): Transition {
  const base = { ...newAttempt(e, ctx), saleRef: e.saleRef, wallet: e.wallet, merchantId: e.merchantId, channel: e.channel };
  const codeError = checkCode(e.code, e.wallet);
  if (codeError) {
    // Never sent to the gateway: a final, uncharged answer at once is kinder than a timeout.
    const a = { ...base, state: 'FAILED' as const, reason: 'CODE_INVALID' as const };
    return { attempt: a, changed: true, effects: [{ type: 'result' }], claimSale: false, note: `pay refused before the gateway: ${codeError}` };
  }
  const seq = 1;
  const a: Attempt = {
    ...base,
    state: 'PAYING',
    step: 'pay',
    payAt: ctx.now,
    deadlineAt: ctx.now + ctx.config.pollDeadlineMs[e.wallet],
    inFlight: 'pay',
    callSeq: seq,
  };
  const req: PayRequest = { outTradeNo: a.outTradeNo, amount: e.amount, currency: e.currency, code: e.code, wallet: e.wallet, merchant: e.merchantId, channel: e.channel };
  return { attempt: a, changed: true, effects: [{ type: 'gateway', call: 'pay', seq, req }], claimSale: false, note: 'recorded; pay sent' };
}

function checkCode(code: string, wallet: Wallet): string | null {
  try {
    const c = classifyPaymentCode(code);
    return c.wallet === wallet ? null : `code is a ${c.wallet} code but the message says ${wallet}`;
  } catch (err) {
    if (isProtocolError(err)) return err.message;
    throw err;
  }
}

function onRepeatedPay(a: Attempt, e: Extract<AttemptEvent, { type: 'pay' }>): Transition {
  if (conflicts(a, e)) return conflict(a);
  if (a.state === 'CANCELLED') {
    return same(a, 'pay after cancel refused (tombstone)', [
      { type: 'error', code: 'ATTEMPT_TOMBSTONED', message: `${a.outTradeNo} was cancelled before it was paid; this pay is refused and nothing was charged` },
      { type: 'result' },
    ]);
  }
  return same(a, 'duplicate pay: recorded state returned', [{ type: 'result' }]);
}

function tombstone(e: NewFields, reason: ResultReason, ctx: MachineContext): Transition {
  const a = { ...newAttempt(e, ctx), state: 'CANCELLED' as const, reason };
  return { attempt: a, changed: true, effects: [{ type: 'result' }], claimSale: false, note: `tombstone (${reason}): any later pay is refused` };
}

function onCancel(a: Attempt | undefined, e: Extract<AttemptEvent, { type: 'cancel' }>, ctx: MachineContext): Transition {
  if (!a) return tombstone(e, e.reason, ctx);
  if (conflicts(a, e)) return conflict(a);
  if (a.state === 'PAYING') return startReverse(a, e.reason, ctx, `cancel (${e.reason}): reverse`);
  return same(a, `cancel in ${a.state}: recorded state returned`, [{ type: 'result' }]);
}

function onKnownQuery(a: Attempt, e: Extract<AttemptEvent, { type: 'query' }>): Transition {
  if (a.saleId !== e.saleId) return conflict(a);
  return same(a, 'query answered', [{ type: 'result' }]);
}

function onAck(a: Attempt, state: FinalState, ctx: MachineContext): Transition {
  if (state !== a.state || a.ackedState === state) return same(a, `ack of ${state} ignored (state ${a.state})`);
  return moved(a, { ackedState: state }, ctx, `device applied ${state}`);
}

// ── gateway outcomes ────────────────────────────────────────────────────────────────────────────

function onOutcome(a: Attempt, e: Extract<AttemptEvent, { type: 'outcome' }>, ctx: MachineContext): Transition {
  if (a.inFlight !== e.call || a.callSeq !== e.seq) return same(a, `stale ${e.call} outcome ignored`);
  const cleared: Attempt = { ...a, inFlight: null, ...(e.call === 'pay' ? { payAt: ctx.now } : {}) };
  switch (e.call) {
    case 'pay':
      return onPayOutcome(cleared, e.outcome, e.saleWinner, ctx);
    case 'query':
      return onQueryOutcome(cleared, e.outcome, e.saleWinner, ctx);
    case 'reverse':
      return onReverseOutcome(cleared, e.outcome, ctx);
    case 'refund':
      return onRefundOutcome(cleared, e.outcome, ctx);
  }
}

function receiptOf(o: Success): Pick<Attempt, 'gatewayTradeNo' | 'charged' | 'walletPaidAt' | 'buyerPaid' | 'discount'> {
  return { gatewayTradeNo: o.gatewayTradeNo, charged: o.amount, walletPaidAt: o.paidAt ?? null, buyerPaid: o.buyerPaid ?? null, discount: o.discount ?? null };
}

/**
 * The wallet charged another amount than the sale's: never PAID. The register hears NOT_PAID at once
 * (the customer is still at the counter), the charge is undone at the wallet's earliest moment, and
 * the attempt is flagged for a person.
 */
function onAmountMismatch(a: Attempt, o: Success, ctx: MachineContext): Transition {
  const t = finish(a, 'FAILED', 'AMOUNT_MISMATCH', ctx, `AMOUNT MISMATCH: the wallet charged ${o.amount}, the sale is ${a.amount}: undo it`, { flag: 'AMOUNT_MISMATCH', step: 'reverse' });
  return reverseOrRefund(t, ctx);
}

function onSuccess(a: Attempt, o: Success, saleWinner: string | undefined, ctx: MachineContext): Transition {
  const a2 = { ...a, ...receiptOf(o) };
  if (a.state === 'PAYING' && o.amount !== a.amount) return onAmountMismatch(a2, o, ctx);
  if (a.state === 'PAYING') {
    if (saleWinner !== undefined && saleWinner !== a.outTradeNo) {
      return startRefund(a2, 'DUPLICATE_PAYMENT', ctx, `second success for sale ${a.saleId} (paid by ${saleWinner}): refund`);
    }
    return { ...finish(a2, 'SUCCESS', 'PAID', ctx, 'paid'), claimSale: true };
  }
  if (a.state === 'CANCELLING' || a.state === 'REVERSE_PENDING') {
    // The cashier (or the deadline) already gave this attempt up: reverse undoes the payment.
    return reverseOrRefund(moved(a2, {}, ctx, 'success after cancel: reverse it'), ctx);
  }
  if (a.state === 'REVERSED' || a.state === 'FAILED' || a.state === 'CANCELLED') {
    // A flagged attempt keeps the reason the box was told (AMOUNT_MISMATCH).
    return startRefund(a2, a.flag ? a.reason! : 'LATE_SUCCESS', ctx, `late success after ${a.state}: refund`);
  }
  if (a.state === 'REFUND_PENDING') return call(moved(a2, { step: 'refund', tries: 0 }, ctx, 'charged: refund'), 'refund');
  return moved(a2, {}, ctx, `success in ${a.state}: nothing to do`);
}

function onPayOutcome(a: Attempt, o: PayOutcome, saleWinner: string | undefined, ctx: MachineContext): Transition {
  switch (o.kind) {
    case 'success':
      return onSuccess(a, o, saleWinner, ctx);
    case 'failed':
      return finish(a, 'FAILED', FAIL_REASON[o.reason], ctx, `pay failed: ${o.reason}`);
    case 'in_progress':
    case 'unknown': {
      if (a.state !== 'PAYING') return reverseOrRefund(moved(a, {}, ctx, `pay ${o.kind} while cancelling`), ctx);
      const now = o.kind === 'unknown' && o.code === 'BANKERROR';
      const stage: ProgressStage = o.kind === 'in_progress' ? 'USERPAYING' : 'QUERYING';
      const t = moved(a, { step: 'poll' }, ctx, `pay ${o.kind === 'unknown' ? `unknown (${o.code})` : 'in progress'}: query`, [{ type: 'progress', stage }]);
      return callAt(t, 'query', now ? ctx.now : ctx.now + ctx.config.queryFirstDelayMs, ctx);
    }
  }
}

function onQueryOutcome(a: Attempt, o: QueryOutcome, saleWinner: string | undefined, ctx: MachineContext): Transition {
  if (o.kind === 'success') return onSuccess(a, o, saleWinner, ctx);
  if (a.step === 'late_check') return onLateCheck(a, o, ctx);
  if (a.step === 'verify') return onVerify(a, o, ctx);
  switch (o.kind) {
    case 'failed':
      return finish(a, 'FAILED', FAIL_REASON[o.reason], ctx, `query: failed ${o.reason}`);
    case 'refunded':
      return finish(a, 'REFUNDED', a.reason ?? 'LATE_SUCCESS', ctx, 'query: already refunded at the gateway');
    case 'closed':
      return finish(a, 'FAILED', 'USER_GAVE_UP', ctx, 'query: closed at the gateway, nothing charged');
    default:
      // in_progress, unknown, not_found (right after a timed-out pay: "not yet", never "failed").
      if (a.state !== 'PAYING') return reverseOrRefund(moved(a, {}, ctx, `query ${o.kind} while cancelling`), ctx);
      if (ctx.now >= (a.deadlineAt ?? ctx.now)) return startReverse(a, 'DEADLINE', ctx, `query ${o.kind} at the deadline: reverse`);
      return moved(a, { nextAt: Math.min(ctx.now + ctx.config.queryIntervalMs, a.deadlineAt ?? Infinity) }, ctx, `query ${o.kind}: poll again`);
  }
}

/** The verification query after REVERSED: only a success (refund it) or a refund changes anything. */
function onLateCheck(a: Attempt, o: QueryOutcome, ctx: MachineContext): Transition {
  if (o.kind === 'refunded') return finish(a, 'REFUNDED', a.reason, ctx, 'late check: refunded at the gateway');
  // Still open or no answer: the payment could yet land, so look again (a bounded number of times).
  if ((o.kind === 'unknown' || o.kind === 'in_progress') && a.tries + 1 < ctx.config.lateCheckTries) {
    return moved(a, { tries: a.tries + 1, nextAt: ctx.now + ctx.config.queryIntervalMs }, ctx, `late check ${o.kind}: again`);
  }
  return moved(a, { step: null, nextAt: null }, ctx, `late check: ${o.kind}, nothing charged`);
}

/** Past the reverse window: find out whether the customer was charged before refunding. */
function onVerify(a: Attempt, o: QueryOutcome, ctx: MachineContext): Transition {
  if (o.kind === 'refunded') return finish(a, 'REFUNDED', a.reason, ctx, 'verify: already refunded');
  if (o.kind === 'closed' || o.kind === 'failed' || o.kind === 'not_found') {
    return finish(a, 'REVERSED', a.reason, ctx, `verify: ${o.kind}, nothing charged`, { step: null, nextAt: null });
  }
  return moved(a, { tries: a.tries + 1, nextAt: ctx.now + backoff(a.tries, ctx, ctx.config.reverseRetryMaxMs) }, ctx, `verify ${o.kind}: retry later`);
}

function onReverseOutcome(a: Attempt, o: ReverseOutcome, ctx: MachineContext): Transition {
  switch (o.kind) {
    case 'reversed':
      return finish(a, 'REVERSED', a.reason ?? 'DEADLINE', ctx, o.action ? `reversed (wallet: ${o.action})` : 'reversed');
    case 'window_passed':
      return call(moved(a, { state: 'REFUND_PENDING', step: 'verify', tries: 0 }, ctx, 'reverse window passed: verify, then refund', [{ type: 'progress', stage: 'REFUNDING' }]), 'query');
    case 'already_paid':
      return startRefund(a, a.reason ?? 'DEADLINE', ctx, `reverse refused, the order is paid: refund (${o.message})`);
    default: {
      const tries = a.tries + 1;
      const background = tries >= ctx.config.reverseFastRetries;
      const cap = background ? ctx.config.reverseRetryMaxMs : ctx.config.reverseRetryMs * 4;
      // An undo after a final answer (an amount mismatch) keeps the state the box was told.
      const state = isFinal(a.state) ? a.state : background ? 'REVERSE_PENDING' : 'CANCELLING';
      // The wallet's words (recall=Y, retry_flag=Y, SYSTEMERROR …) go into the audit trail.
      return moved(a, { state, tries, nextAt: ctx.now + backoff(tries, ctx, cap) }, ctx, `reverse ${o.kind} (${o.message}): retry (${tries})`);
    }
  }
}

function onRefundOutcome(a: Attempt, o: RefundOutcome, ctx: MachineContext): Transition {
  if (o.kind === 'refunded') return finish(a, 'REFUNDED', a.reason, ctx, 'refunded');
  const tries = a.tries + 1;
  // A definitive refund failure leaves money charged: keep retrying slowly, loudly (see the log).
  const note = o.kind === 'failed' ? `REFUND FAILED (${o.reason}): needs attention; retrying` : `refund ${o.kind}: retry (${tries})`;
  return moved(a, { tries, nextAt: ctx.now + backoff(tries, ctx, ctx.config.reverseRetryMaxMs) }, ctx, note);
}

// ── time ────────────────────────────────────────────────────────────────────────────────────────

function onTick(a: Attempt, ctx: MachineContext): Transition {
  if (a.inFlight || a.nextAt === null || ctx.now < a.nextAt) return same(a, 'tick: nothing due');
  const t = moved(a, { nextAt: null }, ctx, `tick: ${a.step ?? 'none'}`);
  switch (a.step) {
    case 'pay':
    case 'poll':
      if (ctx.now >= (a.deadlineAt ?? ctx.now)) return startReverse(a, 'DEADLINE', ctx, 'poll deadline passed: reverse');
      return call(t, 'query');
    case 'reverse':
      return reverseOrRefund(t, ctx);
    case 'verify':
    case 'late_check':
      return call(t, 'query');
    case 'refund':
      return call(t, 'refund');
    default:
      return t;
  }
}

/**
 * After a restart the outcome of any call in flight is lost. The gateway is idempotent on
 * outTradeNo, so: a PAYING attempt is queried (the pay may have landed), a reversing one reversed,
 * a refunding one refunded again (same refundNo). A pay is never re-sent: the code is not stored.
 */
function onResume(a: Attempt, ctx: MachineContext): Transition {
  // A pay that was out when the cloud died may reach the wallet up to now.
  const payAt = a.inFlight === 'pay' ? ctx.now : a.payAt;
  const t = moved(a, { inFlight: null, callSeq: a.callSeq + 1, payAt }, ctx, `resume in ${a.state}`);
  const r = t.attempt!;
  switch (a.state) {
    case 'CREATED':
    case 'PAYING':
      return call(moved(r, { state: 'PAYING', step: 'poll' }, ctx, t.note), 'query');
    case 'CANCELLING':
    case 'REVERSE_PENDING':
      return reverseOrRefund(t, ctx);
    case 'REFUND_PENDING':
      return call(t, a.step === 'verify' ? 'query' : 'refund');
    default:
      if (a.step === 'late_check') return callAt(t, 'query', a.nextAt ?? ctx.now, ctx);
      // A final answer with its undo still to do (an amount mismatch).
      if (a.step === 'reverse') return reverseOrRefund(t, ctx);
      if (a.step === 'verify') return call(t, 'query');
      return t;
  }
}

/**
 * Attempts with work left: not final, or a late check still due or in flight. The shell resumes
 * these. (A late-check query in flight has `nextAt` null: a crash then must not drop the check, or a
 * late success after REVERSED is never refunded — found by `scanbox-sim chaos`.)
 */
export function needsWork(a: Attempt): boolean {
  return !isFinal(a.state) || a.nextAt !== null || a.inFlight !== null;
}
