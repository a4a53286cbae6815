import { afterEach, describe, expect, it } from 'vitest';
import type { PayRequest } from '../../cloud/gateway/gateway.js';
import { FakeClock } from '../support/fake-clock.js';
import { ScriptedGateway, type ScriptedGatewayDeps } from '../../simulator/gateway/scripted-gateway.js';
import { netCharged } from '../../simulator/gateway/ledger.js';
import { DEFAULT_MIX, pickScenario, SCENARIO_NAMES, type ScenarioInput } from '../../simulator/gateway/scenario.js';

/** Every scenario driven through the Gateway interface on fake time; the ledger is checked each time. */
const CODE = '134567890123456789';
const open = () => ({ signal: new AbortController().signal });
let gateways: ScriptedGateway[] = [];

function setup(scenario: ScenarioInput, extra: { reverseWindows?: ScriptedGatewayDeps['reverseWindows'] } = {}) {
  const clock = new FakeClock();
  const gateway = new ScriptedGateway({ clock, timers: clock, seed: 1, mix: { scenarios: [{ weight: 1, scenario: { name: 'success' } }] }, ...extra });
  gateway.bind(CODE, scenario);
  gateways.push(gateway);
  const req: PayRequest = { outTradeNo: 'box1-1', amount: 1234, currency: 'CNY', code: CODE, wallet: 'wechat', merchant: 'M1', channel: 'wechat' };
  const q = { outTradeNo: req.outTradeNo, wallet: req.wallet, merchant: req.merchant, channel: req.channel };
  const kinds = () => gateway.ledger.entries().map((e) => `${e.kind}:${e.amount}`);
  return { clock, gateway, req, q, kinds };
}

afterEach(() => {
  for (const g of gateways) g.stop();
  gateways = [];
});

describe('scripted gateway scenarios', () => {
  it('success: charged once, idempotent per outTradeNo', async () => {
    const { gateway, req, q, kinds } = setup({ name: 'success' });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'success', amount: 1234 });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'success', amount: 1234 });
    expect(await gateway.query(q, open())).toMatchObject({ kind: 'success' });
    expect(kinds()).toEqual(['charge:1234']);
    expect(gateway.ledger.entries()[0]).toMatchObject({ seq: 1, outTradeNo: 'box1-1', currency: 'CNY' });
  });

  it('a repeated pay with another amount is refused and charges nothing more', async () => {
    const { gateway, req, kinds } = setup({ name: 'success' });
    await gateway.pay(req, open());
    expect(await gateway.pay({ ...req, amount: 99 }, open())).toMatchObject({ kind: 'failed', reason: 'DECLINED' });
    expect(kinds()).toEqual(['charge:1234']);
  });

  it.each(['INSUFFICIENT_FUNDS', 'CODE_EXPIRED'] as const)('failure %s: definitive, nothing charged', async (reason) => {
    const { gateway, req, q, kinds } = setup({ name: 'failure', reason });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'failed', reason });
    expect(await gateway.query(q, open())).toMatchObject({ kind: 'failed', reason });
    expect(kinds()).toEqual([]);
  });

  it('user_paying: USERPAYING, then charged after N s; queries follow the truth', async () => {
    const { clock, gateway, req, q, kinds } = setup({ name: 'user_paying', confirmAfterMs: 8_000 });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'in_progress' });
    await clock.advance(7_999);
    expect(await gateway.query(q, open())).toMatchObject({ kind: 'in_progress' });
    expect(kinds()).toEqual([]);
    await clock.advance(1);
    expect(await gateway.query(q, open())).toMatchObject({ kind: 'success', amount: 1234 });
    expect(kinds()).toEqual(['charge:1234']);
    expect(gateway.ledger.entries()[0]!.at).toBe(clock.now());
  });

  it('user_gives_up: USERPAYING until the customer gives up, then failed; a reverse closes it at 0', async () => {
    const { clock, gateway, req, q, kinds } = setup({ name: 'user_gives_up', giveUpAfterMs: 20_000 });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'in_progress' });
    await clock.advance(20_000);
    expect(await gateway.query(q, open())).toMatchObject({ kind: 'failed', reason: 'DECLINED' });
    expect(await gateway.reverse(q, open())).toEqual({ kind: 'reversed', action: 'close' });
    expect(await gateway.query(q, open())).toEqual({ kind: 'closed' });
    expect(kinds()).toEqual(['reverse:0']);
  });

  it('a reverse while the customer is still typing stops the charge from ever landing', async () => {
    const { clock, gateway, req, q, kinds } = setup({ name: 'user_paying', confirmAfterMs: 10_000 });
    await gateway.pay(req, open());
    expect(await gateway.reverse(q, open())).toEqual({ kind: 'reversed', action: 'close' });
    await clock.advance(60_000);
    expect(await gateway.query(q, open())).toEqual({ kind: 'closed' });
    expect(kinds()).toEqual(['reverse:0']);
    expect(clock.pendingTimers()).toBe(0);
  });

  it.each([
    ['SYSTEMERROR', 'success', ['charge:1234'], 'success'],
    ['BANKERROR', 'success', ['charge:1234'], 'success'],
    ['SYSTEMERROR', 'failure', [], 'failed'],
    ['BANKERROR', 'failure', [], 'failed'],
  ] as const)('gateway_error %s then %s', async (code, then, ledger, truth) => {
    const { gateway, req, q, kinds } = setup({ name: 'gateway_error', code, then });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'unknown', code });
    expect(await gateway.query(q, open())).toMatchObject({ kind: truth });
    expect(kinds()).toEqual(ledger);
  });

  it('hang, charged: resolves only when aborted (TIMEOUT); the charge happened and a query finds it', async () => {
    const { clock, gateway, req, q, kinds } = setup({ name: 'hang', charged: true });
    const abort = new AbortController();
    let settled = false;
    const pay = gateway.pay(req, { signal: abort.signal }).finally(() => (settled = true));
    await clock.advance(30_000);
    expect(settled).toBe(false);
    abort.abort();
    expect(await pay).toMatchObject({ kind: 'unknown', code: 'TIMEOUT' });
    expect(await gateway.query(q, open())).toMatchObject({ kind: 'success' });
    expect(kinds()).toEqual(['charge:1234']);
    expect(await gateway.reverse(q, open())).toEqual({ kind: 'reversed', action: 'refund' });
    expect(kinds()).toEqual(['charge:1234', 'reverse:1234']);
    expect(netCharged(gateway.ledger.entries()).get('box1-1')).toBe(0);
  });

  it('hang, not charged: the request never got through (not_found); after the long hang it answers by itself', async () => {
    const { clock, gateway, req, q, kinds } = setup({ name: 'hang', charged: false, hangMs: 120_000 });
    const pay = gateway.pay(req, open());
    expect(await gateway.query(q, open())).toEqual({ kind: 'not_found' });
    await clock.advance(120_000);
    expect(await pay).toMatchObject({ kind: 'unknown', code: 'TIMEOUT' });
    expect(await gateway.reverse(q, open())).toEqual({ kind: 'reversed', action: 'close' });
    expect(kinds()).toEqual(['reverse:0']);
  });

  it('query_flaps: in_progress and SYSTEMERROR alternate before the truth', async () => {
    const { gateway, req, q, kinds } = setup({ name: 'query_flaps', flaps: 4, then: 'success' });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'in_progress' });
    const answers = [];
    for (let i = 0; i < 6; i++) {
      const a = await gateway.query(q, open());
      answers.push(a.kind === 'unknown' ? a.code : a.kind);
    }
    expect(answers).toEqual(['in_progress', 'SYSTEMERROR', 'in_progress', 'SYSTEMERROR', 'success', 'success']);
    expect(kinds()).toEqual(['charge:1234']);
  });

  it('reverse_retry: retry_later K times, then reversed once; further reverses add nothing', async () => {
    const { gateway, req, q, kinds } = setup({ name: 'reverse_retry', times: 3 });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'in_progress' });
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await gateway.reverse(q, open())).kind);
    expect(answers).toEqual(['retry_later', 'retry_later', 'retry_later', 'reversed', 'reversed']);
    expect(kinds()).toEqual(['reverse:0']);
  });

  it('late_success: the charge lands after the reverse was answered; a later query says success; refund returns it', async () => {
    const { clock, gateway, req, q, kinds } = setup({ name: 'late_success', landAfterMs: 2_000 });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'in_progress' });
    expect(await gateway.reverse(q, open())).toEqual({ kind: 'reversed', action: 'close' });
    expect(await gateway.query(q, open())).toEqual({ kind: 'closed' });
    await clock.advance(2_000);
    expect(await gateway.query(q, open())).toMatchObject({ kind: 'success', amount: 1234 });
    expect(kinds()).toEqual(['reverse:0', 'charge:1234']);
    const refund = { outTradeNo: req.outTradeNo, refundNo: 'r1', amount: 1234, total: 1234, currency: 'CNY', wallet: 'wechat', merchant: 'M1', channel: 'wechat' } as const;
    expect(await gateway.refund(refund, open())).toEqual({ kind: 'refunded', refundNo: 'r1' });
    expect(await gateway.refund(refund, open())).toEqual({ kind: 'refunded', refundNo: 'r1' });
    expect(await gateway.query(q, open())).toEqual({ kind: 'refunded' });
    expect(kinds()).toEqual(['reverse:0', 'charge:1234', 'refund:1234']);
  });

  it('refund of an uncharged order or beyond the charge is refused', async () => {
    const { gateway, req, kinds } = setup({ name: 'failure', reason: 'INSUFFICIENT_FUNDS' });
    await gateway.pay(req, open());
    const refund = { outTradeNo: req.outTradeNo, refundNo: 'r1', amount: 1234, total: 1234, currency: 'CNY', wallet: 'wechat', merchant: 'M1', channel: 'wechat' } as const;
    expect(await gateway.refund(refund, open())).toMatchObject({ kind: 'failed' });
    expect(kinds()).toEqual([]);
  });

  it('a reverse of an order never seen closes it at 0, and a late pay for it cannot charge', async () => {
    const { gateway, req, q, kinds } = setup({ name: 'success' });
    expect(await gateway.reverse(q, open())).toEqual({ kind: 'reversed', action: 'close' });
    expect(await gateway.pay(req, open())).toMatchObject({ kind: 'failed' });
    expect(kinds()).toEqual(['reverse:0']);
  });

  it('past the reverse window a charged order must be refunded instead', async () => {
    const { clock, gateway, req, q } = setup({ name: 'success' }, { reverseWindows: { wechat: { kind: 'within', ms: 60_000 } } });
    await gateway.pay(req, open());
    await clock.advance(60_001);
    expect(await gateway.reverse(q, open())).toEqual({ kind: 'already_paid', message: expect.any(String) });
  });

  it('an already aborted call changes nothing', async () => {
    const { gateway, req, kinds } = setup({ name: 'success' });
    const abort = new AbortController();
    abort.abort();
    expect(await gateway.pay(req, { signal: abort.signal })).toMatchObject({ kind: 'unknown', code: 'TIMEOUT' });
    expect(kinds()).toEqual([]);
  });

  it('latency: answers arrive after the drawn delay on the injected clock; instant needs no timer', async () => {
    const clock = new FakeClock();
    const slow = new ScriptedGateway({ clock, timers: clock, mix: { scenarios: [{ weight: 1, scenario: { name: 'success' } }], latency: { minMs: 100, maxMs: 200 } } });
    const req: PayRequest = { outTradeNo: 'box1-9', amount: 1, currency: 'CNY', code: CODE, wallet: 'wechat', merchant: 'M1', channel: 'wechat' };
    let answered = false;
    const pay = slow.pay(req, open()).then(() => (answered = true));
    await clock.advance(99);
    expect(answered).toBe(false);
    await clock.advance(101);
    await pay;
    expect(answered).toBe(true);
    const instant = new ScriptedGateway({ clock, timers: clock, latency: { minMs: 0, maxMs: 0 } });
    await expect(instant.pay({ ...req, outTradeNo: 'box1-10' }, open())).resolves.toBeDefined();
    expect(clock.pendingTimers()).toBe(0);
  });

  it('the default mix is seeded: the same code gets the same scenario, and the mix covers several', () => {
    const names = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const code = `1345678901234${String(i).padStart(5, '0')}`;
      expect(pickScenario(DEFAULT_MIX, 9, code)).toEqual(pickScenario(DEFAULT_MIX, 9, code));
      names.add(pickScenario(DEFAULT_MIX, 9, code).name);
    }
    expect(names.size).toBeGreaterThanOrEqual(5);
    expect(names.has('success')).toBe(true);
    expect(SCENARIO_NAMES).toContain('late_success');
  });

  it('rejects a malformed scenario binding', () => {
    const gateway = new ScriptedGateway();
    expect(() => gateway.bind(CODE, { name: 'nope' } as unknown as ScenarioInput)).toThrow();
    expect(() => gateway.bind(CODE, { name: 'user_paying', confirmAfterMs: -1 })).toThrow();
  });
});
