import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upTopic, type PairResponse, type UpKind } from '../../protocol/index.js';
import { pairBox, payMsg, TestBox } from '../cloud/harness.js';
import { BROKER_KINDS } from './brokers-under-test.js';
import { money, scrape, startProbeCloud, upMsg, type ProbeCloud } from './support.js';

/**
 * Identity probes, on each broker the cloud runs on: a box cannot become another box (client id
 * takeover with its own or a wrong secret), and a message captured from box A and replayed by box B
 * under B's own topic changes nothing: the outTradeNo is A's, so the cloud refuses it, counts it, and
 * creates or touches no attempt.
 */
describe.each(BROKER_KINDS)('identity on the %s broker', (kind) => {
  let cloud: ProbeCloud;
  let a: PairResponse;
  let b: PairResponse;
  let boxA: TestBox;
  let captured: Buffer;

  beforeAll(async () => {
    cloud = await startProbeCloud({ broker: kind });
    a = await pairBox(cloud, 'hw-id-a');
    b = await pairBox(cloud, 'hw-id-b');
    boxA = await TestBox.of(cloud, a);
    // Box A's genuine payment: these exact bytes are what an eavesdropper would capture.
    captured = Buffer.from(JSON.stringify(payMsg(a.deviceId, 1, { id: 'm-captured' })));
    await boxA.client.publishAsync(upTopic(a.deviceId, 'pay'), captured, { qos: 1 });
    expect(await boxA.next('result')).toMatchObject({ outTradeNo: `${a.deviceId}-1`, state: 'SUCCESS' });
  }, 30_000);
  afterAll(async () => {
    await boxA.close();
    await cloud.close();
  });

  /**
   * CONNACK return code of a connection attempt that must be refused (fails the test if accepted),
   * or 'closed' when the broker dropped the connection without a CONNACK (a malformed CONNECT).
   */
  function connackOf(opts: { clientId: string; username?: string; password?: string }): Promise<number | 'closed'> {
    return new Promise((resolve, reject) => {
      const c = mqtt.connect(cloud.mqttUrl, { ...opts, reconnectPeriod: 0, clean: true, connectTimeout: 3_000 });
      const timer = setTimeout(() => reject(new Error('no CONNACK and no close within 3 s')), 3_500);
      const done = (v: number | 'closed' | Error) => {
        clearTimeout(timer);
        c.end(true);
        if (v instanceof Error) reject(v);
        else resolve(v);
      };
      c.once('connect', () => done(new Error(`connection as ${opts.clientId} (username ${opts.username}) was accepted`)));
      c.once('error', (e: Error & { code?: number }) => done(typeof e.code === 'number' ? e.code : 'closed'));
      c.once('close', () => done('closed'));
    });
  }

  /** A is still connected and served: a query round trip on its own topics. */
  async function aStillServed(): Promise<void> {
    expect(boxA.client.connected).toBe(true);
    await boxA.send('query', upMsg('query', a.deviceId, 1));
    expect(await boxA.next('result', (m) => m.outTradeNo === `${a.deviceId}-1`)).toMatchObject({ state: 'SUCCESS' });
  }

  describe("connecting with another box's client id is refused and recorded; the real box keeps its session", () => {
    it.each([
      ["A's client id and username with B's own (valid) secret", () => ({ clientId: a.deviceId, username: a.deviceId, password: b.secret })],
      ["A's client id, B's username and B's secret", () => ({ clientId: a.deviceId, username: b.deviceId, password: b.secret })],
      ["A's client id and username with a wrong secret", () => ({ clientId: a.deviceId, username: a.deviceId, password: `${a.secret.slice(0, -1)}${a.secret.endsWith('A') ? 'B' : 'A'}` })],
      ["A's client id and username with no password", () => ({ clientId: a.deviceId, username: a.deviceId })],
    ] as const)('%s → refused (CONNACK 4 embedded, 5 Mosquitto)', async (_name, opts) => {
      const mark = await cloud.broker.mark();
      const before = await money(cloud);
      expect(await connackOf(opts())).toBe(cloud.broker.refusedWith.wrongSecret);
      await cloud.broker.refusalsReach(mark, 'auth', 1);
      await aStillServed();
      expect(await money(cloud)).toEqual(before);
    });

    it("A's client id with A's secret but no username: a malformed CONNECT, dropped without a session", async () => {
      // MQTT 3.1.1 §3.1.2.9: a password without a user name is a protocol violation; the broker closes.
      expect(await connackOf({ clientId: a.deviceId, password: a.secret })).not.toBe(0);
      await aStillServed();
    });
  });

  describe('a message captured from box A and replayed by box B on its own topic is refused (FORBIDDEN)', () => {
    const replays: [UpKind, () => Buffer][] = [
      ['pay', () => captured],
      ['cancel', () => Buffer.from(JSON.stringify(upMsg('cancel', a.deviceId, 1)))],
      ['query', () => Buffer.from(JSON.stringify(upMsg('query', a.deviceId, 1)))],
      ['ack', () => Buffer.from(JSON.stringify(upMsg('ack', a.deviceId, 1, { state: 'SUCCESS' })))],
      // A's outTradeNo for an attempt that does not exist yet: B must not be able to create (or tombstone) it either.
      ['pay', () => Buffer.from(JSON.stringify(payMsg(a.deviceId, 2)))],
      ['query', () => Buffer.from(JSON.stringify(upMsg('query', a.deviceId, 3)))],
    ];

    it.each(replays)('up/%s', async (kind, payload) => {
      const boxB = await TestBox.of(cloud, b);
      try {
        const m0 = await scrape(cloud.metricsUrl);
        const before = await money(cloud);
        const attemptA = await cloud.store.getAttempt(`${a.deviceId}-1`);
        const bytes = payload();
        await boxB.client.publishAsync(upTopic(b.deviceId, kind), bytes, { qos: 1 });
        const err = await boxB.next('error');
        expect(err).toMatchObject({ code: 'FORBIDDEN', refId: (JSON.parse(bytes.toString()) as { id: string }).id });
        expect((await scrape(cloud.metricsUrl))('messages_forbidden_total')).toBe(m0('messages_forbidden_total') + 1);
        // Nothing changed: no attempt for B, A's attempt identical (same version), no gateway call.
        expect(await cloud.store.getAttempt(`${a.deviceId}-1`)).toEqual(attemptA);
        expect(await cloud.store.listAttempts({ deviceId: b.deviceId })).toEqual([]);
        expect(await money(cloud)).toEqual(before);
        expect(boxB.received).toEqual([]);
        await aStillServed();
        expect(boxA.received).toEqual([]);
      } finally {
        await boxB.close();
      }
    });

    it("the same bytes from A itself are A's own payment: answered with the recorded result, not charged again", async () => {
      const calls = cloud.gw.count('pay');
      await boxA.client.publishAsync(upTopic(a.deviceId, 'pay'), captured, { qos: 1 });
      expect(await boxA.next('result')).toMatchObject({ outTradeNo: `${a.deviceId}-1`, state: 'SUCCESS' });
      expect(cloud.gw.count('pay')).toBe(calls);
      expect(cloud.gw.net(`${a.deviceId}-1`)).toBe(1234);
    });
  });
});
