import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isFinal } from '../../protocol/index.js';
import type { PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome } from '../../cloud/gateway/gateway.js';
import { needsWork, transition, type Attempt, type AttemptEvent, type GatewayEffect } from '../../cloud/payments/transaction.js';
import { MACHINE_CONFIG } from './machine-config.js';

/**
 * The money property of the pure machine against a model of the gateway: whatever the gateway
 * answers (success, failure, in progress, unknown, retry, answers lost after the money moved, a
 * charge of another amount than the sale's, a reverse refused because the order is paid),
 * whenever the customer confirms and whenever the cashier cancels, the attempt ends final and the
 * customer is charged exactly when the final state is SUCCESS.
 */
const config = MACHINE_CONFIG;
const AMOUNT = 500;
type Status = 'none' | 'paying' | 'paid' | 'closed' | 'refunded';

class ModelGateway {
  status: Status = 'none';
  net = 0;
  /** A timed-out pay that reaches the wallet later: ORDERNOTEXIST now, charged a moment later. */
  landsLater = false;
  /** What the wallet charges: the sale's amount, or (a faulty wallet) 13 fen less. */
  charged = AMOUNT;
  constructor(private readonly choices: number[]) {
    if (this.pick(4) === 3) this.charged = AMOUNT - 13;
  }
  /** The next nondeterministic choice in [0, n); once the script runs out, the gateway tells the truth at once. */
  pick(n: number): number {
    return (this.choices.shift() ?? 0) % n;
  }
  private charge(): void {
    this.status = 'paid';
    this.net += this.charged;
  }
  private success() {
    return { kind: 'success', gatewayTradeNo: 'g', amount: this.charged } as const;
  }
  confirmMaybe(): void {
    if (this.landsLater && this.status === 'none' && this.pick(3) === 1) this.status = 'paying';
    if (this.status === 'paying' && this.pick(4) === 1) this.charge();
  }
  pay(): PayOutcome {
    switch (this.pick(6)) {
      case 0:
        this.charge();
        return this.success();
      case 1:
        this.status = 'paying';
        return { kind: 'in_progress' };
      case 2:
        return { kind: 'failed', reason: 'INSUFFICIENT_FUNDS', message: 'no' };
      case 3:
        this.charge(); // charged, answer lost
        return { kind: 'unknown', code: 'TIMEOUT', message: 'lost' };
      case 4:
        this.status = 'paying';
        return { kind: 'unknown', code: 'BANKERROR', message: 'bank' };
      default:
        this.landsLater = true;
        return { kind: 'unknown', code: 'HTTP_5XX', message: 'not there yet' };
    }
  }
  query(): QueryOutcome {
    if (this.pick(3) === 2) return { kind: 'unknown', code: 'SYSTEMERROR', message: 'busy' };
    const map: Record<Status, QueryOutcome> = {
      none: { kind: 'not_found' },
      paying: { kind: 'in_progress' },
      paid: this.success(),
      closed: { kind: 'closed' },
      refunded: { kind: 'refunded' },
    };
    return map[this.status];
  }
  private close(): void {
    if (this.status === 'paid') this.net -= this.charged;
    if (this.status !== 'refunded') this.status = 'closed';
  }
  reverse(): ReverseOutcome {
    switch (this.pick(6)) {
      case 0:
        this.close();
        return { kind: 'reversed' };
      case 1:
        return { kind: 'retry_later', message: 'recall' };
      case 2:
        this.close(); // done, answer lost
        return { kind: 'unknown', code: 'TIMEOUT', message: 'lost' };
      case 3:
        return { kind: 'unknown', code: 'SYSTEMERROR', message: 'nothing happened' };
      case 4:
        if (this.status === 'paid') return { kind: 'already_paid', message: 'paid: refund it' };
        this.close();
        return { kind: 'reversed' };
      default:
        if (this.status === 'paying' || this.status === 'none') this.status = 'closed'; // long expired
        return { kind: 'window_passed' };
    }
  }
  refund(): RefundOutcome {
    const c = this.pick(3);
    if (c === 1) return { kind: 'retry_later', message: 'later' };
    if (this.status === 'paid') {
      this.status = 'refunded';
      this.net -= this.charged;
    }
    if (c === 2) return { kind: 'unknown', code: 'TIMEOUT', message: 'lost' };
    return this.status === 'refunded' ? { kind: 'refunded', refundNo: 'r' } : { kind: 'failed', reason: 'DECLINED', message: 'nothing to refund' };
  }
}

function run(choices: number[], cancelAtStep: number | null, resumeAtStep: number | null) {
  const gw = new ModelGateway([...choices]);
  let now = 1_000_000;
  let a: Attempt | undefined;
  let pending: GatewayEffect | undefined;
  const apply = (e: AttemptEvent) => {
    const t = transition(a, e, { now, config, random: () => 0.5 });
    a = t.attempt;
    const g = t.effects.find((x): x is GatewayEffect => x.type === 'gateway');
    if (g) pending = g;
  };
  // Both wallets' rules: WeChat's reverse gap, Alipay's cancel at once.
  const [wallet, code] = choices.length % 2 ? (['wechat', '134567890123456789'] as const) : (['alipay', '284567890123456789'] as const);
  apply({ type: 'pay', outTradeNo: 'sbX-1', deviceId: 'sbX', merchantId: 'M1', channel: wallet, saleId: 's', saleRef: 'R', amount: AMOUNT, currency: 'CNY', wallet, code });
  for (let step = 0; step < 2_000; step++) {
    if (step === cancelAtStep) apply({ type: 'cancel', outTradeNo: 'sbX-1', deviceId: 'sbX', saleId: 's', amount: AMOUNT, currency: 'CNY', reason: 'CASHIER_CANCEL' });
    if (step === resumeAtStep) {
      pending = undefined; // the process died: the answer of the call in flight is lost
      apply({ type: 'resume' });
    }
    gw.confirmMaybe();
    if (pending) {
      const call = pending;
      pending = undefined;
      now += 100;
      const outcome = gw[call.call]();
      apply({ type: 'outcome', call: call.call, seq: call.seq, outcome } as AttemptEvent);
    } else if (a?.nextAt != null) {
      now = Math.max(now, a.nextAt);
      apply({ type: 'tick' });
    } else break;
  }
  return { a: a!, gw };
}

describe('money invariant of the attempt state machine', () => {
  it('always ends final, charged exactly when SUCCESS, whatever the gateway and the cashier do', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(50), { maxLength: 60 }),
        fc.option(fc.nat(40), { nil: null }),
        fc.option(fc.nat(40), { nil: null }),
        (choices, cancelAt, resumeAt) => {
          const { a, gw } = run(choices, cancelAt, resumeAt);
          expect(isFinal(a.state)).toBe(true);
          expect(needsWork(a)).toBe(false);
          expect(gw.net).toBe(a.state === 'SUCCESS' ? AMOUNT : 0);
        },
      ),
      { numRuns: 3_000 },
    );
  });
});
