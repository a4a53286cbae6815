import type { CallOptions, Gateway, GatewayCall, PayOutcome, PayRequest, QueryOutcome, QueryRequest, RefundOutcome, RefundRequest, ReverseOutcome, ReverseRequest } from '../../cloud/gateway/gateway.js';
import { parseConfig } from '../../cloud/config.js';
import { machineConfig } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { Metrics } from '../../cloud/metrics.js';
import { AttemptsService } from '../../cloud/payments/attempts-service.js';
import type { CloudStore } from '../../cloud/store/store.js';
import type { Wallet } from '../../protocol/index.js';
import type { FakeClock } from '../support/fake-clock.js';
import { ChannelLimits } from '../../cloud/payments/channel-limits.js';

/**
 * What the shell's own suites (resume.test.ts, ownership.test.ts) need around an AttemptsService:
 * a recording wallet on the fake clock, and the service wired to it with real timings.
 */

type OrderStatus = 'charged' | 'closed' | 'refunded';

/**
 * A wallet that answers every call `latencyMs` after it starts (on the fake clock), or never for
 * the outTradeNos in `hang` until the caller aborts. It records when each call started and the most
 * calls it had in flight per wallet, and keeps each order's money the way micropay does: a charge
 * stays until a reverse or a refund takes it back.
 */
export class RecordingGateway implements Gateway {
  readonly starts: { call: GatewayCall; outTradeNo: string; wallet: Wallet; at: number }[] = [];
  readonly maxInFlight = new Map<Wallet, number>();
  readonly hang = new Set<string>();
  /** How a pay is answered: charged at once, or the customer is still typing a password. */
  payAnswer: (req: PayRequest) => 'success' | 'userpaying' = () => 'success';
  private readonly inFlight = new Map<Wallet, number>();
  private readonly orders = new Map<string, { amount: number; status: OrderStatus }>();

  constructor(
    private readonly clock: FakeClock,
    public latencyMs = 0,
  ) {}

  /** A charge that landed before the test began (its answer lost in a crash). */
  charged(outTradeNo: string, amount: number): void {
    this.orders.set(outTradeNo, { amount, status: 'charged' });
  }

  /** What the customer is out of pocket for this order. */
  net(outTradeNo: string): number {
    const o = this.orders.get(outTradeNo);
    return o?.status === 'charged' ? o.amount : 0;
  }

  count(call: GatewayCall, outTradeNo?: string): number {
    return this.starts.filter((s) => s.call === call && (outTradeNo === undefined || s.outTradeNo === outTradeNo)).length;
  }

  pay(req: PayRequest, opts: CallOptions): Promise<PayOutcome> {
    return this.answer('pay', req, opts, (): PayOutcome => {
      if (this.payAnswer(req) === 'userpaying') return { kind: 'in_progress' };
      this.charged(req.outTradeNo, req.amount);
      return { kind: 'success', gatewayTradeNo: `gw-${req.outTradeNo}`, amount: req.amount };
    });
  }

  query(req: QueryRequest, opts: CallOptions): Promise<QueryOutcome> {
    return this.answer('query', req, opts, (): QueryOutcome => {
      const o = this.orders.get(req.outTradeNo);
      if (!o) return { kind: 'not_found' };
      if (o.status === 'charged') return { kind: 'success', gatewayTradeNo: `gw-${req.outTradeNo}`, amount: o.amount };
      return { kind: o.status };
    });
  }

  reverse(req: ReverseRequest, opts: CallOptions): Promise<ReverseOutcome> {
    return this.answer('reverse', req, opts, (): ReverseOutcome => {
      const o = this.orders.get(req.outTradeNo);
      this.orders.set(req.outTradeNo, { amount: o?.amount ?? 0, status: 'closed' });
      return { kind: 'reversed' };
    });
  }

  refund(req: RefundRequest, opts: CallOptions): Promise<RefundOutcome> {
    return this.answer('refund', req, opts, (): RefundOutcome => {
      const o = this.orders.get(req.outTradeNo);
      if (o?.status !== 'charged') return { kind: 'failed', reason: 'DECLINED', message: 'nothing charged' };
      o.status = 'refunded';
      return { kind: 'refunded', refundNo: req.refundNo };
    });
  }

  private async answer<T>(call: GatewayCall, req: { outTradeNo: string; wallet: Wallet }, opts: CallOptions, outcome: () => T): Promise<T> {
    this.starts.push({ call, outTradeNo: req.outTradeNo, wallet: req.wallet, at: this.clock.now() });
    const n = (this.inFlight.get(req.wallet) ?? 0) + 1;
    this.inFlight.set(req.wallet, n);
    this.maxInFlight.set(req.wallet, Math.max(n, this.maxInFlight.get(req.wallet) ?? 0));
    try {
      await new Promise<void>((resolve, reject) => {
        opts.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
        if (!this.hang.has(req.outTradeNo)) this.clock.setTimeout(resolve, this.latencyMs);
      });
      return outcome();
    } finally {
      this.inFlight.set(req.wallet, this.inFlight.get(req.wallet)! - 1);
    }
  }
}

export interface Sent {
  deviceId: string;
  kind: string;
  msg: Record<string, unknown>;
}

export interface ShellOptions {
  store: CloudStore;
  gateway: Gateway;
  clock: FakeClock;
  sent: Sent[];
  random?: () => number;
  gatewayConcurrency?: number;
  resumeSpreadMs?: number;
  resumeRatePerS?: number;
  gatewayCallTimeoutMs?: number;
}

/** The shell with the cloud's default timings and limits, unless the test names its own. */
export function shellFor(o: ShellOptions): AttemptsService {
  const config = parseConfig({});
  return new AttemptsService({
    store: o.store,
    gateway: o.gateway,
    logger: createLogger('silent'),
    metrics: new Metrics(),
    clock: o.clock,
    timers: o.clock,
    random: o.random ?? (() => 0.5),
    machine: machineConfig(config),
    gatewayCallTimeoutMs: o.gatewayCallTimeoutMs ?? config.gatewayCallTimeoutMs,
    channelLimits: new ChannelLimits(o.gatewayConcurrency ?? config.gatewayConcurrency),
    resumeSpreadMs: o.resumeSpreadMs ?? config.resumeSpreadMs,
    resumeRatePerS: o.resumeRatePerS ?? config.resumeRatePerS,
    publish: async (topic, payload) => {
      const [, , , deviceId, , kind] = topic.split('/') as [string, string, string, string, string, string];
      o.sent.push({ deviceId, kind, msg: JSON.parse(payload) as Record<string, unknown> });
    },
  });
}
