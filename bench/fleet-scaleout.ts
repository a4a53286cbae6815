import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { DynsecAccounts } from '../cloud/broker/dynsec.js';
import { connectExternal } from '../cloud/broker/external-connection.js';
import { Metrics } from '../cloud/metrics.js';
import { PgStore } from '../cloud/store/pg-store.js';
import { generateSecret } from '../cloud/pairing/credentials.js';
import { median } from '../simulator/stats.js';
import { DROPPED_NOTICE, startExternalStack, type ExternalStack } from './external-stack.js';
import type { BenchResult } from './result.js';
import { cpuShare, fmt, nextMessage, procSample, scratch, sleep, spawnHelper, stopHelper, summary, tcpExt, type ProcSample } from './harness.js';

/**
 * 9b. fleet, scale-out (`npm run bench -- fleet --broker mosquitto --store postgres [--workers 3]`):
 * `boxes` paired boxes as LiteClients in `loadProcesses` processes (children/fleet-load.ts, as in
 * section 3) connected to Mosquitto 2 with dynamic security, N cloud workers
 * (children/cloud-proc.ts on the external broker and PostgreSQL) sharing their messages. The boxes
 * are paired through the store's calls and their broker accounts written into the plugin's file
 * before Mosquitto starts (bench/external-stack.ts, bench/dynsec-file.ts: through the control topic
 * 2,000 accounts take ~1 minute, growing with the square of the count, and the resync cannot make them).
 *
 * Measured: the accounts resync a worker runs at start with all the accounts in place
 * (`DynsecAccounts.resync`, `resyncs` times, here in the bench process on the worker's own code), the
 * first worker's start → ready, the time to connect every box, Mosquitto's RSS and CPU with heartbeats
 * every `heartbeatS`, what pairing one more box costs the broker with all those accounts
 * (`DynsecAccounts.add` + `remove`, `pairings` times), then `restarts` broker restarts: Mosquitto
 * stopped (SIGTERM) and started again on the same port with the same accounts file, every box
 * reconnecting as the agent does (full-jitter backoff) and subscribing, and the workers reconnecting
 * (mqtt.js, every second) and subscribing again. Per restart: stop → every box back and subscribed,
 * and stop → every box seen by a worker (its first heartbeat after the drop in the PostgreSQL registry,
 * polled every 100 ms: the heartbeat counter continues above a per-restart floor). Medians reported.
 * No payments here: the payment figures of the scale-out are throughput's (section 9a).
 */
export interface ScaleOutFleetParams {
  boxes: number;
  loadProcesses: number;
  workers: number;
  heartbeatS: number;
  steadyS: number;
  concurrency: number;
  restarts: number;
  resyncs: number;
  pairings: number;
  logLevel: string;
}

interface Restart {
  /** Seconds from SIGTERM to the broker's exit, to listening again, to every box back and subscribed, to every box seen by a worker. */
  stoppedS: number;
  listeningS: number;
  allBackS: number;
  allSeenS: number | null;
  /** Seconds from SIGTERM until every worker's service link was connected again (its log line). */
  workerLinksBackS: number | null;
  /** Boxes a worker had seen when the last box was back. */
  seenWhenAllBack: number;
  reconnectTries: number;
  /** Seconds from SIGTERM until each box was back: p50, p90, p99. */
  backP50S: number;
  backP90S: number;
  backP99S: number;
  /** Boxes seen, every second from SIGTERM. */
  seenBySecond: number[];
  /** Mosquitto's CPU (% of a core) from listening to every box back; listen-queue overflows (machine-wide) meanwhile. */
  mosquittoCpuPct: number;
  listenOverflows: number;
}

const SEEN_TIMEOUT_MS = 120_000;

/** The steady state is sampled for CPU and RSS only (no heartbeat latency here): 15 s is plenty. */
function steadySampleS(p: ScaleOutFleetParams): number {
  return Math.min(p.steadyS, 15);
}

export async function fleetScaleOut(p: ScaleOutFleetParams): Promise<BenchResult> {
  const tmp = scratch('fleet-scaleout');
  let stack: ExternalStack | undefined;
  const workers: ChildProcess[] = [];
  const loads: ChildProcess[] = [];
  let db: pg.Client | undefined;
  try {
    // The load processes boot while the stack is set up.
    for (let i = 0; i < p.loadProcesses; i++) loads.push(spawnHelper('children/fleet-load.ts'));
    stack = await startExternalStack({ boxes: p.boxes, dir: tmp.dir });
    const s = stack;
    // Granting the service role drops the admin's connections once, which mqtt.js logs as a warning.
    const logger = pino({ level: 'error' });

    // The worker's resync, with every account in place (the first DynsecAccounts.start grants the
    // service role, as a first worker would; the timed resyncs are what every later start runs).
    const accountsClient = await connectExternal({ url: s.adminUrl, keepaliveS: 60 }, 'bench-accounts', logger);
    const accounts = await DynsecAccounts.start({ client: accountsClient, username: new URL(s.adminUrl).username, group: 'scanbox-cloud', logger, metrics: new Metrics(), timeoutMs: 60_000 });
    const resyncMs: number[] = [];
    const store = await PgStore.open(s.pgUrl, { poolSize: 1 });
    try {
      for (let i = 0; i < p.resyncs; i++) {
        const t = performance.now();
        const r = await accounts.resync(store);
        resyncMs.push(performance.now() - t);
        if (r.missing.length || r.removed.length || r.repaired.length) throw new Error(`the accounts written for the boxes do not match the store: ${r.missing.length} missing, ${r.removed.length} removed, ${r.repaired.length} repaired`);
      }
    } finally {
      await store.close();
    }

    // Workers: the first alone (its start is timed), then the others together, as a deployment starts them.
    const workerArgs = (id: string) => [JSON.stringify({ dbPath: path.join(tmp.dir, `${id}.db`), gatewaySeed: id, config: { logLevel: p.logLevel, heartbeatIntervalS: p.heartbeatS, store: s.pgUrl, broker: { url: s.adminUrl }, workerId: id, secretKeyFile: s.keyFile } })];
    const startWorker = (i: number) => {
      const w = spawnHelper('children/cloud-proc.ts', workerArgs(`w${i + 1}`), { stdoutFile: path.join(tmp.dir, `w${i + 1}.log`) });
      workers.push(w);
      return nextMessage<{ type: 'ready'; pid: number }>(w, 'ready', 120_000);
    };
    const t0 = performance.now();
    const firstReady = await startWorker(0);
    const firstWorkerStartS = (performance.now() - t0) / 1000;
    const workerPids = [firstReady.pid, ...(await Promise.all(Array.from({ length: p.workers - 1 }, (_, i) => startWorker(i + 1)))).map((r) => r.pid)];

    // Connect every box.
    const perLoad = Math.ceil(p.boxes / p.loadProcesses);
    const slices = loads.map((_, i) => s.seeded.ids.slice(i * perLoad, (i + 1) * perLoad));
    const mq0 = procSample(s.mosquittoPid());
    const c0 = performance.now();
    loads.forEach((l, i) => l.send({ type: 'start', firstIndex: i * perLoad, mqttUrl: s.brokerUrl, ids: slices[i], secret: s.seeded.secret, heartbeatS: p.heartbeatS, keepaliveS: Math.max(60, p.heartbeatS * 2), concurrency: p.concurrency, sample: [], payEveryMs: 0 }));
    const connected = await Promise.all(loads.map((l) => nextMessage<{ type: 'connected'; ms: number; failed: number }>(l, 'connected', 600_000)));
    const connectS = (performance.now() - c0) / 1000;
    const mq1 = procSample(s.mosquittoPid());
    const failed = connected.reduce((n, c) => n + c.failed, 0);

    // Steady state: heartbeats only; then one more box paired (and removed) a few times while they run.
    await sleep(1500);
    const steady0 = sample(s, workerPids);
    await sleep(steadySampleS(p) * 1000);
    const steady1 = sample(s, workerPids);
    const pairMs: number[] = [];
    const pairCpu0 = procSample(s.mosquittoPid());
    for (let i = 0; i < p.pairings; i++) {
      const id = `bench-pair-${i}`;
      const t = performance.now();
      await accounts.add(id, generateSecret());
      await accounts.remove(id);
      pairMs.push(performance.now() - t);
    }
    const pairCpu1 = procSample(s.mosquittoPid());
    await accounts.close();

    // Broker restarts.
    db = new pg.Client({ connectionString: s.pgUrl });
    await db.connect();
    const seenAbove = async (floor: number) => (await db!.query<{ n: number }>('SELECT count(*)::int AS n FROM devices WHERE pending_attempts > $1', [floor])).rows[0]!.n;
    const restarts: Restart[] = [];
    for (let r = 1; r <= p.restarts; r++) {
      const floor = r * 1_000_000;
      await Promise.all(loads.map((l) => (l.send({ type: 'expectRestart', counterFloor: floor }), nextMessage(l, 'expectingRestart', 30_000))));
      const allUp = Promise.all(loads.map((l) => nextMessage<{ type: 'allUp'; at: number; reconnectTries: number; backAt: number[] }>(l, 'allUp', 300_000)));
      let everyBoxBack = false;
      let seenWhenAllBack: number | null = null;
      void allUp.then(() => (everyBoxBack = true));
      const overflows0 = tcpExt().ListenOverflows ?? 0;
      const { stopAt, stoppedAt, listeningAt } = await s.restartBroker();
      const mosquitto0 = procSample(s.mosquittoPid());
      let mosquitto1: ProcSample | undefined;
      let overflows1 = 0;
      void allUp.then(() => {
        mosquitto1 = procSample(s.mosquittoPid());
        overflows1 = tcpExt().ListenOverflows ?? 0;
      });
      const seenBySecond: number[] = [];
      let allSeenAt: number | null = null;
      for (let next = stopAt + 1000; ; ) {
        const n = await seenAbove(floor);
        const now = Date.now();
        if (everyBoxBack && seenWhenAllBack === null) seenWhenAllBack = n;
        while (now >= next) {
          seenBySecond.push(n);
          next += 1000;
        }
        if (n >= p.boxes) {
          allSeenAt = now;
          break;
        }
        if (now - stopAt > SEEN_TIMEOUT_MS) break;
        await sleep(100);
      }
      const up = await allUp;
      await sleep(0);
      const back = summary(up.flatMap((u) => u.backAt.map((at) => (at - stopAt) / 1000)));
      restarts.push({
        backP50S: back.p50,
        backP90S: back.p90,
        backP99S: back.p99,
        mosquittoCpuPct: Math.round(cpuShare(mosquitto0, mosquitto1!)),
        listenOverflows: overflows1 - overflows0,
        stoppedS: (stoppedAt - stopAt) / 1000,
        listeningS: (listeningAt - stopAt) / 1000,
        allBackS: (Math.max(...up.map((u) => u.at)) - stopAt) / 1000,
        allSeenS: allSeenAt === null ? null : (allSeenAt - stopAt) / 1000,
        workerLinksBackS: linksBackAt(tmp.dir, p.workers, stopAt),
        // All seen before the last box's allUp message arrived: every box was back by then.
        seenWhenAllBack: seenWhenAllBack ?? p.boxes,
        reconnectTries: up.reduce((n, u) => n + u.reconnectTries, 0),
        seenBySecond,
      });
      await sleep(2000);
    }
    const workerBrokerLog = brokerLogCounts(tmp.dir);

    const allBack = median(restarts.map((x) => x.allBackS));
    const seenTimes = restarts.map((x) => x.allSeenS).filter((x): x is number => x !== null);
    const allSeen = seenTimes.length === restarts.length ? median(seenTimes) : null;
    const steadyWall = steady1.at - steady0.at;
    const pct = (a: number, b: number) => (100 * (b - a)) / steadyWall;
    return {
      name: 'fleet-scaleout',
      params: {
        ...p,
        broker: 'mosquitto (dynamic security, shared subscription)',
        store: 'postgres (fsync on)',
        boxAccounts: 'written into the dynamic-security file before Mosquitto starts (bench/dynsec-file.ts)',
        setup: s.timings,
        steadySampleS: steadySampleS(p),
      },
      figures: {
        boxes: p.boxes,
        workers: p.workers,
        'connected (all subscribed)': p.boxes - failed,
        'accounts resync at worker start ms (median)': Math.round(median(resyncMs)),
        'first worker start → ready s (resync included)': round1(firstWorkerStartS),
        'connect all s': round1(connectS),
        'connects/s': Math.round((p.boxes - failed) / connectS),
        'Mosquitto CPU % while connecting': Math.round(cpuShare(mq0, mq1)),
        'Mosquitto RSS MiB (steady)': round1(steady1.mosquitto.rssMiB),
        'Mosquitto CPU % steady': round1(cpuShare(steady0.mosquitto, steady1.mosquitto)),
        'workers CPU % steady (sum)': round1(steady1.workers.reduce((n, w, i) => n + cpuShare(steady0.workers[i]!, w), 0)),
        'PostgreSQL CPU % steady': round1(pct(steady0.postgresMs, steady1.postgresMs)),
        'heartbeats/s (steady)': round1(p.boxes / p.heartbeatS),
        [`pairing one box with ${p.boxes} accounts: broker add + remove ms (median)`]: Math.round(median(pairMs)),
        'Mosquitto CPU ms per pairing (add + remove)': Math.round((pairCpu1.cpuMs - pairCpu0.cpuMs) / Math.max(1, p.pairings)),
        [`broker restart → ${p.boxes} boxes back and subscribed s (median)`]: round1(allBack),
        'broker restart: boxes back p50 / p90 / p99 s (median of restarts)': ['backP50S', 'backP90S', 'backP99S'].map((k) => round1(median(restarts.map((x) => x[k as 'backP50S'])))).join(' / '),
        'broker restart: SIGTERM → listening s (median)': round1(median(restarts.map((x) => x.listeningS))),
        'broker restart: listening → all back s (median)': round1(median(restarts.map((x) => x.allBackS - x.listeningS))),
        [`broker restart → ${p.boxes} boxes seen by the workers s (median)`]: allSeen === null ? 'not all seen' : round1(allSeen),
        'seen by the workers when the last box was back (median)': Math.round(median(restarts.map((x) => x.seenWhenAllBack))),
        "broker restart: SIGTERM → every worker's link back s (median)": medianOrNull(restarts.map((x) => x.workerLinksBackS)),
        'reconnect tries per box (median)': round1(median(restarts.map((x) => x.reconnectTries / p.boxes))),
        'listen-queue overflows per restart (machine-wide, median)': Math.round(median(restarts.map((x) => x.listenOverflows))),
        'Mosquitto "outgoing messages are being dropped" notices': s.brokerLogCount(DROPPED_NOTICE),
      },
      targets: [
        { what: `${p.boxes} boxes connected and subscribed through Mosquitto`, target: `${p.boxes}`, actual: `${p.boxes - failed}`, met: failed === 0 },
        { what: `broker restart (SIGTERM, same port and accounts) → ${p.boxes} boxes reconnected and subscribed, median of ${p.restarts}`, target: '< 15 s', actual: `${fmt(allBack, 1)} s`, met: allBack < 15 },
      ],
      raw: {
        resyncMs: resyncMs.map(Math.round),
        pairMs: pairMs.map(Math.round),
        connectPerProcessMs: connected.map((c) => Math.round(c.ms)),
        restarts: restarts.map((x) => ({ ...x, stoppedS: round1(x.stoppedS), listeningS: round1(x.listeningS), allBackS: round1(x.allBackS), allSeenS: x.allSeenS === null ? null : round1(x.allSeenS), workerLinksBackS: x.workerLinksBackS === null ? null : round1(x.workerLinksBackS) })),
        steady: { mosquittoCpuPct: round1(cpuShare(steady0.mosquitto, steady1.mosquitto)), workersCpuPct: steady1.workers.map((w, i) => round1(cpuShare(steady0.workers[i]!, w))), workersRssMiB: steady1.workers.map((w) => round1(w.rssMiB)), mosquittoRssMiB: round1(steady1.mosquitto.rssMiB), mosquittoPeakMiB: round1(steady1.mosquitto.hwmMiB) },
        workerBrokerLog,
        pairMsSummary: summary(pairMs),
      },
    };
  } finally {
    await db?.end().catch(() => undefined);
    await Promise.all(loads.map((l) => stopHelper(l, 30_000)));
    await Promise.all(workers.map((w) => stopHelper(w, 30_000)));
    await stack?.stop();
    tmp.remove();
  }
}

interface Sample {
  at: number;
  mosquitto: ProcSample;
  workers: ProcSample[];
  postgresMs: number;
}

function sample(s: ExternalStack, workerPids: number[]): Sample {
  return { at: performance.now(), mosquitto: procSample(s.mosquittoPid()), workers: workerPids.map(procSample), postgresMs: s.postgresCpuMs() };
}

/** When the last worker logged its service link back after `since` (epoch ms), in seconds from it. */
function linksBackAt(dir: string, workers: number, since: number): number | null {
  let last = 0;
  for (let i = 1; i <= workers; i++) {
    let first: number | undefined;
    for (const line of readFileSync(path.join(dir, `w${i}.log`), 'utf8').split('\n')) {
      if (!line.includes('external broker connection back') || !line.includes('"role":"link"')) continue;
      const at = (JSON.parse(line) as { time: number }).time;
      if (at >= since) {
        first = at;
        break;
      }
    }
    if (first === undefined) return null;
    last = Math.max(last, first);
  }
  return (last - since) / 1000;
}

/** What the workers logged about their broker connections over the restarts (from their log files). */
function brokerLogCounts(dir: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (let i = 1; ; i++) {
    let text: string;
    try {
      text = readFileSync(path.join(dir, `w${i}.log`), 'utf8');
    } catch {
      return counts;
    }
    for (const line of text.split('\n')) {
      const msg = /"msg":"([^"]*broker[^"]*)"/.exec(line)?.[1];
      if (msg) counts[msg] = (counts[msg] ?? 0) + 1;
    }
  }
}

function medianOrNull(xs: (number | null)[]): number | string {
  return xs.every((x) => x !== null) ? round1(median(xs as number[])) : 'not logged';
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

