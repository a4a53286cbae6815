import path from 'node:path';
import Database from 'better-sqlite3';
import type { CloudAttemptRecord, DeviceAttemptRecord } from '../protocol/index.js';
import type { LedgerEntry } from '../simulator/gateway/ledger.js';
import { reconcile } from '../simulator/reconcile/reconcile.js';
import { median } from '../simulator/stats.js';
import { seedDevicesAt } from './cloud-kit.js';
import { EMBEDDED, scaleOutChoice, type ScaleOutChoice } from './scale-out-choice.js';
import type { BenchResult } from './result.js';
import { cpuShare, fmt, nextMessage, procSample, scratch, sleep, spawnHelper, stopHelper, summary, type ProcSample } from './harness.js';

/**
 * 3. fleet — 10,000 paired boxes as LiteClients split over `loadProcesses` processes (each started
 * through bash with `ulimit -n` raised to the hard limit), one cloud process (`startCloud`, default
 * SQLite store, scripted instant gateway). The boxes are created through the store's pairing calls
 * in bulk (bench/cloud-kit.ts seedDevices), not over HTTP: 10,000 POST /v1/pair would trip the
 * per-address rate limit. Every box's connect is verified against its keyed hash, as after any cloud
 * start; four boxes share a source address (bench/children/fleet-load.ts), as boxes of one shop do.
 *
 * Measured: time until every box is connected and subscribed, cloud RSS (and peak), cloud CPU share
 * while connecting and in the steady state (heartbeats every `heartbeatS`, one payment every
 * `payEveryMs` from a random box), heartbeat-to-registry latency (sampled boxes; the bench polls the
 * cloud's SQLite file read-only until the row shows that heartbeat's counter), trickle payment latency,
 * and reconciliation of those payments. Last, the cloud process is killed (SIGKILL) and started again
 * on the same port and store: the time until every box has reconnected (full-jitter backoff, as
 * the agent) and subscribed.
 */
export interface FleetParams extends ScaleOutChoice {
  boxes: number;
  loadProcesses: number;
  heartbeatS: number;
  steadyS: number;
  payEveryMs: number;
  concurrency: number;
  sampleBoxes: number;
  logLevel: string;
  /** Scale-out only (fleet-scaleout.ts): broker restarts, timed resyncs, timed pairings. */
  restarts: number;
  resyncs: number;
  pairings: number;
}

export const FLEET_DEFAULTS: FleetParams = { boxes: 10_000, loadProcesses: 2, heartbeatS: 30, steadyS: 40, payEveryMs: 100, concurrency: 200, sampleBoxes: 200, logLevel: 'info', restarts: 3, resyncs: 3, pairings: 5, ...EMBEDDED };
export const FLEET_SMOKE: FleetParams = { boxes: 20, loadProcesses: 2, heartbeatS: 1, steadyS: 2.5, payEveryMs: 200, concurrency: 10, sampleBoxes: 6, logLevel: 'info', restarts: 1, resyncs: 1, pairings: 1, ...EMBEDDED };

/** `--broker mosquitto --store postgres [--workers 3]`: the scale-out variant (fleet-scaleout.ts). */
export async function fleet(p: FleetParams): Promise<BenchResult> {
  const choice = scaleOutChoice(p, '3');
  if (!choice.scaleOut) return fleetEmbedded(p);
  if (choice.workers.length !== 1) throw new Error(`--workers ${p.workers}: the fleet benchmark runs one worker count`);
  const { boxes, loadProcesses, heartbeatS, steadyS, concurrency, restarts, resyncs, pairings, logLevel } = p;
  // Loaded only here: it brings the test servers (test/support) the single-process run does not need.
  return (await import('./fleet-scaleout.js')).fleetScaleOut({ boxes, loadProcesses, heartbeatS, steadyS, concurrency, restarts, resyncs, pairings, logLevel, workers: choice.workers[0]! });
}

type Stats = {
  type: 'stats';
  payMs: number[];
  seen: DeviceAttemptRecord[];
  heartbeats: number;
  connected: number;
  disconnects: number;
  unexpected: number;
  rssMiB: number;
};

async function fleetEmbedded(p: FleetParams): Promise<BenchResult> {
  const tmp = scratch('fleet');
  const dbPath = path.join(tmp.dir, 'cloud.db');
  const seedStart = performance.now();
  const seeded = await seedDevicesAt(dbPath, p.boxes);
  const seedS = (performance.now() - seedStart) / 1000;
  const cloudArgs = (mqttPort: number) => [JSON.stringify({ dbPath, mqttPort, config: { logLevel: p.logLevel, heartbeatIntervalS: p.heartbeatS } })];
  let cloud = spawnHelper('children/cloud-proc.ts', cloudArgs(0), { stdoutFile: path.join(tmp.dir, 'cloud.log') });
  const loads = Array.from({ length: p.loadProcesses }, () => spawnHelper('children/fleet-load.ts'));
  let db: Database.Database | undefined;
  try {
    const ready = await nextMessage<{ type: 'ready'; mqttUrl: string; pid: number }>(cloud, 'ready', 60_000);
    const pid = ready.pid;
    const series: (ProcSample & { phase: string })[] = [];
    let phase = 'idle';
    const sampler = setInterval(() => series.push({ ...procSample(pid), phase }), 1000);
    const idle = procSample(pid);

    // Heartbeat → registry: sampled boxes report what they sent; the registry is polled read-only.
    const perLoad = Math.ceil(p.boxes / p.loadProcesses);
    const slices = loads.map((_, i) => seeded.ids.slice(i * perLoad, (i + 1) * perLoad));
    const samplesPer = Math.max(1, Math.floor(p.sampleBoxes / p.loadProcesses));
    const sampleIds = slices.flatMap((s) => s.filter((_, i) => i % Math.max(1, Math.floor(s.length / samplesPer)) === 0).slice(0, samplesPer));
    const sent = new Map<string, { n: number; sentAt: number }[]>();
    for (const l of loads) {
      l.on('message', (m: { type: string; samples?: { id: string; n: number; sentAt: number }[] }) => {
        if (m.type !== 'hb') return;
        for (const s of m.samples!) {
          const list = sent.get(s.id) ?? [];
          list.push({ n: s.n, sentAt: s.sentAt });
          sent.set(s.id, list);
        }
      });
    }
    db = new Database(dbPath, { readonly: true, fileMustExist: true });
    const rowQuery = db.prepare(`SELECT device_id AS id, pending_attempts AS n FROM devices WHERE device_id IN (${sampleIds.map(() => '?').join(',')})`);
    const hbLatency: { ms: number; sentAt: number }[] = [];
    const matched = new Set<string>();
    const poll = setInterval(() => {
      const now = Date.now();
      for (const r of rowQuery.all(...sampleIds) as { id: string; n: number | null }[]) {
        for (const s of sent.get(r.id) ?? []) {
          const key = `${r.id}#${s.n}`;
          if (r.n !== null && r.n >= s.n && !matched.has(key)) {
            matched.add(key);
            hbLatency.push({ ms: now - s.sentAt, sentAt: s.sentAt });
          }
        }
      }
    }, 50);

    // Connect everything.
    phase = 'connect';
    const c0 = procSample(pid);
    const t0 = performance.now();
    loads.forEach((l, i) =>
      l.send({ type: 'start', firstIndex: i * perLoad, mqttUrl: ready.mqttUrl, ids: slices[i], secret: seeded.secret, heartbeatS: p.heartbeatS, keepaliveS: Math.max(60, p.heartbeatS * 2), concurrency: p.concurrency, sample: sampleIds.filter((id) => slices[i]!.includes(id)), payEveryMs: p.payEveryMs * p.loadProcesses }),
    );
    const connected = await Promise.all(loads.map((l) => nextMessage<{ type: 'connected'; ms: number; failed: number }>(l, 'connected', 900_000)));
    const connectS = (performance.now() - t0) / 1000;
    const c1 = procSample(pid);
    const failed = connected.reduce((n, c) => n + c.failed, 0);

    // Steady state: heartbeats and a trickle of payments.
    phase = 'steady';
    await sleep(1500); // the registry flush of the connect storm settles
    const steadyFrom = Date.now();
    const s0 = procSample(pid);
    await sleep(p.steadyS * 1000);
    const s1 = procSample(pid);
    clearInterval(poll);
    clearInterval(sampler);
    const online = (db.prepare(`SELECT count(*) AS n FROM devices WHERE connectivity = 'online'`).get() as { n: number }).n;

    const stats = await Promise.all(loads.map((l) => (l.send({ type: 'stats' }), nextMessage<Stats>(l, 'stats', 60_000))));
    await sleep(500);
    cloud.send({ type: 'snapshot' });
    const snap = await nextMessage<{ type: 'snapshot'; ledger: LedgerEntry[]; cloud: CloudAttemptRecord[] }>(cloud, 'snapshot', 60_000);
    // A payment still in flight when stats were taken is not in `seen` yet: reconcile what both saw.
    const seen = stats.flatMap((s) => s.seen);
    const seenIds = new Set(seen.map((r) => r.outTradeNo));
    const inFlight = snap.cloud.filter((c) => !seenIds.has(c.outTradeNo)).length;
    const report = reconcile({ ledger: snap.ledger.filter((e) => seenIds.has(e.outTradeNo)), cloud: snap.cloud.filter((c) => seenIds.has(c.outTradeNo)), devices: [seen] });
    const unexpected = stats.reduce((n, s) => n + s.unexpected, 0);
    const reconciled = report.ok && unexpected === 0 && inFlight <= p.loadProcesses * 5;

    // Cloud restart: a power cut of the cloud process, then the same port and store.
    await Promise.all(loads.map((l) => (l.send({ type: 'expectRestart' }), nextMessage(l, 'expectingRestart', 30_000))));
    const allUp = Promise.all(loads.map((l) => nextMessage<{ type: 'allUp'; at: number; reconnectTries: number }>(l, 'allUp', 600_000)));
    const killedAt = Date.now();
    const exited = new Promise<void>((r) => cloud.once('exit', () => r()));
    cloud.kill('SIGKILL');
    await exited;
    cloud = spawnHelper('children/cloud-proc.ts', cloudArgs(Number(new URL(ready.mqttUrl).port)), { stdoutFile: path.join(tmp.dir, 'cloud.log') });
    await nextMessage(cloud, 'ready', 60_000);
    const readyAt = Date.now();
    const up = await allUp;
    const allUpAt = Math.max(...up.map((u) => u.at));
    const restartS = (allUpAt - killedAt) / 1000;

    const steadyRss = s1.rssMiB;
    const steadyCpu = cpuShare(s0, s1);
    const connectCpu = cpuShare(c0, c1);
    // Steady state: heartbeats sent after the connect storm; the storm's own are reported apart.
    const hb = summary(hbLatency.filter((h) => h.sentAt >= steadyFrom).map((h) => h.ms));
    const hbStorm = summary(hbLatency.filter((h) => h.sentAt < steadyFrom).map((h) => h.ms));
    const pay = summary(stats.flatMap((s) => s.payMs));
    const expectedHb = sampleIds.length * Math.max(1, Math.floor(p.steadyS / p.heartbeatS));
    return {
      name: 'fleet',
      params: { ...p, devicesCreatedVia: 'store pairing calls in bulk (createPairingCode + redeemPairingCode), one shared scrypt hash', seedSeconds: Math.round(seedS * 10) / 10 },
      figures: {
        boxes: p.boxes,
        'connected (all subscribed)': p.boxes - failed,
        'online in registry': online,
        'connect all s': round1(connectS),
        'connects/s': Math.round((p.boxes - failed) / connectS),
        'cloud RSS MiB (steady)': round1(steadyRss),
        'cloud RSS peak MiB': round1(s1.hwmMiB),
        'cloud RSS idle MiB (0 boxes)': round1(idle.rssMiB),
        'cloud CPU % while connecting': Math.round(connectCpu),
        'cloud CPU % steady': round1(steadyCpu),
        'heartbeats/s (steady)': round1(p.boxes / p.heartbeatS),
        'hb→registry p50 ms (steady)': hb.p50,
        'hb→registry p99 ms (steady)': hb.p99,
        'hb→registry p50 ms (during connect storm)': hbStorm.p50,
        'trickle payments': pay.n,
        'trickle pay→result p50 ms': pay.p50,
        'trickle pay→result p99 ms': pay.p99,
        reconciled,
        [`cloud restart → ${p.boxes} boxes reconnected s`]: round1(restartS),
        'cloud restart: killed → ready s': round1((readyAt - killedAt) / 1000),
        'cloud restart: ready → all reconnected s': round1((allUpAt - readyAt) / 1000),
      },
      targets: [
        { what: `${p.boxes} boxes on one cloud process within 1 GB RSS`, target: '<= 1024 MiB', actual: `${fmt(s1.hwmMiB, 0)} MiB peak, ${fmt(steadyRss, 0)} MiB steady, ${p.boxes - failed} connected`, met: s1.hwmMiB <= 1024 && failed === 0 && online === p.boxes },
        { what: 'reconciliation', target: 'ok', actual: reconciled ? 'ok' : `${report.mismatches.length} mismatches, ${unexpected} unexpected results`, met: reconciled },
        { what: `cloud restart (SIGKILL, same port and store) → ${p.boxes} boxes reconnected and subscribed`, target: '< 15 s', actual: `${fmt(restartS, 1)} s`, met: restartS < 15 },
      ],
      raw: {
        connectPerProcessMs: connected.map((c) => Math.round(c.ms)),
        failedConnects: failed,
        restartReconnectTries: up.reduce((n, u) => n + u.reconnectTries, 0),
        disconnects: stats.reduce((n, s) => n + s.disconnects, 0),
        heartbeatsSent: stats.reduce((n, s) => n + s.heartbeats, 0),
        heartbeatSamplesMatched: hb.n,
        heartbeatSamplesExpectedAtLeast: expectedHb,
        hbToRegistryMs: hb,
        hbToRegistryDuringConnectMs: hbStorm,
        trickleMs: pay,
        loadProcessRssMiB: stats.map((s) => round1(s.rssMiB)),
        cloudSeries: series.map((s) => ({ t: Math.round(s.at - t0), phase: s.phase, rssMiB: round1(s.rssMiB), cpuMs: Math.round(s.cpuMs) })),
        medianSteadyRssMiB: round1(median(series.filter((s) => s.phase === 'steady').map((s) => s.rssMiB))),
        reconcile: { ok: report.ok, mismatches: report.mismatches.slice(0, 20), totals: report.totals, notYetSeen: inFlight },
      },
    };
  } finally {
    db?.close();
    await Promise.all(loads.map((l) => stopHelper(l, 30_000)));
    await stopHelper(cloud, 30_000);
    tmp.remove();
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}
