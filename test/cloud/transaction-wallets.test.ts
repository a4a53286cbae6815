import { describe, expect, it } from 'vitest';
import { withinReverseWindow, WALLET_RULES } from '../../cloud/gateway/wallet-rules.js';
import { needsWork, type AttemptEvent, type GatewayEffect } from '../../cloud/payments/transaction.js';
import { config, Driver, kinds, ok, OTN, pay, paying, pollUntilReverse, reversing, T0 } from './machine-driver.js';

/** Issue #13: per-wallet rules, the amount the wallet reports, receipts, merchant and channel on every call. */
const ALIPAY_CODE = '284567890123456789';
const alipayPay: AttemptEvent = { ...(pay as Extract<AttemptEvent, { type: 'pay' }>), wallet: 'alipay', channel: 'alipay-isv', code: ALIPAY_CODE };
const DAY = 86_400_000;

describe('every gateway call names the merchant and the channel the attempt started on', () => {
  it('pay, query, reverse and refund all carry merchant M1 and channel wechat; the refund gives back what was charged', () => {
    const d = paying();
    const calls: GatewayEffect[] = [d.gateway()];
    d.answer({ kind: 'in_progress' });
    d.tick();
    calls.push(d.gateway());
    d.answer({ kind: 'in_progress' });
    pollUntilReverse(d); // at the deadline, long past the gap: the reverse goes out at once
    calls.push(d.gateway());
    d.answer({ kind: 'reversed' });
    d.tick(); // late check
    d.answer(ok);
    calls.push(d.gateway());
    expect(calls.map((c) => [c.call, c.req.merchant, c.req.channel])).toEqual([
      ['pay', 'M1', 'wechat'],
      ['query', 'M1', 'wechat'],
      ['reverse', 'M1', 'wechat'],
      ['refund', 'M1', 'wechat'],
    ]);
    expect(d.gateway().req).toMatchObject({ amount: 1234, total: 1234 });
  });

  it('an Alipay attempt stays on its own channel', () => {
    const d = new Driver();
    d.send(alipayPay);
    d.answer({ kind: 'in_progress' });
    d.tick();
    expect(d.gateway().req).toMatchObject({ wallet: 'alipay', channel: 'alipay-isv', merchant: 'M1' });
  });
});

describe('receipt data', () => {
  it('a success keeps the wallet transaction id, paid time, what the buyer paid and the discount', () => {
    const d = paying();
    d.answer({ ...ok, paidAt: T0 + 900, buyerPaid: 1200, discount: 34 });
    expect(d.a).toMatchObject({ state: 'SUCCESS', gatewayTradeNo: 'gw-1', charged: 1234, walletPaidAt: T0 + 900, buyerPaid: 1200, discount: 34, flag: null });
  });
});

describe('amount mismatch: the wallet charged another amount than the sale', () => {
  it('is never PAID: NOT_PAID (FAILED AMOUNT_MISMATCH) at once, flagged, the sale not claimed', () => {
    const d = paying();
    const t = d.answer({ ...ok, amount: 1221 });
    expect([d.state, d.a!.reason, d.a!.flag, t.claimSale]).toEqual(['FAILED', 'AMOUNT_MISMATCH', 'AMOUNT_MISMATCH', false]);
    expect(kinds(t.effects)).toEqual(['result']);
    expect(needsWork(d.a!)).toBe(true);
  });

  it('then the charge is reversed at the wallet’s earliest moment, keeping the reason the box was told', () => {
    const d = paying();
    d.at(2_000).answer({ ...ok, amount: 1221 });
    expect(d.a!.nextAt).toBe(T0 + 2_000 + config.reverseMinDelayMs.wechat);
    expect(kinds(d.tick().effects)).toEqual(['gateway:reverse']);
    d.answer({ kind: 'retry_later', message: 'recall=Y' });
    expect(d.state).toBe('FAILED'); // a retried undo does not reopen what the box was told
    d.tick();
    const t = d.answer({ kind: 'reversed', action: 'refund' });
    expect([d.state, d.a!.reason, d.a!.flag]).toEqual(['REVERSED', 'AMOUNT_MISMATCH', 'AMOUNT_MISMATCH']);
    expect(kinds(t.effects)).toEqual(['result']);
  });

  it('past the reverse window it is refunded: what the wallet charged, not the sale amount', () => {
    const d = paying();
    d.at(8 * DAY).answer({ ...ok, amount: 1247 });
    expect(kinds(d.last.effects)).toEqual(['result', 'gateway:query']); // told at once; verify, then refund
    d.answer({ ...ok, amount: 1247 });
    expect(d.gateway()).toMatchObject({ call: 'refund', req: { amount: 1247, total: 1247 } });
    d.answer({ kind: 'refunded', refundNo: `${OTN}-R` });
    expect([d.state, d.a!.reason, d.a!.flag]).toEqual(['REFUNDED', 'AMOUNT_MISMATCH', 'AMOUNT_MISMATCH']);
  });

  it('a restart before the undo resumes it', () => {
    const d = paying();
    d.answer({ ...ok, amount: 1221 });
    d.at(20_000).send({ type: 'resume' });
    expect(kinds(d.last.effects)).toEqual(['gateway:reverse']);
  });
});

describe('per-wallet reverse rules', () => {
  it('WeChat: no reverse within the gap after the pay answered', () => {
    const d = paying();
    d.at(40_000).answer({ kind: 'unknown', code: 'TIMEOUT', message: 'x' });
    pollUntilReverse(d);
    expect(d.a!.inFlight).toBeNull();
    expect(d.a!.nextAt! - (T0 + 40_000)).toBe(config.reverseMinDelayMs.wechat);
  });

  it('Alipay: cancel right after the last query, no gap', () => {
    const d = new Driver();
    d.send(alipayPay);
    d.at(1_000).answer({ kind: 'in_progress' });
    pollUntilReverse(d);
    expect(d.a!.inFlight).toBe('reverse');
    expect(kinds(d.last.effects)).toContain('gateway:reverse');
  });

  it('a reverse refused because the order is paid goes straight to a refund (no verify query)', () => {
    const d = reversing();
    const t = d.answer({ kind: 'already_paid', message: 'REVERSE refused: paid' });
    expect(d.state).toBe('REFUND_PENDING');
    expect(kinds(t.effects)).toEqual(['progress:REFUNDING', 'gateway:refund']);
  });

  it('past the window no reverse is sent: verify, then refund (Alipay: the next Beijing day)', () => {
    const d = new Driver();
    d.now = Date.UTC(2026, 11, 1, 15, 50); // 23:50 in Beijing
    d.send(alipayPay);
    d.now += 20 * 60_000; // 00:10 the next day in Beijing
    d.answer({ kind: 'unknown', code: 'TIMEOUT', message: 'x' });
    d.send({ type: 'cancel', outTradeNo: OTN, deviceId: 'sbAAAAAAAAAA', saleId: 's1', amount: 1234, currency: 'CNY', reason: 'CASHIER_CANCEL' });
    expect(d.gateway().call).toBe('query');
    expect(d.a!.step).toBe('verify');
  });

  it('the published windows: WeChat 7 days; Alipay until midnight Beijing time', () => {
    const payAt = Date.UTC(2026, 11, 1, 15, 0); // 23:00 Beijing
    expect(withinReverseWindow(WALLET_RULES.wechat.reverseWindow, payAt, payAt + 7 * DAY - 1)).toBe(true);
    expect(withinReverseWindow(WALLET_RULES.wechat.reverseWindow, payAt, payAt + 7 * DAY)).toBe(false);
    expect(withinReverseWindow(WALLET_RULES.alipay.reverseWindow, payAt, payAt + 59 * 60_000)).toBe(true);
    expect(withinReverseWindow(WALLET_RULES.alipay.reverseWindow, payAt, payAt + 60 * 60_000)).toBe(false);
    expect([WALLET_RULES.wechat.reverseMinDelayMs, WALLET_RULES.alipay.reverseMinDelayMs]).toEqual([16_000, 0]);
  });
});
