import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_BYTES, upTopic } from '../../protocol/index.js';
import type { RunningCloud } from '../../cloud/index.js';
import { envelope, pairBox, payMsg, startTestCloud, STACKS, TestBox, until, useStack } from './harness.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';

/**
 * Garbage from a box is answered on its down/error and counted; it never crashes or touches money.
 * On each stack: through the embedded broker or Mosquitto, to the same service.
 */
describe.each(STACKS)('on %s', (stackKind) => {
  const stack = useStack(stackKind);
  let cloud: RunningCloud;
  let gw: ScriptedGateway;
  let box: TestBox;

  beforeAll(async () => {
    gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
    cloud = await startTestCloud(gw, {}, { stack });
    box = await TestBox.of(cloud, await pairBox(cloud));
  });
  afterAll(async () => {
    await box.close();
    await cloud.close();
  });

  async function sendRaw(kind: 'pay' | 'cancel' | 'query' | 'ack' | 'heartbeat', payload: string | Buffer) {
    await box.client.publishAsync(upTopic(box.deviceId, kind), payload, { qos: 1 });
  }

  describe('bad payloads', () => {
    it.each([
      ['malformed JSON', 'pay', '{"v":1, "id": "m-9", amount: ', 'BAD_JSON', undefined],
      ['schema-invalid (float amount)', 'pay', JSON.stringify({ ...payMsg('x', 1), outTradeNo: undefined, amount: 12.34, id: 'm-10' }), 'SCHEMA_INVALID', 'm-10'],
      ['a query without its money fields (an unknown one is ignored, the missing ones are not)', 'query', JSON.stringify({ v: 1, id: 'm-11', ts: Date.now(), outTradeNo: 'x-1', saleId: 's', evil: true }), 'SCHEMA_INVALID', 'm-11'],
      ['no protocol version this side can read (v 0)', 'ack', JSON.stringify({ v: 0, id: 'm-12', ts: Date.now(), outTradeNo: 'x-1', state: 'SUCCESS' }), 'UNSUPPORTED_VERSION', 'm-12'],
      ['oversize', 'pay', JSON.stringify({ id: 'm-13', pad: 'x'.repeat(MAX_PAYLOAD_BYTES) }), 'PAYLOAD_TOO_LARGE', undefined],
      ['not JSON at all', 'heartbeat', Buffer.from([0xff, 0x00, 0xfe]), 'BAD_JSON', undefined],
    ] as const)('%s → down/error %s, counted, no attempt', async (_name, kind, payload, code, refId) => {
      const before = cloud.metrics.get('messages_invalid_total');
      await sendRaw(kind, payload);
      const err = await box.next('error', (m) => m.code === code);
      expect(err.refId).toBe(refId);
      expect(cloud.metrics.get('messages_invalid_total')).toBe(before + 1);
      expect(await cloud.store.listAttempts({})).toEqual([]);
    });

    it('after all that the process still takes a payment', async () => {
      await box.send('pay', payMsg(box.deviceId, 1));
      expect(await box.next('result')).toMatchObject({ state: 'SUCCESS' });
      expect(gw.count('pay')).toBe(1);
    });

    it('a heartbeat is not an attempt and needs no answer', async () => {
      const errorsBefore = box.received.filter((r) => r.kind === 'error').length;
      await box.send('heartbeat', { ...envelope(), status: { firmware: 'hb-probe', uptimeS: 1, outboxDepth: 0, pendingAttempts: 0, scanner: 'open', ecr: 'absent' } });
      // Handled (stored) rather than refused; then a later answer on the same connection, after which an
      // error reply to the heartbeat would already be here.
      await until('heartbeat stored', async () => (await cloud.store.getDevice(box.deviceId))?.firmware === 'hb-probe');
      await box.send('query', { ...envelope(), outTradeNo: `${box.deviceId}-900`, saleId: 's900', amount: 1, currency: 'CNY' });
      await box.next('result', (m) => m.outTradeNo === `${box.deviceId}-900`);
      expect(box.received.filter((r) => r.kind === 'error')).toHaveLength(errorsBefore);
    });
  });
});
