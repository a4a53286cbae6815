import { ensureMerchant } from '../cloud/merchants/merchant.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createPairingCode, instantGateway, startCloud, type RunningCloud } from '../cloud/index.js';
import { systemClock } from '../protocol/clock.js';
import { createLogger } from '../cloud/log.js';
import { pairBox } from '../device/index.js';
import { readServiceDefinition, SERVICE_UNIT_NAME } from './service-definition.js';
import { validCode } from '../simulator/devices/codes.js';
import { PtyPair } from '../simulator/devices/pty.js';
import { createRandom, type Random } from '../simulator/random.js';
import type { SerialEnd } from '../simulator/devices/serial-end.js';
import { median } from '../simulator/stats.js';
import { VirtualEcr } from '../simulator/devices/virtual-ecr.js';
import { VirtualScanner } from '../simulator/devices/virtual-scanner.js';
import type { BenchResult } from './result.js';
import { cpuShare, DIST, fmt, procSample, ROOT, scratch, sleep, type ProcSample } from './harness.js';

/**
 * 5. footprint — the box agent as shipped: compiled (`npm run build`), started as
 * `node dist/device/cli.js start …` on socat ptys, against a cloud in this process (instant gateway),
 * with the environment and node flags of the shipped systemd unit (deploy/systemd/scanbox-device.service,
 * read by bench/service-definition.ts) unless `agentEnv` / `agentNodeFlags` say otherwise.
 *  - cold start: process spawn → its `ready` log line, `coldStarts` times (new process each time; the
 *    OS page cache is warm, as on a box restarting its agent), median;
 *  - idle RSS once connected and settled; CPU share while idle with heartbeats (every
 *    `heartbeatS`, a shorter interval than the default 30 s, so the window holds several);
 *  - RSS every 1,000 sales over `sales` sales (sale → WAITING_CODE → scan → PAID), then idle CPU again.
 * "No growth" is judged over the second half of the sales: RSS right after sale N/2 against RSS right
 * after sale N, both taken the same way while sales run. Measured from sale 1,000 instead, the figure
 * also holds V8's one-time warm-up (old and code space grow until ~4,000 sales, then stay flat to
 * 50,000) and whether V8's memory reducer happened to run in the idle window; it is still reported.
 */
export interface FootprintParams {
  coldStarts: number;
  sales: number;
  idleS: number;
  heartbeatS: number;
  seed: string;
  /**
   * Node/V8 flags of the agent process: "shipped" (the unit's ExecStart), "none", or the flags to use
   * instead, space-separated, e.g. "--max-semi-space-size=4".
   */
  agentNodeFlags: string;
  /** The agent's extra environment: "shipped" (the unit's Environment=), "none", or space-separated K=V instead. */
  agentEnv: string;
}

export const FOOTPRINT_DEFAULTS: FootprintParams = { coldStarts: 5, sales: 10_000, idleS: 20, heartbeatS: 10, seed: 'bench-footprint', agentNodeFlags: 'shipped', agentEnv: 'shipped' };
export const FOOTPRINT_SMOKE: FootprintParams = { ...FOOTPRINT_DEFAULTS, coldStarts: 1, sales: 30, idleS: 1, heartbeatS: 1 };

/** The agent's node flags and environment per the params, and where each came from (reported in the result). */
export function agentSettings(p: Pick<FootprintParams, 'agentNodeFlags' | 'agentEnv'>) {
  const unit = p.agentNodeFlags === 'shipped' || p.agentEnv === 'shipped' ? readServiceDefinition() : undefined;
  const source = (param: string, name: string) => (param === 'shipped' ? SERVICE_UNIT_NAME : param === 'none' || param === '' ? 'none' : `override (--${name})`);
  const list = (param: string) => (param === 'none' ? [] : param.split(' ').filter(Boolean));
  const nodeFlags = unit && p.agentNodeFlags === 'shipped' ? unit.nodeFlags : list(p.agentNodeFlags);
  const env = unit && p.agentEnv === 'shipped' ? unit.env : Object.fromEntries(list(p.agentEnv).map((kv) => {
    if (!kv.includes('=')) throw new Error(`--agentEnv: "${kv}" is not K=V`);
    return [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)];
  }));
  return { nodeFlags, env, from: { nodeFlags: source(p.agentNodeFlags, 'agentNodeFlags'), env: source(p.agentEnv, 'agentEnv') } };
}

const CLI = path.join(DIST, 'device', 'cli.js');

export async function footprint(p: FootprintParams): Promise<BenchResult> {
  const settings = agentSettings(p);
  if (!existsSync(CLI)) {
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (b.status !== 0 || !existsSync(CLI)) throw new Error('npm run build failed; the footprint benchmark measures the compiled agent');
  }
  const tmp = scratch('footprint');
  const random = createRandom(p.seed);
  let cloud: RunningCloud | undefined;
  let agent: Agent | undefined;
  const ptys: PtyPair[] = [];
  const ends: SerialEnd[] = [];
  try {
    cloud = await startCloud({ gateway: instantGateway(), dbPath: path.join(tmp.dir, 'cloud.db'), mqttPort: 0, httpPort: 0, metricsPort: 0, config: { logLevel: 'warn' }, logger: createLogger('warn') });
    const dataDir = path.join(tmp.dir, 'box');
    await ensureMerchant(cloud.store, 'M-BENCH');
    const { code } = await createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: 600 }, 'M-BENCH', 'S-1');
    await pairBox({ code, cloudUrl: cloud.httpUrl, dataDir, hardwareId: 'bench-footprint-box' });
    const configFile = path.join(tmp.dir, 'device.json');
    writeFileSync(configFile, JSON.stringify({ heartbeatIntervalS: p.heartbeatS }));
    const scannerPty = await PtyPair.create({ dir: tmp.dir, names: ['scanner-box', 'scanner-sim'] });
    const ecrPty = await PtyPair.create({ dir: tmp.dir, names: ['ecr-box', 'ecr-sim'] });
    ptys.push(scannerPty, ecrPty);
    const [scannerEnd, ecrEnd] = await Promise.all([scannerPty.openEnd('b'), ecrPty.openEnd('b')]);
    ends.push(scannerEnd, ecrEnd);
    const scanner = new VirtualScanner({ end: scannerEnd, terminator: 'CR' });
    const ecr = new VirtualEcr({ end: ecrEnd });
    const args = ['start', '--scanner', scannerPty.a, '--ecr', ecrPty.a, '--data', dataDir, '--config', configFile];

    // Cold starts (the last one stays up).
    const coldMs: number[] = [];
    const startupMs: number[] = [];
    for (let i = 0; i < p.coldStarts; i++) {
      const t0 = performance.now();
      agent = new Agent(args, settings.nodeFlags, settings.env);
      const ready = await agent.waitFor('ready', 30_000);
      coldMs.push(performance.now() - t0);
      startupMs.push(Number(ready.startupMs));
      if (i < p.coldStarts - 1) await agent.stop();
    }
    await agent!.waitFor('cloud link up; querying every attempt in flight', 30_000);
    const pid = agent!.pid;
    // What the measured process really runs with, from /proc: its node flags, the unit's variables and any MALLOC_*.
    const procWords = (f: string) => readFileSync(`/proc/${pid}/${f}`, 'utf8').split('\0').filter(Boolean);
    const cmdline = procWords('cmdline');
    const agentProcess = {
      argv: cmdline.slice(1, cmdline.indexOf(CLI)),
      env: procWords('environ').filter((kv) => kv.slice(0, kv.indexOf('=')) in settings.env || kv.startsWith('MALLOC_')),
    };
    await sleep(2_000);
    const idle = await idleWindow(pid, p.idleS);

    const rssEvery1000: number[] = [];
    const half = Math.ceil(p.sales / 2);
    let rssAtHalf = 0;
    const t0 = performance.now();
    for (let n = 1; n <= p.sales; n++) {
      await oneSale(scanner, ecr, `F-${n}`, random);
      if (n === half) rssAtHalf = procSample(pid).rssMiB;
      if (n % 1000 === 0 || n === p.sales) rssEvery1000.push(procSample(pid).rssMiB);
      if (n % 200 === 0) ecr.received.splice(0); // the bench's own memory stays flat too
    }
    const salesS = (performance.now() - t0) / 1000;
    await sleep(3_000);
    const after = await idleWindow(pid, p.idleS);

    const warm = rssEvery1000[0] ?? after.rssMiB;
    const growth = after.rssMiB - warm;
    const rssAtEnd = rssEvery1000.at(-1)!;
    const secondHalf = rssAtEnd - rssAtHalf;
    // 2 MiB over 5,000 sales would be a leak of ~400 bytes a sale.
    const allowed = Math.max(2, rssAtHalf * 0.025);
    const cold = median(coldMs);
    return {
      name: 'footprint',
      params: {
        ...p,
        agent: [...Object.entries(settings.env).map(([k, v]) => `${k}=${v}`), 'node', ...settings.nodeFlags, 'dist/device/cli.js start (compiled)'].join(' '),
        agentSettings: settings,
        logLevel: 'info (default)',
      },
      figures: {
        'cold start → ready ms (median)': Math.round(cold),
        "agent's own startupMs (median)": Math.round(median(startupMs)),
        'idle RSS MiB': round1(idle.rssMiB),
        'idle RSS: anon / file-backed MiB': `${round1(idle.anonMiB)} / ${round1(idle.fileMiB)}`,
        'idle CPU % (heartbeats)': round2(idle.cpu),
        [`RSS after ${Math.min(1000, p.sales)} sales MiB (warm)`]: round1(warm),
        [`RSS after ${p.sales} sales MiB`]: round1(after.rssMiB),
        'RSS peak MiB': round1(after.hwmMiB),
        'growth warm → end MiB (info)': round1(growth),
        [`RSS after sale ${half} → after sale ${p.sales} MiB`]: `${round1(rssAtHalf)} → ${round1(rssAtEnd)}`,
        'growth over the second half MiB': round1(secondHalf),
        'idle CPU % after sales': round2(after.cpu),
        'sales/s (one box, sequential)': round1(p.sales / salesS),
      },
      targets: [
        { what: 'cold start to ready', target: '< 1500 ms', actual: `${Math.round(cold)} ms`, met: cold < 1500 },
        { what: 'idle RSS', target: '< 80 MiB', actual: `${fmt(idle.rssMiB, 1)} MiB`, met: idle.rssMiB < 80 },
        { what: `no growth after ${p.sales} sales`, target: `<= +${fmt(allowed, 1)} MiB from sale ${half} to sale ${p.sales}`, actual: `${secondHalf >= 0 ? '+' : ''}${fmt(secondHalf, 1)} MiB`, met: secondHalf <= allowed },
      ],
      raw: { agentProcess, coldMs: coldMs.map(Math.round), startupMs, rssEvery1000MiB: rssEvery1000.map(round1), idle, after, salesSeconds: round1(salesS) },
    };
  } finally {
    await agent?.stop();
    await Promise.all(ends.map((e) => e.close()));
    await Promise.all(ptys.map((x) => x.close()));
    await cloud?.close();
    tmp.remove();
  }
}

/** An idle window: CPU share over it, and the median of RSS samples every 500 ms (one sample is noisy: GC timing). */
async function idleWindow(pid: number, seconds: number) {
  const first: ProcSample = procSample(pid);
  const samples: ProcSample[] = [first];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    await sleep(Math.min(500, Math.max(0, end - performance.now())));
    samples.push(procSample(pid));
  }
  const last = samples.at(-1)!;
  const med = (f: (s: ProcSample) => number) => median(samples.map(f));
  return { cpu: cpuShare(first, last), rssMiB: med((s) => s.rssMiB), anonMiB: med((s) => s.anonMiB), fileMiB: med((s) => s.fileMiB), hwmMiB: last.hwmMiB, samples: samples.length };
}

async function oneSale(scanner: VirtualScanner, ecr: VirtualEcr, ref: string, random: Random): Promise<void> {
  const mark = ecr.mark();
  await ecr.sale(ref, random.int(1, 99_999));
  await ecr.waitFor((m) => m.ref === ref && m.type === 'progress' && m.stage === 'WAITING_CODE', 10_000, mark);
  const result = ecr.waitFor((m) => m.ref === ref && m.type === 'result', 10_000, mark);
  await scanner.scan(validCode(random, 'wechat'));
  const r = await result;
  if (r.type !== 'result' || r.outcome !== 'PAID') throw new Error(`sale ${ref} was not paid: ${JSON.stringify(r)}`);
}

/** The compiled agent as a child process; its JSON log lines can be awaited. */
class Agent {
  private readonly child: ChildProcess;
  private readonly waiters: { msg: string; resolve: (l: Record<string, unknown>) => void }[] = [];
  private pending = '';
  private readonly exited: Promise<void>;

  constructor(args: string[], nodeFlags: string[] = [], env: Record<string, string> = {}) {
    // Nothing from the bench's own environment that would change what is measured (systemd starts the
    // agent with the unit's environment only).
    const inherited = Object.entries(process.env).filter(([k]) => !/^(NODE_OPTIONS|MALLOC_|GLIBC_TUNABLES|SCANBOX_DEVICE_)/.test(k));
    this.child = spawn(process.execPath, [...nodeFlags, CLI, ...args], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT, env: { ...Object.fromEntries(inherited), ...env } });
    this.exited = new Promise((r) => this.child.once('exit', () => r()));
    this.child.stdout!.on('data', (d: Buffer) => {
      const parts = (this.pending + d.toString()).split('\n');
      this.pending = parts.pop() ?? '';
      for (const raw of parts) {
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          continue;
        }
        for (const w of [...this.waiters]) {
          if (w.msg !== line.msg) continue;
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  waitFor(msg: string, timeoutMs: number): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent: no "${msg}" within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ msg, resolve: (l) => (clearTimeout(timer), resolve(l)) });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await this.exited;
    clearTimeout(timer);
  }
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
