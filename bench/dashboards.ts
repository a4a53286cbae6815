import { request, type ClientRequest } from 'node:http';
import path from 'node:path';
import { hashPassword } from '../cloud/dashboard/operator-password.js';
import { SqliteStore } from '../cloud/store/sqlite-store.js';
import { median } from '../simulator/stats.js';
import { seedDevicesAt } from './cloud-kit.js';
import { cpuShare, fmt, nextMessage, procSample, scratch, spawnHelper, stopHelper, summary } from './harness.js';
import { hostPort } from './lite-mqtt.js';
import { PayingBox } from './pay-client.js';
import { closedLoop, reconcileRun } from './pay-phase.js';
import type { BenchResult } from './result.js';

/**
 * 8. dashboards — what open dashboards cost the cloud under the throughput benchmark's load: the
 * same K boxes paying closed-loop against the cloud in its own process, in phases that alternate
 * between no dashboard open and D dashboards open (D logged-in operators, each holding the live
 * stream, /dashboard/events, and reading every byte of it). The streams are opened before a phase
 * starts and closed after it. Medians of the phases are compared side by side in one run, and the
 * median of each round's ratio (its two phases ran back to back).
 */
export interface DashboardsParams {
  boxes: number;
  dashboards: number;
  phaseS: number;
  rounds: number;
  warmupS: number;
  logLevel: string;
}

export const DASHBOARDS_DEFAULTS: DashboardsParams = { boxes: 100, dashboards: 20, phaseS: 5, rounds: 6, warmupS: 2, logLevel: 'info' };
// A phase longer than the 2 s between live pushes, so every stream is pushed to at least once.
export const DASHBOARDS_SMOKE: DashboardsParams = { boxes: 4, dashboards: 2, phaseS: 3, rounds: 1, warmupS: 0.2, logLevel: 'info' };

const OPERATOR = 'bench';
const PASSWORD = 'bench operator password';

/** One open dashboard: a logged-in session holding the live stream and reading it. */
class Watcher {
  bytes = 0;
  events = 0;
  private req: ClientRequest | undefined;

  private constructor(private readonly origin: string, private readonly cookie: string) {}

  static async login(origin: string): Promise<Watcher> {
    const form = await fetch(`${origin}/dashboard/login`);
    const loginCookie = form.headers.getSetCookie()[0]!.split(';')[0]!;
    const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1]!;
    const res = await fetch(`${origin}/dashboard/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { origin, cookie: loginCookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: token, name: OPERATOR, password: PASSWORD }).toString(),
    });
    const session = res.headers.getSetCookie().find((c) => c.startsWith('scanbox_dashboard='));
    if (res.status !== 303 || !session) throw new Error(`bench operator login refused: HTTP ${res.status}`);
    return new Watcher(origin, session.split(';')[0]!);
  }

  /** Resolves once the stream is open and its first bytes came. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.req = request(`${this.origin}/dashboard/events?since=0`, { headers: { cookie: this.cookie } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`live stream refused: HTTP ${res.statusCode}`));
        res.on('data', (c: Buffer) => {
          this.bytes += c.length;
          this.events += c.toString().split('\nevent: ').length - (c.toString().startsWith('event: ') ? 0 : 1);
          resolve();
        });
        res.on('error', () => undefined);
      });
      this.req.on('error', (err) => (this.req ? reject(err) : undefined));
      this.req.end();
    });
  }

  close(): void {
    const r = this.req;
    this.req = undefined;
    r?.destroy();
  }
}

export async function dashboards(p: DashboardsParams): Promise<BenchResult> {
  const tmp = scratch('dashboards');
  const dbPath = path.join(tmp.dir, 'cloud.db');
  const seeded = await seedDevicesAt(dbPath, p.boxes);
  const store = new SqliteStore(dbPath);
  await store.addOperator(OPERATOR, await hashPassword(PASSWORD), Date.now());
  await store.close();
  const cloud = spawnHelper('children/cloud-proc.ts', [JSON.stringify({ dbPath, config: { logLevel: p.logLevel } })], { stdoutFile: path.join(tmp.dir, 'cloud.log') });
  const boxes: PayingBox[] = [];
  const watchers: Watcher[] = [];
  try {
    const ready = await nextMessage<{ type: 'ready'; mqttUrl: string; httpUrl: string; pid: number }>(cloud, 'ready', 60_000);
    const c = hostPort(ready.mqttUrl);
    for (const id of seeded.ids) boxes.push(new PayingBox(id, seeded.secret, c.host, c.port));
    await Promise.all(boxes.map((b) => b.connect()));
    for (let i = 0; i < p.dashboards; i++) watchers.push(await Watcher.login(ready.httpUrl));

    type Side = 'none' | 'open';
    const rates: Record<Side, number[]> = { none: [], open: [] };
    const cpu: Record<Side, number[]> = { none: [], open: [] };
    const latency: Record<Side, number[]> = { none: [], open: [] };
    const bytesPerS: number[] = [];
    const eventsPerPhase: number[] = [];
    const pushMs: number[] = [];
    const loopShare: number[] = [];
    type LiveStats = { type: 'liveStats'; pushes: number; ms: number; bytesWritten: number };
    const liveStats = async () => (cloud.send({ type: 'liveStats' }), nextMessage<LiveStats>(cloud, 'liveStats', 10_000));

    const phase = async (side: Side, seconds: number, record: boolean) => {
      if (side === 'open') await Promise.all(watchers.map((w) => w.open()));
      const l0 = await liveStats();
      const b0 = watchers.reduce((n, w) => n + w.bytes, 0);
      const e0 = watchers.reduce((n, w) => n + w.events, 0);
      const s0 = procSample(ready.pid);
      const { count, elapsed, settled } = await closedLoop(boxes, seconds, record ? latency[side] : undefined);
      const s1 = procSample(ready.pid);
      const l1 = await liveStats();
      await settled;
      if (side === 'open') {
        if (record) {
          pushMs.push((l1.ms - l0.ms) / Math.max(1, l1.pushes - l0.pushes));
          loopShare.push((100 * (l1.ms - l0.ms)) / (elapsed * 1000));
          bytesPerS.push((watchers.reduce((n, w) => n + w.bytes, 0) - b0) / watchers.length / elapsed);
          eventsPerPhase.push((watchers.reduce((n, w) => n + w.events, 0) - e0) / watchers.length);
        }
        watchers.forEach((w) => w.close());
      }
      if (record) {
        rates[side].push(count / elapsed);
        cpu[side].push(cpuShare(s0, s1));
      }
    };

    await phase('none', p.warmupS, false);
    await phase('open', p.warmupS, false);
    for (let r = 0; r < p.rounds; r++) {
      // Alternate which goes first, so drift (a warming cache, a neighbour) does not favour one side.
      const order: Side[] = r % 2 === 0 ? ['none', 'open'] : ['open', 'none'];
      for (const side of order) await phase(side, p.phaseS, true);
    }

    const { report, recorded, unexpected, allSuccess, reconciled } = await reconcileRun(cloud, boxes);
    const none = median(rates.none);
    const open = median(rates.open);
    const ratio = open / none;
    // Each round's two phases ran back to back: their ratio cancels the drift of a shared machine's load.
    const paired = median(rates.open.map((o, i) => o / rates.none[i]!));
    // Payments per second of the cloud's CPU: what each side did with the CPU the machine gave it.
    const perCpu = (side: Side) => rates[side].map((r, i) => r / Math.max(1, cpu[side][i]!) * 100);
    const lat = { none: summary(latency.none), open: summary(latency.open) };
    const d = p.dashboards;
    return {
      name: 'dashboards',
      params: { ...p, cloudProcess: 'separate (bench/children/cloud-proc.ts)', gateway: 'scripted, success only, INSTANT', liveIntervalMs: 2_000 },
      figures: {
        'payments/s, no dashboard (median)': Math.round(none),
        [`payments/s, ${d} dashboards (median)`]: Math.round(open),
        [`${d} dashboards ÷ none`]: round3(ratio),
        [`${d} dashboards ÷ none, median of each round's pair`]: round3(paired),
        'pay→result p50 ms, no dashboard': lat.none.p50,
        [`pay→result p50 ms, ${d} dashboards`]: lat.open.p50,
        'pay→result p99 ms, no dashboard': lat.none.p99,
        [`pay→result p99 ms, ${d} dashboards`]: lat.open.p99,
        'cloud CPU % of a core, no dashboard': Math.round(median(cpu.none)),
        [`cloud CPU % of a core, ${d} dashboards`]: Math.round(median(cpu.open)),
        'payments per cloud CPU-second, no dashboard': Math.round(median(perCpu('none'))),
        [`payments per cloud CPU-second, ${d} dashboards`]: Math.round(median(perCpu('open'))),
        'live push: event-loop ms each (all dashboards)': round3(median(pushMs)),
        'live pushes: share of the event loop %': round3(median(loopShare)),
        'live stream bytes/s per dashboard': Math.round(median(bytesPerS)),
        'live events per dashboard per phase': round3(median(eventsPerPhase)),
        'payments reconciled': recorded,
        reconciled,
      },
      targets: [
        { what: `payments/s with ${d} dashboards open`, target: '>= 95% of none', actual: `${fmt(ratio * 100, 1)}%`, met: ratio >= 0.95 },
        { what: 'reconciliation', target: 'ok', actual: reconciled ? 'ok' : `${report.mismatches.length} mismatches, allSuccess=${allSuccess}`, met: reconciled },
      ],
      raw: {
        rates: { none: rates.none.map(Math.round), open: rates.open.map(Math.round) },
        cloudCpu: { none: cpu.none.map(Math.round), open: cpu.open.map(Math.round) },
        payLatencyMs: lat,
        liveBytesPerS: bytesPerS.map(Math.round),
        livePushMs: pushMs.map(round3),
        liveLoopSharePct: loopShare.map(round3),
        liveEventsPerPhase: eventsPerPhase,
        reconcile: { ok: report.ok, mismatches: report.mismatches.slice(0, 20), totals: report.totals, unexpectedResults: unexpected },
      },
    };
  } finally {
    watchers.forEach((w) => w.close());
    await Promise.all(boxes.map((b) => b.client.end().catch(() => undefined)));
    await stopHelper(cloud);
    tmp.remove();
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
