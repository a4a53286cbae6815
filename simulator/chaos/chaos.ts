import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatAmount, isCharged, isFinal, WALLETS, type EcrOutbound, type EcrResult } from '../../protocol/index.js';
import { chaosSchedule, countByKind, FAULT_KINDS, type FaultKind, type ScheduledFault } from './chaos-schedule.js';
import { logFindings, type InjectedFault } from './log-verdict.js';
import { RefundMix, refundLineProblems } from './refund-mix.js';
import { validCode } from '../devices/codes.js';
import { createRandom, hashSeed, type Random } from '../random.js';
import { reconcile, type ReconcileReport } from '../reconcile/reconcile.js';
import { formatReconcileReport } from '../reconcile/reconcile-table.js';
import { FAST_CLOUD_CONFIG, FAST_DEVICE_CONFIG, Rig, type Box, type Snapshot, type WalletMode } from '../rig.js';
import { DEFAULT_MIX, type ScenarioInput, type ScenarioMixInput } from '../gateway/scenario.js';
import { checkWorkers, type CloudStackKind } from '../stack/cloud-stack.js';

/**
 * `scanbox-sim chaos --boxes N --minutes M --seed S`: a cloud, the scripted gateway and N boxes
 * under continuous sales, while faults from a seeded schedule (chaos-schedule.ts) hit them: boxes
 * and the cloud SIGKILLed and restarted, links dropped, black-holed and cut, the gateway hanging and
 * erring, MQTT deliveries duplicated, box clocks jumping. Then: stop injecting, settle (bounded),
 * reconcile gateway ledger, cloud, boxes, and what each cash register was told. Exit 0 exactly when
 * every attempt is final everywhere, nothing is lost, nothing is charged twice, every register line
 * matches the money, and the logs show nothing but the injected faults (log-verdict.ts).
 */
export interface ChaosOptions {
  boxes: number;
  minutes: number;
  seed: number | string;
  /** `real-formats`: WeChat and Alipay through the cloud's adapters and the wire-faithful simulators. */
  wallets?: WalletMode;
  /** 2: a primary and a backup channel per wallet, and channel outages in the schedule. */
  channelsPerWallet?: 1 | 2;
  /**
   * `mosquitto-postgres`: the cloud as `workers` processes (default 3) on a throwaway Mosquitto and
   * PostgreSQL (stack/cloud-stack.ts); a `cloud_kill` then SIGKILLs one worker, picked by the seed.
   */
  stack?: CloudStackKind;
  workers?: number;
  /** Keep the working directory (cloud.log, box-N/device.log, databases) afterwards. */
  keep?: boolean;
  /** Upper bound of the settle phase. */
  settleMs?: number;
  out?: (line: string) => void;
}

export interface ChaosResult {
  ok: boolean;
  dir: string;
  report: ReconcileReport;
  injected: Record<FaultKind, number>;
  skipped: Array<{ fault: ScheduledFault; why: string }>;
  ecrProblems: string[];
  runnerErrors: string[];
}

/** The demo's short timings; a pairing rate limit that lets the whole fleet pair from 127.0.0.1. */
export function chaosCloudConfig(boxes: number): Record<string, unknown> {
  return { ...FAST_CLOUD_CONFIG, pairRateLimit: { max: Math.max(10, boxes + 5), windowS: 60 } };
}
export const CHAOS_DEVICE_CONFIG = { ...FAST_DEVICE_CONFIG, saleDeadlineMs: 60_000, logLevel: 'info' };

/** The default mix plus every abnormal flow the gateway can script. */
export const CHAOS_MIX: ScenarioMixInput = {
  scenarios: [
    ...DEFAULT_MIX.scenarios,
    { weight: 1, scenario: { name: 'hang', charged: true, hangMs: 30_000 } },
    { weight: 1, scenario: { name: 'hang', charged: false, hangMs: 30_000 } },
    { weight: 1, scenario: { name: 'reverse_retry', times: 2 } },
    { weight: 1, scenario: { name: 'late_success', landAfterMs: 300 } },
  ],
  latency: DEFAULT_MIX.latency,
};

export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

const SECOND = 1_000;
/** How long a pay bound to the gateway_hang fault hangs. */
const HANG_MS = 30_000;

interface BoxState {
  box: Box;
  down: boolean;
  /** Refs rung up whose result line has not been seen yet. */
  open: Set<string>;
  clockFile: string;
}

interface Stats {
  sales: number;
  offlineRefusals: number;
  busyRefusals: number;
  scans: number;
  rescans: number;
  cancels: number;
  racingCancels: number;
  noAnswer: number;
}

class Runner {
  readonly random: Random;
  readonly refunds: RefundMix;
  readonly codeRandom: Random;
  readonly states: BoxState[] = [];
  readonly stats: Stats = { sales: 0, offlineRefusals: 0, busyRefusals: 0, scans: 0, rescans: 0, cancels: 0, racingCancels: 0, noAnswer: 0 };
  readonly injected: FaultKind[] = [];
  /** What was injected when, for judging the logs (log-verdict.ts). */
  readonly faults: InjectedFault[] = [];
  readonly skipped: Array<{ fault: ScheduledFault; why: string }> = [];
  readonly errors: string[] = [];
  stopping = false;
  private stopWaiters: Array<() => void> = [];
  cloudDown = false;
  hangUntil = 0;
  errorsUntil = 0;
  /** Offsets in the output are from the start of sales (the schedule's zero). */
  started = Date.now();

  constructor(
    readonly rig: Rig,
    readonly opts: ChaosOptions,
    readonly out: (l: string) => void,
  ) {
    this.random = createRandom(hashSeed('chaos-sales', opts.seed));
    this.codeRandom = createRandom(hashSeed('chaos-codes', opts.seed));
    const byBox = (box: Box) => this.states.find((st) => st.box === box)!;
    this.refunds = new RefundMix(createRandom(hashSeed('chaos-refunds', opts.seed)), (box, predicate, timeoutMs, since) => this.answer(byBox(box), predicate, timeoutMs, since));
  }

  elapsed(): string {
    return `+${((Date.now() - this.started) / 1000).toFixed(1)}s`;
  }

  /** A sleep that ends early when the run stops. */
  pause(ms: number): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      let t: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      t = setTimeout(done, ms);
      this.stopWaiters.push(done);
    });
  }

  stop(): void {
    this.stopping = true;
    for (const w of this.stopWaiters.splice(0)) w();
  }

  /** A fresh payment code; bound to a hang or a gateway error while such a window is open. */
  newCode(): string {
    const code = validCode(this.codeRandom, this.codeRandom.pick(WALLETS));
    const now = Date.now();
    let scenario: ScenarioInput | undefined;
    if (now < this.hangUntil) scenario = { name: 'hang', charged: this.codeRandom.next() < 0.5, hangMs: HANG_MS };
    else if (now < this.errorsUntil) {
      scenario = {
        name: 'gateway_error',
        code: this.codeRandom.next() < 0.5 ? 'SYSTEMERROR' : 'BANKERROR',
        then: this.codeRandom.next() < 0.6 ? 'success' : 'failure',
      };
    }
    if (scenario) this.rig.gateway.bind(code, scenario);
    return code;
  }

  // ── sales ────────────────────────────────────────────────────────────────────────────────────────

  /** Waits for an ECR answer; undefined on timeout or when the run stops. */
  private async answer(st: BoxState, predicate: (m: EcrOutbound) => boolean, timeoutMs: number, since: number): Promise<EcrOutbound | undefined> {
    let stopper: (() => void) | undefined;
    const stopped = new Promise<undefined>((resolve) => {
      stopper = () => resolve(undefined);
      if (this.stopping) resolve(undefined);
      else this.stopWaiters.push(stopper);
    });
    const got = await Promise.race([st.box.ecr.waitFor(predicate, timeoutMs, since).catch(() => undefined), stopped]);
    this.stopWaiters = this.stopWaiters.filter((w) => w !== stopper);
    return got;
  }

  async saleLoop(st: BoxState): Promise<void> {
    const { box } = st;
    let n = 0;
    while (!this.stopping) {
      // The cash register does not know the box is dead: now and then the cashier rings a sale up
      // anyway, and the lines wait in the serial line for the restarted agent.
      if (st.down && this.random.next() < 0.8) {
        await this.pause(300);
        continue;
      }
      await this.refunds.comeBack(box);
      const ref = `${box.name}-${++n}`;
      const amount = this.random.int(1, 500) * 10 + this.random.int(0, 9);
      const mark = box.ecr.mark();
      this.stats.sales++;
      st.open.add(ref);
      await box.ecr.sale(ref, amount);
      const first = await this.answer(st, (m) => m.ref === ref && (m.type === 'error' || (m.type === 'progress' && m.stage === 'WAITING_CODE')), 8 * SECOND, mark);
      if (!first) {
        this.stats.noAnswer++;
        if (!this.stopping) await this.cancel(st, ref, mark);
        continue;
      }
      if (first.type === 'error') {
        st.open.delete(ref);
        if (first.code === 'OFFLINE') this.stats.offlineRefusals++;
        else if (first.code === 'SALE_BUSY') {
          this.stats.busyRefusals++;
          // An earlier sale is still open (its line reached a box that was down): the cashier cancels it.
          for (const old of [...st.open]) await this.cancel(st, old, box.ecr.mark());
        }
        await this.pause(this.random.int(300, 1_500));
        continue;
      }
      await this.pay(st, ref, mark);
      await this.pause(this.random.int(50, 800));
    }
  }

  /** Scan codes until the sale is final, or give up and cancel it. */
  private async pay(st: BoxState, ref: string, saleMark: number): Promise<void> {
    const { box } = st;
    for (let scans = 0; scans < 3 && !this.stopping; scans++) {
      const mark = box.ecr.mark();
      this.stats.scans++;
      if (scans > 0) this.stats.rescans++;
      await box.scanner.scan(this.newCode());
      // Now and then the cashier gives up while the customer is still paying: the cancel races the payment.
      const impatientMs = this.random.next() < 0.12 ? this.random.int(0, 4_000) : undefined;
      const m = await this.answer(
        st,
        (x) => x.ref === ref && (x.type === 'result' || x.type === 'error' || (x.type === 'progress' && x.stage === 'ATTEMPT_FAILED')),
        impatientMs ?? 25 * SECOND,
        mark,
      );
      if (m?.type === 'result') {
        st.open.delete(ref);
        if (m.outcome === 'PAID') await this.refunds.afterPaid(box, ref, m.amount);
        return;
      }
      if (!m && impatientMs !== undefined) {
        this.stats.racingCancels++;
        break;
      }
      if (m?.type === 'progress' && this.random.next() < 0.6) continue; // ATTEMPT_FAILED: another code
      break; // no answer, offline, or the cashier gives up
    }
    if (!this.stopping) await this.cancel(st, ref, saleMark);
  }

  private async cancel(st: BoxState, ref: string, since: number): Promise<void> {
    this.stats.cancels++;
    const mark = st.box.ecr.mark();
    await st.box.ecr.cancel(ref);
    const m = await this.answer(st, (x) => x.ref === ref && (x.type === 'result' || (x.type === 'error' && x.code === 'SALE_UNKNOWN')), 30 * SECOND, Math.min(mark, since));
    if (m) st.open.delete(ref);
  }

  // ── faults ───────────────────────────────────────────────────────────────────────────────────────

  async inject(f: ScheduledFault): Promise<void> {
    const st = f.box === undefined ? undefined : this.states[f.box];
    const where = st ? ` ${st.box.name}` : '';
    const skip = (why: string) => {
      this.skipped.push({ fault: f, why });
      this.out(`[${this.elapsed()}] skipped ${f.kind}${where}: ${why}`);
    };
    if (st?.down) return skip('box is down');
    if (f.kind === 'cloud_kill' && this.cloudDown) return skip('cloud is down');
    this.injected.push(f.kind);
    this.out(`[${this.elapsed()}] ${f.kind}${where}${describe(f)}`);
    const startMs = Date.now();
    try {
      await this.apply(f, st);
    } finally {
      // A hang binds codes whose pays then hang for 30 s (CHAOS_MIX): its consequences last that much longer.
      const tail = f.kind === 'gateway_hang' ? HANG_MS : 0;
      const skew = f.kind === 'clock_jump' ? { clockSkewS: Math.max(f.forwardS ?? 60, f.backS ?? 60) } : {};
      this.faults.push({ kind: f.kind, ...(st ? { box: st.box.name } : {}), startMs, endMs: Math.max(Date.now(), startMs + f.durationMs + tail), ...skew });
    }
  }

  private async apply(f: ScheduledFault, st: BoxState | undefined): Promise<void> {
    switch (f.kind) {
      case 'box_kill': {
        st!.down = true;
        await st!.box.kill();
        await sleep(f.durationMs);
        await this.restartBox(st!);
        return;
      }
      case 'cloud_kill': {
        this.cloudDown = true;
        const killed = await this.rig.killCloud();
        if (this.rig.workers.length > 1) this.out(`[${this.elapsed()}]   worker ${killed} killed; the others carry on`);
        await sleep(f.durationMs);
        await this.retry('cloud restart', () => this.rig.restartCloud());
        this.cloudDown = false;
        return;
      }
      case 'link_drop':
        return this.rig.proxy.dropAll();
      case 'black_hole':
        return this.rig.proxy.blackHole(f.durationMs);
      case 'box_cut':
        return this.rig.proxy.cut(st!.box.deviceId, f.durationMs);
      case 'gateway_hang':
        this.hangUntil = Date.now() + f.durationMs;
        return;
      case 'gateway_errors':
        this.errorsUntil = Date.now() + f.durationMs;
        return;
      case 'duplicates':
        this.rig.proxy.setDuplicateRate(f.rate ?? 0.3);
        await sleep(f.durationMs);
        this.rig.proxy.setDuplicateRate(0);
        return;
      case 'channel_outage': {
        const channels = this.rig.primaryChannels();
        channels.forEach((c) => this.rig.outage(c, f.rate ?? 0.5));
        await sleep(f.durationMs);
        channels.forEach((c) => this.rig.outage(c, 0));
        return;
      }
      case 'clock_jump':
        setClock(st!.clockFile, f.forwardS ?? 60);
        await sleep(f.durationMs / 2);
        setClock(st!.clockFile, -(f.backS ?? 60));
        await sleep(f.durationMs / 2);
        setClock(st!.clockFile, 0);
        return;
    }
  }

  private async restartBox(st: BoxState): Promise<void> {
    await this.retry(`${st.box.name} restart`, () => (st.box.proc.running ? Promise.resolve() : st.box.restart({ waitOnline: false })));
    st.down = false;
  }

  private async retry(what: string, fn: () => Promise<void>): Promise<void> {
    for (let i = 1; ; i++) {
      try {
        return await fn();
      } catch (err) {
        const msg = `${what} failed (try ${i}): ${(err as Error).message.split('\n')[0]}`;
        this.out(`[${this.elapsed()}] ${msg}`);
        if (i >= 3) {
          this.errors.push(msg);
          throw err;
        }
        await sleep(1_000);
      }
    }
  }
}

function describe(f: ScheduledFault): string {
  switch (f.kind) {
    case 'box_kill':
    case 'cloud_kill':
      return ` (SIGKILL, restart after ${(f.durationMs / 1000).toFixed(1)} s)`;
    case 'link_drop':
      return '';
    case 'duplicates':
      return ` (${Math.round((f.rate ?? 0) * 100)}% of PUBLISHes for ${(f.durationMs / 1000).toFixed(1)} s)`;
    case 'channel_outage':
      return ` (${Math.round((f.rate ?? 0) * 100)}% of the primary channels' calls refused for ${(f.durationMs / 1000).toFixed(1)} s)`;
    case 'clock_jump':
      return ` (+${f.forwardS} s, then -${f.backS} s, ${(f.durationMs / 1000).toFixed(1)} s in all)`;
    default:
      return ` (${(f.durationMs / 1000).toFixed(1)} s)`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** libfaketime reads the offset from this file (re-read at most once a second). Written atomically. */
function setClock(file: string, offsetS: number): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, `${offsetS >= 0 ? '+' : ''}${offsetS}\n`);
  renameSync(tmp, file);
}

export function faketimeAvailable(): boolean {
  return existsSync(FAKETIME_LIB);
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const stack = opts.stack ?? 'embedded-sqlite';
  const workers = checkWorkers(stack, opts.workers);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'scanbox-chaos-'));
  const runMs = Math.round(opts.minutes * 60_000);
  const withClock = faketimeAvailable();
  const two = opts.channelsPerWallet === 2;
  const exclude: FaultKind[] = [...(withClock ? [] : (['clock_jump'] as const)), ...(two ? [] : (['channel_outage'] as const))];
  const schedule = chaosSchedule({ seed: opts.seed, boxes: opts.boxes, minutes: opts.minutes, exclude });
  const on = stack === 'embedded-sqlite' ? '' : `, ${stack} with ${workers} workers`;
  out(`scanbox chaos — ${opts.boxes} box(es), ${opts.minutes} min, seed ${opts.seed}${on} — working in ${dir}`);
  if (!withClock) out(`clock jumps left out: ${FAKETIME_LIB} not found (apt-get install faketime)`);
  out(`schedule: ${schedule.length} faults (${formatCounts(countByKind(schedule))})`);
  const clockFile = (name: string) => path.join(dir, name, 'faketime');
  const rig = await Rig.start({
    dir,
    seed: opts.seed,
    wallets: opts.wallets ?? 'scripted',
    channelsPerWallet: two ? 2 : 1,
    mix: CHAOS_MIX,
    stack,
    workers,
    cloudConfig: chaosCloudConfig(opts.boxes),
    deviceConfig: CHAOS_DEVICE_CONFIG,
    deviceEnv: withClock
      ? (name) => {
          const file = clockFile(name);
          mkdirSync(path.dirname(file), { recursive: true });
          if (!existsSync(file)) setClock(file, 0);
          return { LD_PRELOAD: FAKETIME_LIB, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_CACHE_DURATION: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
        }
      : undefined,
  });
  const runner = new Runner(rig, opts, out);
  let report: ReconcileReport | undefined;
  let ecrProblems: string[] = [];
  let ok = false;
  try {
    for (let i = 1; i <= opts.boxes; i++) {
      const box = await rig.addBox(`box-${i}`, 'M-CHAOS', `S-${((i - 1) % 3) + 1}`);
      runner.states.push({ box, down: false, open: new Set(), clockFile: clockFile(box.name) });
    }
    out(`cloud ${rig.httpUrl}, gateway ${rig.gatewayUrl}, ${opts.boxes} box(es) paired and online; selling and injecting for ${opts.minutes} min`);
    const t0 = Date.now();
    runner.started = t0;
    const loops = runner.states.map((st) => runner.saleLoop(st));
    // One chain per target, so a box's next fault waits for its previous one (a restart) to finish.
    const chains = new Map<string, Promise<void>>();
    const timers: NodeJS.Timeout[] = [];
    const faultsDone = schedule.map(
      (f) =>
        new Promise<void>((resolve) => {
          timers.push(
            setTimeout(() => {
              const key = f.box !== undefined ? `box${f.box}` : f.kind;
              const next = (chains.get(key) ?? Promise.resolve()).then(() => runner.inject(f)).catch(() => undefined);
              chains.set(key, next);
              void next.then(resolve);
            }, Math.max(0, t0 + f.atMs - Date.now())),
          );
        }),
    );
    await sleep(runMs);
    out(`[${runner.elapsed()}] injecting stops; waiting for faults in force to end`);
    await Promise.all(faultsDone);
    for (const t of timers) clearTimeout(t);
    rig.proxy.setDuplicateRate(0);
    for (const st of runner.states) if (faketimeAvailable()) setClock(st.clockFile, 0);
    out(`[${runner.elapsed()}] sales stop; cancelling sales still open`);
    runner.stop();
    await Promise.all(loops);
    for (const st of runner.states) {
      for (const ref of st.open) await st.box.ecr.cancel(ref);
    }
    out(`[${runner.elapsed()}] the registers send refund lines left unanswered again`);
    runner.errors.push(...(await runner.refunds.recover()));
    const settleMs = opts.settleMs ?? 90 * SECOND;
    out(`[${runner.elapsed()}] settling (up to ${settleMs / 1000} s)…`);
    const snapshot = await rig.settle(settleMs);
    out(`[${runner.elapsed()}] settled`);
    report = reconcile(snapshot);
    // For the diagnosis of a failed run: the gateway's ledger lives only in this process.
    writeFileSync(path.join(dir, 'ledger.json'), `${JSON.stringify(snapshot.ledger, null, 1)}\n`);
    writeFileSync(path.join(dir, 'reconcile.json'), `${JSON.stringify({ mismatches: report.mismatches, notes: report.notes, totals: report.totals }, null, 1)}\n`);
    // The PostgreSQL database goes with the rig: its attempts are kept here instead.
    if (stack !== 'embedded-sqlite') writeFileSync(path.join(dir, 'cloud-attempts.json'), `${JSON.stringify(snapshot.cloud, null, 1)}\n`);
    ecrProblems = [...(await checkEcr(runner.states, snapshot, 10 * SECOND)), ...refundLineProblems(runner.states.map((st) => st.box), snapshot)];
    printSummary(out, runner, schedule, snapshot, report, ecrProblems);
    const logs = judgeLogs(rig, dir, runner.states.map((st) => st.box.name), runner.faults);
    out('');
    out(`log findings: ${logs.lines.length ? '' : 'none'}`);
    for (const l of logs.lines) out(`  ${l}`);
    ok = report.ok && ecrProblems.length === 0 && runner.errors.length === 0 && logs.bad === 0;
    out(ok ? 'CHAOS PASSED: every attempt final everywhere, nothing lost, nothing charged twice, no defect in the logs' : 'CHAOS FAILED');
    return { ok, dir, report, injected: countByKind(runner.injected.map((kind) => ({ kind }))), skipped: runner.skipped, ecrProblems, runnerErrors: runner.errors };
  } catch (err) {
    out(`CHAOS FAILED: the runner stopped: ${(err as Error).stack ?? String(err)}`);
    throw err;
  } finally {
    runner.stop();
    await rig.stop();
    const cloudLogs = stack === 'embedded-sqlite' ? 'cloud.log' : 'wN/cloud.log, mosquitto.log, cloud-attempts.json';
    if (opts.keep || !ok) out(`logs and databases kept in ${dir} (${cloudLogs}, box-N/device.log)`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** The boxes' logs and the cloud's: one cloud.log beside them, or one per worker (each named in its findings). */
function judgeLogs(rig: Rig, dir: string, boxes: string[], faults: InjectedFault[]): { lines: string[]; bad: number } {
  const all = [logFindings(dir, boxes, faults), ...rig.workerLogDirs().map((w) => ({ ...logFindings(w.dir, [], faults), worker: w.worker }))];
  return {
    lines: all.flatMap((f) => ('worker' in f ? f.lines.map((l) => `[${f.worker}] ${l}`) : f.lines)),
    bad: all.reduce((n, f) => n + f.bad, 0),
  };
}

/**
 * The cash register is a party too: every result line must match the money. PAID ⇔ the sale has a
 * SUCCESS attempt in the cloud; NOT_PAID ⇒ no attempt of it is charged; one outcome per sale.
 * Results may still be on their way right after settling, so missing PAID lines are waited for.
 */
async function checkEcr(states: BoxState[], snap: Snapshot, graceMs: number): Promise<string[]> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const problems = ecrProblems(states, snap);
    if (problems.length === 0 || Date.now() > deadline) return problems;
    await sleep(500);
  }
}

function ecrProblems(states: BoxState[], snap: Snapshot): string[] {
  const problems: string[] = [];
  const cloud = new Map(snap.cloud.map((c) => [c.outTradeNo, c]));
  states.forEach((st, i) => {
    const attempts = snap.devices[i] ?? [];
    const byRef = new Map<string, string[]>();
    for (const a of attempts) byRef.set(a.saleRef, [...(byRef.get(a.saleRef) ?? []), a.outTradeNo]);
    const results = new Map<string, EcrResult[]>();
    for (const m of st.box.ecr.received) if (m.type === 'result') results.set(m.ref, [...(results.get(m.ref) ?? []), m]);
    for (const [ref, rs] of results) {
      const outcomes = new Set(rs.map((r) => r.outcome));
      if (outcomes.size > 1) problems.push(`${st.box.name} ${ref}: the ECR was told both PAID and NOT_PAID`);
      const charged = (byRef.get(ref) ?? []).filter((o) => {
        const c = cloud.get(o);
        return c !== undefined && isFinal(c.state) && isCharged(c.state);
      });
      const r = rs[0]!;
      if (r.outcome === 'PAID' && charged.length === 0) problems.push(`${st.box.name} ${ref}: ECR told PAID ${formatAmount(r.amount, r.currency)} but no attempt of the sale is SUCCESS in the cloud`);
      if (r.outcome === 'NOT_PAID' && charged.length > 0) problems.push(`${st.box.name} ${ref}: ECR told NOT_PAID but ${charged.join(', ')} is SUCCESS in the cloud`);
    }
    for (const [ref, outTradeNos] of byRef) {
      const paid = outTradeNos.filter((o) => cloud.get(o)?.state === 'SUCCESS');
      if (paid.length > 0 && !results.get(ref)?.some((r) => r.outcome === 'PAID')) problems.push(`${st.box.name} ${ref}: ${paid.join(', ')} is SUCCESS but the ECR never got PAID`);
    }
  });
  return problems;
}

function formatCounts(counts: Record<string, number>): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
}

function printSummary(out: (l: string) => void, runner: Runner, schedule: ScheduledFault[], snap: Snapshot, report: ReconcileReport, ecr: string[]): void {
  const scheduled = countByKind(schedule);
  const injected = countByKind(runner.injected.map((kind) => ({ kind })));
  out('');
  out('faults injected by kind (scheduled):');
  for (const k of FAULT_KINDS) out(`  ${k.padEnd(15)} ${String(injected[k]).padStart(4)}  (${scheduled[k]})`);
  out(`  ${'total'.padEnd(15)} ${String(runner.injected.length).padStart(4)}  (${schedule.length})`);
  const s = runner.stats;
  out('');
  out(`sales rung up ${s.sales}: refused OFFLINE ${s.offlineRefusals}, SALE_BUSY ${s.busyRefusals}; scans ${s.scans} (rescans after a failed attempt ${s.rescans}); cashier cancels ${s.cancels} (${s.racingCancels} while the customer was paying); sales without an answer ${s.noAnswer}`);
  const results = runner.states.flatMap((st) => st.box.ecr.received.filter((m): m is EcrResult => m.type === 'result'));
  out(`ECR results: PAID ${results.filter((r) => r.outcome === 'PAID').length}, NOT_PAID ${results.filter((r) => r.outcome === 'NOT_PAID').length}`);
  const byState = (states: string[]) => formatCounts(states.reduce<Record<string, number>>((acc, x) => ({ ...acc, [x]: (acc[x] ?? 0) + 1 }), {}));
  const r = runner.refunds.stats;
  const kinds = (k: string) => report.mismatches.filter((m) => m.kind === k).length;
  out(`refunds asked ${r.asked}: REFUNDED ${r.refunded}, NOT_REFUNDED ${r.notRefunded}, refused at the box ${r.refusedAtBox}, sent again after the run ${r.resent}; cloud refunds ${byState(snap.cloudRefunds.map((c) => c.state)) || 'none'}; double refunds ${kinds('DOUBLE_REFUND')}, refunds lost or disagreeing ${kinds('REFUND_DISAGREES') + kinds('REFUND_NOT_FINAL')}`);
  out(`attempts by final state — cloud: ${byState(snap.cloud.map((c) => c.state)) || 'none'}`);
  out(`                          boxes: ${byState(snap.devices.flat().map((d) => d.state)) || 'none'}`);
  const open = [...snap.cloud, ...snap.devices.flat()].filter((a) => !isFinal(a.state)).length;
  if (open) out(`attempts not final after settling: ${open}`);
  out('');
  out(formatReconcileReport(report, { maxRows: 30 }));
  out('');
  out(ecr.length === 0 ? 'ECR: every result line matches the money' : `ECR PROBLEMS (${ecr.length}):\n${ecr.map((p) => `  ${p}`).join('\n')}`);
  if (runner.errors.length) out(`RUNNER ERRORS:\n${runner.errors.map((e) => `  ${e}`).join('\n')}`);
}
