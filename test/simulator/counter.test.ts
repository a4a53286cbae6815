import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyPaymentCode, WALLETS } from '../../protocol/index.js';
import { BEHAVIOUR_INFO, BEHAVIOURS, parseChoice, testCode } from '../../simulator/counter/behaviours.js';
import { Scenario } from '../../simulator/gateway/scenario.js';
import { VirtualEcr } from '../../simulator/devices/virtual-ecr.js';

/**
 * `scanbox-sim counter` as a POS vendor runs it: its own process, the ECR port read from what it
 * prints, the typed ECR client on that port as the vendor's register, and Ctrl-C (SIGINT) at the end,
 * after which none of its socat, box or cloud processes may be left.
 */
const SIM = new URL('../../bin/scanbox-sim.js', import.meta.url).pathname;

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'scanbox-counter-test-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Proc {
  pid: number;
  cmdline: string;
}

/** The process tree under `root`, read from /proc (children of children too). */
function descendants(root: number): Proc[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may contain spaces: ppid is the second field after it.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(entry), ppid);
    } catch {
      // exited while we looked
    }
  }
  const found: Proc[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parentOf) {
      if (parent !== pid) continue;
      found.push({ pid: child, cmdline: cmdlineOf(child) ?? '' });
      walk(child);
    }
  };
  walk(root);
  return found;
}

function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** Still running: the same command line under that pid, and not a zombie. */
function alive(p: Proc): boolean {
  if (cmdlineOf(p.pid) !== p.cmdline) return false;
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

class CounterRun {
  text = '';
  private readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly listeners = new Set<() => void>();
  /** Its processes as last seen, so a failed test can still end them. */
  private tree: Proc[] = [];

  /** `ownGroup`: the counter leads its own process group, so a Ctrl-C can reach every process in it, as in a terminal. */
  constructor(
    readonly child: ChildProcess,
    private readonly ownGroup: boolean,
  ) {
    child.stdout!.on('data', (d: Buffer) => {
      this.text += d.toString();
      for (const l of [...this.listeners]) l();
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    this.exit = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        if (stderr) this.text += `\n[stderr] ${stderr}`;
        for (const l of [...this.listeners]) l();
        resolve({ code, signal });
      }),
    );
  }

  static start(args: string[], opts: { ownGroup?: boolean } = {}): CounterRun {
    const ownGroup = opts.ownGroup ?? false;
    return new CounterRun(spawn(process.execPath, [SIM, 'counter', ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: ownGroup }), ownGroup);
  }

  /** The first match of `re` in what the counter printed after character `from`. */
  waitFor(re: RegExp, timeoutMs = 30_000, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.text.slice(from).match(re);
        if (m) return done(() => resolve(m));
        if (this.child.exitCode !== null || this.child.signalCode !== null) done(() => reject(new Error(`counter exited before printing ${re}:\n${this.text}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`counter did not print ${re} within ${timeoutMs} ms:\n${this.text}`))), timeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exit;
  }

  type(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /**
   * SIGINT — to the counter alone, or, in its own group, to every process of the group as a
   * terminal's Ctrl-C does — then the exit status and the processes it had started that still run.
   */
  async interrupt(): Promise<{ code: number | null; signal: NodeJS.Signals | null; left: Proc[] }> {
    const before = descendants(this.child.pid!);
    this.tree = before;
    if (this.ownGroup) process.kill(-this.child.pid!, 'SIGINT');
    else this.child.kill('SIGINT');
    const status = await this.exit;
    return { ...status, left: before.filter(alive) };
  }

  /** Cleanup after a failed test: SIGKILL the counter and whatever it started that still runs. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.tree = descendants(this.child.pid!);
      this.child.kill('SIGKILL');
    }
    await this.exit;
    for (const p of this.tree) if (alive(p)) process.kill(p.pid, 'SIGKILL');
  }
}

/** Starts the counter and waits until it is ready; returns it with the ECR device it printed and its stable link. */
async function startCounter(args: string[], opts: { ownGroup?: boolean } = {}): Promise<{ run: CounterRun; device: string; link: string }> {
  const run = CounterRun.start(args, opts);
  // Starting is a dozen CLI runs (cloud, merchant, pairing, box): slow on a loaded machine.
  const [, device] = await run.waitFor(/ECR port for your POS: (\S+)/, 110_000);
  const [, link] = await run.waitFor(/stable link +(\S+)/);
  await run.waitFor(/^ready: ring up a sale on your POS/m);
  return { run, device: device!, link: link! };
}

/** Ctrl-C; it must exit 0 and leave no socat, box or cloud process behind. */
async function interruptCleanly(run: CounterRun): Promise<void> {
  const tree = descendants(run.child.pid!);
  // The rig runs the cloud and the box as processes, and each serial line as a socat.
  expect(tree.filter((p) => /^socat /.test(p.cmdline))).toHaveLength(2);
  expect(tree.some((p) => /scanbox-device\.js start/.test(p.cmdline))).toBe(true);
  expect(tree.some((p) => /scanbox-cloud\.js start/.test(p.cmdline))).toBe(true);
  const { code, signal, left } = await run.interrupt();
  expect(left).toEqual([]);
  expect(signal).toBeNull();
  expect(code).toBe(0);
  expect(run.text).toMatch(/\nstopped\n/);
}

describe('counter behaviours', () => {
  it('every test code is a valid code of its wallet, distinct, and read back as its behaviour', () => {
    const codes = BEHAVIOURS.flatMap((b) => WALLETS.map((w) => ({ b, w, code: testCode(b, w) })));
    expect(new Set(codes.map((c) => c.code)).size).toBe(codes.length);
    for (const { b, w, code } of codes) {
      expect(classifyPaymentCode(code).wallet).toBe(w);
      expect(parseChoice(` ${code} `, WALLETS)).toEqual({ behaviour: b, code });
    }
  });

  it('reads a menu number or a name, and nothing else', () => {
    expect(parseChoice('1', WALLETS)).toEqual({ behaviour: 'pays' });
    expect(parseChoice('8', WALLETS)).toEqual({ behaviour: 'gateway-down' });
    expect(parseChoice('Password', WALLETS)).toEqual({ behaviour: 'password' });
    for (const junk of ['0', '9', '', 'pay', '130000000000000009', '13000000000000000']) expect(parseChoice(junk, WALLETS)).toBeUndefined();
  });

  it("every behaviour is a scenario the scripted gateway accepts, on both timings", () => {
    for (const b of BEHAVIOURS) for (const t of ['shop', 'fast'] as const) expect(Scenario.safeParse(BEHAVIOUR_INFO[b].scenario(t)).success).toBe(true);
    // The password must be typed before the wallet's poll deadline (3 s on fast timings), or it would be a timeout.
    expect(BEHAVIOUR_INFO.password.scenario('fast')).toMatchObject({ confirmAfterMs: 2_000 });
  });
});

describe('scanbox-sim counter', () => {
  it('--auto pays: a POS on the printed port says hello and gets PAID; Ctrl-C stops everything', async () => {
    const { run, device, link } = await startCounter(['--auto', 'pays', '--fast', '--scan-after-ms', '200']);
    const ecr = await VirtualEcr.open(link);
    try {
      expect(device).toMatch(/^\/dev\/pts\/\d+$/);
      expect(realpathSync(link)).toBe(device);
      const hello = await ecr.hello('counter-test');
      expect(hello.v).toBe(2);
      expect(hello.capabilities).toEqual(expect.arrayContaining(['sale', 'cancel', 'hello', 'lookup']));
      await ecr.sale('T-1', 1234);
      const result = await ecr.resultFor('T-1', 30_000);
      expect(result).toMatchObject({ outcome: 'PAID', amount: 1234, wallet: 'wechat' });
      expect(ecr.received.filter((m) => m.ref === 'T-1').map((m) => (m.type === 'progress' ? m.stage : m.type))).toEqual(['WAITING_CODE', 'PAYING', 'result']);
      // The vendor can follow the sale on the box, at the cloud and at the wallet.
      await run.waitFor(/box +POS said hello \(ECR v2, counter-test\)/);
      await run.waitFor(/cloud +payment \S+ received: ¥12\.34 by wechat/);
      await run.waitFor(/wallet +charged ¥12\.34/);
      await run.waitFor(/box +sale T-1 PAID ¥12\.34/);
      // Ctrl-C while the POS still holds the port, as at a vendor's desk.
      await interruptCleanly(run);
      expect(existsSync(link)).toBe(false);
    } finally {
      await ecr.close();
      await run.kill();
    }
  }, 120_000);

  it('--auto declines: the POS hears ATTEMPT_FAILED, cancels and gets NOT_PAID; lookup tells the same; a terminal Ctrl-C stops everything', async () => {
    const { run, link } = await startCounter(['--auto', 'declines', '--wallet', 'alipay', '--fast', '--scan-after-ms', '200'], { ownGroup: true });
    const ecr = await VirtualEcr.open(link);
    try {
      await ecr.hello();
      await ecr.sale('T-2', 990);
      const failed = await ecr.waitFor((m) => m.type === 'progress' && m.ref === 'T-2' && m.stage === 'ATTEMPT_FAILED', 30_000);
      expect(failed.type === 'progress' && failed.message).toMatch(/INSUFFICIENT_FUNDS/);
      await run.waitFor(/scans its alipay code 2\d+/);
      // One code per sale: the counter says so instead of scanning again.
      await run.waitFor(/sale T-2: the box takes another code; --auto answers each sale once/);
      await ecr.cancel('T-2');
      expect(await ecr.resultFor('T-2', 30_000)).toMatchObject({ outcome: 'NOT_PAID', reason: 'CASHIER_CANCEL', amount: 990 });
      expect(await ecr.lookup('T-2')).toMatchObject({ type: 'result', outcome: 'NOT_PAID', lookup: true });
      await run.waitFor(/box +sale T-2 NOT_PAID \(CASHIER_CANCEL\)/);
      await interruptCleanly(run);
    } finally {
      await ecr.close();
      await run.kill();
    }
  }, 120_000);

  it('menu on stdin: a number when asked, a name chosen ahead, a test code, another code after a failure', async () => {
    const link = join(scratch, 'pos-ecr');
    symlinkSync('/nonexistent/left-by-an-earlier-run', link);
    const { run, device } = await startCounter(['--fast', '--scan-after-ms', '100', '--ecr-link', link]);
    expect(realpathSync(link)).toBe(device);
    const ecr = await VirtualEcr.open(link);
    try {
      await ecr.hello();
      // Asked while the box waits for the code: 2 = the customer types a password, then pays.
      let from = run.text.length;
      await ecr.sale('M-1', 500);
      await run.waitFor(/sale M-1 ¥5\.00: the box asks for a payment code — pick the customer/, 30_000, from);
      run.type('2');
      await ecr.waitFor((m) => m.type === 'progress' && m.ref === 'M-1' && m.stage === 'WAITING_PASSWORD', 30_000);
      expect(await ecr.resultFor('M-1', 30_000)).toMatchObject({ outcome: 'PAID', amount: 500 });

      // Chosen ahead by name: the next sale is answered without a prompt.
      from = run.text.length;
      run.type('mismatch');
      await run.waitFor(/the next customer is charged 0\.13 less/, 10_000, from);
      await ecr.sale('M-2', 700);
      expect(await ecr.resultFor('M-2', 30_000)).toMatchObject({ outcome: 'NOT_PAID', reason: 'AMOUNT_MISMATCH' });
      await run.waitFor(/wallet +charged ¥6\.87/, 10_000, from);

      // The declines test code, typed (or scanned into the terminal); then the customer pays with another code.
      from = run.text.length;
      await ecr.sale('M-3', 800);
      await run.waitFor(/sale M-3 ¥8\.00: the box asks for a payment code/, 30_000, from);
      run.type('bogus');
      await run.waitFor(/"bogus" is not a choice/, 10_000, from);
      run.type(testCode('declines', 'wechat'));
      await ecr.waitFor((m) => m.type === 'progress' && m.ref === 'M-3' && m.stage === 'ATTEMPT_FAILED', 30_000);
      await run.waitFor(/sale M-3 ¥8\.00: that code failed; the box takes another/, 10_000, from);
      run.type('pays');
      expect(await ecr.resultFor('M-3', 30_000)).toMatchObject({ outcome: 'PAID', amount: 800 });
      expect(ecr.results()).toHaveLength(3);
      await interruptCleanly(run);
      expect(existsSync(link)).toBe(false);
    } finally {
      await ecr.close();
      await run.kill();
    }
  }, 120_000);

  it('refuses an --ecr-link that would overwrite a file, with exit 2, before starting anything', async () => {
    const file = join(scratch, 'not-a-link');
    writeFileSync(file, 'keep me');
    const run = CounterRun.start(['--auto', 'pays', '--ecr-link', file]);
    const { code } = await run.exited();
    expect(code).toBe(2);
    expect(run.text).toContain(`--ecr-link ${file} exists and is not a symlink`);
    expect(run.text).not.toContain('ECR port for your POS');
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  }, 30_000);
});
