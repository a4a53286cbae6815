import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOWN_KINDS, upTopic, UP_KINDS, type PairResponse } from '../../protocol/index.js';
import { pairBox, payMsg, TestBox } from '../cloud/harness.js';
import { MAX_PACKET_BYTES } from '../../cloud/broker/mqtt-edge.js';
import { closedWithin, money, rawPublish, scrape, startProbeCloud, type ProbeCloud } from '../security/support.js';

/**
 * Fuzzing the broker's topic ACL: a paired box publishes (as raw MQTT PUBLISH packets, so the client
 * library's own checks do not filter anything) on random and near-miss topics: random levels,
 * wildcards, unicode, empty levels, very long topics, other boxes' and down/ topics. The payload is
 * always a valid pay of the box's own, so anything that slipped through would show up as an attempt.
 * MQTT 3.1.1 has no error reply to a refused PUBLISH: the refusal is the broker closing the
 * connection, counted in publish_refused_total when the topic reached the ACL hook.
 */
export const MQTT_TOPIC_CASES = 500;
const SEED = 6_0004;
/** aedes' own limit; deeper topics are refused before the ACL hook. */
const AEDES_MAX_TOPIC_LEVELS = 100;

let cloud: ProbeCloud;
let me: PairResponse;
let other: PairResponse;

beforeAll(async () => {
  cloud = await startProbeCloud();
  me = await pairBox(cloud, 'hw-fuzz-topics');
  other = await pairBox(cloud, 'hw-fuzz-topics-other');
});
afterAll(async () => {
  await cloud.close();
});

/** Placeholders ME / OTHER become the two boxes' ids once they are paired. */
function topics(): fc.Arbitrary<string> {
  const level = fc.oneof(
    fc.constantFrom('scanbox', 'v1', 'v2', 'd', 'up', 'down', 'UP', 'Pay', ...UP_KINDS, ...DOWN_KINDS, '+', '#', '$SYS', '', ' ', 'ME', 'OTHER', '..', 'a+', 'b#', '\u0000'),
    fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/),
    fc.string({ maxLength: 8, unit: 'grapheme' }),
    fc.string({ maxLength: 4, unit: 'binary' }),
  );
  const own = fc.constantFrom(...UP_KINDS).map((k) => ['scanbox', 'v1', 'd', 'ME', 'up', k]);
  const mutated = fc.oneof(
    fc.tuple(own, fc.nat(5), level).map(([p, i, l]) => p.map((x, j) => (j === i ? l : x))),
    fc.tuple(own, fc.nat(6), level).map(([p, i, l]) => [...p.slice(0, i), l, ...p.slice(i)]),
    fc.tuple(own, fc.nat(5)).map(([p, i]) => p.filter((_, j) => j !== i)),
    fc.tuple(own, fc.nat(5)).map(([p, i]) => p.map((x, j) => (j === i ? x.toUpperCase() : x))),
    own.map((p) => [...p, '']),
    own.map((p) => ['', ...p]),
    fc.tuple(own, fc.constantFrom(...DOWN_KINDS)).map(([p, k]) => [...p.slice(0, 4), 'down', k]),
    own.map((p) => p.map((x) => (x === 'ME' ? 'OTHER' : x))),
  );
  const shapes = fc.oneof(
    { weight: 5, arbitrary: mutated.map((p) => p.join('/')) },
    { weight: 3, arbitrary: fc.array(level, { minLength: 1, maxLength: 12 }).map((p) => p.join('/')) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60, unit: 'grapheme' }) },
    // very long: one huge level, or more levels than the broker allows
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1_000, max: 60_000 }), fc.constantFrom('x', 'é', '/')).map(([n, c]) => `scanbox/v1/d/ME/up/${c.repeat(n)}`) },
    { weight: 1, arbitrary: fc.integer({ min: 90, max: 300 }).map((n) => Array.from({ length: n }, () => 'a').join('/')) },
  );
  return shapes;
}

function connect(): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect(cloud.mqttUrl, { clientId: me.deviceId, username: me.deviceId, password: me.secret, reconnectPeriod: 0, clean: true });
    c.once('connect', () => resolve(c));
    c.once('error', reject);
  });
}

/**
 * Whether this PUBLISH reaches the ACL hook: the broker's front door (cloud/mqtt-edge.ts) cuts a
 * packet over MAX_PACKET_BYTES, aedes' own validation closes on a wildcard, empty or too deep topic.
 */
function reachesAcl(topic: string, payload: string, qos: 0 | 1): boolean {
  const remaining = 2 + Buffer.byteLength(topic) + (qos ? 2 : 0) + Buffer.byteLength(payload);
  return remaining <= MAX_PACKET_BYTES && topic.length > 0 && !topic.includes('+') && !topic.includes('#') && topic.split('/').length <= AEDES_MAX_TOPIC_LEVELS;
}

describe('random topics published by a paired box', () => {
  it(`${MQTT_TOPIC_CASES} topics: every one closes the connection, reaches no service, moves no money`, async () => {
    const own = new Set(UP_KINDS.map((k) => upTopic(me.deviceId, k)));
    const cases = fc
      .sample(topics(), { seed: SEED, numRuns: MQTT_TOPIC_CASES * 2 })
      .map((t) => t.replaceAll('OTHER', other.deviceId).replaceAll('ME', me.deviceId))
      .filter((t) => !own.has(t) && Buffer.byteLength(t) <= 0xffff)
      .slice(0, MQTT_TOPIC_CASES);
    expect(cases).toHaveLength(MQTT_TOPIC_CASES);
    const before = await money(cloud);
    let counted = 0;
    let closedByBroker = 0;
    for (const [n, topic] of cases.entries()) {
      const client = await connect();
      const refused0 = cloud.metrics.get('publish_refused_total');
      const closed = closedWithin(client, 3_000);
      const payload = JSON.stringify(payMsg(me.deviceId, 1_000 + n));
      const qos = (n % 2) as 0 | 1;
      rawPublish(client, topic, payload, qos);
      await closed.catch((e: Error) => {
        client.end(true);
        throw new Error(`case ${n}: topic ${JSON.stringify(topic.slice(0, 200))} was not refused: ${e.message}`);
      });
      const delta = cloud.metrics.get('publish_refused_total') - refused0;
      if (reachesAcl(topic, payload, qos)) {
        expect({ n, topic: topic.slice(0, 200), counted: delta }).toEqual({ n, topic: topic.slice(0, 200), counted: 1 });
        counted++;
      } else {
        closedByBroker++;
      }
      client.end(true);
    }
    console.log(`fuzz mqtt-topics: ${cases.length} cases, ${cases.length} refused (${counted} by the ACL hook and counted, ${closedByBroker} by aedes' topic validation), 0 accepted`);
    expect(counted + closedByBroker).toBe(MQTT_TOPIC_CASES);
    expect(await money(cloud)).toEqual(before);
    expect(before).toEqual({ attempts: [], gatewayCalls: 0, ledger: 0 });
    expect((await scrape(cloud.metricsUrl))('publish_refused_total')).toBe(counted);
    expect((await scrape(cloud.metricsUrl))('messages_total')).toBe(0);
  });

  it('afterwards the same box can still pay on its own topic', async () => {
    const box = await TestBox.of(cloud, me);
    await box.send('pay', payMsg(me.deviceId, 1));
    expect(await box.next('result')).toMatchObject({ outTradeNo: `${me.deviceId}-1`, state: 'SUCCESS' });
    expect(cloud.gw.count('pay')).toBe(1);
    await box.close();
  });
});
