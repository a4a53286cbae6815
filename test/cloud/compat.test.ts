import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import type { CloudStore, RunningCloud } from '../../cloud/index.js';
import { Fleet } from '../../cloud/fleet/fleet.js';
import { createLogger } from '../../cloud/log.js';
import { systemClock } from '../../protocol/clock.js';
import { DOWN_SCHEMAS, DOWN_SHAPES, PROTOCOL_VERSION, ResultMessage, parseTopic, upTopic, type DownKind, type UpKind } from '../../protocol/index.js';
import { envelope, pairBox, payMsg, startTestCloud, TestBox, until } from './harness.js';

/**
 * The real cloud (embedded broker, store, transaction service, scripted gateway) against a box newer
 * than it: a `v` above its own and fields this cloud has never heard of on every message. It serves
 * each by the fields it knows, answers strictly in the newest shape it has that is not newer than
 * the box announced (v1 until the box announces: a heartbeat, or any message it reads, whose `v` is
 * the version the box speaks), and refuses only what it cannot act on safely.
 */
let gw: ScriptedGateway;
let cloud: RunningCloud;
let box: TestBox;
const sent: { kind: DownKind; raw: Record<string, unknown> }[] = [];

beforeEach(async () => {
  gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  cloud = await startTestCloud(gw);
  box = await TestBox.of(cloud, await pairBox(cloud));
  sent.length = 0;
  box.client.on('message', (topic, payload) => {
    const t = parseTopic(topic);
    if (t.direction === 'down') sent.push({ kind: t.kind, raw: JSON.parse(payload.toString()) as Record<string, unknown> });
  });
});
afterEach(async () => {
  await box?.close();
  await cloud?.close();
});

const otn = (seq: number) => `${box.deviceId}-${seq}`;
const NEWER_V = PROTOCOL_VERSION + 1;
const NEWER = { v: NEWER_V, loyaltyId: 'L-77', channelHint: 'wxp', receiptWanted: true };

function sendRaw(kind: UpKind, msg: Record<string, unknown>): Promise<unknown> {
  return box.client.publishAsync(upTopic(box.deviceId, kind), JSON.stringify(msg), { qos: 1 });
}

/**
 * What the cloud sent is exactly the contract of version `v` (v1 to a box that announced nothing,
 * its own newest to a newer box): no field or value a box of that version would refuse.
 */
function expectStrict(v: number): void {
  expect(sent.length).toBeGreaterThan(0);
  for (const s of sent) {
    expect(s.raw.v, JSON.stringify(s.raw)).toBe(v);
    expect(DOWN_SHAPES[v]![s.kind]!.safeParse(s.raw).success, JSON.stringify(s.raw)).toBe(true);
  }
}

describe('the cloud against a newer box', () => {
  it('a heartbeat with a newer v, an extra status field and an unknown port state is stored, not refused', async () => {
    const status = { firmware: '2.0.0', uptimeS: 5, outboxDepth: 0, pendingAttempts: 0, scanner: 'sleeping', ecr: 'open', battery: 87 };
    await sendRaw('heartbeat', { ...envelope(), ...NEWER, status });
    const d = await until('heartbeat stored', async () => {
      const row = await cloud.store.getDevice(box.deviceId);
      return row?.firmware === '2.0.0' ? row : undefined;
    });
    expect(d).toMatchObject({ connectivity: 'online' });
    expect(cloud.metrics.get('messages_invalid_total')).toBe(0);
  });

  it('pay and query with a newer v and extra fields are served by the fields it knows; replies are in its newest shape', async () => {
    await sendRaw('heartbeat', { ...envelope(), ...NEWER, status: { firmware: '2.0.0', uptimeS: 5, outboxDepth: 0, pendingAttempts: 0, scanner: 'open', ecr: 'open' } });
    await sendRaw('pay', { ...payMsg(box.deviceId, 1), ...NEWER });
    expect(await box.next('result', (m) => m.outTradeNo === otn(1))).toMatchObject({ v: PROTOCOL_VERSION, state: 'SUCCESS', reason: 'PAID', amount: 1234 });
    expect(gw.net(otn(1))).toBe(1234);
    await sendRaw('query', { ...envelope(), ...NEWER, outTradeNo: otn(1), saleId: `${box.deviceId}-s1`, amount: 1234, currency: 'CNY' });
    await box.next('result', (m) => m.outTradeNo === otn(1));
    await sendRaw('ack', { ...envelope(), ...NEWER, outTradeNo: otn(1), state: 'SUCCESS' });
    await until('ack recorded', async () => (await cloud.store.getAttempt(otn(1)))?.ackedState === 'SUCCESS');
    expect(gw.count('pay')).toBe(1);
    expect(sent.filter((s) => s.kind === 'error')).toEqual([]);
    expectStrict(PROTOCOL_VERSION);
  });

  it('a cancel with a reason it does not know is still a cancel: tombstone, and a late pay is refused uncharged', async () => {
    await sendRaw('cancel', { ...envelope(), ...NEWER, outTradeNo: otn(2), saleId: `${box.deviceId}-s2`, amount: 1234, currency: 'CNY', reason: 'POWER_LOSS' });
    // No heartbeat, but its cancel said the version it speaks (with several workers its heartbeats may go to another).
    expect(await box.next('result', (m) => m.outTradeNo === otn(2))).toMatchObject({ v: PROTOCOL_VERSION, state: 'CANCELLED', reason: 'RECOVERY_CANCEL' });
    await sendRaw('pay', { ...payMsg(box.deviceId, 2), ...NEWER });
    expect(await box.next('error', (m) => m.outTradeNo === otn(2))).toMatchObject({ code: 'ATTEMPT_TOMBSTONED' });
    expect(gw.count('pay')).toBe(0);
    expectStrict(PROTOCOL_VERSION);
  });

  it('an ack of a state it does not know is ignored: the result stays unacknowledged, nothing is refused', async () => {
    await box.send('pay', payMsg(box.deviceId, 3));
    await box.next('result', (m) => m.outTradeNo === otn(3));
    await sendRaw('ack', { ...envelope(), ...NEWER, outTradeNo: otn(3), state: 'PARTIALLY_REFUNDED' });
    await box.send('query', { ...envelope(), outTradeNo: otn(3), saleId: `${box.deviceId}-s3`, amount: 1234, currency: 'CNY' });
    await box.next('result', (m) => m.outTradeNo === otn(3));
    expect((await cloud.store.getAttempt(otn(3)))?.ackedState).toBeNull();
    await sendRaw('ack', { ...envelope(), outTradeNo: otn(3), state: 'SUCCESS' });
    await until('the known ack recorded', async () => (await cloud.store.getAttempt(otn(3)))?.ackedState === 'SUCCESS');
    expect(cloud.metrics.get('messages_invalid_total')).toBe(0);
  });

  it('a pay with a wallet it does not know is refused before anything is charged: it cannot be routed', async () => {
    await sendRaw('pay', { ...payMsg(box.deviceId, 4), ...NEWER, wallet: 'dcep' });
    expect(await box.next('error')).toMatchObject({ v: 1, code: 'SCHEMA_INVALID' });
    expect(await cloud.store.getAttempt(otn(4))).toBeUndefined();
    expect(gw.count('pay')).toBe(0);
    expectStrict(1); // a message it cannot read announces nothing
  });
});

describe('the fleet remembers what each box announced, per connection', () => {
  // A test-only v3 shape: no such message exists in the product.
  // A test-only v4 beside the product's v1–v3.
  const SHAPES = { ...DOWN_SHAPES, 4: { ...DOWN_SCHEMAS, result: ResultMessage.extend({ v: z.literal(4), receiptNo: z.string().optional() }) } };
  const store = { updateFleet: async () => undefined, markStale: async () => [] } as unknown as CloudStore;
  const heartbeat = (v: number) => ({ v, id: `hb-${v}`, ts: 1, status: { firmware: '9', uptimeS: 1, outboxDepth: 0, pendingAttempts: 0, scanner: 'open', ecr: 'open' } as const });

  it('never a shape newer than the box announced; v1 until it announces, and again after it reconnects', async () => {
    const fleet = new Fleet({ store, clock: systemClock, logger: createLogger('silent'), heartbeatIntervalS: 30 });
    expect(fleet.downVersionFor('b1', SHAPES)).toBe(1);
    fleet.heartbeat('b1', heartbeat(1));
    fleet.heartbeat('b2', heartbeat(2));
    fleet.heartbeat('b3', heartbeat(3));
    fleet.heartbeat('b4', heartbeat(4));
    fleet.heartbeat('b5', heartbeat(5));
    expect(['b1', 'b2', 'b3', 'b4', 'b5'].map((id) => fleet.downVersionFor(id, SHAPES))).toEqual([1, 2, 3, 4, 4]);
    expect(['b1', 'b2', 'b3', 'b4', 'b5'].map((id) => fleet.downVersionFor(id))).toEqual([1, 2, 3, 3, 3]); // the product has v1, v2 and v3
    await fleet.connected('b2');
    expect(fleet.downVersionFor('b2', SHAPES)).toBe(1);
    fleet.heartbeat('b3', { ...heartbeat(3), id: 'offline-will' });
    expect(fleet.downVersionFor('b3', SHAPES)).toBe(1);
    await fleet.stop();
  });
});
