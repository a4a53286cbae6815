import type { ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { LedgerEntry } from '../simulator/gateway/ledger.js';
import { median } from '../simulator/stats.js';
import { DROPPED_NOTICE, startExternalStack, type ExternalStack, type PostgresCounters } from './external-stack.js';
import { hostPort } from './lite-mqtt.js';
import { PayingBox } from './pay-client.js';
import { closedLoop, cloudSnapshot, reconcileSeen } from './pay-phase.js';
import type { BenchResult } from './result.js';
import { machineCpu, machineShare, nextMessage, procSample, scratch, sleep, spawnHelper, stopHelper, summary, type MachineCpu, type ProcSample } from './harness.js';

/**
 * 9a. throughput, scale-out (`npm run bench -- throughput --broker mosquitto --store postgres
 * --workers 1,2,3`): the closed payment loop of section 2 — K boxes as LiteClients in this process,
 * pay → result → ack → next pay — against N cloud workers, each its own process
 * (`children/cloud-proc.ts` with the PostgreSQL store, the external broker and a worker id: what
 * `scanbox-cloud start --store … --broker … --worker-id …` runs), sharing the boxes' messages through
 * Mosquitto's shared subscription and one PostgreSQL database (bench/external-stack.ts).
 *
 * Every worker count is measured in every round, in one run: the workers are started (a fresh one
 * warms up for `warmupS` before a phase counts) or drained (`drain`: it leaves the shared
 * subscription, finishes what it holds and hands over its gateway ledger) between phases, while no
 * payment is in flight. Rounds go up then down (1,2,3 | 3,2,1 | 1,2,3), so drift does not favour one
 * count. Per phase: payments/s, pay → result latency, and the CPU of each part from /proc — every
 * worker, Mosquitto, PostgreSQL (postmaster and backends), this load generator — and of the whole
 * machine, to say where the limit is. Afterwards every worker's ledger, the store's attempts and what
 * the boxes saw are reconciled as in section 2.
 */
export interface ScaleOutThroughputParams {
  boxes: number;
  phaseS: number;
  rounds: number;
  warmupS: number;
  logLevel: string;
  /** The worker counts compared, each once a round. */
  workers: number[];
}

interface Worker {
  id: string;
  proc: ChildProcess;
  pid: number;
}

interface Commits {
  transactions: number;
  writes: number;
  /** Time a group commit was in flight, summed over the workers (each keeps at most one in flight). */
  ms: number;
  storeCalls: Record<string, number>;
}

interface CpuSample {
  postgres: PostgresCounters;
  workers: ProcSample[];
  mosquitto: ProcSample;
  postgresMs: number;
  load: NodeJS.CpuUsage;
  machine: MachineCpu;
  at: number;
}

interface PhaseFigures {
  round: number;
  workers: number;
  paymentsPerS: number;
  payP50Ms: number;
  payP99Ms: number;
  /** % of one core over the phase. */
  cpu: { workers: number[]; workersTotal: number; workersSys: number; mosquitto: number; postgres: number; load: number; machine: number; softirq: number; steal: number; others: number };
  writesPerCommit: number;
  /** A group commit's mean time in flight (sent → committed), and the share of the phase each worker had one in flight. */
  commitMs: number;
  commitInFlightPct: number;
  /** pg_stat_database over the phase (approximate: backends report once a second), per payment. */
  postgresCommitsPerPayment: number;
  postgresRowsPerPayment: number;
  /** The workers' store calls per payment, by method (those made at least once per 100 payments). */
  storeCallsPerPayment: Record<string, number>;
}

export async function throughputScaleOut(p: ScaleOutThroughputParams): Promise<BenchResult> {
  const tmp = scratch('throughput-scaleout');
  let stack: ExternalStack | undefined;
  const running: Worker[] = [];
  const drainedLedgers: LedgerEntry[] = [];
  const workerStartMs: number[] = [];
  const boxes: PayingBox[] = [];
  let spawned = 0;
  try {
    stack = await startExternalStack({ boxes: p.boxes, dir: tmp.dir });
    const s = stack;
    const mosquittoPid = s.mosquittoPid();

    const startWorker = async () => {
      const id = `w${++spawned}`;
      const config = { logLevel: p.logLevel, store: s.pgUrl, broker: { url: s.adminUrl }, workerId: id, secretKeyFile: s.keyFile };
      const t0 = performance.now();
      const proc = spawnHelper('children/cloud-proc.ts', [JSON.stringify({ dbPath: path.join(tmp.dir, `${id}.db`), gatewaySeed: id, countStoreCalls: true, config })], { stdoutFile: path.join(tmp.dir, `${id}.log`) });
      const w: Worker = { id, proc, pid: 0 };
      running.push(w);
      w.pid = (await nextMessage<{ type: 'ready'; pid: number }>(proc, 'ready', 60_000)).pid;
      workerStartMs.push(Math.round(performance.now() - t0));
    };
    const drainWorker = async () => {
      const w = running.pop()!;
      const exited = new Promise<void>((r) => w.proc.once('exit', () => r()));
      w.proc.send({ type: 'drain' });
      drainedLedgers.push(...(await nextMessage<{ type: 'drained'; ledger: LedgerEntry[] }>(w.proc, 'drained', 60_000)).ledger);
      await exited;
    };
    const setWorkers = async (k: number) => {
      while (running.length < k) await startWorker();
      while (running.length > k) await drainWorker();
    };
    const commits = async (): Promise<Commits> => {
      const all = await Promise.all(running.map((w) => (w.proc.send({ type: 'commits' }), nextMessage<{ type: 'commits'; transactions: number; writes: number; ms: number; storeCalls: Record<string, number> }>(w.proc, 'commits', 10_000))));
      const storeCalls: Record<string, number> = {};
      for (const c of all) for (const [k, v] of Object.entries(c.storeCalls)) storeCalls[k] = (storeCalls[k] ?? 0) + v;
      return { transactions: all.reduce((n, c) => n + c.transactions, 0), writes: all.reduce((n, c) => n + c.writes, 0), ms: all.reduce((n, c) => n + c.ms, 0), storeCalls };
    };
    const cpuSample = async (): Promise<CpuSample> => ({ postgres: await s.postgresCounters(), workers: running.map((w) => procSample(w.pid)), mosquitto: procSample(mosquittoPid), postgresMs: s.postgresCpuMs(), load: process.cpuUsage(), machine: machineCpu(), at: performance.now() });

    const order = (r: number) => (r % 2 === 0 ? p.workers : [...p.workers].reverse());
    await setWorkers(order(0)[0]!);
    const { host, port } = hostPort(s.brokerUrl);
    for (const id of s.seeded.ids) boxes.push(new PayingBox(id, s.seeded.secret, host, port));
    await Promise.all(boxes.map((b) => b.connect()));

    const phases: PhaseFigures[] = [];
    const latencies = new Map<number, number[]>(p.workers.map((k) => [k, []]));
    const phase = async (seconds: number, round: number | null) => {
      const k0 = await commits();
      const a = await cpuSample();
      const lat: number[] = [];
      const { count, elapsed, settled } = await closedLoop(boxes, seconds, lat);
      const b = await cpuSample();
      const k1 = await commits();
      await settled;
      if (round === null) return;
      const wall = b.at - a.at;
      const share = (ms: number) => (100 * ms) / wall;
      const workers = a.workers.map((w, i) => share(b.workers[i]!.cpuMs - w.cpuMs));
      const machine = machineShare(a.machine, b.machine);
      const ours = { workersTotal: workers.reduce((x, y) => x + y, 0), workersSys: a.workers.reduce((n, w, i) => n + share(b.workers[i]!.sysMs - w.sysMs), 0), mosquitto: share(b.mosquitto.cpuMs - a.mosquitto.cpuMs), postgres: share(b.postgresMs - a.postgresMs), load: share((b.load.user - a.load.user + b.load.system - a.load.system) / 1000) };
      const l = summary(lat);
      latencies.get(running.length)!.push(...lat);
      phases.push({
        round,
        workers: running.length,
        paymentsPerS: count / elapsed,
        payP50Ms: l.p50,
        payP99Ms: l.p99,
        cpu: {
          workers,
          ...ours,
          machine: machine.busy,
          softirq: machine.softirq,
          steal: machine.steal,
          // Whatever else ran (other work on a shared machine, the kernel's own threads): the noise.
          others: machine.busy - ours.workersTotal - ours.mosquitto - ours.postgres - ours.load,
        },
        writesPerCommit: (k1.writes - k0.writes) / Math.max(1, k1.transactions - k0.transactions),
        commitMs: (k1.ms - k0.ms) / Math.max(1, k1.transactions - k0.transactions),
        commitInFlightPct: (100 * (k1.ms - k0.ms)) / (elapsed * 1000 * running.length),
        postgresCommitsPerPayment: (b.postgres.commits - a.postgres.commits) / Math.max(1, count),
        postgresRowsPerPayment: (b.postgres.rowsWritten - a.postgres.rowsWritten) / Math.max(1, count),
        storeCallsPerPayment: Object.fromEntries(
          Object.entries(k1.storeCalls)
            .map(([name, n]) => [name, round3((n - (k0.storeCalls[name] ?? 0)) / Math.max(1, count))] as const)
            .filter(([, x]) => x >= 0.01)
            .sort((x, y) => y[1] - x[1]),
        ),
      });
    };

    await phase(p.warmupS, null);
    for (let r = 0; r < p.rounds; r++) {
      for (const k of order(r)) {
        if (running.length !== k) {
          await setWorkers(k);
          await phase(p.warmupS, null);
        }
        await phase(p.phaseS, r);
      }
    }

    // The last acks land; then every worker but one hands over its ledger, and that one the rest.
    await sleep(300);
    while (running.length > 1) await drainWorker();
    const last = await cloudSnapshot(running[0]!.proc);
    const { report, recorded, unexpected, duplicates, allSuccess, reconciled } = reconcileSeen({ ledger: [...drainedLedgers, ...last.ledger], cloud: last.cloud }, boxes, { duplicatesAllowed: true });

    const of = (k: number) => phases.filter((x) => x.workers === k);
    const med = (k: number, f: (x: PhaseFigures) => number) => median(of(k).map(f));
    const base = p.workers.includes(1) ? med(1, (x) => x.paymentsPerS) : NaN;
    const figures: BenchResult['figures'] = {};
    for (const k of p.workers) {
      const n = `${k} worker${k === 1 ? '' : 's'}`;
      const rate = med(k, (x) => x.paymentsPerS);
      const lat = summary(latencies.get(k)!);
      figures[`payments/s, ${n} (median)`] = Math.round(rate);
      if (k !== 1 && Number.isFinite(base)) figures[`${n} ÷ 1 worker`] = round3(rate / base);
      figures[`pay→result p50 / p99 ms, ${n}`] = `${lat.p50} / ${lat.p99}`;
      figures[`CPU % of a core, ${n}: workers / Mosquitto / PostgreSQL / load`] = [med(k, (x) => x.cpu.workersTotal), med(k, (x) => x.cpu.mosquitto), med(k, (x) => x.cpu.postgres), med(k, (x) => x.cpu.load)].map(Math.round).join(' / ');
      figures[`machine busy % (of ${100 * availableParallelism()}) / of it other processes, ${n}`] = `${Math.round(med(k, (x) => x.cpu.machine))} / ${Math.round(med(k, (x) => x.cpu.others))}`;
      figures[`group commit: ms each / in flight % of the time per worker, ${n}`] = `${round3(med(k, (x) => x.commitMs))} / ${Math.round(med(k, (x) => x.commitInFlightPct))}`;
      figures[`workers' CPU in the kernel %, ${n}`] = Math.round(med(k, (x) => (100 * x.cpu.workersSys) / Math.max(1, x.cpu.workersTotal)));
      figures[`PostgreSQL transactions per payment (approx.), ${n}`] = round3(med(k, (x) => x.postgresCommitsPerPayment));
      figures[`CPU ms per payment (all parts), ${n}`] = round3(med(k, (x) => (10 * (x.cpu.workersTotal + x.cpu.mosquitto + x.cpu.postgres + x.cpu.load)) / x.paymentsPerS));
    }
    figures['attempt writes per PostgreSQL commit (median)'] = round3(median(phases.map((x) => x.writesPerCommit)));
    figures['store calls per payment (1st phase): writeAttempts / others'] = storeCallsLine(phases[0]);
    figures['Mosquitto "outgoing messages are being dropped" notices'] = s.brokerLogCount(DROPPED_NOTICE);
    figures['payments reconciled'] = recorded;
    figures['results sent again (a worker joining), acknowledged again'] = duplicates;
    figures.reconciled = reconciled;

    return {
      name: 'throughput-scaleout',
      params: {
        ...p,
        broker: 'mosquitto (dynamic security, shared subscription)',
        store: 'postgres (fsync on)',
        workerProcess: 'separate, one per worker (bench/children/cloud-proc.ts: startCloud with --store, --broker, --worker-id)',
        gateway: 'scripted, success only, INSTANT, one per worker',
        boxAccounts: 'written into the dynamic-security file before Mosquitto starts (bench/dynsec-file.ts)',
        setup: s.timings,
        workerStartMs,
      },
      figures,
      targets: [{ what: 'reconciliation', target: 'ok', actual: reconciled ? 'ok' : `${report.mismatches.length} mismatches, allSuccess=${allSuccess}`, met: reconciled }],
      raw: {
        phases: phases.map((x) => ({ ...x, paymentsPerS: Math.round(x.paymentsPerS), writesPerCommit: round3(x.writesPerCommit), commitMs: round3(x.commitMs), commitInFlightPct: Math.round(x.commitInFlightPct), postgresCommitsPerPayment: round3(x.postgresCommitsPerPayment), postgresRowsPerPayment: round3(x.postgresRowsPerPayment), cpu: roundCpu(x.cpu) })),
        payLatencyMs: Object.fromEntries([...latencies].map(([k, l]) => [k, summary(l)])),
        reconcile: { ok: report.ok, mismatches: report.mismatches.slice(0, 20), totals: report.totals, unexpectedResults: unexpected, duplicateResults: duplicates },
      },
    };
  } finally {
    await Promise.all(boxes.map((b) => b.client.end().catch(() => undefined)));
    await Promise.all(running.map((w) => stopHelper(w.proc)));
    await stack?.stop();
    tmp.remove();
  }
}

/** "0.05 / 4.1 (getAttempt 2, …)": the attempt writes' transactions, and the single round trips around them. */
function storeCallsLine(x: PhaseFigures | undefined): string {
  if (!x) return '-';
  const calls = Object.entries(x.storeCallsPerPayment);
  const writes = x.storeCallsPerPayment.writeAttempts ?? 0;
  const others = calls.filter(([n]) => n !== 'writeAttempts');
  return `${writes} / ${round3(others.reduce((n, [, v]) => n + v, 0))} (${others.map(([n, v]) => `${n} ${v}`).join(', ')})`;
}

function roundCpu(c: PhaseFigures['cpu']): Record<string, number | number[]> {
  return Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Array.isArray(v) ? v.map(Math.round) : Math.round(v)]));
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
