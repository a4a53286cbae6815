import { randomBytes } from 'node:crypto';
import {
  decodeUp,
  downTopic,
  ErrorCode,
  isProtocolError,
  maskPaymentCode,
  parseTopic,
  ProtocolError,
  salvageMessageId,
  type DownKind,
  type DownMessage,
  type UpKind,
  type UpMessage,
} from '../../protocol/index.js';
import type { Clock, Scheduler } from '../clock.js';
import type { Gateway } from '../gateway/gateway.js';
import { callGateway } from './gateway-call.js';
import { GroupCommit } from '../store/group-commit.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { SerialLanes } from './serial-lanes.js';
import type { CloudStore } from '../store/store.js';
import { transition, type Attempt, type AttemptEvent, type Effect, type GatewayEffect, type MachineConfig } from './transaction.js';

/**
 * The shell around the pure attempt state machine: reads device messages from MQTT, feeds them
 * and gateway outcomes to `transition`, writes every change to the store (group-committed) and
 * only then performs its effects: gateway calls, results and progress on the box's down/ topics.
 */
export interface AttemptsServiceDeps {
  store: CloudStore;
  gateway: Gateway;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  scheduler: Scheduler;
  random: () => number;
  machine: MachineConfig;
  gatewayCallTimeoutMs: number;
  /** Publish on a device's down/ topic. */
  publish: (topic: string, payload: string, qos: 0 | 1) => Promise<void>;
  onHeartbeat?: (deviceId: string, msg: UpMessage<'heartbeat'>) => Promise<void> | void;
}

/** How many times a write that lost an optimistic-concurrency race is re-run on fresh state. */
const MAX_WRITE_RETRIES = 5;

export class AttemptsService {
  private readonly lanes = new SerialLanes();
  private readonly commits: GroupCommit;
  private readonly timers = new Map<string, unknown>();
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
      await this.checkPublisher(deviceId, publisher);
      await this.route(deviceId, kind, decodeUp(kind, payload));
    } catch (err) {
      await this.refuse(deviceId, kind, payload, err);
    }
  }

  /** Second line behind the broker's ACL: the topic's device must be the publisher, and active. */
  private async checkPublisher(deviceId: string, publisher: string | undefined): Promise<void> {
    if (publisher !== undefined && publisher !== deviceId) {
      throw new ProtocolError(ErrorCode.FORBIDDEN, `message on ${deviceId}'s topic was published by another client`, { publisher });
    }
    const auth = await this.deps.store.getDeviceAuth(deviceId);
    if (!auth) throw new ProtocolError(ErrorCode.UNAUTHORIZED, `device ${deviceId} is not paired`);
    if (auth.status !== 'active') throw new ProtocolError(ErrorCode.DEVICE_REVOKED, `device ${deviceId} has been revoked`);
  }

  private async route(deviceId: string, kind: UpKind, msg: UpMessage): Promise<void> {
    if ('outTradeNo' in msg && !this.ownedBy(msg.outTradeNo, deviceId)) {
      throw new ProtocolError(ErrorCode.FORBIDDEN, `outTradeNo ${msg.outTradeNo} does not belong to device ${deviceId}`);
    }
    switch (kind) {
      case 'heartbeat':
        return this.deps.onHeartbeat?.(deviceId, msg as UpMessage<'heartbeat'>);
      case 'pay': {
        const m = msg as UpMessage<'pay'>;
        this.log(m.outTradeNo, deviceId).info({ saleId: m.saleId, amount: m.amount, wallet: m.wallet, code: maskPaymentCode(m.code) }, 'pay received');
        return this.dispatch(m.outTradeNo, { type: 'pay', outTradeNo: m.outTradeNo, deviceId, saleId: m.saleId, saleRef: m.saleRef, amount: m.amount, currency: m.currency, wallet: m.wallet, code: m.code });
      }
      case 'cancel': {
        const m = msg as UpMessage<'cancel'>;
        return this.dispatch(m.outTradeNo, { type: 'cancel', outTradeNo: m.outTradeNo, deviceId, saleId: m.saleId, amount: m.amount, currency: m.currency, reason: m.reason });
      }
      case 'query': {
        const m = msg as UpMessage<'query'>;
        return this.dispatch(m.outTradeNo, { type: 'query', outTradeNo: m.outTradeNo, deviceId, saleId: m.saleId, amount: m.amount, currency: m.currency });
      }
      case 'ack': {
        const m = msg as UpMessage<'ack'>;
        return this.dispatch(m.outTradeNo, { type: 'ack', state: m.state });
      }
    }
  }

  /** The outTradeNo must belong to the device that sent it: `<deviceId>-<seq>`. */
  private ownedBy(outTradeNo: string, deviceId: string): boolean {
    return outTradeNo.startsWith(`${deviceId}-`);
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
  dispatch(outTradeNo: string, event: AttemptEvent): Promise<void> {
    return this.lanes.run(outTradeNo, async () => {
      const effects = await this.step(outTradeNo, event);
      for (const e of effects.list) this.perform(effects.attempt, e);
      if (effects.attempt) this.schedule(effects.attempt);
    });
  }

  private async step(outTradeNo: string, event: AttemptEvent): Promise<{ attempt: Attempt | undefined; list: Effect[] }> {
    let ev = event;
    for (let i = 0; i < MAX_WRITE_RETRIES; i++) {
      const before = await this.deps.store.getAttempt(outTradeNo);
      const t = transition(before, ev, { now: this.deps.clock.now(), config: this.deps.machine, random: this.deps.random });
      if (!t.changed || !t.attempt) return { attempt: t.attempt, list: t.effects };
      const res = await this.commits.write({
        attempt: t.attempt,
        expectedVersion: before?.version ?? 0,
        event: event.type === 'outcome' ? `outcome:${event.call}:${event.outcome.kind}` : event.type,
        fromState: before?.state ?? null,
        note: t.note,
        claimSale: t.claimSale,
      });
      if (res.ok) {
        const attempt = { ...t.attempt, version: res.version };
        // A write that keeps the state (the box's ack, a retry scheduled) is bookkeeping: debug.
        const level = before?.state === attempt.state ? 'debug' : 'info';
        this.log(outTradeNo, attempt.deviceId)[level]({ from: before?.state ?? null, to: attempt.state, reason: attempt.reason, note: t.note }, 'attempt transition');
        return { attempt, list: t.effects };
      }
      if (res.why === 'sale_taken' && ev.type === 'outcome' && (ev.call === 'pay' || ev.call === 'query')) ev = { ...ev, saleWinner: res.winner };
    }
    throw new ProtocolError(ErrorCode.INTERNAL, `attempt ${outTradeNo} kept changing under this write; will retry on the next event`);
  }

  private perform(a: Attempt | undefined, e: Effect): void {
    if (!a) return;
    switch (e.type) {
      case 'gateway':
        return void this.runGateway(a, e);
      case 'result':
        return void this.sendResult(a);
      case 'progress':
        return void this.send(a.deviceId, 'progress', { ...this.envelope(), outTradeNo: a.outTradeNo, stage: e.stage }, 1);
      case 'error':
        return void this.send(a.deviceId, 'error', { ...this.envelope(), code: e.code, message: e.message.slice(0, 200), outTradeNo: a.outTradeNo }, 0);
    }
  }

  private async runGateway(a: Attempt, e: GatewayEffect): Promise<void> {
    const log = this.log(a.outTradeNo, a.deviceId);
    this.deps.metrics.inc('gateway_calls_total', e.call);
    // The transition just logged says which call goes out; its answer is logged at info.
    log.debug({ call: e.call, seq: e.seq }, 'gateway call');
    const outcome = await callGateway(this.deps.gateway, e, this.deps.gatewayCallTimeoutMs);
    log.info({ call: e.call, seq: e.seq, outcome: outcome.kind, ...('code' in outcome ? { gwCode: outcome.code } : {}) }, 'gateway answered');
    if (this.closed) return;
    await this.dispatch(a.outTradeNo, { type: 'outcome', call: e.call, seq: e.seq, outcome } as AttemptEvent).catch((err: unknown) =>
      log.error({ err: (err as Error).message }, 'could not record a gateway outcome; the attempt resumes from the store'),
    );
  }

  private schedule(a: Attempt): void {
    const key = a.outTradeNo;
    const old = this.timers.get(key);
    if (old !== undefined) this.deps.scheduler.clearTimer(old);
    this.timers.delete(key);
    if (a.nextAt === null || a.inFlight || this.closed) return;
    const handle = this.deps.scheduler.setTimer(() => {
      this.timers.delete(key);
      this.dispatch(key, { type: 'tick' }).catch((err: unknown) => this.log(key, a.deviceId).error({ err: (err as Error).message }, 'tick failed'));
    }, a.nextAt - this.deps.clock.now());
    this.timers.set(key, handle);
  }

  // ── outbound ────────────────────────────────────────────────────────────────────────────────

  private envelope() {
    return { v: 1 as const, id: `${this.idPrefix}-${(this.idSeq++).toString(36)}`, ts: this.deps.clock.now() };
  }

  resultMessage(a: Attempt): DownMessage<'result'> {
    return {
      ...this.envelope(),
      outTradeNo: a.outTradeNo,
      saleId: a.saleId,
      amount: a.amount,
      currency: a.currency,
      state: a.state,
      ...(a.reason ? { reason: a.reason } : {}),
      ...(a.wallet ? { wallet: a.wallet } : {}),
    };
  }

  private async sendResult(a: Attempt): Promise<void> {
    this.deps.metrics.inc('results_sent_total');
    this.log(a.outTradeNo, a.deviceId).info({ state: a.state, reason: a.reason }, 'result sent');
    await this.send(a.deviceId, 'result', this.resultMessage(a), 1);
  }

  private async send<K extends DownKind>(deviceId: string, kind: K, msg: DownMessage<K>, qos: 0 | 1): Promise<void> {
    try {
      await this.deps.publish(downTopic(deviceId, kind), JSON.stringify(msg), qos);
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

  /** After a restart: every attempt with work left continues from the store (query, then reverse). */
  async resumeAll(): Promise<number> {
    const active = await this.deps.store.listActiveAttempts();
    await Promise.all(active.map((a) => this.dispatch(a.outTradeNo, { type: 'resume' })));
    if (active.length) this.deps.logger.info({ count: active.length }, 'resumed attempts');
    return active.length;
  }

  /** Stop timers and wait for every queued write to commit; gateway calls in flight resume on restart. */
  async close(): Promise<void> {
    this.closed = true;
    for (const h of this.timers.values()) this.deps.scheduler.clearTimer(h);
    this.timers.clear();
    await this.lanes.idle();
  }

  private log(outTradeNo: string, deviceId: string): Logger {
    return this.deps.logger.child({ outTradeNo, deviceId });
  }
}
