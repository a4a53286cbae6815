import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import type { CloudStore, RunningCloud } from '../../cloud/index.js';
import { AttemptsService, type AttemptsServiceDeps } from '../../cloud/payments/attempts-service.js';
import type { Attempt } from '../../cloud/payments/transaction.js';
import { createLogger } from '../../cloud/log.js';
import { Metrics } from '../../cloud/metrics.js';
import { FakeClock } from '../support/fake-clock.js';
import { DOWN_SHAPES, PROTOCOL_VERSION, V1_RESULT_REASONS, encodeDown, isFinal, parseTopic, type DownKind } from '../../protocol/index.js';
import { envelope, pairBox, payMsg, startTestCloud, TestBox, until } from './harness.js';
import { ChannelLimits } from '../../cloud/payments/channel-limits.js';

/**
 * Protocol v2 from the real cloud (embedded broker, store, transaction service, scripted gateway):
 * the wallet's receipt and AMOUNT_MISMATCH go to a box that announced v2, never to a box that
 * announced v1 (or nothing): that one gets the v1 shape, where the state alone says "not paid".
 */
const DISCOUNTED = '134567890123460001'; // charged the sale's amount, 34 fen of it paid by a coupon
const OVERCHARGED = '134567890123460002'; // the wallet charges 9 fen more than the sale's amount

let gw: ScriptedGateway;
let cloud: RunningCloud;
let box: TestBox;
let raw: { kind: DownKind; msg: Record<string, any> }[];

describe('from the real cloud', () => {
  beforeEach(async () => {
    gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
    gw.bind(DISCOUNTED, { name: 'success', discount: 34 });
    gw.bind(OVERCHARGED, { name: 'success', chargeDelta: 9 });
    cloud = await startTestCloud(gw);
    box = await TestBox.of(cloud, await pairBox(cloud));
    raw = [];
    box.client.on('message', (topic, payload) => {
      const t = parseTopic(topic);
      if (t.direction === 'down') raw.push({ kind: t.kind, msg: JSON.parse(payload.toString()) as Record<string, any> });
    });
  });
  afterEach(async () => {
    await box?.close();
    await cloud?.close();
  });

  const otn = (seq: number) => `${box.deviceId}-${seq}`;
  const status = { firmware: '2.0.0', uptimeS: 5, outboxDepth: 0, pendingAttempts: 0, scanner: 'open', ecr: 'open' } as const;

  /** The box announces its version the way a box does: the `v` of its heartbeat, first on the connection. */
  async function announce(v: number): Promise<void> {
    await box.send('heartbeat', { ...envelope(), v, status });
    // Once the cloud has stored it, it has taken the announcement: the next message is served by it.
    await until('heartbeat stored', async () => (await cloud.store.getDevice(box.deviceId))?.firmware === '2.0.0');
  }

  /** The first final result of this attempt, exactly as it went on the wire. */
  async function finalResult(outTradeNo: string): Promise<Record<string, any>> {
    await box.next('result', (m) => m.outTradeNo === outTradeNo && isFinal(m.state));
    return raw.find((r) => r.kind === 'result' && r.msg.outTradeNo === outTradeNo && isFinal(r.msg.state))!.msg;
  }

  /** Everything the cloud sent is valid by the strict shape of exactly version `v`. */
  function expectAllStrict(v: number): void {
    expect(raw.length).toBeGreaterThan(0);
    for (const r of raw) {
      expect(r.msg.v, JSON.stringify(r.msg)).toBe(v);
      expect(DOWN_SHAPES[v]![r.kind]!.safeParse(r.msg).success, JSON.stringify(r.msg)).toBe(true);
    }
  }

  describe('a box that announced v2', () => {
    it("a paid result carries the wallet's receipt: trade number, time, total, buyer's share and discount", async () => {
      await announce(2);
      await box.send('pay', { ...payMsg(box.deviceId, 1, { code: DISCOUNTED }), v: 2 });
      const r = await finalResult(otn(1));
      const a = (await cloud.store.getAttempt(otn(1)))!;
      expect(a.gatewayTradeNo).toEqual(expect.any(String));
      expect(r).toMatchObject({ v: 2, state: 'SUCCESS', reason: 'PAID', amount: 1234 });
      expect(r.receipt).toEqual({ walletTradeNo: a.gatewayTradeNo, paidAt: a.walletPaidAt, total: 1234, buyerPaid: 1200, discount: 34 });
      expectAllStrict(2);
    });

    it('a charge of another amount: FAILED, AMOUNT_MISMATCH, with the receipt of what the wallet charged', async () => {
      await announce(2);
      await box.send('pay', { ...payMsg(box.deviceId, 2, { code: OVERCHARGED }), v: 2 });
      const r = await finalResult(otn(2));
      expect(r).toMatchObject({ v: 2, state: 'FAILED', reason: 'AMOUNT_MISMATCH', amount: 1234 });
      expect(r.receipt).toMatchObject({ walletTradeNo: expect.any(String), total: 1243 });
      expectAllStrict(2);
    });

    it('a result re-sent on a query carries the receipt too', async () => {
      await announce(2);
      await box.send('pay', { ...payMsg(box.deviceId, 3, { code: DISCOUNTED }), v: 2 });
      const first = await finalResult(otn(3));
      const mark = raw.length;
      await box.send('query', { ...envelope(), v: 2, outTradeNo: otn(3), saleId: `${box.deviceId}-s3`, amount: 1234, currency: 'CNY' });
      await until('the answer to the query', async () => raw.slice(mark).find((x) => x.kind === 'result' && x.msg.outTradeNo === otn(3)));
      expect(raw.slice(mark).find((x) => x.kind === 'result')!.msg.receipt).toEqual(first.receipt);
    });
  });

  describe('a box that announced v1, or nothing', () => {
    it.each([
      ['announced v1', 1],
      ['announced nothing', undefined],
    ] as const)('%s: a paid result has no receipt, in the v1 shape', async (_what, v) => {
      if (v !== undefined) await announce(v);
      await box.send('pay', payMsg(box.deviceId, 4, { code: DISCOUNTED }));
      const r = await finalResult(otn(4));
      expect(r).toMatchObject({ v: 1, state: 'SUCCESS', reason: 'PAID' });
      expect(r).not.toHaveProperty('receipt');
      // The cloud has the receipt; it only does not send it to this box.
      expect((await cloud.store.getAttempt(otn(4)))?.gatewayTradeNo).toEqual(expect.any(String));
      expectAllStrict(1);
    });

    it.each([
      ['announced v1', 1],
      ['announced nothing', undefined],
    ] as const)('%s: a charge of another amount is FAILED with no reason v1 lacks, and no receipt', async (_what, v) => {
      if (v !== undefined) await announce(v);
      await box.send('pay', payMsg(box.deviceId, 5, { code: OVERCHARGED }));
      const r = await finalResult(otn(5));
      expect(r).toMatchObject({ v: 1, state: 'FAILED', amount: 1234 });
      expect(r).not.toHaveProperty('receipt');
      expect(r.reason === undefined || (V1_RESULT_REASONS as readonly string[]).includes(r.reason)).toBe(true);
      expect(r.reason).not.toBe('AMOUNT_MISMATCH');
      expect((await cloud.store.getAttempt(otn(5)))?.reason).toBe('AMOUNT_MISMATCH');
      expectAllStrict(1);
    });
  });
});

describe('resultMessage: the result built for the version the box reads', () => {
  const clock = new FakeClock(1_764_086_400_000);
  // Building a result touches neither the store nor the gateway.
  const service = new AttemptsService({ store: {} as CloudStore, logger: createLogger('silent'), metrics: new Metrics(), clock, timers: clock, channelLimits: new ChannelLimits(1) } as unknown as AttemptsServiceDeps);
  const attempt = (patch: Partial<Attempt>): Attempt =>
    ({
      outTradeNo: 'sb1-7',
      deviceId: 'sb1',
      saleId: 'sb1-s7',
      amount: 1234,
      currency: 'CNY',
      wallet: 'wechat',
      state: 'SUCCESS',
      reason: 'PAID',
      gatewayTradeNo: null,
      charged: null,
      walletPaidAt: null,
      buyerPaid: null,
      discount: null,
      flag: null,
      ...patch,
    }) as Attempt;
  const paid = attempt({ gatewayTradeNo: 'W-1', charged: 1234, walletPaidAt: 1_764_086_401_000, buyerPaid: 1200, discount: 34 });
  const mismatch = attempt({ state: 'FAILED', reason: 'AMOUNT_MISMATCH', flag: 'AMOUNT_MISMATCH', gatewayTradeNo: 'W-2', charged: 1243 });

  it('newest by default; v2: the receipt, and the reason as recorded', () => {
    expect(service.resultMessage(paid)).toMatchObject({ v: PROTOCOL_VERSION, receipt: { walletTradeNo: 'W-1', paidAt: 1_764_086_401_000, total: 1234, buyerPaid: 1200, discount: 34 } });
    expect(service.resultMessage(mismatch, 2)).toMatchObject({ v: 2, state: 'FAILED', reason: 'AMOUNT_MISMATCH', receipt: { walletTradeNo: 'W-2', total: 1243 } });
    expect(service.resultMessage(mismatch, 2).receipt).not.toHaveProperty('paidAt');
  });

  it('v1: no receipt, and AMOUNT_MISMATCH left out; what it builds always encodes for its version', () => {
    expect(service.resultMessage(paid, 1)).not.toHaveProperty('receipt');
    const m = service.resultMessage(mismatch, 1);
    expect(m).toMatchObject({ v: 1, state: 'FAILED' });
    expect(m).not.toHaveProperty('reason');
    expect(m).not.toHaveProperty('receipt');
    for (const a of [paid, mismatch]) for (const v of [1, 2, 3]) expect(() => encodeDown('result', service.resultMessage(a, v), v)).not.toThrow();
  });

  it('no receipt until the wallet reported a payment; an off-contract one is left out, the result still goes', () => {
    expect(service.resultMessage(attempt({ state: 'FAILED', reason: 'INSUFFICIENT_FUNDS' }), 2)).not.toHaveProperty('receipt');
    expect(service.resultMessage(attempt({ gatewayTradeNo: 'W-3' }), 2)).not.toHaveProperty('receipt');
    const odd = service.resultMessage(attempt({ gatewayTradeNo: 'x'.repeat(65), charged: 1234 }), 2);
    expect(odd).not.toHaveProperty('receipt');
    expect(() => encodeDown('result', odd, 2)).not.toThrow();
    expect(service.resultMessage(attempt({ gatewayTradeNo: 'W-4', charged: 1234, buyerPaid: -5 }), 2).receipt).toEqual({ walletTradeNo: 'W-4', total: 1234 });
  });
});
