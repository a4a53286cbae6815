import { randomBytes } from 'node:crypto';
import {
  decodeUp,
  downTopic,
  encodeDown,
  ErrorCode,
  isFinal,
  isProtocolError,
  maskPaymentCode,
  MIN_PROTOCOL_VERSION,
  OUT_TRADE_NO_PATTERN,
  parseTopic,
  PROTOCOL_VERSION,
  ProtocolError,
  receiptOf,
  resultForVersion,
  salvageMessageId,
  UNKNOWN,
  type CancelMessage,
  type DownKind,
  type DownToSend,
  type UpKind,
  type UpMessage,
  type Wallet,
} from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Gateway } from '../gateway/gateway.js';
import { callGateway } from './gateway-call.js';
import { channelOf, resumeWindowMs, type ChannelLimits } from './channel-limits.js';
import { GroupCommit } from '../store/group-commit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { SerialLanes } from './serial-lanes.js';
import type { WorkerLease } from './lease-keeper.js';
import type { CloudStore, Lease } from '../store/store.js';
import type { RefundsService } from '../refunds/refunds-service.js';
import type { TotalsService } from '../refunds/totals.js';
import { recordDoctorReport } from '../fleet/doctor-reports.js';
import { needsWork, transition, type Attempt, type AttemptEvent, type Effect, type GatewayEffect, type MachineConfig } from './transaction.js';

/**
 * The shell around the pure attempt state machine: reads device messages from MQTT, feeds them
 * and gateway outcomes to `transition`, writes every change to the store (group-committed) and
 * only then performs its effects: gateway calls, results and progress on the box's down/ topics.
 */
export interface AttemptsServiceDeps {
  store: CloudStore;
  gateway: Gateway;
  /**
   * The channel a new attempt starts on (routing); null: no channel may take it (its pay is refused
   * unsent). Asked once per attempt, when its first pay is recorded. Default: the one named after the wallet.
   */
  channelFor?: (wallet: Wallet, merchantId: string, amount: number, outTradeNo: string) => string | null;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  /** Whose timers schedule the steps (a fake in tests; `clock` only tells the time). */
  timers: Clock;
  random: () => number;
  machine: MachineConfig;
  gatewayCallTimeoutMs: number;
  /** Gateway calls in flight at once per channel, shared with the refunds' calls (channel-limits.ts); more wait their turn. */
  channelLimits: ChannelLimits;
  /** After a restart the first calls of the resumed attempts are spread over at most this long… */
  resumeSpreadMs: number;
  /** …and over no longer than it takes to start them at this rate per channel (a few start at once). */
  resumeRatePerS: number;
  /** Publish on a device's down/ topic. */
  publish: (topic: string, payload: string, qos: 0 | 1) => Promise<void>;
  onHeartbeat?: (deviceId: string, msg: UpMessage<'heartbeat'>) => Promise<void> | void;
  /**
   * Every message a box sends says the version it speaks (`v`). With several workers sharing the
   * boxes' messages, a worker may answer a box whose heartbeats go to the others: any message of it tells.
   */
  heard?: (deviceId: string, v: number) => void;
  /** The protocol version a box reads (what it announced); a box that announced nothing reads v1. */
  downVersionFor?: (deviceId: string) => number;
  /** The cashier's refunds and the day's totals (cloud/refunds/): up/refund and up/totals go there; absent, they are dropped. */
  refunds?: Pick<RefundsService, 'handle'>;
  totals?: Pick<TotalsService, 'handle'>;
  /** One of several workers on one store: every write carries this worker's lease (leaseFor). Absent: the only cloud, no lease. */
  worker?: WorkerLease;
}


/** How one event is run (see `dispatch`). */
interface DispatchOptions {
  /** The device whose message this is: it must own the attempt. Absent for the cloud's own events. */
  sender?: string;
  /** Hold the gateway calls the event starts this long first (a resumed attempt's share of the spread). */
  callDelayMs?: number;
}

/** What one step did: the attempt as it now stands, the effects to perform, or the worker that drives it instead. */
interface Stepped {
  attempt: Attempt | undefined;
  list: Effect[];
  leasedTo?: string;
}

/** The channel of a new attempt no channel may take: its pay is refused unsent by the router. */
const NO_CHANNEL = 'none';

/** How many times a write that lost an optimistic-concurrency race is re-run on fresh state. */
const MAX_WRITE_RETRIES = 5;

export class AttemptsService {
  private readonly lanes = new SerialLanes();
  private readonly commits: GroupCommit;
  private readonly timers = new Map<string, unknown>();
  /** Resumed calls sleeping until their moment, with what wakes each; close() wakes them all. */
  private readonly sleeps = new Map<unknown, () => void>();
  private readonly idPrefix = `c${randomBytes(3).toString('hex')}`;
  private idSeq = 0;
  private closed = false;

  constructor(private readonly deps: AttemptsServiceDeps) {
    this.commits = new GroupCommit(deps.store);
  }

  // ── inbound ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Entry point for every message on an up/ topic, with the client that published it when the
   * broker knows it. Never throws: a bad message gets an error reply.
   */
  async handleMessage(topic: string, payload: Buffer, publisher?: string): Promise<void> {
    if (this.closed) return;
    let deviceId: string | undefined;
    let kind: UpKind | undefined;
    try {
      const t = parseTopic(topic);
      if (t.direction !== 'up') return;
      deviceId = t.deviceId;
      kind = t.kind;
      this.deps.metrics.inc('messages_total', kind);
      const merchantId = await this.checkPublisher(deviceId, publisher);
      const msg = decodeUp(kind, payload);
      this.deps.heard?.(deviceId, msg.v);
      await this.route(deviceId, merchantId, kind, msg);
    } catch (err) {
      await this.refuse(deviceId, kind, payload, err);
    }
  }

  /** Second line behind the broker's ACL: the topic's device must be the publisher, and active. Returns its merchant. */
  private async checkPublisher(deviceId: string, publisher: string | undefined): Promise<string> {
    if (publisher !== undefined && publisher !== deviceId) {
      throw new ProtocolError(ErrorCode.FORBIDDEN, `message on ${deviceId}'s topic was published by another client`, { publisher });
    }
    const auth = await this.deps.store.getDeviceAuth(deviceId);
    if (!auth) throw new ProtocolError(ErrorCode.UNAUTHORIZED, `device ${deviceId} is not paired`);
    if (auth.status !== 'active') throw new ProtocolError(ErrorCode.DEVICE_REVOKED, `device ${deviceId} has been revoked`);
    return auth.merchantId;
  }

  private async route(deviceId: string, merchantId: string, kind: UpKind, msg: UpMessage): Promise<void> {
    switch (kind) {
      case 'heartbeat':
        return this.deps.onHeartbeat?.(deviceId, msg as UpMessage<'heartbeat'>);
      case 'pay': {
        const m = msg as UpMessage<'pay'>;
        this.log(m.outTradeNo, deviceId).info({ saleId: m.saleId, amount: m.amount, wallet: m.wallet, code: maskPaymentCode(m.code) }, 'pay received');
        // The channel is chosen in `step`, once the store says this pay starts a new attempt.
        return this.dispatch(m.outTradeNo, { type: 'pay', outTradeNo: m.outTradeNo, deviceId, merchantId, channel: m.wallet, saleId: m.saleId, saleRef: m.saleRef, amount: m.amount, currency: m.currency, wallet: m.wallet, code: m.code }, { sender: deviceId });
      }
      case 'cancel': {
        const m = msg as UpMessage<'cancel'>;
        return this.dispatch(m.outTradeNo, { type: 'cancel', outTradeNo: m.outTradeNo, deviceId, saleId: m.saleId, amount: m.amount, currency: m.currency, reason: this.cancelReason(m, deviceId) }, { sender: deviceId });
      }
      case 'query': {
        const m = msg as UpMessage<'query'>;
        return this.dispatch(m.outTradeNo, { type: 'query', outTradeNo: m.outTradeNo, deviceId, saleId: m.saleId, amount: m.amount, currency: m.currency }, { sender: deviceId });
      }
      case 'ack': {
        const m = msg as UpMessage<'ack'>;
        // Not recorded: the result is sent again on reconnect, and the box acks it again.
        if (m.state === UNKNOWN) return this.log(m.outTradeNo, deviceId).warn('ack of a state this cloud does not know; ignored');
        return this.dispatch(m.outTradeNo, { type: 'ack', state: m.state }, { sender: deviceId });
      }
      case 'refund':
        return this.deps.refunds?.handle(deviceId, merchantId, msg as UpMessage<'refund'>);
      case 'totals':
        return this.deps.totals?.handle(deviceId, merchantId, msg as UpMessage<'totals'>);
      case 'doctor':
        return recordDoctorReport({ store: this.deps.store, logger: this.deps.logger, clock: this.deps.clock }, deviceId, msg as UpMessage<'doctor'>);
    }
  }

  /**
   * A cancel is served whatever its reason (it reverses unless final). A newer box's reason is
   * recorded as RECOVERY_CANCEL, "the box gave up on its own account": this cloud cannot name it,
   * and must not send an old box a value it does not know.
   */
  private cancelReason(m: UpMessage<'cancel'>, deviceId: string): CancelMessage['reason'] {
    if (m.reason !== UNKNOWN) return m.reason;
    this.log(m.outTradeNo, deviceId).warn('cancel with a reason this cloud does not know; served as RECOVERY_CANCEL');
    return 'RECOVERY_CANCEL';
  }

  /**
   * A device acts only on its own attempts: a recorded attempt belongs to the device stored with it;
   * an outTradeNo not recorded yet must be exactly `<sender>-<seq>`. (Not a prefix test: device ids
   * may contain '-', and `sbA` would own `sbA-B-1` of device `sbA-B`.) Checked on the read the
   * transition uses, inside the attempt's lane, so no other message can slip in between.
   */
  private checkOwner(outTradeNo: string, recorded: Attempt | undefined, sender: string): void {
    const owner = recorded ? recorded.deviceId : OUT_TRADE_NO_PATTERN.exec(outTradeNo)?.[1];
    if (owner !== sender) throw new ProtocolError(ErrorCode.FORBIDDEN, `outTradeNo ${outTradeNo} does not belong to device ${sender}`);
  }

  private async refuse(deviceId: string | undefined, kind: UpKind | undefined, payload: Buffer, err: unknown): Promise<void> {
    const pe = isProtocolError(err) ? err : new ProtocolError(ErrorCode.INTERNAL, 'internal error while handling the message');
    if (!isProtocolError(err)) this.deps.logger.error({ deviceId, err: (err as Error)?.stack ?? String(err) }, 'message handling failed');
    this.deps.metrics.inc(pe.code === ErrorCode.FORBIDDEN ? 'messages_forbidden_total' : 'messages_invalid_total', pe.code);
    this.deps.logger.warn({ deviceId, kind, code: pe.code, why: pe.message }, 'message refused');
    // Reply to whoever really sent it; the topic's device may be the victim, not the sender.
    const to = (pe.details?.publisher as string | undefined) ?? deviceId;
    if (!to) return;
    const refId = salvageMessageId(payload);
    await this.send(to, 'error', { ...this.envelope(), code: pe.code, message: pe.message.slice(0, 200), ...(refId ? { refId } : {}) }, 0);
  }

  // ── the state machine loop ──────────────────────────────────────────────────────────────────

  /** Run one event for one attempt: read, transition, write (durably), then act. */
  dispatch(outTradeNo: string, event: AttemptEvent, opts: DispatchOptions = {}): Promise<void> {
    return this.lanes.run(outTradeNo, async () => void (await this.apply(outTradeNo, event, opts)));
  }

  /**
   * An operator's "now" (the dashboard's exception desk): the attempt's next wallet call — its query,
   * reverse or refund, whichever the machine's resume makes of its state — starts at once instead of
   * after its backoff. Run in the attempt's lane like any event. Refused while a call is out (an
   * attempt has at most one; its answer decides) and when nothing is left to do.
   */
  resumeNow(outTradeNo: string): Promise<{ ok: true; attempt: Attempt } | { ok: false; why: string }> {
    if (this.closed) return Promise.resolve({ ok: false, why: 'the cloud is stopping' });
    return this.lanes.run(outTradeNo, async () => {
      const a = await this.deps.store.getAttempt(outTradeNo);
      if (!a) return { ok: false, why: `no attempt ${outTradeNo}` };
      if (a.inFlight) return { ok: false, why: `a ${a.inFlight} call is out: its answer decides what comes next` };
      if (!needsWork(a)) return { ok: false, why: `${a.state}: nothing is left to do` };
      const after = await this.apply(outTradeNo, { type: 'resume' }, {});
      if (after.leasedTo) return { ok: false, why: `worker ${after.leasedTo} drives it: ask there, or wait for its lease to run out` };
      return after.attempt ? { ok: true, attempt: after.attempt } : { ok: false, why: `no attempt ${outTradeNo}` };
    });
  }

  /**
   * Inside the attempt's lane: step, then act on the effects and schedule the next tick. An attempt
   * another worker drives is left to it: this worker's timer for it is dropped.
   */
  private async apply(outTradeNo: string, event: AttemptEvent, opts: DispatchOptions): Promise<Stepped> {
    const stepped = await this.step(outTradeNo, event, opts.sender);
    if (stepped.leasedTo) {
      this.unschedule(outTradeNo);
      if (event.type === 'outcome') {
        this.log(outTradeNo, stepped.attempt?.deviceId ?? '').warn({ call: event.call, seq: event.seq, worker: stepped.leasedTo }, 'answer of a call this worker put out came after another worker took the attempt over (its lease ran out): that worker drives it now');
      }
      return stepped;
    }
    for (const e of stepped.list) this.perform(stepped.attempt, e, opts.callDelayMs ?? 0);
    if (stepped.attempt) this.schedule(stepped.attempt);
    return stepped;
  }

  /**
   * The lease a write carries (several workers on one store). A box's message is written whoever
   * drives the attempt: with no call out it takes the lease (forced), so this worker, which holds
   * the attempt's next step in its timer, is the one the others wait for; with a call out it leaves
   * the lease to the worker waiting for the answer. The worker's own events (ticks, answers,
   * resumes) are written only while no other worker's lease runs.
   */
  private leaseFor(before: Attempt | undefined, sender: string | undefined): Lease | undefined {
    const w = this.deps.worker;
    if (!w) return undefined;
    const now = this.deps.clock.now();
    const lease = { owner: w.owner, now, until: now + w.ttlMs };
    if (sender === undefined) return lease;
    return before?.inFlight ? undefined : { ...lease, force: true };
  }

  private async step(outTradeNo: string, event: AttemptEvent, sender: string | undefined): Promise<Stepped> {
    let ev = event;
    for (let i = 0; i < MAX_WRITE_RETRIES; i++) {
      const before = await this.deps.store.getAttempt(outTradeNo);
      if (sender !== undefined) this.checkOwner(outTradeNo, before, sender);
      if (ev.type === 'pay' && !before && i === 0) ev = { ...ev, channel: this.routeNew(ev) };
      const t = transition(before, ev, { now: this.deps.clock.now(), config: this.deps.machine, random: this.deps.random });
      if (!t.changed || !t.attempt) return { attempt: t.attempt, list: t.effects };
      const res = await this.commits.write({
        attempt: t.attempt,
        expectedVersion: before?.version ?? 0,
        event: event.type === 'outcome' ? `outcome:${event.call}:${event.outcome.kind}` : event.type,
        fromState: before?.state ?? null,
        note: t.note,
        claimSale: t.claimSale,
        lease: this.leaseFor(before, sender),
      });
      if (res.ok) {
        const attempt = { ...t.attempt, version: res.version };
        // A write that keeps the state (the box's ack, a retry scheduled) is bookkeeping: debug.
        const level = before?.state === attempt.state ? 'debug' : 'info';
        this.log(outTradeNo, attempt.deviceId)[level]({ from: before?.state ?? null, to: attempt.state, reason: attempt.reason, note: t.note }, 'attempt transition');
        if (isFinal(attempt.state) && before?.state !== attempt.state) this.deps.metrics.inc('attempts_final_total', { state: attempt.state, wallet: attempt.wallet ?? 'none', reason: attempt.reason ?? 'none' });
        return { attempt, list: t.effects };
      }
      if (res.why === 'leased') return { attempt: before, list: [], leasedTo: res.owner };
      if (res.why === 'sale_taken' && ev.type === 'outcome' && (ev.call === 'pay' || ev.call === 'query')) ev = { ...ev, saleWinner: res.winner };
    }
    throw new ProtocolError(ErrorCode.INTERNAL, `attempt ${outTradeNo} kept changing under this write; will retry on the next event`);
  }

  /** Routing is asked once per new attempt: it may start a probe of a half-open channel. */
  private routeNew(e: Extract<AttemptEvent, { type: 'pay' }>): string {
    return this.deps.channelFor?.(e.wallet, e.merchantId, e.amount, e.outTradeNo) ?? (this.deps.channelFor ? NO_CHANNEL : e.wallet);
  }

  private perform(a: Attempt | undefined, e: Effect, callDelayMs: number): void {
    if (!a) return;
    switch (e.type) {
      case 'gateway':
        return void this.runGateway(a, e, callDelayMs);
      case 'result':
        return void this.sendResult(a);
      case 'progress':
        return void this.send(a.deviceId, 'progress', { ...this.envelope(), outTradeNo: a.outTradeNo, stage: e.stage }, 1);
      case 'error':
        return void this.send(a.deviceId, 'error', { ...this.envelope(), code: e.code, message: e.message.slice(0, 200), outTradeNo: a.outTradeNo }, 0);
    }
  }

  /**
   * Not awaited by the attempt's lane: while the call sleeps or waits for a channel slot the lane
   * is free, so the box's messages are answered and other attempts are not held up. Only the call
   * itself holds the slot: its timeout starts when it does, and its answer is committed after.
   */
  private async runGateway(a: Attempt, e: GatewayEffect, delayMs: number): Promise<void> {
    const log = this.log(a.outTradeNo, a.deviceId);
    if (delayMs > 0) await this.sleep(delayMs);
    const outcome = await this.deps.channelLimits.run(channelOf(a), async () => {
      if (this.closed) return undefined; // never started: the next start resumes the attempt from the store
      this.deps.metrics.inc('gateway_calls_total', e.call);
      // The transition just logged says which call goes out; its answer is logged at info.
      log.debug({ call: e.call, seq: e.seq }, 'gateway call');
      return callGateway(this.deps.gateway, e, { timeoutMs: this.deps.gatewayCallTimeoutMs, metrics: this.deps.metrics, clock: this.deps.clock });
    });
    if (!outcome) return;
    log.info({ call: e.call, seq: e.seq, outcome: outcome.kind, ...('code' in outcome ? { gwCode: outcome.code } : {}) }, 'gateway answered');
    if (this.closed) return;
    await this.dispatch(a.outTradeNo, { type: 'outcome', call: e.call, seq: e.seq, outcome } as AttemptEvent).catch((err: unknown) =>
      log.error({ err: (err as Error).message }, 'could not record a gateway outcome; the attempt resumes from the store'),
    );
  }

  /** Wait on the injected timers; close() cuts every wait short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.deps.timers.setTimeout(() => {
        this.sleeps.delete(handle);
        resolve();
      }, ms);
      this.sleeps.set(handle, resolve);
    });
  }

  private unschedule(key: string): void {
    const old = this.timers.get(key);
    if (old !== undefined) this.deps.timers.clearTimeout(old);
    this.timers.delete(key);
  }

  private schedule(a: Attempt): void {
    const key = a.outTradeNo;
    this.unschedule(key);
    if (a.nextAt === null || a.inFlight || this.closed) return;
    const handle = this.deps.timers.setTimeout(() => {
      this.timers.delete(key);
      this.dispatch(key, { type: 'tick' }).catch((err: unknown) => this.log(key, a.deviceId).error({ err: (err as Error).message }, 'tick failed'));
    }, a.nextAt - this.deps.clock.now());
    this.timers.set(key, handle);
  }

  // ── outbound ────────────────────────────────────────────────────────────────────────────────

  private envelope() {
    return { v: 1 as const, id: `${this.idPrefix}-${(this.idSeq++).toString(36)}`, ts: this.deps.clock.now() };
  }

  /**
   * The attempt's result as a box speaking `boxVersion` reads it (the newest shape by default). v2
   * carries the wallet's receipt once the wallet reported a payment (its trade number and what it
   * charged), and the reason as recorded; v1 has no receipt, and a reason v1 does not have
   * (AMOUNT_MISMATCH) is left out: the state alone tells a v1 box that nothing is paid.
   */
  resultMessage(a: Attempt, boxVersion: number = PROTOCOL_VERSION): DownToSend<'result'> {
    const receipt =
      a.gatewayTradeNo !== null && a.charged !== null
        ? receiptOf({ walletTradeNo: a.gatewayTradeNo, total: a.charged, paidAt: a.walletPaidAt, buyerPaid: a.buyerPaid, discount: a.discount })
        : undefined;
    if (a.gatewayTradeNo !== null && a.charged !== null && !receipt) {
      this.log(a.outTradeNo, a.deviceId).warn({ gatewayTradeNo: a.gatewayTradeNo, charged: a.charged }, 'the recorded receipt is off-contract; result sent without it');
    }
    const msg: DownToSend<'result'> = {
      ...this.envelope(),
      outTradeNo: a.outTradeNo,
      saleId: a.saleId,
      amount: a.amount,
      currency: a.currency,
      state: a.state,
      ...(a.reason ? { reason: a.reason } : {}),
      ...(a.wallet ? { wallet: a.wallet } : {}),
      ...(receipt ? { receipt } : {}),
    };
    return resultForVersion(msg, boxVersion);
  }

  private async sendResult(a: Attempt): Promise<void> {
    this.deps.metrics.inc('results_sent_total');
    this.log(a.outTradeNo, a.deviceId).info({ state: a.state, reason: a.reason }, 'result sent');
    // Built for the version this box reads; `send` encodes it in that same version's shape.
    const boxVersion = this.deps.downVersionFor?.(a.deviceId) ?? MIN_PROTOCOL_VERSION;
    await this.send(a.deviceId, 'result', this.resultMessage(a, boxVersion), 1);
  }

  private async send<K extends DownKind>(deviceId: string, kind: K, msg: DownToSend<K>, qos: 0 | 1): Promise<void> {
    let payload: string;
    try {
      // In the shape of the version this box announced, never newer; `v` says which.
      payload = encodeDown(kind, msg, this.deps.downVersionFor?.(deviceId) ?? MIN_PROTOCOL_VERSION);
    } catch (err) {
      // A defect of this cloud: nothing off-contract leaves. The state is in the store.
      this.deps.logger.error({ deviceId, kind, code: (err as ProtocolError).code, err: (err as Error).message }, 'refusing to send an off-contract message');
      return;
    }
    try {
      await this.deps.publish(downTopic(deviceId, kind), payload, qos);
    } catch (err) {
      // The state is in the store; the box gets it again on its next query or reconnect.
      this.deps.logger.warn({ deviceId, kind, err: (err as Error).message }, 'publish to device failed');
    }
  }

  /** On (re)connect: send every final result the box has not acknowledged yet. */
  async resendUnacked(deviceId: string): Promise<void> {
    for (const a of await this.deps.store.listUnackedFinal(deviceId)) await this.sendResult(a);
  }

  // ── lifecycle ───────────────────────────────────────────────────────────────────────────────

  /**
   * After a restart: every attempt with work left continues from the store (query, then reverse).
   * Each resume is written at once; the gateway call it starts first sleeps a random share of its
   * channel's window, so thousands of open attempts do not hit a rate-limited wallet in one burst.
   */
  async resumeAll(): Promise<number> {
    return this.resume(await this.deps.store.listActiveAttempts());
  }

  /** Resume these attempts (all of them after a restart, or those a worker claimed from one whose lease ran out). */
  async resume(active: Attempt[]): Promise<number> {
    if (this.closed) return 0;
    const windows = this.resumeWindows(active);
    await Promise.all(active.map((a) => this.dispatch(a.outTradeNo, { type: 'resume' }, { callDelayMs: this.deps.random() * windows.get(channelOf(a))! })));
    if (active.length) this.deps.logger.info({ count: active.length, spreadMs: Math.round(Math.max(...windows.values())) }, 'resumed attempts');
    return active.length;
  }

  /** Per channel, how long the first calls of its resumed attempts are spread over. */
  private resumeWindows(active: Attempt[]): Map<string, number> {
    const counts = new Map<string, number>();
    for (const a of active) counts.set(channelOf(a), (counts.get(channelOf(a)) ?? 0) + 1);
    const o = { maxMs: this.deps.resumeSpreadMs, ratePerS: this.deps.resumeRatePerS };
    return new Map([...counts].map(([channel, n]) => [channel, resumeWindowMs(n, o)]));
  }

  /**
   * Stop timers, drop the gateway calls not started yet, and wait for every queued write to commit;
   * attempts with a call in flight or dropped resume on restart.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const h of this.timers.values()) this.deps.timers.clearTimeout(h);
    this.timers.clear();
    for (const [h, wake] of this.sleeps) {
      this.deps.timers.clearTimeout(h);
      wake();
    }
    this.sleeps.clear();
    await this.lanes.idle();
  }

  private log(outTradeNo: string, deviceId: string): Logger {
    return this.deps.logger.child({ outTradeNo, deviceId });
  }
}
