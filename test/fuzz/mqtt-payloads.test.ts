import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { salvageMessageId, upTopic, UP_KINDS } from '../../protocol/index.js';
import { pairBox, payMsg, TestBox } from '../cloud/harness.js';
import { MAX_PACKET_BYTES } from '../../cloud/broker/mqtt-edge.js';
import { money, scrape, startProbeCloud, upMsg, type ProbeCloud } from '../security/support.js';
import { mutants, UP_READ_RULES, type Json } from './mutations.js';

/**
 * Fuzzing the cloud with MQTT payloads: a paired box publishes mutated versions of valid messages
 * (protocol/examples.ts, made its own) on each of its up/ kinds over real TCP. Every mutant the
 * reading rules refuse must be answered on the box's down/error with the ErrorCode its mutation
 * calls for (mutations.ts; the decoder is not asked), be counted, and change no money state;
 * afterwards a valid payment still goes through. Mutants the rules read (an unknown field, a newer
 * `v`, an unknown value of an open enum) would be served, and money would move: they are left to
 * test/fuzz/protocol.test.ts and the compatibility tests (test/cloud/compat.test.ts).
 */
export const MQTT_PAYLOAD_CASES_PER_KIND = 1_000;
export const MQTT_PAYLOAD_CASES = MQTT_PAYLOAD_CASES_PER_KIND * UP_KINDS.length;
const SEED = 6_0003;

let cloud: ProbeCloud;
let box: TestBox;
const byMutation = new Map<string, number>();
let refused = 0;
let accepted = 0;

beforeAll(async () => {
  cloud = await startProbeCloud();
  box = await TestBox.of(cloud, await pairBox(cloud, 'hw-fuzz-payloads'));
});
afterAll(async () => {
  console.log(`fuzz mqtt-payloads: ${refused + accepted} cases, ${refused} refused, ${accepted} accepted (${[...byMutation].map(([m, n]) => `${m} ${n}`).join(', ')})`);
  await box.close();
  await cloud.close();
});

describe('mutated MQTT payloads from a paired box', () => {
  it.each(UP_KINDS.map((k, i) => [k, i] as const))(`up/%s: ${MQTT_PAYLOAD_CASES_PER_KIND} refused mutants, each answered on down/error with the code its mutation calls for`, async (kind, i) => {
    const base = upMsg(kind, box.deviceId, 1) as unknown as Record<string, Json>;
    // A PUBLISH over MAX_PACKET_BYTES never reaches the decoder: the broker's front door cuts the
    // connection at its header (test/security/oversize-packets.test.ts, test/cloud/mqtt-edge.test.ts).
    const topicBytes = Buffer.byteLength(upTopic(box.deviceId, kind));
    const cases = fc
      .sample(mutants(base, UP_READ_RULES[kind]), { seed: SEED + i, numRuns: MQTT_PAYLOAD_CASES_PER_KIND * 2 })
      .filter((c) => c.expect !== 'read' && 2 + topicBytes + 2 + c.payload.length <= MAX_PACKET_BYTES)
      .slice(0, MQTT_PAYLOAD_CASES_PER_KIND);
    expect(cases).toHaveLength(MQTT_PAYLOAD_CASES_PER_KIND);
    const before = await money(cloud);
    const invalid0 = cloud.metrics.get('messages_invalid_total');
    for (const [n, c] of cases.entries()) {
      const code = c.expect;
      await box.client.publishAsync(upTopic(box.deviceId, kind), c.payload, { qos: 1 });
      const err = await box.next('error', () => true, 3_000).catch((e: Error) => {
        throw new Error(`case ${n} (${c.mutation}) on up/${kind} got no down/error: ${e.message.slice(0, 200)}\npayload: ${c.payload.toString().slice(0, 300)}`);
      });
      expect({ case: n, mutation: c.mutation, code: err.code, refId: err.refId }).toEqual({ case: n, mutation: c.mutation, code, refId: salvageMessageId(c.payload) });
      refused++;
      byMutation.set(c.mutation, (byMutation.get(c.mutation) ?? 0) + 1);
    }
    expect(cloud.metrics.get('messages_invalid_total')).toBe(invalid0 + cases.length);
    expect(await money(cloud)).toEqual(before);
    expect(before).toEqual({ attempts: [], gatewayCalls: 0, ledger: 0 });
    expect(box.received).toEqual([]);
  });

  it('afterwards the cloud is up, counted every refusal on GET /metrics, and a valid pay still works', async () => {
    const metrics = await scrape(cloud.metricsUrl);
    expect(metrics('messages_invalid_total')).toBe(MQTT_PAYLOAD_CASES);
    expect(refused).toBe(MQTT_PAYLOAD_CASES);
    await box.send('pay', payMsg(box.deviceId, 2));
    expect(await box.next('result')).toMatchObject({ outTradeNo: `${box.deviceId}-2`, state: 'SUCCESS' });
    const after = await money(cloud);
    expect(after.attempts.map((a) => a.outTradeNo)).toEqual([`${box.deviceId}-2`]);
    expect(cloud.gw.count('pay')).toBe(1);
  });
});
