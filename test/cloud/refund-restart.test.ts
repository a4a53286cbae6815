import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CloudConfigInput } from '../../cloud/config.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { pairBox, startTestCloud, STACKS, TestBox, until, useStack, type CloudPlace, type TestCloud } from './harness.js';
import { announceV3, pay, REFUND_FAST, refundAnswer, refundMsg } from './refund-kit.js';

/**
 * The cloud stops while a refund is at the wallet — which made it, but its answer never came back —
 * and starts again on the same store: the refund is resumed with the same refund number, the wallet
 * says it is done, and no second refund is made. On each stack: the same SQLite file, or the same
 * PostgreSQL schema behind the same Mosquitto.
 */
describe.each(STACKS)('on %s', (stackKind) => {
  const stack = useStack(stackKind);
  let place: CloudPlace;
  let gw: ScriptedGateway;
  const open: { close(): Promise<void> }[] = [];
  beforeEach(async () => {
    place = await stack.place();
    gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  });
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
    gw.stop();
    place.remove();
  });

  async function cloudOnThePlace(config: CloudConfigInput = {}): Promise<TestCloud> {
    const cloud = await startTestCloud(gw, { ...REFUND_FAST, ...config }, { place });
    open.push(cloud);
    return cloud;
  }

  it('a cloud restart with a PENDING refund: resumed, REFUNDED, one wallet refund', async () => {
    // The wallet's silence is only noticed after 30 s: the first cloud is gone long before.
    const first = await cloudOnThePlace({ gatewayCallTimeoutMs: 30_000 });
    const creds = await pairBox(first);
    const box = await TestBox.of(first, creds);
    open.push(box);
    await announceV3(box);
    await pay(box, 1, { amount: 1000 });
    gw.refunds.push('applied-unknown');
    const msg = refundMsg(box, 1, `${box.deviceId}-1`, 1000);
    await box.send('refund', msg);
    expect(await refundAnswer(box, msg.refundId)).toMatchObject({ state: 'PENDING' });
    await gw.waitFor('refund', 1);
    expect(gw.net(`${box.deviceId}-1`)).toBe(0);
    expect(await first.store.getRefund(msg.refundId)).toMatchObject({ state: 'PENDING', inFlight: true });
    await box.close();
    await first.close();

    const second = await cloudOnThePlace();
    await until('the resumed refund is REFUNDED', async () => (await second.store.getRefund(msg.refundId))?.state === 'REFUNDED');
    expect(gw.count('refund')).toBe(2);
    expect(gw.ledger.entries().filter((e) => e.kind === 'refund')).toEqual([expect.objectContaining({ outTradeNo: `${box.deviceId}-1`, amount: 1000 })]);
    // The box, back after its own restart, asks how it went.
    const again = await TestBox.of(second, creds);
    open.push(again);
    await again.send('refund', { ...msg, id: 'after-restart' });
    expect(await refundAnswer(again, msg.refundId)).toMatchObject({ state: 'REFUNDED', refundedTotal: 1000, remaining: 0 });
  }, 60_000);
});
