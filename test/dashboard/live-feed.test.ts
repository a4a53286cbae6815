import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino from 'pino';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveFeed } from '../../cloud/dashboard/live-feed.js';
import { flowTotals, TrafficSeries } from '../../cloud/dashboard/traffic-series.js';
import { Metrics } from '../../cloud/metrics.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import type { CloudStore, DeviceRow } from '../../cloud/store/store.js';
import { FakeClock } from '../support/fake-clock.js';
import { tempDir } from '../cloud/harness.js';

/**
 * The live stream's cost rule: one store read and one rendering per push, whatever the number of
 * open dashboards, and the same bytes to each; only what changed is sent.
 */
function device(id: string, patch: Partial<DeviceRow> = {}): DeviceRow {
  return { deviceId: id, hardwareId: `hw-${id}`, merchantId: 'M1', storeId: 'S1', status: 'active', connectivity: 'online', lastSeenAt: 1, firmware: '1.0', outboxDepth: 0, pendingAttempts: 0, pairedAt: 1, revokedAt: null, ...patch };
}

function fakeStream(): { req: IncomingMessage; res: ServerResponse; text: () => string; full: (v: boolean) => void } {
  const chunks: string[] = [];
  let needDrain = false;
  const res = {
    writeHead: () => res,
    write: (c: string) => (chunks.push(c), true),
    end: () => undefined,
    socket: { setNoDelay: () => undefined },
    get writableNeedDrain() {
      return needDrain;
    },
  };
  return { req: new EventEmitter() as IncomingMessage, res: res as unknown as ServerResponse, text: () => chunks.join(''), full: (v) => (needDrain = v) };
}

/** A real store for the chart's minutes, one per test: several workers' feeds may share it. */
let opened: Array<{ store: SqliteStore; remove: () => void }> = [];
function minutesStore(): SqliteStore {
  const { dir, remove } = tempDir();
  const store = new SqliteStore(join(dir, 'cloud.db'));
  opened.push({ store, remove });
  return store;
}
afterEach(async () => {
  for (const o of opened) {
    await o.store.close();
    o.remove();
  }
  opened = [];
});

function setup(minutes: SqliteStore = minutesStore()) {
  const clock = new FakeClock();
  const metrics = new Metrics();
  let devices = [device('sbA'), device('sbB', { connectivity: 'offline', lastSeenAt: 5 })];
  let reads = 0;
  // The fleet is scripted (and its reads counted); the chart's minutes are the real store's.
  const store = { listDevices: async () => (reads++, devices.map((d) => ({ ...d }))) } as unknown as CloudStore;
  const feed = new LiveFeed({
    store,
    series: new TrafficSeries(() => flowTotals(metrics), minutes),
    clock,
    logger: pino({ level: 'silent' }),
    intervalMs: 2_000,
    maxStreams: 50,
    sessionLive: async () => ({ expiresAt: Infinity }),
  });
  const session = { idHash: 'h', expiresAt: Infinity };
  return { clock, metrics, feed, session, reads: () => reads, set: (next: DeviceRow[]) => (devices = next) };
}

describe('dashboard live feed', () => {
  it('reads nothing while nobody watches; with 20 dashboards open, one read per push and the same bytes to each', async () => {
    const t = setup();
    await t.feed.tick();
    await t.feed.tick();
    expect(t.reads()).toBe(0);
    const streams = Array.from({ length: 20 }, () => fakeStream());
    for (const s of streams) expect(t.feed.attach(s.req, s.res, t.session, t.feed.version, {})).toBe(true);
    await t.feed.tick(); // the first watcher's push: a fresh snapshot, every table reloads once
    t.set([device('sbA', { connectivity: 'offline', lastSeenAt: 9 }), device('sbB', { connectivity: 'offline', lastSeenAt: 5 })]);
    await t.feed.tick();
    await t.feed.tick(); // nothing changed
    expect(t.reads()).toBe(3);
    expect(t.feed.stats.pushes).toBe(3); // the two unwatched ticks cost nothing to count
    const first = streams[0]!.text();
    for (const s of streams) expect(s.text()).toBe(first);
    expect(first.match(/event: boxes-reload/g)).toHaveLength(1);
    // The changed row only, in place by its id; sbB did not change.
    const boxes = first.slice(first.indexOf('event: boxes\n'));
    expect(boxes).toContain('id="box-sbA" data-state="offline" hx-swap-oob="true"');
    expect(boxes.split('\n\n')[0]).not.toContain('box-sbB');
    expect(first.match(/event: fleet/g)).toHaveLength(2); // the counts changed once after the first push
  });

  it('tells a page drawn before a change, or a stream that missed a push, to reload its table', async () => {
    const t = setup();
    const a = fakeStream();
    t.feed.attach(a.req, a.res, t.session, t.feed.version, {});
    await t.feed.tick();
    const drawnAt = t.feed.version;
    t.set([device('sbA', { pendingAttempts: 3 }), device('sbB', { connectivity: 'offline', lastSeenAt: 5 })]);
    await t.feed.tick();
    expect(t.feed.version).toBeGreaterThan(drawnAt);
    const late = fakeStream();
    t.feed.attach(late.req, late.res, t.session, drawnAt, {});
    expect(late.text()).toContain('event: boxes-reload');

    a.full(true);
    t.set([device('sbA', { pendingAttempts: 4 }), device('sbB', { connectivity: 'offline', lastSeenAt: 5 })]);
    const before = a.text();
    await t.feed.tick();
    expect(a.text()).toBe(before); // skipped while its socket is full
    a.full(false);
    t.set([device('sbA', { pendingAttempts: 5 }), device('sbB', { connectivity: 'offline', lastSeenAt: 5 })]);
    await t.feed.tick();
    expect(a.text().slice(before.length)).toMatch(/^event: boxes-reload/);
  });

  it('charts the payments and abnormal flows the counters saw, per minute', async () => {
    const t = setup();
    const s = fakeStream();
    t.feed.attach(s.req, s.res, t.session, t.feed.version, {});
    await t.feed.tick();
    t.metrics.inc('attempts_final_total', { state: 'SUCCESS', wallet: 'wechat', reason: 'PAID' }, 7);
    t.metrics.inc('attempts_final_total', { state: 'REVERSED', wallet: 'wechat', reason: 'DEADLINE' }, 2);
    t.metrics.observe('gateway_call_duration_seconds', { call: 'pay', channel: 'wechat', outcome: 'in_progress' }, 0.01);
    await t.clock.advance(2_000);
    await t.feed.tick();
    const text = s.text();
    expect(text).toContain('payments per minute over the last hour: 7 in all, 7 this minute');
    expect(text).toMatch(/data-flow="reversed" data-total="2"/);
    expect(text).toMatch(/data-flow="userpaying" data-total="1"/);
    expect(text).toMatch(/data-flow="duplicate" data-total="0"/);
  });

  it("charts every worker's payments on one store, whichever worker serves the dashboard, and keeps them over a restart", async () => {
    const shared = minutesStore();
    const w1 = setup(shared);
    const w2 = setup(shared);
    const s = fakeStream();
    w1.feed.attach(s.req, s.res, w1.session, w1.feed.version, {});
    // w2 pays 5 and nobody watches it: its tick still adds them to the store's minute.
    w2.metrics.inc('attempts_final_total', { state: 'SUCCESS', wallet: 'alipay', reason: 'PAID' }, 5);
    await w2.feed.tick();
    w1.metrics.inc('attempts_final_total', { state: 'SUCCESS', wallet: 'wechat', reason: 'PAID' }, 3);
    await w1.feed.tick();
    expect(s.text()).toContain('payments per minute over the last hour: 8 in all, 8 this minute');

    // w1 restarts: a new process, its counters at zero; the minutes it and w2 added are still there.
    const again = setup(shared);
    const after = fakeStream();
    again.feed.attach(after.req, after.res, again.session, again.feed.version, {});
    await again.feed.tick();
    expect(after.text()).toContain('payments per minute over the last hour: 8 in all');
  });
});
