import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downTopic, upTopic } from '../../protocol/index.js';
import { embeddedServiceLink, type ServiceLink } from '../../cloud/broker/service-link.js';

/** The services' in-process side of the embedded broker. */
let aedes: Aedes;
let server: Server;
let link: ServiceLink;
let client: MqttClient;
const got: [string, string, string | undefined][] = [];

beforeEach(async () => {
  got.length = 0;
  aedes = await Aedes.createBroker();
  link = await embeddedServiceLink(aedes);
  link.onMessage((topic, payload, publisher) => got.push([topic, payload.toString(), publisher]));
  server = createServer(aedes.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  client = await mqtt.connectAsync(`mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, { clientId: 'sbBOX0000001' });
});
afterEach(async () => {
  await client.endAsync(true);
  await new Promise<void>((r) => aedes.close(() => r()));
  await new Promise<void>((r) => server.close(() => r()));
});

describe('embedded service link', () => {
  it('hands every up/ message over with the id of the client that published it', async () => {
    await client.publishAsync(upTopic('sbBOX0000001', 'pay'), '{"a":1}', { qos: 1 });
    await client.publishAsync(upTopic('sbOTHER00001', 'heartbeat'), '{"b":2}', { qos: 0 });
    await expect.poll(() => got.length).toBe(2);
    expect(got).toEqual([
      [upTopic('sbBOX0000001', 'pay'), '{"a":1}', 'sbBOX0000001'],
      [upTopic('sbOTHER00001', 'heartbeat'), '{"b":2}', 'sbBOX0000001'],
    ]);
  });

  it('does not see down/ traffic, and publishes to a subscribed box with the QoS asked', async () => {
    const received = new Promise<[string, string, number]>((resolve) => client.on('message', (t, p, packet) => resolve([t, p.toString(), packet.qos])));
    await client.subscribeAsync(downTopic('sbBOX0000001', 'result'), { qos: 1 });
    await link.publish(downTopic('sbBOX0000001', 'result'), '{"r":1}', 1);
    expect(await received).toEqual([downTopic('sbBOX0000001', 'result'), '{"r":1}', 1]);
    expect(got).toEqual([]);
  });

  it('after close nothing more is handed over', async () => {
    await link.close();
    await client.publishAsync(upTopic('sbBOX0000001', 'pay'), '{"a":1}', { qos: 1 });
    expect(got).toEqual([]);
  });
});
