import { ErrorCode, formatDecimal, ProtocolError, REFUND_ID_PATTERN, type DownToSend, type RefundReason, type UpMessage } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { ChannelLimits } from '../payments/channel-limits.js';
import { callGateway } from '../payments/gateway-call.js';
import { SerialLanes } from '../payments/serial-lanes.js';
import type { CloudStore, Lease } from '../store/store.js';
import type { WorkerLease } from '../payments/lease-keeper.js';
import type { DownLink } from './down-link.js';
import { refundTransition, refundWakeAt, type Refund, type RefundEffect, type RefundEvent, type RefundMachineConfig } from './refund-machine.js';

/**
 * The shell around the refund machine (refund-machine.ts). An up/refund is taken by the store's
 * atomic request (one payment's refunds are checked one after another, and a refund id is one
 * refund for ever); every up/refund is answered with the refund's current state — which is also how
 * a box asks "how did it go?" after a restart — and a final state is pushed when it is reached.
 * Every change is written before anything acts on it; a restart resumes every PENDING refund from
 * the store with the same refund number, which the wallets make idempotent.
 */
export interface RefundsServiceDeps {
  store: CloudStore;
  /** The channel router: a refund goes through the channel its payment took. */
  gateway: Gateway;
  link: DownLink;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Whose timers schedule the retries (a fake in tests; `clock` only tells the time). */
  timers: Clock;
  random: () => number;
  machine: RefundMachineConfig;
  gatewayCallTimeoutMs: number;
  /** Calls in flight at once per channel, shared with the payments' calls: a channel's width counts every call made through it. */
  channelLimits: ChannelLimits;
  /** One of several workers on one store: every write carries this worker's lease, and one another worker holds is left to it. */
  worker?: WorkerLease;
}

/** How many times a write that lost an optimistic-concurrency race is re-run on fresh state. */
const MAX_WRITE_RETRIES = 5;

/** What the box is told about a refusal, beside its reason. */
const REFUSAL_TEXT: Record<RefundReason, string> = {
  SALE_UNKNOWN: 'the cloud has no payment with this outTradeNo',
  SALE_NOT_PAID: 'this payment is not paid: nothing to give back',
  NOT_THIS_MERCHANT: "this payment is another merchant's",
  EXCEEDS_REMAINING: 'more than what remains of this payment after its other refunds',
  DAILY_LIMIT: "over the store's daily refund limit",
  REFUND_CONFLICT: 'this refund id is already taken with another payment or amount',
  DECLINED: 'the wallet declined the refund',
  CLOUD_REFUSED: 'the cloud refused the refund',
};
/** Refusals about the payment itself: its figures are not the box's to know (or do not exist). */
const FIGURES_WITHHELD: readonly (RefundReason | null)[] = ['SALE_UNKNOWN', 'SALE_NOT_PAID', 'NOT_THIS_MERCHANT', 'REFUND_CONFLICT'];

export class RefundsService {
  private readonly lanes = new SerialLanes();
  private readonly timers = new Map<string, unknown>();
  private closed = false;

  constructor(private readonly deps: RefundsServiceDeps) {
  }

  /** An up/refund from `deviceId` (authenticated, active, of `merchantId`). Throws a ProtocolError for the caller's error reply. */
  async handle(deviceId: string, merchantId: string, msg: UpMessage<'refund'>): Promise<void> {
    if (this.closed) return;
    // A box asks only under its own refund ids (`<deviceId>-r<seq>`): another's would read its refunds.
    if (REFUND_ID_PATTERN.exec(msg.refundId)?.[1] !== deviceId) {
      throw new ProtocolError(ErrorCode.FORBIDDEN, `refundId ${msg.refundId} does not belong to device ${deviceId}`);
    }
    const log = this.log(msg.refundId, msg.outTradeNo, deviceId);
    log.info({ merchantId, amount: msg.amount, refundRef: msg.refundRef }, 'refund received');
    await this.lanes.run(msg.refundId, async () => {
      const ask = { refundId: msg.refundId, deviceId, refundRef: msg.refundRef, outTradeNo: msg.outTradeNo, amount: msg.amount, currency: msg.currency, at: this.deps.clock.now() };
      // One payment's refunds are asked one after another here too: the store's check is the guarantee, this spares it the contention.
      const res = await this.lanes.run(`payment:${msg.outTradeNo}`, () => this.deps.store.requestRefund(ask));
      if (res.kind === 'conflict') {
        log.warn({ recorded: { outTradeNo: res.refund.outTradeNo, amount: res.refund.amount } }, 'refund id already taken with another payment or amount: refused, the recorded refund is untouched');
        await this.answer(res.refund, msg.v, { outTradeNo: msg.outTradeNo, amount: msg.amount, currency: msg.currency, state: 'REFUSED', reason: 'REFUND_CONFLICT' });
        return;
      }
      if (res.kind === 'created') this.recorded(res.refund, null, 'taken');
      await this.answer(res.refund, msg.v);
      if (res.kind === 'created' && res.refund.state === 'PENDING') await this.run(msg.refundId, { type: 'start' });
      else this.schedule(res.refund);
    });
  }

  /**
   * An operator's "now" (the dashboard's exception desk): a PENDING refund waiting for its retry is
   * made due and asked again at once — the same refund number, so the wallet answers for the refund
   * it may already have made. Refused when it is final or a call is out.
   */
  retryNow(refundId: string): Promise<{ ok: true; refund: Refund } | { ok: false; why: string }> {
    if (this.closed) return Promise.resolve({ ok: false, why: 'the cloud is stopping' });
    return this.lanes.run(refundId, async () => {
      const r = await this.deps.store.getRefund(refundId);
      if (!r) return { ok: false, why: `no refund ${refundId}` };
      if (r.state !== 'PENDING') return { ok: false, why: `${r.state}: final, nothing to retry` };
      if (r.inFlight) return { ok: false, why: 'a wallet call is out: its answer decides what comes next' };
      const now = this.deps.clock.now();
      // In the refund's history too, or the early call that follows has no cause there (the operator's name is in operator_actions).
      const due = await this.deps.store.writeRefund({ ...r, nextAt: now, updatedAt: now }, r.version, this.lease(), { event: 'operator', note: 'retry now: made due at once by an operator' });
      if (!due.ok) return { ok: false, why: due.leasedTo ? `worker ${due.leasedTo} drives it: ask there, or wait for its lease to run out` : 'it changed meanwhile: look again' };
      await this.run(refundId, { type: 'tick' });
      const after = await this.deps.store.getRefund(refundId);
      return after ? { ok: true, refund: after } : { ok: false, why: `no refund ${refundId}` };
    });
  }

  /** After a restart: every PENDING refund continues from the store, with the same refund number. */
  async resumeAll(): Promise<number> {
    return this.resume(await this.deps.store.listRefunds({ state: 'PENDING' }));
  }

  /** Resume these PENDING refunds (all of them after a restart, or those a worker claimed from one whose lease ran out). */
  async resume(pending: Refund[]): Promise<number> {
    if (this.closed) return 0;
    await Promise.all(pending.map((r) => this.dispatch(r.refundId, { type: 'start' })));
    if (pending.length) this.deps.logger.info({ count: pending.length }, 'resumed refunds');
    return pending.length;
  }

  /** Stop the timers and wait for what is being written; a call out is resumed on the next start. */
  async close(): Promise<void> {
    this.closed = true;
    for (const h of this.timers.values()) this.deps.timers.clearTimeout(h);
    this.timers.clear();
    await this.lanes.idle();
  }

  // ── the machine loop ────────────────────────────────────────────────────────────────────────

  private dispatch(refundId: string, event: RefundEvent): Promise<void> {
    return this.lanes.run(refundId, () => this.run(refundId, event));
  }

  /** Read, transition, write (before anything acts), then act. Runs inside the refund's lane. */
  private async run(refundId: string, event: RefundEvent): Promise<void> {
    for (let i = 0; i < MAX_WRITE_RETRIES; i++) {
      const before = await this.deps.store.getRefund(refundId);
      if (!before) return;
      const t = refundTransition(before, event, { now: this.deps.clock.now(), config: this.deps.machine, random: this.deps.random });
      if (!t.changed) return this.schedule(before);
      const res = await this.deps.store.writeRefund(t.refund, before.version, this.lease(), { event: event.type, note: t.note });
      if (!res.ok && res.leasedTo) return this.unschedule(refundId); // another worker drives it
      if (!res.ok) continue;
      const r = { ...t.refund, version: res.version };
      this.recorded(r, before, t.note);
      for (const e of t.effects) this.perform(r, e);
      return this.schedule(r);
    }
    throw new ProtocolError(ErrorCode.INTERNAL, `refund ${refundId} kept changing under this write; it resumes on the next event`);
  }

  /** The log line and counters of a refund just written. */
  private recorded(r: Refund, before: Refund | null, note: string): void {
    const moved = before?.state !== r.state;
    this.log(r.refundId, r.outTradeNo, r.deviceId)[moved ? 'info' : 'debug']({ from: before?.state ?? null, to: r.state, reason: r.reason, amount: r.amount, note }, 'refund transition');
    if (moved && r.state !== 'PENDING') this.deps.metrics.inc('refunds_total', { state: r.state, wallet: r.wallet ?? 'none' });
  }

  private perform(r: Refund, e: RefundEffect): void {
    switch (e.type) {
      case 'gateway':
        return void this.callWallet(r, e);
      case 'result':
        return void this.answer(r);
      case 'flag':
        this.deps.metrics.inc('refunds_flagged_total', { wallet: r.wallet ?? 'none' });
        this.log(r.refundId, r.outTradeNo, r.deviceId).error(
          { pendingMs: this.deps.clock.now() - r.createdAt, tries: r.tries, amount: r.amount, channel: r.channel, lastAnswer: r.message },
          'REFUND STUCK: still PENDING after refundFlagAfterMs; flagged for an operator (scanbox-cloud refunds --flagged), still retried',
        );
    }
  }

  /** Not awaited by the lane: the box's messages about this refund are answered while the wallet thinks. */
  private async callWallet(r: Refund, e: Extract<RefundEffect, { type: 'gateway' }>): Promise<void> {
    const log = this.log(r.refundId, r.outTradeNo, r.deviceId);
    const outcome = await this.deps.channelLimits.run(e.req.channel, async () => {
      if (this.closed) return undefined; // never started: resumed from the store on the next start
      this.deps.metrics.inc('gateway_calls_total', 'refund');
      return callGateway(this.deps.gateway, { type: 'gateway', call: 'refund', seq: e.seq, req: e.req }, { timeoutMs: this.deps.gatewayCallTimeoutMs, metrics: this.deps.metrics, clock: this.deps.clock });
    });
    if (!outcome || this.closed) return;
    log.info({ call: 'refund', seq: e.seq, outcome: outcome.kind, ...('code' in outcome ? { gwCode: outcome.code } : {}) }, 'gateway answered');
    await this.dispatch(r.refundId, { type: 'outcome', seq: e.seq, outcome }).catch((err: unknown) =>
      log.error({ err: (err as Error).message }, 'could not record a refund outcome; the refund resumes from the store'),
    );
  }

  /** This worker's lease for a write (several workers on one store), or none (the only cloud). */
  private lease(): Lease | undefined {
    const w = this.deps.worker;
    if (!w) return undefined;
    const now = this.deps.clock.now();
    return { owner: w.owner, now, until: now + w.ttlMs };
  }

  private unschedule(refundId: string): void {
    const old = this.timers.get(refundId);
    if (old !== undefined) this.deps.timers.clearTimeout(old);
    this.timers.delete(refundId);
  }

  private schedule(r: Refund): void {
    this.unschedule(r.refundId);
    const at = refundWakeAt(r, this.deps.machine);
    if (at === null || this.closed) return;
    const handle = this.deps.timers.setTimeout(() => {
      this.timers.delete(r.refundId);
      this.dispatch(r.refundId, { type: 'tick' }).catch((err: unknown) => this.log(r.refundId, r.outTradeNo, r.deviceId).error({ err: (err as Error).message }, 'refund tick failed'));
    }, at - this.deps.clock.now());
    this.timers.set(r.refundId, handle);
  }

  // ── to the box ──────────────────────────────────────────────────────────────────────────────

  /**
   * down/refund with the refund as it stands (or `as`: a refusal of this message that leaves the
   * recorded refund alone), and the payment's figures when they are the box's to know.
   */
  private async answer(r: Refund, answering?: number, as?: Pick<DownToSend<'refund'>, 'outTradeNo' | 'amount' | 'currency' | 'state' | 'reason'>): Promise<void> {
    const shown = as ?? { outTradeNo: r.outTradeNo, amount: r.amount, currency: r.currency, state: r.state, ...(r.reason ? { reason: r.reason } : {}) };
    const b = FIGURES_WITHHELD.includes(shown.reason ?? null) ? undefined : await this.deps.store.refundBalance(r.outTradeNo);
    const text = shown.state === 'FAILED' ? r.message : shown.reason ? this.refusalText(shown.reason, b && b.charged - b.refunded - b.pending) : null;
    const msg: DownToSend<'refund'> = {
      ...this.deps.link.envelope(),
      refundId: r.refundId,
      ...shown,
      ...(b ? { refundedTotal: b.refunded, remaining: Math.max(0, b.charged - b.refunded - b.pending) } : {}),
      ...(text ? { message: text.slice(0, 200) } : {}),
    };
    await this.deps.link.send(r.deviceId, 'refund', msg, { qos: 1, answering });
  }

  private refusalText(reason: RefundReason, remaining: number | undefined): string {
    return reason === 'EXCEEDS_REMAINING' && remaining !== undefined ? `${REFUSAL_TEXT[reason]} (${formatDecimal(remaining)} remain)` : REFUSAL_TEXT[reason];
  }

  private log(refundId: string, outTradeNo: string, deviceId: string): Logger {
    return this.deps.logger.child({ refundId, outTradeNo, deviceId });
  }
}
