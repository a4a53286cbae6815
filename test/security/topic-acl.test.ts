import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downTopic, DOWN_KINDS, upTopic, UP_KINDS, type PairResponse } from '../../protocol/index.js';
import { envelope, pairBox, payMsg, TestBox } from '../cloud/harness.js';
import { BROKER_KINDS } from './brokers-under-test.js';
import { closedWithin, money, startProbeCloud, upMsg, type MoneySnapshot, type ProbeCloud } from './support.js';

/**
 * Topic ACL probes against a real cloud over TCP, on each broker it runs on: two boxes paired
 * through POST /v1/pair. A box may publish only on its own up/ and subscribe only to its own down/.
 * Every refusal must be recorded by the broker and must leave the money exactly as it was. The
 * embedded broker also closes a connection that publishes where it may not; Mosquitto drops the
 * message and keeps the connection (brokers-under-test.ts).
 */
describe.each(BROKER_KINDS)('topic ACL on the %s broker', (kind) => {
  let cloud: ProbeCloud;
  let a: PairResponse;
  let b: PairResponse;
  let boxA: TestBox;
  let before: MoneySnapshot;
  let seq = 0;

  beforeAll(async () => {
    cloud = await startProbeCloud({ broker: kind });
    a = await pairBox(cloud, 'hw-acl-a');
    b = await pairBox(cloud, 'hw-acl-b');
    boxA = await TestBox.of(cloud, a);
    // A real payment on A, so "no money state changes" compares against something.
    await boxA.send('pay', payMsg(a.deviceId, ++seq));
    expect(await boxA.next('result')).toMatchObject({ state: 'SUCCESS' });
  }, 30_000);
  afterAll(async () => {
    await boxA.close();
    await cloud.close();
  });
  beforeEach(async () => {
    before = await money(cloud);
  });

  /** A's own round trip still works and A got nothing it should not have (no result/error for a forged message). */
  async function aUnaffected(): Promise<void> {
    const q = `${a.deviceId}-${seq}`;
    await boxA.send('query', upMsg('query', a.deviceId, seq));
    expect(await boxA.next('result', (m) => m.outTradeNo === q)).toMatchObject({ state: 'SUCCESS' });
    expect(boxA.received).toEqual([]);
    expect(await money(cloud)).toEqual(before);
  }

  describe("publishing outside one's own up/ is refused and recorded (the embedded broker also closes the connection)", () => {
    const resultFor = () => JSON.stringify({ ...envelope(), outTradeNo: `${a.deviceId}-${seq}`, saleId: 's', amount: 1, currency: 'CNY', state: 'REFUNDED' });
    const forged: [string, () => string, () => string][] = [
      ...UP_KINDS.map((k): [string, () => string, () => string] => [`A's up/${k}`, () => upTopic(a.deviceId, k), () => JSON.stringify(payMsg(a.deviceId, 900))]),
      ...DOWN_KINDS.map((k): [string, () => string, () => string] => [`A's down/${k}`, () => downTopic(a.deviceId, k), resultFor]),
      ...DOWN_KINDS.map((k): [string, () => string, () => string] => [`its own down/${k}`, () => downTopic(b.deviceId, k), () => JSON.stringify({ ...envelope(), command: 'unpair' })]),
    ];

    it.each(forged)('box B publishes on %s', async (_name, topic, payload) => {
      const mark = await cloud.broker.mark();
      const boxB = await TestBox.of(cloud, b);
      if (cloud.broker.forbiddenPublish === 'closes the connection') {
        const closed = closedWithin(boxB.client, 2_000);
        boxB.client.publish(topic(), payload(), { qos: 1 });
        await closed;
      } else {
        await boxB.client.publishAsync(topic(), payload(), { qos: 1 });
      }
      await cloud.broker.refusalsReach(mark, 'publish', 1);
      await aUnaffected();
      // B itself heard nothing back: not its own down/ message, no answer to a forged up/.
      expect(boxB.received).toEqual([]);
      await boxB.close();
    });
  });

  describe("a last will on another box's topic is refused when it fires, and recorded", () => {
    const wills: [string, () => string, () => string][] = [
      ["A's up/pay (a valid pay of A's)", () => upTopic(a.deviceId, 'pay'), () => JSON.stringify(payMsg(a.deviceId, 901))],
      ["A's up/cancel (would reverse A's payment)", () => upTopic(a.deviceId, 'cancel'), () => JSON.stringify(upMsg('cancel', a.deviceId, seq))],
      ["A's down/result", () => downTopic(a.deviceId, 'result'), () => JSON.stringify({ ...envelope(), outTradeNo: `${a.deviceId}-${seq}`, saleId: 's', amount: 1, currency: 'CNY', state: 'REFUNDED' })],
    ];

    it.each(wills)('box B dies with a will on %s', async (_name, topic, payload) => {
      const mark = await cloud.broker.mark();
      const boxB = await TestBox.connect(cloud.mqttUrl, b.deviceId, b.secret, { will: { topic: topic(), payload: Buffer.from(payload()), qos: 1, retain: false } });
      const closed = closedWithin(boxB.client, 2_000);
      boxB.client.stream.destroy(); // no DISCONNECT packet: the broker fires the will
      await closed;
      await cloud.broker.willHandled(b.deviceId, mark, 3_000);
      await aUnaffected();
      await boxB.close();
    });
  });

  describe("subscribing outside one's own down/ is refused (granted 128) and recorded", () => {
    // A and B stand for the two boxes' ids, filled in once they are paired.
    const filters = ['#', 'scanbox/#', '$SYS/#', '$SYS/+/new/clients', 'scanbox/v1/d/+/up/+', 'scanbox/v1/d/+/down/+', 'scanbox/v1/d/A/down/+', 'scanbox/v1/d/A/down/result', 'scanbox/v1/d/A/#', 'scanbox/v1/d/B/#', 'scanbox/v1/d/B/up/pay', '+/+/+/+/+/+', '$share/g/scanbox/v1/d/+/up/+'];

    it.each(filters)('box B subscribes to %s', async (pattern) => {
      const filter = pattern.replace('/A/', `/${a.deviceId}/`).replace('/B/', `/${b.deviceId}/`);
      const mark = await cloud.broker.mark();
      const boxB = await TestBox.of(cloud, b);
      const seen: string[] = [];
      boxB.client.on('message', (topic) => seen.push(topic));
      const err = (await boxB.client.subscribeAsync(filter, { qos: 1 }).then(
        (granted) => ({ packet: { granted: granted.map((g) => g.qos) } }),
        (e: unknown) => e,
      )) as { packet?: { granted: number[] } };
      expect(err.packet?.granted).toEqual([128]);
      await cloud.broker.refusalsReach(mark, 'subscribe', 1);
      // Traffic for A flows now (query → result on A's down/, query on A's up/); B must see none of it.
      await aUnaffected();
      expect(seen).toEqual([]);
      await boxB.close();
    });

    it("B's own down/+ is still granted (the positive control for the refusals above)", async () => {
      const boxB = await TestBox.of(cloud, b);
      const granted = await boxB.client.subscribeAsync(downTopic(b.deviceId, 'error'), { qos: 1 });
      expect(granted.map((g) => g.qos)).toEqual([1]);
      await boxB.close();
    });
  });
});
