import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { MqttClient } from 'mqtt';
import type { CloudAttemptRecord } from '../protocol/index.js';
import { validCode } from '../simulator/devices/codes.js';
import type { LedgerEntry } from '../simulator/gateway/ledger.js';
import { reconcile } from '../simulator/reconcile/reconcile.js';
import { createRandom } from '../simulator/random.js';
import { Box, type BoxHost, type PairingCode } from '../simulator/rig.js';
import { median } from '../simulator/stats.js';
import { connectNoDelay, mqttRoundTrips, openCommitFloor, type CommitFloor } from './floors.js';
import { pairProbe, type PayProbe } from './pay-round-trip.js';
import type { BenchResult } from './result.js';
import { fmt, histogram, nextMessage, scratch, spawnHelper, stopHelper, summary } from './harness.js';

/**
 * 1. latency — one box as a real process on socat pseudo-terminals (the simulator's `Box`), paired
 * through POST /v1/pair with the real device CLI, against the cloud as its own process
 * (`children/cloud-proc.ts`: aedes + service + the scripted gateway in-process, only successful
 * customers and no latency, keeping its ledger). One sale at a time: time from the scan line written
 * on the scanner pty to the `result` line read from the cash-register pty.
 *
 * In the same run, interleaved in blocks (the order rotates each block), the floors:
 *  - a raw MQTT QoS 1 round trip (publish → echo service → receive) through aedes with TCP_NODELAY,
 *    the broker and its echo service in their own process like the cloud's broker and service;
 *  - one durable SQLite commit (WAL, synchronous=FULL) in the same directory as the journals;
 *  - for information, the cloud's pay round trip without a box (bench/pay-round-trip.ts).
 *
 * Durable commits on the critical path, counted in the code (see bench/README.md): 4 —
 *  box: attempt CREATED + pay in the outbox, one transaction, before the pay is published
 *       (device/agent.ts dispatch → commitMode 'full');
 *  cloud: attempt PAYING recorded before the gateway is called (attempts-service.ts step → GroupCommit);
 *  cloud: SUCCESS recorded (with the sale claim) before the result is published;
 *  box: attempt SUCCESS + sale PAID + ack in the outbox, one transaction, before the ECR line.
 * (The PUBACK → PAYING and "result line written" steps commit with synchronous=NORMAL: no fsync.)
 * Floor = broker round trip + 4 × durable commit (medians).
 */
export interface LatencyParams {
  sales: number;
  blocks: number;
  seed: string;
}

export const LATENCY_DEFAULTS: LatencyParams = { sales: 1000, blocks: 10, seed: 'bench-latency' };
export const LATENCY_SMOKE: LatencyParams = { sales: 20, blocks: 2, seed: 'bench-latency' };

export const DURABLE_COMMITS_ON_PATH = 4;

export async function latency(p: LatencyParams): Promise<BenchResult> {
  const tmp = scratch('latency');
  const random = createRandom(p.seed);
  // The cloud at the product's default log level (info), its pino lines to a file (as the rig's
  // cloud wrote them to its log), not the terminal.
  const cloud = spawnHelper('children/cloud-proc.ts', [JSON.stringify({ dbPath: path.join(tmp.dir, 'cloud.db'), config: { logLevel: 'info' } })], { stdoutFile: path.join(tmp.dir, 'cloud.log') });
  const echo = spawnHelper('children/echo-proc.ts');
  let box: Box | undefined;
  let floorClient: MqttClient | undefined;
  let commits: CommitFloor | undefined;
  let probe: PayProbe | undefined;
  try {
    const ready = await nextMessage<{ type: 'ready'; mqttUrl: string; httpUrl: string }>(cloud, 'ready', 30_000);
    // The box connects to the cloud's broker directly (what pairing hands out here anyway), so the
    // hops match the floor's (box process → broker → service → broker → box process).
    const host: BoxHost = { dir: tmp.dir, deviceConfig: { mqttUrl: ready.mqttUrl } };
    box = await Box.create(host, 'box-1', await pairingCode(cloud, 'M-BENCH', 'S-1'));
    // The cloud's share alone: a second paired client paying without a box (bench/pay-round-trip.ts).
    const probeCode = await pairingCode(cloud, 'M-BENCH', 'S-1');
    probe = await pairProbe(probeCode.cloudUrl, probeCode.code, ready.mqttUrl);
    const { url } = await nextMessage<{ type: 'ready'; url: string }>(echo, 'ready', 30_000);
    floorClient = await connectNoDelay(url, 'floor-client');
    commits = openCommitFloor(tmp.dir);

    let saleNo = 0;
    const e2e: number[] = [];
    const mqtt: number[] = [];
    const commit: number[] = [];
    const cloudPay: number[] = [];
    const theBox = box;
    const runProbe = async (n: number, into: number[] | null) => {
      const s = await probe!.roundTrips(n);
      into?.push(...s);
    };
    const runSales = async (n: number, into: number[] | null) => {
      for (let i = 0; i < n; i++) {
        const ms = await oneSale(theBox, `L-${++saleNo}`, random.int(1, 99_999), validCode(random, 'wechat'));
        into?.push(ms);
      }
    };
    const runMqtt = async (n: number, into: number[] | null) => {
      const s = await mqttRoundTrips(floorClient!, 'floor-client', n);
      into?.push(...s);
    };
    const runCommits = (n: number, into: number[] | null) => {
      for (let i = 0; i < n; i++) {
        const ms = commits!.commit();
        into?.push(ms);
      }
    };

    // Warm-up: JIT, SQLite caches on every path. Not recorded.
    await runSales(Math.min(20, p.sales), null);
    await runMqtt(50, null);
    runCommits(20, null);
    await runProbe(20, null);

    const per = Math.ceil(p.sales / p.blocks);
    const started = performance.now();
    for (let b = 0; b < p.blocks; b++) {
      const n = Math.min(per, p.sales - b * per);
      if (n <= 0) break;
      const steps = [() => runSales(n, e2e), () => runMqtt(n, mqtt), async () => runCommits(n, commit), () => runProbe(n, cloudPay)];
      for (let k = 0; k < steps.length; k++) await steps[(b + k) % steps.length]!();
    }
    const seconds = (performance.now() - started) / 1000;

    cloud.send({ type: 'snapshot' });
    const [snap, devices] = await Promise.all([
      nextMessage<{ type: 'snapshot'; ledger: LedgerEntry[]; cloud: CloudAttemptRecord[] }>(cloud, 'snapshot', 60_000),
      box.attempts(),
    ]);
    // The probe's payments are checked ledger ↔ cloud; no journal is supplied for its device.
    const report = reconcile({ ledger: snap.ledger, cloud: snap.cloud, devices: [devices] });
    const floor = median(mqtt) + DURABLE_COMMITS_ON_PATH * median(commit);
    const e = summary(e2e);
    const ratio50 = e.p50 / floor;
    const ratio99 = e.p99 / floor;
    return {
      name: 'latency',
      params: {
        ...p,
        durableCommitsOnPath: DURABLE_COMMITS_ON_PATH,
        logLevel: 'cloud: info (the default), stdout to a file in the scratch dir; box: defaults',
        topology: 'box process on socat ptys → cloud process (aedes + service + in-process instant scripted gateway, bench/children/cloud-proc.ts)',
      },
      figures: {
        'e2e p50 ms': e.p50,
        'e2e p99 ms': e.p99,
        'floor: mqtt rtt p50 ms': round3(median(mqtt)),
        'floor: durable commit p50 ms': round3(median(commit)),
        'floor ms (rtt + 4 commits)': round3(floor),
        'e2e p50 / floor': round3(ratio50),
        'e2e p99 / floor': round3(ratio99),
        'e2e p99 / floor of p99s (info)': round3(e.p99 / (summary(mqtt).p99 + DURABLE_COMMITS_ON_PATH * summary(commit).p99)),
        'cloud pay round trip p50 ms (no box)': round3(median(cloudPay)),
        'box share p50 ms (e2e − cloud pay)': round3(e.p50 - median(cloudPay)),
        sales: e2e.length,
        'reconciled': report.ok,
      },
      targets: [
        { what: 'e2e p50 within 1.5x floor', target: '<= 1.5', actual: fmt(ratio50), met: ratio50 <= 1.5 },
        { what: 'e2e p99 under 3x floor', target: '< 3', actual: fmt(ratio99), met: ratio99 < 3 },
        { what: 'reconciliation', target: 'ok', actual: report.ok ? 'ok' : `${report.mismatches.length} mismatches`, met: report.ok },
      ],
      raw: {
        seconds,
        e2eMs: e,
        mqttRttMs: summary(mqtt),
        durableCommitMs: summary(commit),
        cloudPayRoundTripMs: summary(cloudPay),
        e2eHistogram: histogram(e2e),
        mqttHistogram: histogram(mqtt),
        commitHistogram: histogram(commit),
        reconcile: { ok: report.ok, mismatches: report.mismatches.slice(0, 20), totals: report.totals },
      },
    };
  } finally {
    commits?.close();
    await probe?.close().catch(() => undefined);
    await floorClient?.endAsync(true).catch(() => undefined);
    await box?.close().catch(() => undefined);
    await Promise.all([stopHelper(echo), stopHelper(cloud)]);
    tmp.remove();
  }
}

/** A one-time pairing code from the cloud process (what `scanbox-cloud pair create --json` prints). */
async function pairingCode(cloud: ChildProcess, merchant: string, store: string): Promise<PairingCode> {
  const reply = nextMessage<{ type: 'pairingCode'; error?: string; code: string; expiresAt: number; cloudUrl: string; qrText: string }>(cloud, 'pairingCode', 30_000);
  cloud.send({ type: 'pair', merchant, store });
  const { error, code, expiresAt, cloudUrl, qrText } = await reply;
  if (error) throw new Error(`pairing code from the cloud process: ${error}`);
  return { code, expiresAt, cloudUrl, qrText };
}

/** Ring up a sale, wait for WAITING_CODE, then time scan line written → result line read. */
async function oneSale(box: Box, ref: string, amount: number, code: string): Promise<number> {
  const mark = box.ecr.mark();
  await box.ecr.sale(ref, amount);
  await box.ecr.waitFor((m) => m.ref === ref && m.type === 'progress' && m.stage === 'WAITING_CODE', 10_000, mark);
  const t0 = performance.now();
  const result = box.ecr.waitFor((m) => m.ref === ref && m.type === 'result', 10_000, mark);
  await box.scanner.scan(code);
  const r = await result;
  const ms = performance.now() - t0;
  if (r.type !== 'result' || r.outcome !== 'PAID') throw new Error(`sale ${ref} was not paid: ${JSON.stringify(r)}`);
  return ms;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
