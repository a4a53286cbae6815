import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downTopic, upTopic } from '../../protocol/index.js';
import type { DynsecAccounts } from '../../cloud/broker/dynsec.js';
import type { ExternalServiceLink } from '../../cloud/broker/external-link.js';
import { useMosquitto } from '../support/mosquitto.js';
import { connectBox, openAccounts, openLink, openWorker } from './external-kit.js';

/**
 * Two cloud workers' links on one Mosquitto, in one shared-subscription group: the boxes' messages
 * are split between them (each message to one worker, none lost, none twice), and when a worker
 * leaves (closes, dies, or stops receiving to drain) the other gets every message from then on.
 */
const mosquitto = useMosquitto();
const BOXES = Array.from({ length: 6 }, (_, i) => `sbSHARE0000${i}`);
const PER_BOX = 10;
let accounts: DynsecAccounts;
const boxes = new Map<string, MqttClient>();

beforeAll(async () => {
  accounts = await openAccounts(mosquitto());
  for (const id of BOXES) {
    await accounts.add(id, `secret-of-${id}-000000000000000000000000`);
    boxes.set(id, await connectBox(mosquitto(), id, `secret-of-${id}-000000000000000000000000`));
  }
}, 30_000);
afterAll(async () => {
  for (const b of boxes.values()) await b.endAsync(true);
  await accounts.close();
});

/** Each worker's messages, as `<topic>|<payload>`. */
function collect(link: ExternalServiceLink): string[] {
  const got: string[] = [];
  link.onMessage((topic, payload, publisher) => got.push(`${topic}|${payload.toString()}|${publisher}`));
  return got;
}

/** Every box publishes `count` messages tagged `tag`; returns what the workers must have received between them. */
async function publishAll(tag: string, count = PER_BOX): Promise<string[]> {
  const sent: string[] = [];
  await Promise.all(
    BOXES.map(async (id) => {
      for (let i = 0; i < count; i++) {
        const payload = JSON.stringify({ tag, i });
        await boxes.get(id)!.publishAsync(upTopic(id, 'heartbeat'), payload, { qos: 1 });
        sent.push(`${upTopic(id, 'heartbeat')}|${payload}|${id}`);
      }
    }),
  );
  return sent;
}

const tagged = (got: string[], tag: string) => got.filter((m) => m.includes(`"tag":"${tag}"`));

async function allArrived(tag: string, count: number, ...workers: string[][]): Promise<void> {
  await expect.poll(() => tagged(workers.flat(), tag).length, { timeout: 5_000 }).toBe(count);
}

describe('shared subscription across two workers', () => {
  it('splits the boxes\' messages between the workers: each message to exactly one, none lost', async () => {
    const w1 = await openLink(mosquitto());
    const w2 = await openLink(mosquitto());
    const [got1, got2] = [collect(w1), collect(w2)];
    const sent = await publishAll('split');
    await allArrived('split', sent.length, got1, got2);
    expect([...tagged(got1, 'split'), ...tagged(got2, 'split')].sort()).toEqual([...sent].sort());
    // Mosquitto hands the group's messages round: neither worker is left idle or takes all.
    expect(tagged(got1, 'split').length).toBeGreaterThanOrEqual(sent.length / 4);
    expect(tagged(got2, 'split').length).toBeGreaterThanOrEqual(sent.length / 4);
    await w1.close();
    await w2.close();
  });

  it.each([
    ['closes its connection', (w: ExternalServiceLink) => w.close()],
    ['stops receiving to drain (its publishes still go out)', (w: ExternalServiceLink) => w.stopReceiving()],
  ] as const)('when one worker %s, the other gets every message from then on', async (_name, leave) => {
    const w1 = await openLink(mosquitto());
    const w2 = await openLink(mosquitto());
    const [got1, got2] = [collect(w1), collect(w2)];
    const warm = await publishAll('before', 2);
    await allArrived('before', warm.length, got1, got2);
    expect(got1.length).toBeGreaterThan(0);
    await leave(w1);
    const before1 = got1.length;
    const sent = await publishAll('after');
    await allArrived('after', sent.length, got2);
    expect(tagged(got2, 'after').sort()).toEqual([...sent].sort());
    expect(got1.length).toBe(before1);
    await w1.close();
    await w2.close();
  });

  it('a worker that stopped receiving still publishes down/ messages', async () => {
    const w1 = await openLink(mosquitto());
    await w1.stopReceiving();
    const box = boxes.get(BOXES[0]!)!;
    await box.subscribeAsync(downTopic(BOXES[0]!, 'result'), { qos: 1 });
    const received = new Promise<string>((resolve) => box.once('message', (_t, p) => resolve(p.toString())));
    await w1.publish(downTopic(BOXES[0]!, 'result'), '{"drained":1}', 1);
    expect(await received).toBe('{"drained":1}');
    await box.unsubscribeAsync(downTopic(BOXES[0]!, 'result'));
    await w1.close();
  });

  it('a worker whose connection dies without a DISCONNECT leaves the group too', async () => {
    const w1 = await openWorker(mosquitto());
    const w2 = await openLink(mosquitto());
    const [got1, got2] = [collect(w1.link), collect(w2)];
    const mark = mosquitto().lines().length;
    // What a SIGKILL leaves: the socket closed by the kernel, no DISCONNECT, no reconnect.
    await w1.client.endAsync(true);
    await mosquitto().waitForLine(new RegExp(`^Client ${w1.client.options.clientId} (closed its connection|disconnected)`), 3_000, mark);
    const sent = await publishAll('orphan');
    await allArrived('orphan', sent.length, got2);
    expect(tagged(got2, 'orphan').sort()).toEqual([...sent].sort());
    expect(tagged(got1, 'orphan')).toEqual([]);
    await w2.close();
  });
});
