import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { envelope, pairBox, payMsg, startTestCloud, TestBox, until } from './harness.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import type { RunningCloud } from '../../cloud/index.js';
import type { PairResponse } from '../../protocol/index.js';
import { Metrics, PREFIX } from '../../cloud/metrics.js';
import { AWAY_BOXES_EXPORTED, exportFleetGauges } from '../../cloud/fleet/fleet-gauges.js';
import { createLogger } from '../../cloud/log.js';
import type { CloudStore } from '../../cloud/store/store.js';
import { ExpositionError, parsePrometheusText, sampleValue, type Family } from '../support/prometheus-text.js';

/**
 * `/metrics` as Prometheus reads it (a strict parser of the text format, test/support/prometheus-text.ts),
 * and its series moving when payments, heartbeats and boxes do: a cloud over real MQTT with the
 * scripted gateway in process, every gateway call taking 40 ms.
 */
const LATENCY_MS = 40;
let gw: ScriptedGateway;
let cloud: RunningCloud;
let creds: PairResponse;
let box: TestBox | undefined;

async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(cloud.metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

const v = (f: Map<string, Family>, name: string, labels: Record<string, string> = {}) => sampleValue(f, PREFIX + name, labels);
const otn = (seq: number) => `${creds.deviceId}-${seq}`;

async function pay(seq: number, extra: Parameters<typeof payMsg>[2] = {}): Promise<string> {
  await box!.send('pay', payMsg(creds.deviceId, seq, extra));
  return (await box!.next('result', (m) => m.outTradeNo === otn(seq), 8_000)).state;
}

describe('GET /metrics', () => {
  beforeEach(async () => {
    gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS, latency: { minMs: LATENCY_MS, maxMs: LATENCY_MS } });
    cloud = await startTestCloud(gw, { gatewayCallTimeoutMs: 500 });
    creds = await pairBox(cloud);
    box = await TestBox.of(cloud, creds);
  });
  afterEach(async () => {
    await box?.close();
    await cloud?.close();
    gw.stop();
  });

  it('parses as Prometheus text after payments: each family typed and explained once, contiguous, histograms cumulative with +Inf = count', async () => {
    expect(await pay(1)).toBe('SUCCESS');
    const families = await scrape();
    expect([...families.keys()].every((n) => n.startsWith(PREFIX))).toBe(true);
    for (const f of families.values()) expect(f.help, f.name).toBeTruthy();
    expect(families.get(`${PREFIX}gateway_call_duration_seconds`)?.type).toBe('histogram');
    expect(families.get(`${PREFIX}attempts_final_total`)?.type).toBe('counter');
    expect(families.get(`${PREFIX}boxes`)?.type).toBe('gauge');
    // Every series the cloud declares is on the page, under the name its registry gives it.
    expect([...families.keys()].sort()).toEqual(new Metrics().registry.getMetricsAsArray().map((m) => m.name).sort());
  });

  it('a paid, a declined and a reversed payment move attempts by final state and wallet, and gateway latency by call, channel and outcome', async () => {
    const before = await scrape();
    expect(await pay(1)).toBe('SUCCESS');
    gw.pays.push('declined');
    expect(await pay(2, { wallet: 'alipay', code: '281234567890123456' })).toBe('FAILED');
    gw.pays.push('userpaying');
    expect(await pay(3)).toBe('REVERSED');
    const after = await scrape();
    const moved = (name: string, labels: Record<string, string>) => v(after, name, labels) - v(before, name, labels);

    expect(moved('attempts_final_total', { state: 'SUCCESS', wallet: 'wechat' })).toBe(1);
    expect(moved('attempts_final_total', { state: 'FAILED', wallet: 'alipay' })).toBe(1);
    expect(moved('attempts_final_total', { state: 'REVERSED', wallet: 'wechat' })).toBe(1);
    expect(moved('attempts_final_total', {})).toBe(3);
    expect(moved('attempts_final_total', { state: 'FAILED', reason: 'INSUFFICIENT_FUNDS' })).toBe(1);
    expect(moved('attempts_final_total', { state: 'REVERSED', reason: 'DEADLINE' })).toBe(1);

    const call = (labels: Record<string, string>) => ({ ...labels, channel: labels.channel ?? 'wechat' });
    expect(moved('gateway_call_duration_seconds_count', call({ call: 'pay', outcome: 'success' }))).toBe(1);
    expect(moved('gateway_call_duration_seconds_count', call({ call: 'pay', channel: 'alipay', outcome: 'failed' }))).toBe(1);
    expect(moved('gateway_call_duration_seconds_count', call({ call: 'pay', outcome: 'in_progress' }))).toBe(1);
    expect(moved('gateway_call_duration_seconds_count', call({ call: 'query', outcome: 'in_progress' }))).toBeGreaterThanOrEqual(1);
    expect(moved('gateway_call_duration_seconds_count', call({ call: 'reverse', outcome: 'reversed' }))).toBe(1);
    // Each call took the gateway's 40 ms: none is in the 25 ms bucket, and the sum holds them all.
    const paid = call({ call: 'pay', outcome: 'success' });
    expect(moved('gateway_call_duration_seconds_bucket', { ...paid, le: '0.025' })).toBe(0);
    expect(moved('gateway_call_duration_seconds_bucket', { ...paid, le: '+Inf' })).toBe(1);
    const calls = moved('gateway_call_duration_seconds_count', {});
    expect(moved('gateway_call_duration_seconds_sum', {})).toBeGreaterThanOrEqual((calls * LATENCY_MS * 0.9) / 1000);
  });

  it('a gateway call that times out is counted as unknown with its code TIMEOUT, at its full wait', async () => {
    gw.pays.push('hold');
    await box!.send('pay', payMsg(creds.deviceId, 1));
    const timedOut = { call: 'pay', channel: 'wechat', outcome: 'unknown', code: 'TIMEOUT' };
    const f = await until('timeout counted', async () => {
      const m = await scrape();
      return v(m, 'gateway_call_duration_seconds_count', timedOut) === 1 ? m : undefined;
    });
    expect(v(f, 'gateway_call_duration_seconds_sum', timedOut)).toBeGreaterThanOrEqual(0.49);
    expect(v(f, 'gateway_call_duration_seconds_bucket', { ...timedOut, le: '0.25' })).toBe(0);
  });

  it("a heartbeat's outbox depth is observed in its bucket", async () => {
    const before = await scrape();
    await box!.send('heartbeat', { ...envelope(), status: { firmware: '0.1.0', uptimeS: 5, outboxDepth: 7, pendingAttempts: 0, scanner: 'open', ecr: 'open' } });
    const after = await until('heartbeat observed', async () => {
      const m = await scrape();
      return v(m, 'box_outbox_depth_count') > v(before, 'box_outbox_depth_count') ? m : undefined;
    });
    const moved = (name: string, labels: Record<string, string> = {}) => v(after, name, labels) - v(before, name, labels);
    expect(moved('box_outbox_depth_count')).toBe(1);
    expect(moved('box_outbox_depth_sum')).toBe(7);
    expect(moved('box_outbox_depth_bucket', { le: '5' })).toBe(0);
    expect(moved('box_outbox_depth_bucket', { le: '10' })).toBe(1);
  });

  it('boxes: online while connected; gone, offline with when it was last seen, by device, merchant and store; back, online again', async () => {
    const online = await until('box online', async () => {
      const m = await scrape();
      return v(m, 'boxes', { connectivity: 'online' }) === 1 ? m : undefined;
    });
    expect(v(online, 'boxes', { connectivity: 'offline' })).toBe(0);
    const seen = { device_id: creds.deviceId, merchant_id: 'M1', store_id: 'S1' };
    expect(v(online, 'box_last_seen_timestamp_seconds', seen)).toBe(0);

    const leftAt = Date.now();
    await box!.close();
    box = undefined;
    const away = await until('box offline', async () => {
      const m = await scrape();
      return v(m, 'boxes', { connectivity: 'offline' }) === 1 ? m : undefined;
    });
    expect(v(away, 'boxes', { connectivity: 'online' })).toBe(0);
    const lastSeen = v(away, 'box_last_seen_timestamp_seconds', { ...seen, connectivity: 'offline' });
    expect(lastSeen).toBeGreaterThan(leftAt / 1000 - 60);
    expect(lastSeen).toBeLessThanOrEqual(Date.now() / 1000);

    box = await TestBox.of(cloud, creds);
    const back = await until('box back online', async () => {
      const m = await scrape();
      return v(m, 'boxes', { connectivity: 'online' }) === 1 ? m : undefined;
    });
    expect(v(back, 'box_last_seen_timestamp_seconds', seen)).toBe(0);
  });

  it('a reverse the wallet keeps putting off shows as pending, with the age of the oldest; once it goes through, none is', async () => {
    gw.pays.push('userpaying');
    gw.reverses.push(...Array<'retry_later'>(1_000).fill('retry_later'));
    await box!.send('pay', payMsg(creds.deviceId, 1));
    const pending = await until('reverse pending', async () => {
      const m = await scrape();
      return v(m, 'attempts_pending', { state: 'REVERSE_PENDING' }) === 1 ? m : undefined;
    });
    const created = (await cloud.store.getAttempt(otn(1)))!.createdAt;
    const age = v(pending, 'attempts_pending_oldest_age_seconds', { state: 'REVERSE_PENDING' });
    expect(age).toBeGreaterThan(0.5); // the 600 ms poll deadline passed before the reverse
    expect(age).toBeLessThanOrEqual((Date.now() - created) / 1000);
    expect(v(pending, 'attempts_pending', { state: 'REFUND_PENDING' })).toBe(0);

    gw.reverses.length = 0;
    expect((await box!.next('result', (m) => m.outTradeNo === otn(1), 8_000)).state).toBe('REVERSED');
    const done = await scrape();
    expect(v(done, 'attempts_pending', { state: 'REVERSE_PENDING' })).toBe(0);
    expect(v(done, 'attempts_pending_oldest_age_seconds', { state: 'REVERSE_PENDING' })).toBe(0);
  });
});

describe('Metrics', () => {
  it('each instance has its own registry: two clouds in one process do not add up', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.inc('auth_refused_total', 'bad_secret');
    a.inc('attempts_final_total', { state: 'SUCCESS', wallet: 'wechat' }, 2);
    expect(a.get('auth_refused_total')).toBe(1);
    expect(a.get('attempts_final_total', { state: 'SUCCESS' })).toBe(2);
    expect(b.get('auth_refused_total')).toBe(0);
    expect(v(parsePrometheusText(await a.text()), 'auth_refused_total', { kind: 'bad_secret' })).toBe(1);
    expect(v(parsePrometheusText(await b.text()), 'auth_refused_total')).toBe(0);
  });

  it('a store read that fails at a scrape is counted, its gauges keep their last values, and the rest is served', async () => {
    const metrics = new Metrics();
    let fail = false;
    const asked: number[] = [];
    const store = {
      fleetSummary: async (awayLimit: number) => {
        asked.push(awayLimit);
        if (fail) throw new Error('database is locked');
        return { counts: { online: 3, offline: 1, stale: 0, never: 0 }, away: [] };
      },
    } as unknown as CloudStore;
    exportFleetGauges({ store, metrics, logger: createLogger('silent') });
    expect(v(parsePrometheusText(await metrics.text()), 'boxes', { connectivity: 'online' })).toBe(3);
    expect(asked).toEqual([AWAY_BOXES_EXPORTED]);
    fail = true;
    metrics.inc('devices_paired_total');
    const f = parsePrometheusText(await metrics.text());
    expect(v(f, 'scrape_errors_total', { kind: 'fleet' })).toBe(1);
    expect(v(f, 'boxes', { connectivity: 'online' })).toBe(3);
    expect(v(f, 'devices_paired_total')).toBe(1);
  });
});

describe('the strict reader of the text format (the oracle of the tests above)', () => {
  const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{k="v"} 1\n';
  const hist = (lines: string) => `# TYPE h histogram\n${lines}`;
  it.each([
    ['no final newline', ok.trimEnd()],
    ['a bad metric name', '1a 1\n'],
    ['an unquoted label value', 'a{k=v} 1\n'],
    ['an unclosed label value', 'a{k="v} 1\n'],
    ['a bad escape', 'a{k="\\t"} 1\n'],
    ['a label twice', 'a{k="1",k="2"} 1\n'],
    ['a value that is not a number', 'a 1,5\n'],
    ['two TYPE lines', `${ok}# TYPE a_total counter\n`],
    ['TYPE after samples', 'a 1\n# TYPE a gauge\n'],
    ['an unknown type', '# TYPE a meter\n'],
    ['a family split by another', `${ok}b 1\na_total{k="w"} 2\n`],
    ['a negative counter', '# TYPE c counter\nc -1\n'],
    ['a histogram without +Inf', hist('h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n')],
    ['a histogram whose count is not its +Inf bucket', hist('h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n')],
    ['a histogram not cumulative', hist('h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n')],
  ])('refuses %s', (_, text) => {
    expect(() => parsePrometheusText(text)).toThrow(ExpositionError);
  });

  it('reads a valid page, escapes included', () => {
    const f = parsePrometheusText(`${ok}# TYPE h histogram\nh_bucket{le="1",x="a\\"b\\\\"} 1\nh_bucket{le="+Inf",x="a\\"b\\\\"} 2\nh_sum{x="a\\"b\\\\"} 3.5\nh_count{x="a\\"b\\\\"} 2\n`);
    expect(f.get('a_total')).toMatchObject({ type: 'counter', help: 'A.' });
    expect(sampleValue(f, 'h_bucket', { x: 'a"b\\', le: '+Inf' })).toBe(2);
    expect(sampleValue(f, 'h_sum')).toBe(3.5);
  });
});
