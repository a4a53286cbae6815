import { afterEach, expect, it } from 'vitest';
import type { Gateway, GatewayCall } from '../../cloud/gateway/gateway.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { pairBox, startTestCloud, TestBox, type TestCloud } from './harness.js';
import { announceV3, pay, REFUND_FAST, refundAnswer, refundMsg } from './refund-kit.js';

/**
 * `gatewayConcurrency` is a provider's limit on one set of credentials: the cashiers' refunds and
 * the payments go through the same channel, so they share its width instead of each having their own.
 */
class WidthRecorder implements Gateway {
  inFlight = 0;
  maxInFlight = 0;
  readonly calls: GatewayCall[] = [];
  constructor(private readonly inner: Gateway) {}
  pay: Gateway['pay'] = (req, opts) => this.track('pay', () => this.inner.pay(req, opts));
  query: Gateway['query'] = (req, opts) => this.track('query', () => this.inner.query(req, opts));
  reverse: Gateway['reverse'] = (req, opts) => this.track('reverse', () => this.inner.reverse(req, opts));
  refund: Gateway['refund'] = (req, opts) => this.track('refund', () => this.inner.refund(req, opts));

  private async track<T>(call: GatewayCall, run: () => Promise<T>): Promise<T> {
    this.calls.push(call);
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      return await run();
    } finally {
      this.inFlight--;
    }
  }
}

let cloud: TestCloud | undefined;
let box: TestBox | undefined;
let gw: ScriptedGateway | undefined;
afterEach(async () => {
  await box?.close();
  await cloud?.close();
  gw?.stop();
});

it('payments and refunds at once on a channel one call wide: never two calls out on it, and every one of them ends', async () => {
  gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS, latency: { minMs: 30, maxMs: 30 } });
  const recorder = new WidthRecorder(gw);
  cloud = await startTestCloud(recorder, { ...REFUND_FAST, gatewayConcurrency: 1 });
  box = await TestBox.of(cloud, await pairBox(cloud));
  await announceV3(box);
  const b = box;
  for (let seq = 1; seq <= 4; seq++) expect((await pay(b, seq)).state).toBe('SUCCESS');

  const results = await Promise.all([
    ...[1, 2, 3, 4].map(async (seq) => {
      const msg = refundMsg(b, seq, `${b.deviceId}-${seq}`, 100);
      await b.send('refund', msg);
      return (await refundAnswer(b, msg.refundId, 'REFUNDED', 10_000)).state;
    }),
    ...[5, 6, 7, 8].map(async (seq) => (await pay(b, seq)).state),
  ]);
  expect(results).toEqual([...Array(4).fill('REFUNDED'), ...Array(4).fill('SUCCESS')]);
  expect(recorder.calls.filter((c) => c === 'refund').length).toBeGreaterThanOrEqual(4);
  expect(recorder.calls.filter((c) => c === 'pay')).toHaveLength(8);
  expect(recorder.maxInFlight).toBe(1);
}, 60_000);
