import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { CloudConfigInput } from '../../cloud/config.js';
import { startCloud, type RunningCloud } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { FAST, pairBox, tempDir, TestBox, until } from './harness.js';
import { announceV3, pay, REFUND_FAST, refundAnswer, refundMsg } from './refund-kit.js';

/**
 * The cloud stops while a refund is at the wallet — which made it, but its answer never came back —
 * and starts again on the same store: the refund is resumed with the same refund number, the wallet
 * says it is done, and no second refund is made.
 */
const { dir, remove } = tempDir();
const gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
  gw.stop();
  remove();
});

async function cloudOnTheStore(config: CloudConfigInput = {}): Promise<RunningCloud> {
  const cloud = await startCloud({ gateway: gw, dbPath: join(dir, 'cloud.db'), mqttPort: 0, httpPort: 0, metricsPort: 0, config: { ...FAST, ...REFUND_FAST, ...config }, logger: createLogger('silent') });
  open.push(cloud);
  return cloud;
}

it('a cloud restart with a PENDING refund: resumed, REFUNDED, one wallet refund', async () => {
  // The wallet's silence is only noticed after 30 s: the first cloud is gone long before.
  const first = await cloudOnTheStore({ gatewayCallTimeoutMs: 30_000 });
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

  const second = await cloudOnTheStore();
  await until('the resumed refund is REFUNDED', async () => (await second.store.getRefund(msg.refundId))?.state === 'REFUNDED');
  expect(gw.count('refund')).toBe(2);
  expect(gw.ledger.entries().filter((e) => e.kind === 'refund')).toEqual([expect.objectContaining({ outTradeNo: `${box.deviceId}-1`, amount: 1000 })]);
  // The box, back after its own restart, asks how it went.
  const again = await TestBox.of(second, creds);
  open.push(again);
  await again.send('refund', { ...msg, id: 'after-restart' });
  expect(await refundAnswer(again, msg.refundId)).toMatchObject({ state: 'REFUNDED', refundedTotal: 1000, remaining: 0 });
}, 60_000);
