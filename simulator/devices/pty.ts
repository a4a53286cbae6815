import { spawn, type ChildProcess } from 'node:child_process';
import { lstatSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { openSerialEnd, type SerialEnd } from './serial-end.js';

/**
 * A pseudo-terminal pair from Debian's socat: bytes written to link `a` come out of link `b` and
 * back. One end goes to the box's agent, the other to a virtual scanner or cash register. Killing
 * socat is an unplugged cable (the agent's open port closes with `disconnected`), and `replug`
 * brings the same link paths back.
 */
export interface PtyPairOptions {
  /** Directory for the two links. */
  dir: string;
  /** Link names inside `dir`; default `box` and `sim`. */
  names?: readonly [a: string, b: string];
  readyTimeoutMs?: number;
  socatPath?: string;
  logger?: Logger;
}

/** socat says this once both ptys and their links exist. */
const READY_LINE = 'starting data transfer loop';

// Every socat this process started, so none outlives it even when a test forgets close().
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGTERM');
  });
}

export class PtyPair {
  readonly a: string;
  readonly b: string;
  private child: ChildProcess | undefined;
  private readonly ends = new Set<SerialEnd>();
  private readonly log: Logger;

  private constructor(private readonly opts: PtyPairOptions) {
    const [a, b] = opts.names ?? ['box', 'sim'];
    this.a = join(opts.dir, a);
    this.b = join(opts.dir, b);
    this.log = opts.logger ?? pino({ level: 'silent' });
  }

  static async create(opts: PtyPairOptions): Promise<PtyPair> {
    const pair = new PtyPair(opts);
    await pair.replug();
    return pair;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get plugged(): boolean {
    return this.child !== undefined;
  }

  /** Starts socat (again) and resolves once both links exist. */
  async replug(): Promise<void> {
    if (this.child) return;
    installExitHook();
    // A link left behind by a socat killed with -9 would make the new one fail.
    for (const link of [this.a, this.b]) rmSync(link, { force: true });
    const args = ['-d', '-d', `pty,raw,echo=0,link=${this.a}`, `pty,raw,echo=0,link=${this.b}`];
    const child = spawn(this.opts.socatPath ?? 'socat', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      // socat killed from outside (a chaos run's kill -9) is an unplug too.
      if (this.child === child) this.child = undefined;
    });
    await this.waitReady(child);
    this.child = child;
    this.log.info({ a: this.a, b: this.b, pid: child.pid }, 'pty pair ready');
  }

  /** Opens the simulator's side (default `b`); it is closed by unplug, as its cable goes too. */
  async openEnd(which: 'a' | 'b' = 'b'): Promise<SerialEnd> {
    const end = await openSerialEnd(which === 'a' ? this.a : this.b);
    this.ends.add(end);
    return end;
  }

  /**
   * Kills socat: both links disappear, as when the cable is pulled. The simulator's own ends are
   * closed first: besides being what a pulled cable does, a hang-up that lands in the same instant
   * as a read on the agent's port can go unnoticed by serialport's poller (seen here), so the
   * agent would never get its `close`.
   */
  async unplug(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    await Promise.all([...this.ends].map((e) => e.close()));
    this.ends.clear();
    await stop(child);
    for (const link of [this.a, this.b]) rmSync(link, { force: true });
    this.log.info({ a: this.a, b: this.b }, 'pty pair unplugged');
  }

  close(): Promise<void> {
    return this.unplug();
  }

  private waitReady(child: ChildProcess): Promise<void> {
    const timeoutMs = this.opts.readyTimeoutMs ?? 5_000;
    return new Promise((resolve, reject) => {
      let stderr = '';
      const fail = (why: string) => {
        cleanup();
        child.kill('SIGKILL');
        reject(new Error(`socat pty pair ${this.a} ↔ ${this.b}: ${why}${stderr ? `\n${stderr.trim()}` : ''}`));
      };
      const onData = (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes(READY_LINE) && linksExist([this.a, this.b])) {
          cleanup();
          resolve();
        }
      };
      const onExit = (code: number | null) => fail(`socat exited (code ${code}) before the links were ready`);
      const onError = (err: Error) => fail(`cannot start socat (${err.message}); install it with apt-get install socat`);
      const timer = setTimeout(() => fail(`links not ready after ${timeoutMs} ms`), timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
        // Keep draining stderr so socat never blocks on a full pipe.
        child.stderr?.resume();
      };
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
    });
  }
}

export function createPtyPair(opts: PtyPairOptions): Promise<PtyPair> {
  return PtyPair.create(opts);
}

function linksExist(links: string[]): boolean {
  return links.every((l) => {
    try {
      return lstatSync(l).isSymbolicLink();
    } catch {
      return false;
    }
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 2_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
