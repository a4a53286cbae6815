import type { PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome } from '../../cloud/gateway/gateway.js';
import { transition, type Attempt, type AttemptEvent, type Effect, type GatewayEffect, type MachineConfig, type Transition } from '../../cloud/payments/transaction.js';
import { MACHINE_CONFIG } from './machine-config.js';

/** Drives the pure attempt machine in tests, like the shell does (shared by the machine's test files). */
export const config = MACHINE_CONFIG;
export const T0 = 1_764_086_400_000;
export const OTN = 'sbAAAAAAAAAA-1';
export const WECHAT_CODE = '134567890123456789';
export const pay: AttemptEvent = { type: 'pay', outTradeNo: OTN, deviceId: 'sbAAAAAAAAAA', merchantId: 'M1', channel: 'wechat', saleId: 's1', saleRef: 'R1', amount: 1234, currency: 'CNY', wallet: 'wechat', code: WECHAT_CODE };
export const cancel: AttemptEvent = { type: 'cancel', outTradeNo: OTN, deviceId: 'sbAAAAAAAAAA', saleId: 's1', amount: 1234, currency: 'CNY', reason: 'CASHIER_CANCEL' };
export const query: AttemptEvent = { type: 'query', outTradeNo: OTN, deviceId: 'sbAAAAAAAAAA', saleId: 's1', amount: 1234, currency: 'CNY' };

/** Drives the pure machine like the shell does: applies each transition and remembers time. */
export class Driver {
  constructor(readonly config: MachineConfig = MACHINE_CONFIG) {}

  a: Attempt | undefined;
  now = T0;
  last!: Transition;
  /** The latest gateway call the machine asked for. */
  call: GatewayEffect | undefined;

  send(e: AttemptEvent): Transition {
    this.last = transition(this.a, e, { now: this.now, config: this.config, random: () => 0.5 });
    this.call = this.last.effects.find((x): x is GatewayEffect => x.type === 'gateway') ?? this.call;
    if (this.last.changed) this.a = { ...this.last.attempt!, version: (this.a?.version ?? 0) + 1 };
    return this.last;
  }
  at(ms: number): this {
    this.now = T0 + ms;
    return this;
  }
  gateway(): GatewayEffect {
    if (!this.call) throw new Error('no gateway call was made');
    return this.call;
  }
  answer(outcome: PayOutcome | QueryOutcome | ReverseOutcome | RefundOutcome, extra: { saleWinner?: string } = {}): Transition {
    const g = this.gateway();
    return this.send({ type: 'outcome', call: g.call, seq: g.seq, outcome, ...extra } as AttemptEvent);
  }
  /** Advance to the next scheduled step and fire it. */
  tick(): Transition {
    if (this.a?.nextAt == null) throw new Error('nothing scheduled');
    this.now = this.a.nextAt;
    return this.send({ type: 'tick' });
  }
  get state() {
    return this.a?.state;
  }
}

export const kinds = (effects: Effect[]) => effects.map((e) => (e.type === 'gateway' ? `gateway:${e.call}` : e.type === 'progress' ? `progress:${e.stage}` : e.type === 'error' ? `error:${e.code}` : e.type));
export const ok = { kind: 'success', gatewayTradeNo: 'gw-1', amount: 1234 } as const;
export const unknown = (code: 'SYSTEMERROR' | 'BANKERROR' | 'TIMEOUT' | 'HTTP_5XX' | 'BAD_SIGNATURE' | 'OTHER' = 'TIMEOUT') => ({ kind: 'unknown', code, message: 'x' }) as const;

export function paying(): Driver {
  const d = new Driver();
  d.send(pay);
  return d;
}

/** A driver whose attempt polled past its deadline and now waits to reverse. */
export function reversing(): Driver {
  const d = paying();
  d.answer({ kind: 'in_progress' });
  return pollUntilReverse(d);
}

/** Keep answering "in progress" until the deadline turns the attempt to the reverse. */
export function pollUntilReverse(d: Driver): Driver {
  while (d.state === 'PAYING') {
    d.tick();
    if (d.a!.inFlight === 'query') d.answer({ kind: 'in_progress' });
  }
  return d;
}

