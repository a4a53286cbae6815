import { backoffDelay, type Currency, type RefundReason, type RefundState, type Wallet } from '../../protocol/index.js';
import type { RefundOutcome, RefundRequest } from '../gateway/gateway.js';

/**
 * A refund the cash register asked for, after the store took it (refunds-service.ts, the store's
 * atomic `requestRefund`): pure, like the attempt machine (payments/transaction.ts) — (refund,
 * event, context) → (refund, effects). It never reads a clock, a database or the network; the shell
 * writes the new refund and only then calls the wallet or tells the box.
 *
 *   PENDING ── wallet refund ──▶ refunded ─▶ REFUNDED
 *      │                    └──▶ failed ───▶ FAILED (DECLINED)
 *      └── unknown / retry_later / timeout: the same refundNo again after a backoff, forever
 *          (the wallets make a refund number idempotent, and the adapters query inside `refund`);
 *          past `flagAfterMs` the refund is flagged for an operator once, and still retried.
 *
 * A REFUSED refund never reaches this machine: the store refused it before any wallet call.
 */
export interface Refund {
  /** `<deviceId>-r<seq>`, made on the box; the wallet's refund number too. */
  refundId: string;
  /** The box that asked. */
  deviceId: string;
  /** The sender's merchant and store when it asked: whose daily limit it counts against. */
  merchantId: string;
  storeId: string;
  /** The attempt that paid the sale. */
  outTradeNo: string;
  /** The cash register's reference of the refund. */
  refundRef: string;
  /** The attempt's wallet and channel (every refund of an attempt goes its way); null when refused before the attempt was found. */
  wallet: Wallet | null;
  channel: string | null;
  amount: number;
  /** What the wallet charged for the attempt (its `charged`, else its amount): the refund call's `total`. */
  saleTotal: number | null;
  currency: Currency;
  state: RefundState;
  reason: RefundReason | null;
  /** The wallet's last words (a decline, a retry), for the operator and the box. */
  message: string | null;
  createdAt: number;
  updatedAt: number;
  /** When it became final (REFUNDED, FAILED, REFUSED): the business day a refund counts on. */
  finalAt: number | null;
  /** Wallet calls that did not end it. */
  tries: number;
  /** When the next call is due; null while one is out or when final. */
  nextAt: number | null;
  /** A wallet call is out; its outcome must carry `callSeq` to be taken. */
  inFlight: boolean;
  callSeq: number;
  /** Pending longer than `flagAfterMs`: an operator must look (scanbox-cloud refunds --flagged). */
  flagged: boolean;
  /** Optimistic-concurrency version, bumped by the store on every write. */
  version: number;
}

export interface RefundMachineConfig {
  /** First retry delay after an unknown or retry_later answer; doubles with full jitter… */
  retryMs: number;
  /** …up to this. */
  retryMaxMs: number;
  /** A refund still PENDING this long after it was taken is flagged for an operator. */
  flagAfterMs: number;
}

export interface RefundContext {
  now: number;
  config: RefundMachineConfig;
  /** [0, 1): the retry jitter, injected so the machine stays deterministic under test. */
  random: () => number;
}

export type RefundEvent =
  /** Drive a PENDING refund: just taken, or found in the store at start (any call that was out is lost). */
  | { type: 'start' }
  | { type: 'outcome'; seq: number; outcome: RefundOutcome }
  /** A timer fired: a retry or the flag may be due. */
  | { type: 'tick' };

export type RefundEffect =
  | { type: 'gateway'; seq: number; req: RefundRequest }
  /** Tell the box where the refund stands (down/refund). */
  | { type: 'result' }
  /** Pending too long: the operator's log line and counter. */
  | { type: 'flag' };

export interface RefundTransition {
  refund: Refund;
  /** Whether `refund` must be written before the effects run. */
  changed: boolean;
  effects: RefundEffect[];
  /** Why, for the log. */
  note: string;
}

export function refundTransition(r: Refund, e: RefundEvent, ctx: RefundContext): RefundTransition {
  if (r.state !== 'PENDING') return same(r, `${e.type} in ${r.state}: final, nothing to do`);
  switch (e.type) {
    case 'start':
      return onStart(r, ctx);
    case 'tick':
      return onTick(r, ctx);
    case 'outcome':
      return onOutcome(r, e, ctx);
  }
}

/** When the shell must wake a PENDING refund that has no call out: its retry, or its flag if sooner. */
export function refundWakeAt(r: Refund, config: RefundMachineConfig): number | null {
  if (r.state !== 'PENDING' || r.inFlight) return null;
  const flagAt = r.flagged ? Infinity : r.createdAt + config.flagAfterMs;
  const at = Math.min(r.nextAt ?? Infinity, flagAt);
  return at === Infinity ? null : at;
}

// ── building blocks ─────────────────────────────────────────────────────────────────────────────

function same(r: Refund, note: string): RefundTransition {
  return { refund: r, changed: false, effects: [], note };
}

function moved(r: Refund, patch: Partial<Refund>, ctx: RefundContext, note: string, effects: RefundEffect[] = []): RefundTransition {
  return { refund: { ...r, ...patch, updatedAt: ctx.now }, changed: true, effects, note };
}

function finish(r: Refund, state: 'REFUNDED' | 'FAILED', ctx: RefundContext, note: string, patch: Partial<Refund> = {}): RefundTransition {
  return moved(r, { state, inFlight: false, nextAt: null, finalAt: ctx.now, ...patch }, ctx, note, [{ type: 'result' }]);
}

/** Flag once, when the refund has been pending for flagAfterMs; it keeps being retried all the same. */
function withFlag(t: RefundTransition, ctx: RefundContext): RefundTransition {
  const r = t.refund;
  if (r.flagged || ctx.now - r.createdAt < ctx.config.flagAfterMs) return t;
  return { refund: { ...r, flagged: true, updatedAt: ctx.now }, changed: true, effects: [...t.effects, { type: 'flag' }], note: `${t.note}; pending ${ctx.now - r.createdAt} ms: flagged for an operator` };
}

/** Ask the wallet: the same refund number every time, so a retry never refunds twice. */
function call(t: RefundTransition, ctx: RefundContext): RefundTransition {
  const r = t.refund;
  const seq = r.callSeq + 1;
  const req: RefundRequest = {
    outTradeNo: r.outTradeNo,
    wallet: r.wallet!,
    merchant: r.merchantId,
    channel: r.channel ?? r.wallet!,
    refundNo: r.refundId,
    amount: r.amount,
    total: r.saleTotal ?? r.amount,
    currency: r.currency,
  };
  return { refund: { ...r, inFlight: true, callSeq: seq, nextAt: null, updatedAt: ctx.now }, changed: true, effects: [...t.effects, { type: 'gateway', seq, req }], note: t.note };
}

// ── events ──────────────────────────────────────────────────────────────────────────────────────

function onStart(r: Refund, ctx: RefundContext): RefundTransition {
  // A call that was out before a restart will never be answered here: its seq is retired.
  const base = r.inFlight ? moved(r, { inFlight: false, callSeq: r.callSeq + 1 }, ctx, 'resumed with a call out (lost)') : same(r, r.callSeq === 0 ? 'taken' : 'resumed');
  const t = withFlag(base, ctx);
  if (r.nextAt !== null && r.nextAt > ctx.now) return { ...t, note: `${t.note}: waits for its retry` };
  return call({ ...t, note: `${t.note}: refund` }, ctx);
}

function onTick(r: Refund, ctx: RefundContext): RefundTransition {
  if (r.inFlight) return same(r, 'tick: a call is out');
  const due = r.nextAt !== null && r.nextAt <= ctx.now;
  const t = withFlag(same(r, due ? 'tick: retry' : 'tick'), ctx);
  return due ? call(t, ctx) : t;
}

function onOutcome(r: Refund, e: Extract<RefundEvent, { type: 'outcome' }>, ctx: RefundContext): RefundTransition {
  if (!r.inFlight || e.seq !== r.callSeq) return same(r, `stale refund outcome (${e.outcome.kind}) ignored`);
  const o = e.outcome;
  switch (o.kind) {
    case 'refunded':
      return finish(r, 'REFUNDED', ctx, 'refunded', { message: null });
    case 'failed':
      return finish(r, 'FAILED', ctx, `the wallet declined: ${o.reason} (${o.message})`, { reason: 'DECLINED', message: o.message });
    case 'unknown':
    case 'retry_later': {
      const tries = r.tries + 1;
      const delay = backoffDelay(tries - 1, ctx.random, { baseMs: ctx.config.retryMs, maxMs: Math.max(ctx.config.retryMaxMs, ctx.config.retryMs) });
      const words = o.kind === 'unknown' ? `unknown (${o.code}: ${o.message})` : `retry_later (${o.message})`;
      const t = moved(r, { inFlight: false, tries, nextAt: ctx.now + delay, message: words.slice(0, 200) }, ctx, `refund ${words}: again in ${delay} ms (${tries})`);
      return withFlag(t, ctx);
    }
  }
}
