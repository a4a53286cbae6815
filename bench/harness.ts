import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { round, summarize, type Summary } from '../simulator/stats.js';

/** Shared pieces of the benchmarks: child processes, /proc figures, scratch directories, summaries. */

export const ROOT = new URL('../', import.meta.url).pathname;
/**
 * Where the compiled code is: `dist/` of the checkout (`npm run build`), or `SCANBOX_BENCH_DIST`
 * (the test suite's smoke builds into a temporary directory and never writes into the checkout).
 */
export const DIST = process.env.SCANBOX_BENCH_DIST ?? path.join(ROOT, 'dist');

/** A scratch directory on the disk the journals would use (os.tmpdir(); not a tmpfs on this machine). */
export function scratch(name: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(process.env.SCANBOX_BENCH_TMP ?? os.tmpdir(), `scanbox-bench-${name}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const quietLogger = () => pino({ level: 'warn' });

/**
 * A TypeScript bench helper as its own Node process with an IPC channel, started through bash so
 * the open-file limit can be raised first (`ulimit -n` up to the hard limit: 10,000 sockets need it
 * where the soft limit is 1,024). `exec` keeps the pid and the IPC descriptor.
 */
export function spawnHelper(script: string, args: string[] = [], opts: { env?: NodeJS.ProcessEnv; nodeArgs?: string[]; stdoutFile?: string } = {}): ChildProcess {
  const entry = helperEntry(script);
  const node = [process.execPath, ...profileArgs(), ...(opts.nodeArgs ?? []), ...entry, ...args].map(shellQuote).join(' ');
  const out = opts.stdoutFile ? openSync(opts.stdoutFile, 'a') : 'inherit';
  const child = spawn('bash', ['-c', `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec ${node}`], {
    stdio: ['ignore', out, 'inherit', 'ipc'],
    env: { ...process.env, ...opts.env },
    cwd: ROOT,
  });
  if (typeof out === 'number') closeSync(out);
  return child;
}

/** `SCANBOX_BENCH_CPU_PROF=DIR`: every helper process writes a V8 CPU profile there when it exits. */
function profileArgs(): string[] {
  const dir = process.env.SCANBOX_BENCH_CPU_PROF;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}

/**
 * The compiled helper (DIST/bench/…js, from `npm run build`, which the runner does first) when it is
 * at least as new as its source, so the cloud's RSS is not inflated by the TypeScript loader; else
 * the source through tsx.
 */
export function helperEntry(script: string): string[] {
  const source = path.join(ROOT, 'bench', script);
  const built = path.join(DIST, 'bench', script.replace(/\.ts$/, '.js'));
  if (existsSync(built) && statSync(built).mtimeMs >= statSync(source).mtimeMs) return [built];
  return ['--import', 'tsx', source];
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export type IpcMessage = { type: string } & Record<string, unknown>;

/** The next IPC message of `type` from `child` (rejects if it exits first or after `timeoutMs`). */
export function nextMessage<T extends IpcMessage = IpcMessage>(child: ChildProcess, type: string, timeoutMs = 600_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: IpcMessage) => {
      if (m?.type !== type) return;
      cleanup();
      resolve(m as T);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`bench helper exited (${code}) while waiting for "${type}"`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no "${type}" from the bench helper within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}

/** Ask a helper to stop and wait for it (SIGKILL after `graceMs`). */
export async function stopHelper(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  if (child.connected) child.send({ type: 'stop' });
  else child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** In a helper: send to the parent (no-op when run by hand without IPC). */
export function tell(msg: IpcMessage): void {
  process.send?.(msg);
}

// ── /proc ─────────────────────────────────────────────────────────────────────────────────────────

const CLK_TCK = 100; // Linux USER_HZ

export interface ProcSample {
  at: number;
  rssMiB: number;
  hwmMiB: number;
  /** Of the RSS: anonymous memory (heap, stacks, buffers) and file-backed pages (the node binary, libraries). */
  anonMiB: number;
  fileMiB: number;
  /** user + system CPU time so far, ms. */
  cpuMs: number;
  /** Of cpuMs, in the kernel (system calls: socket writes, fsync…). */
  sysMs: number;
}

export function procSample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15 of stat)
  return { at: performance.now(), rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024, anonMiB: kb('RssAnon') / 1024, fileMiB: kb('RssFile') / 1024, cpuMs: (ticks * 1000) / CLK_TCK, sysMs: (Number(fields[12]) * 1000) / CLK_TCK };
}

/** CPU share of one core between two samples, in percent. */
export function cpuShare(a: ProcSample, b: ProcSample): number {
  return (100 * (b.cpuMs - a.cpuMs)) / Math.max(1, b.at - a.at);
}

/** Command lines of every process (argv split on NUL), for finding a server started by someone else. */
export function findPids(match: (argv: string[]) => boolean): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
    } catch {
      continue; // exited meanwhile
    }
    if (argv.length && match(argv)) found.push(Number(entry));
  }
  return found;
}

/** utime, stime, cutime, cstime and the parent of one process, in ms; undefined once it is gone. */
function statTimes(pid: number): { ppid: number; ownMs: number; reapedMs: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ms = (i: number) => (Number(f[i]) * 1000) / CLK_TCK;
  return { ppid: Number(f[1]), ownMs: ms(11) + ms(12), reapedMs: ms(13) + ms(14) };
}

/**
 * CPU time of a server made of several processes (PostgreSQL's postmaster and its backends): the
 * process, every live descendant, and the children it has already reaped (cutime + cstime), so a
 * backend that exits between two samples is still counted.
 */
export function treeCpuMs(root: number): number {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const t = statTimes(Number(entry));
    if (t) parentOf.set(Number(entry), t.ppid);
  }
  const inTree = (pid: number): boolean => {
    for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 64; p = parentOf.get(p), hops++) if (p === root) return true;
    return false;
  };
  let total = statTimes(root)?.reapedMs ?? 0;
  for (const pid of parentOf.keys()) if (inTree(pid)) total += statTimes(pid)?.ownMs ?? 0;
  return total;
}

/**
 * The kernel's TCP counters (/proc/net/netstat, TcpExt): `ListenOverflows` counts connections a
 * listener's full accept queue turned away (the client retransmits after 1 s, 3 s, …). Machine-wide:
 * other work's listeners count too.
 */
export function tcpExt(): Record<string, number> {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, values[i]!]));
}

export interface MachineCpu {
  at: number;
  /** ms of CPU time summed over every core, from /proc/stat's first line. */
  busyMs: number;
  totalMs: number;
  /** Of busy: the kernel's network work (softirq), and time the hypervisor gave to other VMs (steal). */
  softirqMs: number;
  stealMs: number;
}

export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map((x) => (Number(x) * 1000) / CLK_TCK) as number[];
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { at: performance.now(), busyMs: busy, totalMs: busy + idle! + iowait!, softirqMs: softirq!, stealMs: steal! };
}

/** Between two samples, as % of one core (a 2-core machine fully busy: 200). */
export function machineShare(a: MachineCpu, b: MachineCpu): { busy: number; softirq: number; steal: number; cores: number } {
  const wall = Math.max(1, b.at - a.at);
  const cores = Math.round((b.totalMs - a.totalMs) / wall);
  const pct = (x: number) => (100 * x) / wall;
  return { busy: pct(b.busyMs - a.busyMs), softirq: pct(b.softirqMs - a.softirqMs), steal: pct(b.stealMs - a.stealMs), cores };
}

// ── figures ─────────────────────────────────────────────────────────────────────────────────────

export function rounded(s: Summary): Record<keyof Summary, number> {
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v)])) as Record<keyof Summary, number>;
}

export function summary(samples: readonly number[]): Record<keyof Summary, number> {
  return rounded(summarize(samples));
}

/** A compact histogram: bucket upper bounds (ms, roughly log-spaced) → count. */
export function histogram(samples: readonly number[]): Record<string, number> {
  const bounds = [0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 200, 500, 1000, 2000, 5000, Infinity];
  const out: Record<string, number> = {};
  for (const b of bounds) out[b === Infinity ? 'inf' : `le${b}`] = 0;
  for (const x of samples) {
    const b = bounds.find((u) => x <= u)!;
    out[b === Infinity ? 'inf' : `le${b}`]! += 1;
  }
  return Object.fromEntries(Object.entries(out).filter(([, n]) => n > 0));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll `check` every `everyMs` until it returns a value or `timeoutMs` passes (then throws). */
export async function until<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs: number, everyMs = 20, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function fmt(x: number, digits = 2): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}
