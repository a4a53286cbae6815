import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FINAL_STATES, WALLETS, type AttemptState, type EcrOutbound } from '../../protocol/index.js';
import { validCode } from '../devices/codes.js';
import { createRandom, type Random } from '../random.js';
import { reconcile, type ReconcileReport } from '../reconcile/reconcile.js';
import { formatReconcileReport } from '../reconcile/reconcile-table.js';
import { FAST_CLOUD_CONFIG, FAST_DEVICE_CONFIG, Rig, type Box, type WalletMode } from '../rig.js';
import { ScenarioMix, type ScenarioMixInput } from '../gateway/scenario.js';
import { summarize, type Summary } from '../stats.js';

/**
 * `scanbox-sim fleet --boxes N --sales M [--mix FILE]`: N boxes, each its own process on its own
 * pseudo-terminals and paired through the real pairing API, ring up M sales each against the
 * scripted gateway's scenario mix. A cashier whose customer's code fails cancels the sale.
 */
export interface FleetOptions {
  boxes: number;
  sales: number;
  seed: number | string;
  mix?: ScenarioMixInput;
  /** `real-formats`: WeChat and Alipay through the cloud's adapters and the wire-faithful simulators. */
  wallets?: WalletMode;
  /** Boxes started at once while pairing (each start costs a process and two socat). */
  startConcurrency?: number;
  keep?: boolean;
  out?: (line: string) => void;
  progress?: (done: number, total: number, elapsedS: number) => void;
}

export interface FleetSummary {
  boxes: number;
  sales: number;
  paid: number;
  notPaid: number;
  attemptsByState: Partial<Record<AttemptState, number>>;
  seconds: number;
  salesPerSecond: number;
  /** Scan written on the scanner line → the sale's result line read from the ECR line, ms. */
  latencyMs: Summary;
  report: ReconcileReport;
}

const SALE_TIMEOUT_MS = 60_000;

export function loadMix(file: string): ScenarioMixInput {
  return ScenarioMix.parse(JSON.parse(readFileSync(file, 'utf8')));
}

export async function runFleet(opts: FleetOptions): Promise<FleetSummary> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'scanbox-fleet-'));
  const rig = await Rig.start({ dir, seed: opts.seed, wallets: opts.wallets ?? 'scripted', ...(opts.mix ? { mix: opts.mix } : {}), cloudConfig: fleetCloudConfig(opts.boxes), deviceConfig: FAST_DEVICE_CONFIG });
  try {
    out(`fleet: cloud up at ${rig.httpUrl}; pairing ${opts.boxes} boxes…`);
    const boxes = await startBoxes(rig, opts.boxes, opts.startConcurrency ?? 4);
    out(`fleet: ${boxes.length} boxes paired and online; ringing up ${opts.sales} sales each`);
    const latencies: number[] = [];
    const outcomes = { paid: 0, notPaid: 0 };
    const total = boxes.length * opts.sales;
    const started = Date.now();
    let done = 0;
    await Promise.all(
      boxes.map(async (box, i) => {
        const random = createRandom(`${opts.seed}/box-${i}`);
        for (let n = 1; n <= opts.sales; n++) {
          const r = await ringUp(box, `${box.name}-R${n}`, random);
          latencies.push(r.latencyMs);
          outcomes[r.paid ? 'paid' : 'notPaid']++;
          opts.progress?.(++done, total, (Date.now() - started) / 1000);
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    const snapshot = await rig.settle(60_000);
    const report = reconcile(snapshot);
    const attemptsByState: Partial<Record<AttemptState, number>> = {};
    for (const a of snapshot.cloud) attemptsByState[a.state] = (attemptsByState[a.state] ?? 0) + 1;
    const summary = { boxes: boxes.length, sales: total, ...outcomes, attemptsByState, seconds, salesPerSecond: total / seconds, latencyMs: summarize(latencies), report };
    out(formatSummary(summary));
    out(formatReconcileReport(report, { maxRows: 20 }));
    return summary;
  } finally {
    await rig.stop();
    if (opts.keep) out(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** All boxes pair from 127.0.0.1: the per-address pairing limit must let the whole fleet through once. */
function fleetCloudConfig(boxes: number): Record<string, unknown> {
  return { ...FAST_CLOUD_CONFIG, pairRateLimit: { max: Math.max(10, boxes + 5), windowS: 60 } };
}

async function startBoxes(rig: Rig, n: number, concurrency: number): Promise<Box[]> {
  const boxes: Box[] = [];
  for (let i = 0; i < n; i += concurrency) {
    const batch = Array.from({ length: Math.min(concurrency, n - i) }, (_, k) => rig.addBox(`box-${i + k + 1}`, 'M-FLEET', `S-${((i + k) % 5) + 1}`));
    boxes.push(...(await Promise.all(batch)));
  }
  return boxes;
}

/** One sale at one counter: ring up, scan, and cancel if the customer's code fails. */
async function ringUp(box: Box, ref: string, random: Random): Promise<{ paid: boolean; latencyMs: number }> {
  const mark = box.ecr.mark();
  await box.ecr.sale(ref, random.int(1, 99_999));
  await box.ecr.waitFor((m) => m.ref === ref && m.type === 'progress' && m.stage === 'WAITING_CODE', SALE_TIMEOUT_MS, mark);
  const scanned = performance.now();
  await box.scanner.scan(validCode(random, random.pick(WALLETS)));
  const first = await box.ecr.waitFor((m) => m.ref === ref && (m.type === 'result' || (m.type === 'progress' && m.stage === 'ATTEMPT_FAILED')), SALE_TIMEOUT_MS, mark);
  const latencyMs = performance.now() - scanned;
  const result = first.type === 'result' ? first : await cancelled(box, ref);
  return { paid: result.type === 'result' && result.outcome === 'PAID', latencyMs };
}

async function cancelled(box: Box, ref: string): Promise<EcrOutbound> {
  await box.ecr.cancel(ref);
  return box.ecr.resultFor(ref, SALE_TIMEOUT_MS);
}

export function formatSummary(s: Omit<FleetSummary, 'report'>): string {
  const states = FINAL_STATES.map((st) => `${st} ${s.attemptsByState[st] ?? 0}`).join(', ');
  const open = Object.entries(s.attemptsByState).filter(([st]) => !(FINAL_STATES as readonly string[]).includes(st));
  const l = s.latencyMs;
  return [
    `boxes ${s.boxes}, sales ${s.sales} (${s.paid} paid, ${s.notPaid} not paid) in ${s.seconds.toFixed(1)} s: ${s.salesPerSecond.toFixed(1)} sales/s`,
    `attempts by final state: ${states}${open.length ? `; NOT FINAL: ${open.map(([st, n]) => `${st} ${n}`).join(', ')}` : ''}`,
    `scan → ECR result (ms): p50 ${l.p50.toFixed(1)}, p90 ${l.p90.toFixed(1)}, p99 ${l.p99.toFixed(1)}, max ${l.max.toFixed(1)} (n=${l.n})`,
  ].join('\n');
}
