import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeDown, parseTopic } from '../../protocol/index.js';
import { CommandWatch } from '../../cloud/fleet/command-watch.js';
import { createLogger } from '../../cloud/log.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { FakeClock } from '../support/fake-clock.js';

/** The running cloud's side of `scanbox-cloud devices reboot|unpair` (cloud/fleet/command-watch.ts), on a real store. */
const GONE_MS = 15_000;
const GRACE_MS = 300_000;

let store: SqliteStore;
let clock: FakeClock;
let published: { topic: string; payload: string; qos: 0 | 1 }[];
let failPublish: boolean;
let watch: CommandWatch;

async function pair(deviceId: string, hardwareId: string): Promise<void> {
  if (!(await store.getMerchant('M1'))) await store.addMerchant('M1', {}, clock.now());
  const code = `CODE${deviceId.toUpperCase().padEnd(6, '0')}`;
  await store.createPairingCode({ code, merchantId: 'M1', storeId: 'S1', createdAt: clock.now(), expiresAt: clock.now() + 60_000 });
  const r = await store.redeemPairingCode(code, hardwareId, clock.now(), { deviceId, secretHash: 'h', firmware: null });
  if (!r.ok) throw new Error(`pairing ${deviceId} failed`);
}

const queue = (id: string, command: 'reboot' | 'unpair', deviceId = 'box1') => store.addDeviceCommand({ id, deviceId, command }, clock.now());
const commands = () => published.map((p) => ({ deviceId: parseTopic(p.topic).deviceId, qos: p.qos, msg: decodeDown('command', p.payload) }));
const row = async (id: string) => (await store.listDeviceCommands()).find((c) => c.id === id);

beforeEach(async () => {
  store = new SqliteStore(':memory:');
  clock = new FakeClock();
  published = [];
  failPublish = false;
  watch = new CommandWatch({
    store,
    clock,
    logger: createLogger('silent'),
    pollMs: 60_000,
    goneMs: GONE_MS,
    graceMs: GRACE_MS,
    downVersionFor: () => 1,
    publish: async (topic, payload, qos) => {
      if (failPublish) throw new Error('broker gone');
      published.push({ topic, payload, qos });
    },
  });
  await pair('box1', 'hw1');
});
afterEach(async () => {
  await store.close();
});

describe('command watch', () => {
  it('sends a queued command on down/command (QoS 1) only once the box can receive it: subscribed, or connected with a persistent session', async () => {
    await queue('cmd-1', 'reboot');
    await watch.poll();
    watch.connected('box1', false);
    await watch.poll();
    expect(published).toEqual([]);
    watch.subscribed('box1');
    await watch.poll();
    expect(commands()).toMatchObject([{ deviceId: 'box1', qos: 1, msg: { id: 'cmd-1', command: 'reboot', v: 1 } }]);
    expect(await row('cmd-1')).toMatchObject({ sentAt: clock.now(), outcome: 'sent' });

    await queue('cmd-2', 'reboot');
    watch.disconnected('box1');
    await watch.poll();
    expect(published).toHaveLength(1);
    watch.connected('box1', true);
    await watch.poll();
    expect(commands().map((c) => c.msg.id)).toEqual(['cmd-1', 'cmd-2']);
    await watch.poll();
    expect(published).toHaveLength(2);
  });

  it("unpair: the box is revoked once it has been gone unpairGoneMs; a box back sooner (a dropped link, a crash) is sent the unpair again", async () => {
    await queue('cmd-u', 'unpair');
    watch.connected('box1', true);
    await watch.poll();
    watch.disconnected('box1');
    clock.advanceSync(GONE_MS - 1);
    await watch.poll();
    expect((await store.getDevice('box1'))?.status).toBe('active');
    watch.connected('box1', true);
    await watch.poll();
    await watch.poll();
    expect(commands().map((c) => c.msg.id)).toEqual(['cmd-u', 'cmd-u']);
    expect(await row('cmd-u')).toMatchObject({ sentAt: clock.now() - (GONE_MS - 1), doneAt: null });

    watch.disconnected('box1');
    clock.advanceSync(GONE_MS);
    await watch.poll();
    expect(await store.getDevice('box1')).toMatchObject({ status: 'revoked', revokedAt: clock.now() });
    expect(await row('cmd-u')).toMatchObject({ doneAt: clock.now(), outcome: 'revoked' });
  });

  it('unpair: revoked unpairGraceMs after it was first sent, even while the box stays connected', async () => {
    await queue('cmd-u', 'unpair');
    watch.connected('box1', true);
    await watch.poll();
    clock.advanceSync(GRACE_MS - 1);
    await watch.poll();
    expect((await store.getDevice('box1'))?.status).toBe('active');
    clock.advanceSync(1);
    await watch.poll();
    expect((await store.getDevice('box1'))?.status).toBe('revoked');
    expect(published).toHaveLength(1);
  });

  it('a second connection of the same box (a takeover) closing the first is not the box leaving', async () => {
    await queue('cmd-u', 'unpair');
    watch.connected('box1', true);
    await watch.poll();
    watch.connected('box1', true);
    watch.disconnected('box1');
    clock.advanceSync(GONE_MS * 2);
    await watch.poll();
    expect((await store.getDevice('box1'))?.status).toBe('active');
  });

  it('a command for a box revoked before it could be sent is dropped, never sent', async () => {
    await queue('cmd-1', 'reboot');
    await store.revokeDevice('box1', clock.now());
    watch.connected('box1', true);
    await watch.poll();
    expect(published).toEqual([]);
    expect(await row('cmd-1')).toMatchObject({ sentAt: null, outcome: 'dropped' });
    expect(await store.openDeviceCommands()).toEqual([]);
  });

  it('a publish that fails leaves the command queued: it goes out at the next poll', async () => {
    await queue('cmd-1', 'reboot');
    failPublish = true;
    watch.connected('box1', true);
    await watch.poll();
    expect(await row('cmd-1')).toMatchObject({ sentAt: null, doneAt: null });
    failPublish = false;
    await watch.poll();
    expect(commands().map((c) => c.msg.id)).toEqual(['cmd-1']);
    expect(await row('cmd-1')).toMatchObject({ outcome: 'sent' });
  });

  it("another box's connection sends nothing of this box's", async () => {
    await pair('box2', 'hw2');
    await queue('cmd-1', 'reboot');
    watch.connected('box2', true);
    await watch.poll();
    expect(published).toEqual([]);
  });
});
