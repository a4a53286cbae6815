import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

/**
 * The simulator drives the box and the cloud the way an operator does: through their commands,
 * as separate processes, reading their JSON log lines. Nothing here imports device/ or cloud/.
 */
export type Part = 'cloud' | 'device' | 'sim';
const BIN: Record<Part, string> = {
  cloud: new URL('../bin/scanbox-cloud.js', import.meta.url).pathname,
  device: new URL('../bin/scanbox-device.js', import.meta.url).pathname,
  sim: new URL('../bin/scanbox-sim.js', import.meta.url).pathname,
};

export type LogLine = Record<string, unknown> & { msg?: string };

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A one-shot command (`pair create`, `attempts --json`, …). */
export function runPart(part: Part, args: string[], timeoutMs = 30_000, env: NodeJS.ProcessEnv = process.env): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN[part], ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A one-shot command whose stdout is JSON; a non-zero exit is an error carrying its stderr. */
export async function runPartJson<T>(part: Part, args: string[], timeoutMs?: number): Promise<T> {
  const r = await runPart(part, args, timeoutMs);
  if (r.code !== 0) throw new Error(`scanbox-${part} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return JSON.parse(r.stdout) as T;
}

interface LogWaiter {
  predicate: (l: LogLine) => boolean;
  resolve: (l: LogLine) => void;
}

/** A long-running part (`start`): every JSON log line is kept and can be awaited. */
export class PartProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  private readonly waiters = new Set<LogWaiter>();
  private pending = '';
  readonly exited: Promise<number | null>;

  private constructor(
    readonly part: Part,
    readonly child: ChildProcess,
    logFile: string | undefined,
  ) {
    const file: WriteStream | undefined = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
    child.stdout!.on('data', (d: Buffer) => {
      file?.write(d);
      this.onStdout(d.toString());
    });
    child.stderr!.on('data', (d: Buffer) => {
      file?.write(d);
      this.stderr.push(d.toString());
    });
    child.once('exit', () => file?.end());
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  }

  /** `logFile`: every line the process prints is also appended there (kept for a look afterwards). */
  static start(part: Part, args: string[], logFile?: string, env: NodeJS.ProcessEnv = process.env): PartProcess {
    const child = spawn(process.execPath, [BIN[part], ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    return new PartProcess(part, child, logFile);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Index to pass as `since`, so a wait only sees lines logged after this point. */
  mark(): number {
    return this.lines.length;
  }

  /** First log line (from `since` on) matching `predicate`; rejects on timeout or exit. */
  waitForLog(predicate: (l: LogLine) => boolean, timeoutMs = 10_000, since = 0): Promise<LogLine> {
    const seen = this.lines.slice(since).find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter: LogWaiter = { predicate, resolve: (l) => done(() => resolve(l)) };
      const timer = setTimeout(() => done(() => reject(new Error(`scanbox-${this.part}: no matching log line within ${timeoutMs} ms\n${this.tail()}`))), timeoutMs);
      const onExit = () => done(() => reject(new Error(`scanbox-${this.part} exited while waiting\n${this.tail()}`)));
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        this.child.off('exit', onExit);
        settle();
      };
      this.waiters.add(waiter);
      this.child.once('exit', onExit);
    });
  }

  waitForMsg(msg: string, timeoutMs?: number, since?: number): Promise<LogLine> {
    return this.waitForLog((l) => l.msg === msg, timeoutMs, since);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5_000): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** Power cut: no chance to finish anything. */
  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  tail(n = 15): string {
    const out = this.lines.slice(-n).map((l) => JSON.stringify(l));
    return [...out, ...this.stderr.slice(-5)].join('\n');
  }

  private onStdout(text: string): void {
    const parts = (this.pending + text).split('\n');
    this.pending = parts.pop() ?? '';
    for (const raw of parts) {
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        continue; // human-readable output (a QR code, a table) is not a log line
      }
      this.lines.push(line);
      for (const w of [...this.waiters]) if (w.predicate(line)) w.resolve(line);
    }
  }
}
