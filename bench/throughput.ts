import path from 'node:path';
import { median } from '../simulator/stats.js';
import { seedDevicesAt } from './cloud-kit.js';
import { hostPort, LiteClient } from './lite-mqtt.js';
import { PayingBox } from './pay-client.js';
import type { BenchResult } from './result.js';
import { cpuShare, fmt, nextMessage, procSample, scratch, sleep, spawnHelper, stopHelper, summary } from './harness.js';
import { closedLoop, reconcileRun } from './pay-phase.js';
import { EMBEDDED, scaleOutChoice, type ScaleOutChoice } from './scale-out-choice.js';

/**
 * 2. throughput — K boxes (LiteClient + the protocol, in this process) each paying as fast as
 * results come back (pay → result → ack → next pay), against the cloud in its own process
 * (`startCloud`, default SQLite store, scripted gateway with instant success), and in the same run
 * the raw aedes QoS 1 round-trip rate with the same K clients (echo broker in its own process).
 * Phases alternate cloud / raw, `rounds` times, `phaseS` seconds each; the medians are compared.
 * Two processes because the machine has two cores: the cloud gets one, the load generator the other.
 */
export interface ThroughputParams extends ScaleOutChoice {
  boxes: number;
  phaseS: number;
  rounds: number;
  warmupS: number;
  /** The cloud's pino level; its stdout goes to a file, as under a process supervisor. */
  logLevel: string;
}

export const THROUGHPUT_DEFAULTS: ThroughputParams = { boxes: 100, phaseS: 5, rounds: 3, warmupS: 2, logLevel: 'info', ...EMBEDDED };
export const THROUGHPUT_SMOKE: ThroughputParams = { boxes: 4, phaseS: 0.5, rounds: 1, warmupS: 0.2, logLevel: 'info', ...EMBEDDED };

/** `--broker mosquitto --store postgres [--workers 1,2,3]`: the scale-out variant (throughput-scaleout.ts). */
export async function throughput(p: ThroughputParams): Promise<BenchResult> {
  const choice = scaleOutChoice(p, '1,2,3');
  // Loaded only here: it brings the test servers (test/support) the single-process run does not need.
  if (choice.scaleOut) return (await import('./throughput-scaleout.js')).throughputScaleOut({ boxes: p.boxes, phaseS: p.phaseS, rounds: p.rounds, warmupS: p.warmupS, logLevel: p.logLevel, workers: choice.workers });
  return throughputEmbedded(p);
}

async function throughputEmbedded(p: ThroughputParams): Promise<BenchResult> {
  const tmp = scratch('throughput');
  const dbPath = path.join(tmp.dir, 'cloud.db');
  const seeded = await seedDevicesAt(dbPath, p.boxes);
  const cloud = spawnHelper('children/cloud-proc.ts', [JSON.stringify({ dbPath, config: { logLevel: p.logLevel } })], { stdoutFile: path.join(tmp.dir, 'cloud.log') });
  const echo = spawnHelper('children/echo-proc.ts');
  const boxes: PayingBox[] = [];
  const raws: LiteClient[] = [];
  try {
    const ready = await nextMessage<{ type: 'ready'; mqttUrl: string; pid: number }>(cloud, 'ready', 60_000);
    const echoReady = await nextMessage<{ type: 'ready'; url: string; pid: number }>(echo, 'ready', 60_000);
    const c = hostPort(ready.mqttUrl);
    for (const id of seeded.ids) boxes.push(new PayingBox(id, seeded.secret, c.host, c.port));
    // First connects cost one scrypt each (the cloud caches the verified secret afterwards).
    await Promise.all(boxes.map((b) => b.connect()));
    const e = hostPort(echoReady.url);
    for (let i = 0; i < p.boxes; i++) raws.push(new LiteClient({ host: e.host, port: e.port, clientId: `raw-${i}` }));
    await Promise.all(raws.map((r) => r.connect()));
    await Promise.all(raws.map((r, i) => r.subscribe(`floor/down/raw-${i}`)));

    const payLatency: number[] = [];
    const cloudRates: number[] = [];
    const rawRates: number[] = [];
    const cloudCpu: number[] = [];
    const echoCpu: number[] = [];
    const loadCpu: number[] = [];
    const perCommit: number[] = [];
    const blockedShare: number[] = [];
    type Commits = { type: 'commits'; transactions: number; writes: number; ms: number; maxBatch: number };
    const commits = async () => (cloud.send({ type: 'commits' }), nextMessage<Commits>(cloud, 'commits', 10_000));

    const cloudPhase = async (seconds: number, record: boolean) => {
      const k0 = await commits();
      const s0 = procSample(ready.pid);
      const u0 = process.cpuUsage();
      const { count, elapsed, settled } = await closedLoop(boxes, seconds, record ? payLatency : undefined);
      const s1 = procSample(ready.pid);
      const u = process.cpuUsage(u0);
      const k1 = await commits();
      await settled;
      if (record) {
        perCommit.push((k1.writes - k0.writes) / Math.max(1, k1.transactions - k0.transactions));
        blockedShare.push((100 * (k1.ms - k0.ms)) / (elapsed * 1000));
        cloudRates.push(count / elapsed);
        cloudCpu.push(cpuShare(s0, s1));
        loadCpu.push((u.user + u.system) / 10 / (elapsed * 1000));
      }
    };

    const rawPhase = async (seconds: number, record: boolean) => {
      let running = true;
      let count = 0;
      const s0 = procSample(echoReady.pid);
      const t0 = performance.now();
      const loops = raws.map(async (r, i) => {
        let next: (() => void) | null = null;
        r.onMessage = () => next?.();
        while (running) {
          const back = new Promise<void>((res) => (next = res));
          void r.publish(`floor/up/raw-${i}`, `{"i":${count}}`, 1);
          await back;
          if (!running) break;
          count++;
        }
      });
      await sleep(seconds * 1000);
      running = false;
      const elapsed = (performance.now() - t0) / 1000;
      const s1 = procSample(echoReady.pid);
      await Promise.all(loops);
      if (record) {
        rawRates.push(count / elapsed);
        echoCpu.push(cpuShare(s0, s1));
      }
    };

    await cloudPhase(p.warmupS, false);
    await rawPhase(p.warmupS, false);
    for (let r = 0; r < p.rounds; r++) {
      // Alternate which goes first, so drift (a warming cache, a neighbour) does not favour one side.
      if (r % 2 === 0) {
        await cloudPhase(p.phaseS, true);
        await rawPhase(p.phaseS, true);
      } else {
        await rawPhase(p.phaseS, true);
        await cloudPhase(p.phaseS, true);
      }
    }

    const { report, recorded, unexpected, allSuccess, reconciled } = await reconcileRun(cloud, boxes);

    const cloudRate = median(cloudRates);
    const rawRate = median(rawRates);
    const ratio = cloudRate / rawRate;
    const lat = summary(payLatency);
    return {
      name: 'throughput',
      params: { ...p, cloudProcess: 'separate (bench/children/cloud-proc.ts)', echoProcess: 'separate (bench/children/echo-proc.ts)', gateway: 'scripted, success only, INSTANT' },
      figures: {
        'cloud payments/s (median)': Math.round(cloudRate),
        'raw QoS1 round trips/s (median)': Math.round(rawRate),
        'cloud / raw': round3(ratio),
        'pay→result p50 ms under load': lat.p50,
        'pay→result p99 ms under load': lat.p99,
        'cloud CPU % of a core': Math.round(median(cloudCpu)),
        'echo broker CPU % of a core': Math.round(median(echoCpu)),
        'load generator CPU % (cloud phases)': Math.round(median(loadCpu)),
        'attempt writes per SQLite commit': round3(median(perCommit)),
        'group commit in flight % of time': Math.round(median(blockedShare)),
        'payments reconciled': recorded,
        reconciled,
      },
      targets: [
        { what: 'payments/s per cloud process', target: '>= 1000', actual: String(Math.round(cloudRate)), met: cloudRate >= 1000 },
        { what: 'share of raw broker round-trip rate', target: '>= 30%', actual: `${fmt(ratio * 100, 1)}%`, met: ratio >= 0.3 },
        { what: 'reconciliation', target: 'ok', actual: reconciled ? 'ok' : `${report.mismatches.length} mismatches, allSuccess=${allSuccess}`, met: reconciled },
      ],
      raw: {
        cloudRates: cloudRates.map(Math.round),
        rawRates: rawRates.map(Math.round),
        cloudCpu: cloudCpu.map(Math.round),
        echoCpu: echoCpu.map(Math.round),
        loadCpu: loadCpu.map(Math.round),
        writesPerCommit: perCommit.map(round3),
        eventLoopInCommitsPct: blockedShare.map(Math.round),
        payLatencyMs: lat,
        reconcile: { ok: report.ok, mismatches: report.mismatches.slice(0, 20), totals: report.totals, unexpectedResults: unexpected },
      },
    };
  } finally {
    await Promise.all([...boxes.map((b) => b.client.end().catch(() => undefined)), ...raws.map((r) => r.end().catch(() => undefined))]);
    await stopHelper(cloud);
    await stopHelper(echo);
    tmp.remove();
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
