import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import type { EcrOutbound } from '../../protocol/index.js';
import { LineSplitter } from '../../device/line-splitter.js';
import { Collector } from './collector.js';
import type { LogLine } from './agent-harness.js';

/** The repo root, so child processes run `device/cli.ts` from source through tsx. */
export const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * A pseudo-terminal pair from socat: the box opens one end, the test the other. Resolves once socat
 * says its transfer loop runs (both links exist by then).
 */
export async function socatPair(dir: string, name: string): Promise<{ boxEnd: string; testEnd: string; stop(): void }> {
  const boxEnd = join(dir, `${name}-box`);
  const testEnd = join(dir, `${name}-test`);
  const proc = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${boxEnd}`, `pty,raw,echo=0,link=${testEnd}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socat did not start within 5 s')), 5_000);
    proc.stderr!.on('data', (d: Buffer) => {
      if (!d.toString().includes('starting data transfer loop')) return;
      clearTimeout(timer);
      resolve();
    });
    proc.on('exit', (code) => reject(new Error(`socat exited with ${code}`)));
  });
  if (!existsSync(boxEnd) || !existsSync(testEnd)) throw new Error('socat links missing');
  return { boxEnd, testEnd, stop: () => proc.kill('SIGTERM') };
}

/** The test's end of a pty: write lines, collect what the box writes (as ECR JSON lines). */
export class TestEnd {
  readonly lines = new Collector<EcrOutbound>();
  private readonly splitter = new LineSplitter(4096, 'utf8');

  private constructor(private readonly port: SerialPort) {
    port.on('data', (chunk: Buffer) => {
      for (const item of this.splitter.push(chunk)) if (item.kind === 'line' && item.text) this.lines.push(JSON.parse(item.text) as EcrOutbound);
    });
  }

  static async open(path: string): Promise<TestEnd> {
    const port = new SerialPort({ path, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    return new TestEnd(port);
  }

  write(text: string): void {
    this.port.write(text);
  }

  json(obj: object): void {
    this.port.write(`${JSON.stringify(obj)}\n`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.port.isOpen ? this.port.close(() => resolve()) : resolve()));
  }
}

/** `node --import tsx device/cli.ts …` as a child process, its stdout collected as log lines. */
export class BoxProcess {
  readonly logs = new Collector<LogLine>();
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;

  private constructor(readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ msg: 'non-json stdout', line });
      }
    });
    proc.stderr!.on('data', (d: Buffer) => this.stderr.push(d.toString()));
    this.exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  }

  static spawn(args: string[], env: Record<string, string> = {}): BoxProcess {
    const proc = spawn(process.execPath, ['--import', 'tsx', 'device/cli.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new BoxProcess(proc);
  }

  /** Start the agent and wait for its `ready` line. */
  static async start(opts: { scanner: string; ecr: string; data: string }, env: Record<string, string> = {}): Promise<BoxProcess> {
    const box = BoxProcess.spawn(['start', '--scanner', opts.scanner, '--ecr', opts.ecr, '--data', opts.data], env);
    await box.logs.find((l) => l.msg === 'ready', 'agent ready', 20_000);
    return box;
  }

  async kill(signal: NodeJS.Signals): Promise<number | null> {
    this.proc.kill(signal);
    return this.exited;
  }
}

/** Run one CLI command to completion. */
export async function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const box = BoxProcess.spawn(args, env);
  let stdout = '';
  box.proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await box.exited;
  return { code, stdout, stderr: box.stderr.join('') };
}
