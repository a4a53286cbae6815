import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { downTopic, upTopic } from '../../protocol/index.js';
import type { DynsecAccounts } from '../../cloud/broker/dynsec.js';
import { embeddedServiceLink, type ServiceLink } from '../../cloud/broker/service-link.js';
import { startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import { connectBox, openAccounts, openLink } from './external-kit.js';

/**
 * The service link's contract, one suite run against each implementation: the embedded broker's
 * in-process subscriber, and the MQTT 5 client of an external broker (Mosquitto with dynamic
 * security). What differs is said by the fixture: who the link reports as the publisher of a
 * message on another box's topic (aedes knows; on Mosquitto the ACL refuses that message).
 */
const BOX = 'sbBOX0000001';
const OTHER = 'sbOTHER00001';

interface Rig {
  link: ServiceLink;
  box: MqttClient;
  teardown(): Promise<void>;
}

interface Fixture {
  name: string;
  /** What a message published by BOX on OTHER's up/ becomes. */
  foreign: 'delivered with the real publisher' | 'refused by the broker';
  start(): Promise<void>;
  rig(): Promise<Rig>;
  stop(): Promise<void>;
}

function embedded(): Fixture {
  return {
    name: 'embedded (aedes, in-process)',
    foreign: 'delivered with the real publisher',
    start: async () => undefined,
    async rig() {
      const aedes = await Aedes.createBroker();
      const link = await embeddedServiceLink(aedes);
      const server = createServer(aedes.handle);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const box = await mqtt.connectAsync(`mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, { clientId: BOX });
      return {
        link,
        box,
        async teardown() {
          await box.endAsync(true);
          await new Promise<void>((r) => aedes.close(() => r()));
          await new Promise<void>((r) => server.close(() => r()));
        },
      };
    },
    stop: async () => undefined,
  };
}

function external(): Fixture {
  let m: MosquittoBroker;
  let accounts: DynsecAccounts;
  const secrets = { [BOX]: 'box-secret-0000000000000000000000000000000', [OTHER]: 'other-secret-00000000000000000000000000000' };
  return {
    name: 'external (Mosquitto 2 with dynamic security, shared subscription)',
    foreign: 'refused by the broker',
    async start() {
      m = await startMosquitto();
      accounts = await openAccounts(m);
      for (const [id, secret] of Object.entries(secrets)) await accounts.add(id, secret);
    },
    async rig() {
      const link = await openLink(m);
      const box = await connectBox(m, BOX, secrets[BOX]);
      return {
        link,
        box,
        async teardown() {
          await box.endAsync(true);
          await link.close();
        },
      };
    },
    async stop() {
      await accounts?.close();
      await m?.stop();
    },
  };
}

describe.each([embedded(), external()])('service link: $name', (fixture) => {
  let rig: Rig;
  const got: [string, string, string | undefined][] = [];

  beforeAll(() => fixture.start(), 30_000);
  afterAll(() => fixture.stop(), 15_000);
  beforeEach(async () => {
    got.length = 0;
    rig = await fixture.rig();
    rig.link.onMessage((topic, payload, publisher) => got.push([topic, payload.toString(), publisher]));
  });
  afterEach(() => rig.teardown());

  it("hands every up/ message of a box's own topics over, in order, with the box as publisher", async () => {
    await rig.box.publishAsync(upTopic(BOX, 'pay'), '{"a":1}', { qos: 1 });
    await rig.box.publishAsync(upTopic(BOX, 'heartbeat'), '{"b":2}', { qos: 0 });
    await rig.box.publishAsync(upTopic(BOX, 'query'), '{"c":3}', { qos: 1 });
    await expect.poll(() => got.length, { timeout: 5_000 }).toBe(3);
    expect(got).toEqual([
      [upTopic(BOX, 'pay'), '{"a":1}', BOX],
      [upTopic(BOX, 'heartbeat'), '{"b":2}', BOX],
      [upTopic(BOX, 'query'), '{"c":3}', BOX],
    ]);
  });

  it("a message on another box's up/ topic is delivered with its real publisher, or refused by the broker", async () => {
    await rig.box.publishAsync(upTopic(OTHER, 'pay'), '{"forged":1}', { qos: 1 });
    // The box's own message after it: when this one is in, the one before has been dealt with.
    await rig.box.publishAsync(upTopic(BOX, 'pay'), '{"own":1}', { qos: 1 });
    await expect.poll(() => got.some(([t]) => t === upTopic(BOX, 'pay')), { timeout: 5_000 }).toBe(true);
    const own: [string, string, string | undefined] = [upTopic(BOX, 'pay'), '{"own":1}', BOX];
    if (fixture.foreign === 'delivered with the real publisher') expect(got).toEqual([[upTopic(OTHER, 'pay'), '{"forged":1}', BOX], own]);
    else expect(got).toEqual([own]);
  });

  it('does not see down/ traffic, and publishes to a subscribed box with the QoS asked', async () => {
    const received = new Promise<[string, string, number]>((resolve) => rig.box.on('message', (t, p, packet) => resolve([t, p.toString(), packet.qos])));
    await rig.box.subscribeAsync(downTopic(BOX, 'result'), { qos: 1 });
    await rig.link.publish(downTopic(BOX, 'result'), '{"r":1}', 1);
    expect(await received).toEqual([downTopic(BOX, 'result'), '{"r":1}', 1]);
    // A round trip after the down/ message: had the link seen it, it would be in before this.
    await rig.box.publishAsync(upTopic(BOX, 'ack'), '{"k":1}', { qos: 1 });
    await expect.poll(() => got.length, { timeout: 5_000 }).toBe(1);
    expect(got).toEqual([[upTopic(BOX, 'ack'), '{"k":1}', BOX]]);
  });

  it('after close nothing more is handed over', async () => {
    await rig.link.close();
    await rig.box.publishAsync(upTopic(BOX, 'pay'), '{"a":1}', { qos: 1 });
    // A second subscriber of the same traffic, connected now, hears the box's next message: the link had its chance at the first.
    const probe = await fixture.rig();
    const later: string[] = [];
    probe.link.onMessage((t, p) => later.push(p.toString()));
    await probe.box.publishAsync(upTopic(BOX, 'pay'), '{"b":2}', { qos: 1 });
    await expect.poll(() => later, { timeout: 5_000 }).toContain('{"b":2}');
    await probe.teardown();
    expect(got).toEqual([]);
  });
});
