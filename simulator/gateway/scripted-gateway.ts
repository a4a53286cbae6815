import { pino, type Logger } from 'pino';
import type {
  CallOptions,
  FailReason,
  Gateway,
  GatewayCall,
  PayOutcome,
  PayRequest,
  QueryOutcome,
  QueryRequest,
  RefundOutcome,
  RefundRequest,
  ReverseOutcome,
  ReverseRequest,
} from '../../cloud/gateway/gateway.js';
import { maskPaymentCode, type Currency, type Wallet } from '../../protocol/index.js';
import { reverseWindowsOf, WALLET_RULES, withinReverseWindow, type ReverseWindow } from '../../cloud/gateway/wallet-rules.js';
import type { Clock } from '../../protocol/clock.js';
import { backgroundClock, sleep } from '../clock.js';
import { Ledger, netCharged, type LedgerKind } from './ledger.js';
import { startGatewayServer, type GatewayServer } from './gateway-server.js';
import { deviceIdOf } from '../out-trade-no.js';
import { createRandom, hashSeed, type Random } from '../random.js';
import { DEFAULT_MIX, INSTANT, Latency, pickScenario, Scenario, ScenarioMix, type ScenarioInput, type ScenarioMixInput, type ScenarioName } from './scenario.js';

/**
 * A wallet in a box: implements the cloud's Gateway interface with scripted customers and faults.
 * Like the real micropay APIs it is idempotent per outTradeNo, answers queries with the order's real
 * state, and lets reverse undo a charge. Every money movement goes to the ledger.
 */
export interface ScriptedGatewayDeps {
  clock?: Clock;
  /** The clock whose timers run the scenarios; defaults to `clock`. */
  timers?: Clock;
  seed?: number | string;
  /** Scenarios for codes nobody bound; also carries the latency distribution. */
  mix?: ScenarioMixInput;
  /** Overrides the mix's latency (`INSTANT` for benchmarks). */
  latency?: Partial<Latency>;
  /** How long after the pay a charged order can still be reversed, per wallet (default: the wallets' published rules). */
  reverseWindows?: Partial<Record<Wallet, ReverseWindow>>;
  logger?: Logger;
}

/** absent: the pay never got through (a hang without a charge); closed: reversed. */
export type OrderStatus = 'absent' | 'pending' | 'charged' | 'failed' | 'closed';

interface Order {
  outTradeNo: string;
  wallet: Wallet;
  merchant: string;
  channel: string;
  /** What the cashier asked for. */
  amount: number;
  /** What the wallet charges (amount + the scenario's chargeDelta): what it reports and what can be undone. */
  charged: number;
  /** Coupons the wallet applied: the buyer's own funds paid charged − discount. */
  discount: number;
  paidAt: number | null;
  refunds: { refundNo: string; amount: number; at: number }[];
  currency: Currency;
  scenario: Scenario;
  status: OrderStatus;
  failReason: FailReason;
  refunded: number;
  queries: number;
  reverseRetriesLeft: number;
  lateLanded: boolean;
  timer: ReturnType<Clock['setTimeout']> | undefined;
  createdAt: number;
  gatewayTradeNo: string;
}

export interface OrderView {
  outTradeNo: string;
  status: OrderStatus;
  amount: number;
  refunded: number;
  scenario: ScenarioName;
}

/** Everything a wallet's bill says about one order (the wire simulators write bills from these). */
export interface OrderDetail {
  outTradeNo: string;
  gatewayTradeNo: string;
  wallet: Wallet;
  merchant: string;
  channel: string;
  status: OrderStatus;
  createdAt: number;
  paidAt: number | null;
  /** What was charged (0 when never charged). */
  charged: number;
  discount: number;
  refunds: { refundNo: string; amount: number; at: number }[];
}

/**
 * Scripts for the next calls, for tests that script calls rather than codes (the cloud's tests).
 * A pay script applies to the next pay of a new outTradeNo and takes precedence over the code's
 * scenario. `userpaying`/`unknown`: the order stays pending until `confirm(outTradeNo)` (or a
 * reverse closes it). `hold`/`charge-and-hold`: the answer never comes (until the caller aborts),
 * without or with a charge.
 */
export type PayScript = 'success' | 'userpaying' | 'declined' | 'unknown' | 'hold' | 'charge-and-hold';
export type QueryScript = 'truth' | 'unknown';
/** 'lands-late': answers reversed but the order stays open, as when a reverse races the customer. */
export type ReverseScript = 'truth' | 'retry_later' | 'unknown' | 'lands-late';
/**
 * A refund's answer: 'unknown' / 'retry_later' / 'declined' without refunding; 'applied-unknown'
 * refunds, and the answer never comes (the caller's timeout: it must ask again with the same number).
 */
export type RefundScript = 'truth' | 'unknown' | 'retry_later' | 'declined' | 'applied-unknown';

/** Every unbound code succeeds at once, with no latency: the plain gateway of the cloud's tests. */
export const EVERY_CODE_SUCCEEDS: ScenarioMixInput = { scenarios: [{ weight: 1, scenario: { name: 'success' } }], latency: INSTANT };

const PAY_SCRIPT_SCENARIOS: Record<Exclude<PayScript, 'userpaying' | 'unknown'>, Scenario> = {
  success: Scenario.parse({ name: 'success' }),
  declined: Scenario.parse({ name: 'failure', reason: 'INSUFFICIENT_FUNDS' }),
  hold: Scenario.parse({ name: 'hang', charged: false }),
  'charge-and-hold': Scenario.parse({ name: 'hang', charged: true }),
};

interface Answer<T> {
  outcome: T;
  /** How long the answer takes; defaults to a latency draw. */
  delayMs?: number;
}

export class ScriptedGateway implements Gateway {
  readonly ledger: Ledger;
  /** Every call received, in order (before any answer). */
  readonly calls: { call: GatewayCall; outTradeNo: string }[] = [];
  /** Per-call scripts, consumed in order (see PayScript). */
  pays: PayScript[] = [];
  queries: QueryScript[] = [];
  reverses: ReverseScript[] = [];
  refunds: RefundScript[] = [];
  private callWaiters: (() => void)[] = [];
  private readonly orders = new Map<string, Order>();
  private readonly bindings = new Map<string, Scenario>();
  private readonly clock: Clock;
  private readonly timers: Clock;
  private readonly seed: number | string;
  private readonly mix: ScenarioMix;
  private readonly latency: Latency;
  private readonly random: Random;
  private readonly reverseWindows: Record<Wallet, ReverseWindow>;
  private readonly log: Logger;
  private tradeSeq = 0;

  constructor(deps: ScriptedGatewayDeps = {}) {
    this.clock = deps.clock ?? backgroundClock;
    this.timers = deps.timers ?? deps.clock ?? backgroundClock;
    this.seed = deps.seed ?? 1;
    this.mix = deps.mix ? ScenarioMix.parse(deps.mix) : DEFAULT_MIX;
    this.latency = Latency.parse({ ...this.mix.latency, ...deps.latency });
    this.random = createRandom(hashSeed(this.seed, 'latency'));
    this.reverseWindows = { ...reverseWindowsOf(WALLET_RULES), ...deps.reverseWindows };
    this.log = deps.logger ?? pino({ level: 'silent' });
    this.ledger = new Ledger(this.clock);
  }

  /** Script what happens to the next payment with this code. */
  bind(code: string, scenario: ScenarioInput): Scenario {
    const parsed = Scenario.parse(scenario);
    this.bindings.set(code, parsed);
    return parsed;
  }

  scenarioFor(code: string): Scenario {
    return this.bindings.get(code) ?? pickScenario(this.mix, this.seed, code);
  }

  order(outTradeNo: string): OrderView | undefined {
    const o = this.orders.get(outTradeNo);
    return o && { outTradeNo, status: o.status, amount: o.amount, refunded: o.refunded, scenario: o.scenario.name };
  }

  /** The customer confirms on the phone now: a pending order is charged (anything else: no change). */
  confirm(outTradeNo: string): void {
    const o = this.orders.get(outTradeNo);
    if (o?.status === 'pending') this.charge(o);
  }

  /** Every order the gateway knows, as its bill would list it. */
  orderDetails(): OrderDetail[] {
    return [...this.orders.values()]
      .filter((o) => o.status !== 'absent' || o.refunds.length > 0)
      .map((o) => ({
        outTradeNo: o.outTradeNo,
        gatewayTradeNo: o.gatewayTradeNo,
        wallet: o.wallet,
        merchant: o.merchant,
        channel: o.channel,
        status: o.status,
        createdAt: o.createdAt,
        paidAt: o.paidAt,
        charged: o.paidAt === null ? 0 : o.charged,
        discount: o.discount,
        refunds: o.refunds.map((r) => ({ ...r })),
      }));
  }

  /** Money that stays charged for one order, from the ledger. */
  net(outTradeNo: string): number {
    return netCharged(this.ledger.entries()).get(outTradeNo) ?? 0;
  }

  count(call: GatewayCall, outTradeNo?: string): number {
    return this.calls.filter((c) => c.call === call && (outTradeNo === undefined || c.outTradeNo === outTradeNo)).length;
  }

  /** Resolves once `call` has been received `n` times (real time: for tests that wait on another process). */
  async waitFor(call: GatewayCall, n = 1, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.count(call) < n) {
      if (Date.now() > deadline) throw new Error(`gateway did not receive ${n} × ${call} within ${timeoutMs} ms (got ${this.count(call)})`);
      await new Promise<void>((resolve) => {
        this.callWaiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  /** This gateway as the HTTP service of gateway-server.ts on a free loopback port. */
  serve(): Promise<GatewayServer> {
    return startGatewayServer({ gateway: this, logger: this.log });
  }

  /** Cancels every scheduled confirmation and late landing (end of a test or process). */
  stop(): void {
    for (const o of this.orders.values()) this.clearTimer(o);
  }

  async pay(req: PayRequest, opts: CallOptions): Promise<PayOutcome> {
    this.record('pay', req.outTradeNo);
    if (opts.signal.aborted) return timedOut('pay');
    const existing = this.orders.get(req.outTradeNo);
    const answer = existing && existing.status !== 'absent' ? this.repeatPay(existing, req) : this.firstPay(req, this.pays.shift());
    this.log.debug({ call: 'pay', outTradeNo: req.outTradeNo, deviceId: deviceIdOf(req.outTradeNo), code: maskPaymentCode(req.code), outcome: answer.outcome.kind }, 'gateway pay');
    return this.reply('pay', answer, opts.signal);
  }

  async query(req: QueryRequest, opts: CallOptions): Promise<QueryOutcome> {
    this.record('query', req.outTradeNo);
    if (opts.signal.aborted) return timedOut('query');
    if (this.queries.shift() === 'unknown') return this.reply('query', { outcome: { kind: 'unknown', code: 'SYSTEMERROR', message: 'SYSTEMERROR: please query again' } }, opts.signal);
    const order = this.orders.get(req.outTradeNo);
    const outcome = order ? this.queryAnswer(order) : ({ kind: 'not_found' } as const);
    return this.reply('query', { outcome }, opts.signal);
  }

  async reverse(req: ReverseRequest, opts: CallOptions): Promise<ReverseOutcome> {
    this.record('reverse', req.outTradeNo);
    if (opts.signal.aborted) return timedOut('reverse');
    const scripted = this.scriptedReverse(this.reverses.shift());
    if (scripted) return this.reply('reverse', { outcome: scripted }, opts.signal);
    const order = this.orders.get(req.outTradeNo) ?? this.closedStub(req);
    return this.reply('reverse', { outcome: this.reverseAnswer(order) }, opts.signal);
  }

  async refund(req: RefundRequest, opts: CallOptions): Promise<RefundOutcome> {
    this.record('refund', req.outTradeNo);
    if (opts.signal.aborted) return timedOut('refund');
    const script = this.refunds.shift();
    const scripted = scriptedRefund(script);
    if (scripted) return this.reply('refund', { outcome: scripted }, opts.signal);
    const outcome = this.refundAnswer(req);
    return this.reply('refund', script === 'applied-unknown' ? { outcome: timedOut('refund'), delayMs: NEVER_MS } : { outcome }, opts.signal);
  }

  // ── state changes ───────────────────────────────────────────────────────────────────────────────

  private firstPay(req: PayRequest, script?: PayScript): Answer<PayOutcome> {
    if (script === 'userpaying' || script === 'unknown') return this.awaitCustomer(req, script);
    const scenario = script ? PAY_SCRIPT_SCENARIOS[script] : this.scenarioFor(req.code);
    const order = this.newOrder(req, scenario);
    const userpaying = { kind: 'in_progress', message: 'USERPAYING' } as const;
    switch (scenario.name) {
      case 'success':
        this.charge(order);
        return { outcome: this.payAnswer(order) };
      case 'failure':
        this.fail(order, scenario.reason);
        return { outcome: this.payAnswer(order) };
      case 'user_paying':
        this.schedule(order, scenario.confirmAfterMs, () => this.charge(order));
        return { outcome: userpaying };
      case 'user_gives_up':
        this.schedule(order, scenario.giveUpAfterMs, () => this.fail(order, 'DECLINED'));
        return { outcome: userpaying };
      case 'gateway_error':
        this.decide(order, scenario.then, scenario.reason);
        return { outcome: { kind: 'unknown', code: scenario.code, message: `${scenario.code}: please query` } };
      case 'hang':
        if (scenario.charged) this.charge(order);
        else order.status = 'absent';
        return { outcome: scenario.charged ? this.payAnswer(order) : timedOut('pay'), delayMs: scenario.hangMs };
      case 'query_flaps':
        this.decide(order, scenario.then, scenario.reason);
        return { outcome: userpaying };
      case 'reverse_retry':
        order.reverseRetriesLeft = scenario.times;
        return { outcome: userpaying };
      case 'late_success':
        return { outcome: userpaying };
    }
  }

  /** A scripted pay left to the customer: pending, with no timer, until `confirm` or a reverse. */
  private awaitCustomer(req: PayRequest, script: 'userpaying' | 'unknown'): Answer<PayOutcome> {
    this.newOrder(req, Scenario.parse({ name: 'user_paying' }));
    return script === 'userpaying'
      ? { outcome: { kind: 'in_progress', message: 'USERPAYING' } }
      : { outcome: { kind: 'unknown', code: 'SYSTEMERROR', message: 'SYSTEMERROR: please query' } };
  }

  private scriptedReverse(script: ReverseScript | undefined): ReverseOutcome | undefined {
    switch (script) {
      case 'retry_later':
        return { kind: 'retry_later', message: 'recall=Y: please reverse again' };
      case 'unknown':
        return { kind: 'unknown', code: 'TIMEOUT', message: 'reverse: no answer' };
      case 'lands-late':
        return { kind: 'reversed' };
      default:
        return undefined;
    }
  }

  private record(call: GatewayCall, outTradeNo: string): void {
    this.calls.push({ call, outTradeNo });
    const waiters = this.callWaiters;
    this.callWaiters = [];
    for (const w of waiters) w();
  }

  /** A retried pay for a known outTradeNo changes nothing: it reports the order. */
  private repeatPay(order: Order, req: PayRequest): Answer<PayOutcome> {
    if (order.status !== 'closed' && order.amount !== req.amount && order.amount !== 0) {
      return { outcome: { kind: 'failed', reason: 'DECLINED', message: 'outTradeNo reused with a different amount' } };
    }
    return { outcome: this.payAnswer(order) };
  }

  private newOrder(req: Pick<PayRequest, 'outTradeNo' | 'amount' | 'currency' | 'wallet' | 'merchant' | 'channel'>, scenario: Scenario): Order {
    const receipt: { chargeDelta?: number; discount?: number } = scenario.name === 'success' ? scenario : {};
    const order: Order = {
      outTradeNo: req.outTradeNo,
      wallet: req.wallet,
      merchant: req.merchant,
      channel: req.channel,
      amount: req.amount,
      charged: req.amount + (receipt.chargeDelta ?? 0),
      discount: receipt.discount ?? 0,
      paidAt: null,
      refunds: [],
      currency: req.currency,
      scenario,
      status: 'pending',
      failReason: 'DECLINED',
      refunded: 0,
      queries: 0,
      reverseRetriesLeft: 0,
      lateLanded: false,
      timer: undefined,
      createdAt: this.clock.now(),
      gatewayTradeNo: `sim${String(++this.tradeSeq).padStart(10, '0')}`,
    };
    this.orders.set(req.outTradeNo, order);
    return order;
  }

  /** A reverse for an order the gateway never saw closes it, so a late pay for it cannot charge. */
  private closedStub(req: ReverseRequest): Order {
    const order = this.newOrder({ ...req, amount: 0, currency: 'CNY' }, { name: 'success' });
    order.status = 'absent';
    return order;
  }

  private charge(order: Order): void {
    this.clearTimer(order);
    order.status = 'charged';
    order.paidAt = this.clock.now();
    this.move(order, 'charge', order.charged);
  }

  private fail(order: Order, reason: FailReason): void {
    this.clearTimer(order);
    order.status = 'failed';
    order.failReason = reason;
  }

  private decide(order: Order, then: 'success' | 'failure', reason: FailReason): void {
    if (then === 'success') this.charge(order);
    else this.fail(order, reason);
  }

  private close(order: Order): void {
    this.clearTimer(order);
    const undone = order.status === 'charged' ? order.charged - order.refunded : 0;
    order.status = 'closed';
    this.move(order, 'reverse', undone);
    if (order.scenario.name === 'late_success' && !order.lateLanded) {
      order.lateLanded = true;
      // The wallet's own race: the customer's confirmation was already on its way.
      this.schedule(order, order.scenario.landAfterMs, () => this.charge(order));
    }
  }

  private move(order: Order, kind: LedgerKind, amount: number, refundNo?: string): void {
    const entry = this.ledger.record(order.outTradeNo, kind, amount, order.currency, refundNo);
    this.log.info({ ...entry, deviceId: deviceIdOf(entry.outTradeNo), scenario: order.scenario.name }, `gateway ledger ${kind}`);
  }

  private schedule(order: Order, ms: number, fn: () => void): void {
    this.clearTimer(order);
    order.timer = this.timers.setTimeout(() => {
      order.timer = undefined;
      fn();
    }, ms);
  }

  private clearTimer(order: Order): void {
    if (order.timer !== undefined) this.timers.clearTimeout(order.timer);
    order.timer = undefined;
  }

  // ── answers ─────────────────────────────────────────────────────────────────────────────────────

  private payAnswer(order: Order): PayOutcome {
    switch (order.status) {
      case 'charged':
        return {
          kind: 'success',
          gatewayTradeNo: order.gatewayTradeNo,
          amount: order.charged,
          paidAt: order.paidAt ?? this.clock.now(),
          buyerPaid: order.charged - order.discount,
          discount: order.discount,
        };
      case 'failed':
        return { kind: 'failed', reason: order.failReason, message: `payment failed: ${order.failReason}` };
      case 'closed':
        return { kind: 'failed', reason: 'DECLINED', message: 'order already reversed' };
      default:
        return { kind: 'in_progress', message: 'USERPAYING' };
    }
  }

  private queryAnswer(order: Order): QueryOutcome {
    const s = order.scenario;
    if (s.name === 'query_flaps' && order.queries < s.flaps) {
      order.queries += 1;
      return order.queries % 2 === 1 ? { kind: 'in_progress', message: 'USERPAYING' } : { kind: 'unknown', code: 'SYSTEMERROR', message: 'SYSTEMERROR: please query again' };
    }
    if (order.status === 'absent') return { kind: 'not_found' };
    if (order.status === 'closed') return { kind: 'closed' };
    if (order.status === 'charged' && order.refunded >= order.charged) return { kind: 'refunded' };
    return this.payAnswer(order);
  }

  private reverseAnswer(order: Order): ReverseOutcome {
    if (order.status === 'closed') return { kind: 'reversed', action: order.paidAt === null ? 'close' : 'refund' };
    if (order.reverseRetriesLeft > 0) {
      order.reverseRetriesLeft -= 1;
      return { kind: 'retry_later', message: 'recall=Y: please reverse again' };
    }
    if (order.status === 'charged' && !withinReverseWindow(this.reverseWindows[order.wallet], order.createdAt, this.clock.now())) {
      return { kind: 'already_paid', message: 'the order is paid and past its reverse window: refund it' };
    }
    const wasCharged = order.status === 'charged';
    this.close(order);
    return { kind: 'reversed', action: wasCharged ? 'refund' : 'close' };
  }

  private refundAnswer(req: RefundRequest): RefundOutcome {
    const order = this.orders.get(req.outTradeNo);
    if (order?.refunds.some((r) => r.refundNo === req.refundNo)) return { kind: 'refunded', refundNo: req.refundNo };
    if (!order || order.status !== 'charged') return { kind: 'failed', reason: 'DECLINED', message: 'order is not charged: nothing to refund' };
    if (req.amount > order.charged - order.refunded) return { kind: 'failed', reason: 'DECLINED', message: 'refund exceeds the charged amount' };
    order.refunded += req.amount;
    order.refunds.push({ refundNo: req.refundNo, amount: req.amount, at: this.clock.now() });
    this.move(order, 'refund', req.amount, req.refundNo);
    return { kind: 'refunded', refundNo: req.refundNo };
  }

  /** The state changed when the request arrived; the answer takes its time, and may never come. */
  private async reply<T>(call: string, answer: Answer<T>, signal: AbortSignal): Promise<T | ReturnType<typeof timedOut>> {
    const delivered = await sleep(this.timers, answer.delayMs ?? this.latencyMs(), signal);
    return delivered ? answer.outcome : timedOut(call);
  }

  private latencyMs(): number {
    const l = this.latency;
    if (l.maxMs === 0 && l.tailProbability === 0) return 0;
    const base = this.random.int(l.minMs, l.maxMs);
    return this.random.next() < l.tailProbability ? base + l.tailMs : base;
  }
}

/** An answer held until the caller gives up (its abort ends the wait). */
const NEVER_MS = 24 * 3_600_000;

function scriptedRefund(script: RefundScript | undefined): RefundOutcome | undefined {
  switch (script) {
    case 'unknown':
      return { kind: 'unknown', code: 'SYSTEMERROR', message: 'SYSTEMERROR: please refund again with the same number' };
    case 'retry_later':
      return { kind: 'retry_later', message: 'please retry the refund later' };
    case 'declined':
      return { kind: 'failed', reason: 'DECLINED', message: 'NOTENOUGH: the merchant balance is insufficient' };
    default:
      return undefined;
  }
}

function timedOut(call: string) {
  return { kind: 'unknown', code: 'TIMEOUT', message: `${call} timed out` } as const;
}
