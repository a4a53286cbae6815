import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FINAL_STATES, WALLETS, type AttemptState, type CloudAttemptRecord, type EcrOutbound } from '../../protocol/index.js';
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
  /** 2: a primary and a backup channel per wallet. */
  channelsPerWallet?: 1 | 2;
  /** The primary channels refuse a share of their calls from `atS` for `forS` seconds (needs 2 channels). */
  outage?: OutagePlan;
  /** Boxes started at once while pairing (each start costs a process and two socat). */
  startConcurrency?: number;
  keep?: boolean;
  out?: (line: string) => void;
  progress?: (done: number, total: number, elapsedS: number) => void;
}

export interface OutagePlan {
  atS: number;
  forS: number;
  share: number;
}

/** What a channel outage did to routing, measured from the cloud's attempts. */
export interface OutageEffect {
  plan: OutagePlan;
  /** Outage start → the primaries' breakers all open (the cloud's log): from then on new payments go to the backups. */
  openS: number | null;
  /** Outage end → the primaries' breakers all closed again (after their probes succeeded). */
  closedS: number | null;
  /** Outage start → the first new payment routed to a backup (cashiers ring up the next sale only after giving up on one). */
  switchS: number | null;
  /** New payments that still went to a primary after the switch, while it was down: the half-open probes. */
  probes: number;
  /** Outage end → the moment after which every new payment went to a primary again; null if none did. */
  switchBackS: number | null;
  /** Sales the fleet rang up without a final answer, plus attempts reconciliation could not match. */
  lost: number;
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
  outage?: OutageEffect;
}

const SALE_TIMEOUT_MS = 60_000;
/**
 * How long a cashier waits for an answer before cancelling and ringing up the next sale; the cancelled
 * sale's NOT_PAID line comes when the cloud has undone the attempt (a dead channel: once it is back).
 */
const CASHIER_PATIENCE_MS = 12_000;

export function loadMix(file: string): ScenarioMixInput {
  return ScenarioMix.parse(JSON.parse(readFileSync(file, 'utf8')));
}

export async function runFleet(opts: FleetOptions): Promise<FleetSummary> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'scanbox-fleet-'));
  if (opts.outage && opts.channelsPerWallet !== 2) throw new Error('an outage needs --channels 2 (a backup to move to)');
  const rig = await Rig.start({ dir, seed: opts.seed, wallets: opts.wallets ?? 'scripted', channelsPerWallet: opts.channelsPerWallet ?? 1, ...(opts.mix ? { mix: opts.mix } : {}), cloudConfig: fleetCloudConfig(opts.boxes), deviceConfig: FAST_DEVICE_CONFIG });
  try {
    out(`fleet: cloud up at ${rig.httpUrl}; pairing ${opts.boxes} boxes…`);
    const boxes = await startBoxes(rig, opts.boxes, opts.startConcurrency ?? 4);
    out(`fleet: ${boxes.length} boxes paired and online; ringing up ${opts.sales} sales each`);
    const latencies: number[] = [];
    const outcomes = { paid: 0, notPaid: 0 };
    const total = boxes.length * opts.sales;
    const started = Date.now();
    let done = 0;
    const outage = opts.outage ? playOutage(rig, opts.outage, started, out) : undefined;
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
    const window = await outage?.done;
    const snapshot = await rig.settle(60_000);
    const report = reconcile(snapshot);
    const attemptsByState: Partial<Record<AttemptState, number>> = {};
    for (const a of snapshot.cloud) attemptsByState[a.state] = (attemptsByState[a.state] ?? 0) + 1;
    const effect =
      window && opts.outage
        ? { ...outageEffect(opts.outage, window, snapshot.cloud, rig.primaryChannels(), total - done + report.mismatches.length), ...breakerTimes(path.join(dir, 'cloud.log'), rig.primaryChannels(), window) }
        : undefined;
    const summary = { boxes: boxes.length, sales: total, ...outcomes, attemptsByState, seconds, salesPerSecond: total / seconds, latencyMs: summarize(latencies), report, ...(effect ? { outage: effect } : {}) };
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
  const first = await box.ecr.waitFor((m) => m.ref === ref && (m.type === 'result' || (m.type === 'progress' && m.stage === 'ATTEMPT_FAILED')), CASHIER_PATIENCE_MS, mark).catch(() => undefined);
  const latencyMs = performance.now() - scanned;
  if (!first) return { paid: await gaveUp(box, ref, mark), latencyMs };
  const result = first.type === 'result' ? first : await cancelled(box, ref);
  return { paid: result.type === 'result' && result.outcome === 'PAID', latencyMs };
}

/** No answer in time: cancel, and move on once the box has the cancel (or the answer came after all). */
async function gaveUp(box: Box, ref: string, mark: number): Promise<boolean> {
  await box.ecr.cancel(ref);
  const m = await box.ecr.waitFor((x) => x.ref === ref && (x.type === 'result' || (x.type === 'progress' && x.stage === 'CANCELLING')), SALE_TIMEOUT_MS, mark);
  return m.type === 'result' && m.outcome === 'PAID';
}

async function cancelled(box: Box, ref: string): Promise<EcrOutbound> {
  await box.ecr.cancel(ref);
  return box.ecr.resultFor(ref, SALE_TIMEOUT_MS);
}

/** Starts and ends the outage on the primaries at the planned moments; `done` says when each happened. */
function playOutage(rig: Rig, plan: OutagePlan, started: number, out: (l: string) => void): { done: Promise<{ start: number; end: number }> } {
  const at = (s: number) => new Promise<number>((r) => setTimeout(() => r(Date.now()), Math.max(0, started + s * 1000 - Date.now())));
  const done = (async () => {
    const start = await at(plan.atS);
    rig.primaryChannels().forEach((c) => rig.outage(c, plan.share));
    out(`fleet: outage: ${Math.round(plan.share * 100)}% of ${rig.primaryChannels().join(', ')} calls refused from +${plan.atS} s`);
    const end = await at(plan.atS + plan.forS);
    rig.primaryChannels().forEach((c) => rig.outage(c, 0));
    out(`fleet: outage over at +${plan.atS + plan.forS} s`);
    return { start, end };
  })();
  return { done };
}

/**
 * From the attempts' channels and creation times: how long after the outage began new payments went
 * to a backup (before, the cheaper primary takes them all), how many probed the primary while it was
 * down (half-open), and how long after it ended they all went back. Attempts of channels that have
 * no backup (UnionPay in real-formats mode) are left out.
 */
export function outageEffect(plan: OutagePlan, w: { start: number; end: number }, attempts: readonly CloudAttemptRecord[], primaries: readonly string[], lost: number): Omit<OutageEffect, 'openS' | 'closedS'> {
  const routed = attempts.filter((a) => a.channel && (primaries.includes(a.channel) || a.channel.endsWith('backup'))).sort((a, b) => a.createdAt - b.createdAt);
  const onPrimary = (a: CloudAttemptRecord) => primaries.includes(a.channel!);
  const settledFrom = (from: number, to: number, want: (a: CloudAttemptRecord) => boolean): number | null => {
    const inWindow = routed.filter((a) => a.createdAt >= from && a.createdAt < to);
    const lastWrong = inWindow.filter((a) => !want(a)).at(-1);
    const firstRight = inWindow.find((a) => want(a) && (!lastWrong || a.createdAt > lastWrong.createdAt));
    return firstRight ? (firstRight.createdAt - from) / 1000 : null;
  };
  const firstBackup = routed.find((a) => a.createdAt >= w.start && a.createdAt < w.end && !onPrimary(a));
  const probes = firstBackup ? routed.filter((a) => a.createdAt > firstBackup.createdAt && a.createdAt < w.end && onPrimary(a)).length : 0;
  return {
    plan,
    switchS: firstBackup ? (firstBackup.createdAt - w.start) / 1000 : null,
    probes,
    switchBackS: settledFrom(w.end, Infinity, onPrimary),
    lost,
  };
}

export function formatSummary(s: Omit<FleetSummary, 'report'>): string {
  const states = FINAL_STATES.map((st) => `${st} ${s.attemptsByState[st] ?? 0}`).join(', ');
  const open = Object.entries(s.attemptsByState).filter(([st]) => !(FINAL_STATES as readonly string[]).includes(st));
  const l = s.latencyMs;
  return [
    `boxes ${s.boxes}, sales ${s.sales} (${s.paid} paid, ${s.notPaid} not paid) in ${s.seconds.toFixed(1)} s: ${s.salesPerSecond.toFixed(1)} sales/s`,
    `attempts by final state: ${states}${open.length ? `; NOT FINAL: ${open.map(([st, n]) => `${st} ${n}`).join(', ')}` : ''}`,
    `scan → ECR result (ms): p50 ${l.p50.toFixed(1)}, p90 ${l.p90.toFixed(1)}, p99 ${l.p99.toFixed(1)}, max ${l.max.toFixed(1)} (n=${l.n})`,
    ...(s.outage ? [formatOutage(s.outage)] : []),
  ].join('\n');
}

/** When the primaries' breakers opened after the outage began, and closed after it ended (the cloud's breaker log lines). */
function breakerTimes(logFile: string, primaries: readonly string[], w: { start: number; end: number }): Pick<OutageEffect, 'openS' | 'closedS'> {
  const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"from":'));
  const moments = lines.map((l) => JSON.parse(l) as { time: number; channel?: string; to?: string }).filter((e) => e.channel && primaries.includes(e.channel));
  const last = (to: string, from: number, until: number) => {
    const times = primaries.map((c) => moments.find((e) => e.channel === c && e.to === to && e.time >= from && e.time <= until)?.time);
    return times.every((t) => t !== undefined) ? (Math.max(...(times as number[])) - from) / 1000 : null;
  };
  return { openS: last('open', w.start, w.end), closedS: last('closed', w.end, Infinity) };
}

function formatOutage(o: OutageEffect): string {
  const secs = (v: number | null) => (v === null ? 'never' : `${v.toFixed(1)} s`);
  return [
    `channel outage (${Math.round(o.plan.share * 100)}% refused for ${o.plan.forS} s): the primaries' breakers open ${secs(o.openS)} after it began, closed ${secs(o.closedS)} after it healed`,
    `  first new payment on a backup ${secs(o.switchS)} after it began (then ${o.probes} half-open probes of the primary); all new payments back on the primary ${secs(o.switchBackS)} after it healed; payments lost ${o.lost}`,
  ].join('\n');
}
