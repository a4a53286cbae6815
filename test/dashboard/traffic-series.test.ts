import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { TrafficSeries, type FlowCounts, type TrafficLog } from '../../cloud/dashboard/traffic-series.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { tempDir } from '../cloud/harness.js';

/** The chart's minutes as the store keeps them: what a failed write held back is added with the next. */
const M = 60_000;
const counts = (paid: number): FlowCounts => ({ paid, userpaying: 0, reversed: 0, refunded: 0, duplicate: 0, flagged: 0, registerRefunds: 0 });

let store: SqliteStore;
let remove: () => void;
beforeEach(() => {
  let dir: string;
  ({ dir, remove } = tempDir());
  store = new SqliteStore(join(dir, 'cloud.db'));
});
afterEach(async () => {
  await store.close();
  remove();
});

it('a minute the store could not take is added with the next sample, never lost nor counted twice', async () => {
  let down = true;
  const log: TrafficLog = {
    addTraffic: async (minute, c) => {
      if (down) throw new Error('store unavailable');
      return store.addTraffic(minute, c);
    },
    trafficSince: (since) => store.trafficSince(since),
    pruneTraffic: (before) => store.pruneTraffic(before),
  };
  let paid = 0;
  const series = new TrafficSeries(async () => counts(paid), log);
  paid = 4;
  await expect(series.sample(10 * M)).rejects.toThrow('store unavailable');
  down = false;
  paid = 6;
  await series.sample(10 * M + 2_000);
  await series.sample(10 * M + 4_000); // nothing moved: nothing written
  const window = await series.window(10 * M + 5_000);
  expect(window).toHaveLength(60);
  expect(window.at(-1)).toEqual({ at: 10 * M, counts: counts(6) });
  expect(window.slice(0, -1).every((b) => b.counts.paid === 0)).toBe(true);
});

it('forgets minutes older than twice the window, once a minute', async () => {
  await store.addTraffic(0, { paid: 1 });
  await store.addTraffic(200 * M, { paid: 2 });
  const series = new TrafficSeries(async () => counts(0), store, 60);
  await series.sample(200 * M);
  expect(await store.trafficSince(0)).toEqual([{ minute: 200 * M, flow: 'paid', count: 2 }]);
});
