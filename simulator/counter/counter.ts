import { existsSync, lstatSync, mkdtempSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { classifyPaymentCode, ECR_CAPABILITIES, ErrorCode, formatAmount, ProtocolError, WALLETS, type Wallet } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import { validCode } from '../devices/codes.js';
import type { LogLine, PartProcess } from '../processes.js';
import { createRandom, type Random } from '../random.js';
import { FAST_CLOUD_CONFIG, FAST_DEVICE_CONFIG, Rig, type Box } from '../rig.js';
import { BEHAVIOUR_INFO, BEHAVIOURS, parseChoice, testCode, type Behaviour, type Choice, type Timings } from './behaviours.js';
import { describeBoxLine, describeCloudLine, describeWalletLine, followLog, type EventSource } from './event-feed.js';

/**
 * `scanbox-sim counter`: a real box (the agent process), an embedded cloud and the scripted wallet
 * on this machine, with the box's cash-register line left free for a POS vendor's register. The
 * scanner stays virtual: the customer is the simulator.
 *
 * When to scan: the customer reacts to the box's screen, so the simulator watches the box agent's
 * own log (the `sale opened` line is logged with the "show your payment code" screen). Not the ECR
 * line — the POS owns that port, and a second reader would steal its bytes — and not the cloud,
 * which hears of a sale only once a code has been scanned.
 */
export interface CounterOptions {
  /** Answer every sale with this behaviour (one code per sale), without a menu. */
  auto?: Behaviour;
  /** The wallet of the codes the customer shows. */
  wallet: Wallet;
  timings: Timings;
  seed: string;
  /** How long the customer takes to hold the phone to the scanner once the box asks. */
  scanAfterMs: number;
  /** Where to make a symlink to the ECR line that stays the same across runs (default `<dir>/ecr`). */
  ecrLink?: string;
  /** Keep the working directory (databases, journals, logs) after a clean stop. */
  keep: boolean;
}

export interface CounterDeps {
  out: (line: string) => void;
  clock: Clock;
}

const MERCHANT = 'M-COUNTER';
const STORE = 'S-1';
const BOX_NAME = 'box-1';

/** The spec, wherever this runs from (a checkout, or dist/ next to it). */
function ecrSpecPath(): string {
  const candidates = ['../../protocol/ECR.md', '../../../protocol/ECR.md'].map((rel) => new URL(rel, import.meta.url).pathname);
  return candidates.find((p) => existsSync(p)) ?? 'protocol/ECR.md';
}

/** A sale the box asks a code for: just opened, or after a code of it failed. */
interface Waiting {
  ref: string;
  amount: number;
  fresh: boolean;
  /** A code was (or is being) scanned for this wait, or the vendor was asked for one. */
  handled: boolean;
}

/**
 * Refuses a link path that would overwrite something real; a symlink left by an earlier run is
 * replaced. Checked before anything starts.
 */
function checkLinkPath(link: string): void {
  const parent = path.dirname(link);
  if (!existsSync(parent) || !statSync(parent).isDirectory()) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `--ecr-link ${link}: directory ${parent} does not exist`);
  }
  let st;
  try {
    st = lstatSync(link);
  } catch {
    return;
  }
  if (!st.isSymbolicLink()) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `--ecr-link ${link} exists and is not a symlink; choose another path`);
}

export class Counter {
  /** Resolves with the exit code once everything is stopped: 0 after `stop()`, 1 if the box or the cloud died. */
  readonly done: Promise<number>;
  private resolveDone!: (code: number) => void;
  private stopping = false;
  private readonly random: Random;
  private readonly openSales = new Map<string, number>();
  private readonly saleOfAttempt = new Map<string, string>();
  private waiting: Waiting | undefined;
  private armed: Choice | undefined;
  private scanTimer: unknown;
  private rig!: Rig;
  private box!: Box;
  private link = '';

  private constructor(
    private readonly opts: CounterOptions,
    private readonly deps: CounterDeps,
    readonly dir: string,
  ) {
    this.random = createRandom(opts.seed);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
  }

  static async start(opts: CounterOptions, deps: CounterDeps): Promise<Counter> {
    const link = opts.ecrLink === undefined ? undefined : path.resolve(opts.ecrLink);
    if (link) checkLinkPath(link);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'scanbox-counter-'));
    const counter = new Counter(opts, deps, dir);
    counter.link = link ?? path.join(dir, 'ecr');
    try {
      await counter.boot();
    } catch (err) {
      await counter.rig?.stop().catch(() => undefined);
      deps.out(`kept for a look: ${dir}`);
      throw err;
    }
    return counter;
  }

  /** The register's end of the ECR line as a device (`/dev/pts/N`). */
  get ecrDevice(): string {
    return realpathSync(this.box.ecrPath);
  }

  private async boot(): Promise<void> {
    const { out } = this.deps;
    out(`scanbox counter: a box, its cloud and a scripted wallet on this machine (working in ${this.dir})`);
    const fast = this.opts.timings === 'fast';
    // The wallet's ledger is in this process: its log lines are the money moving.
    const walletLog = pino({ level: 'info' }, { write: (s: string) => this.onWalletLog(s) });
    this.rig = await Rig.start({
      dir: this.dir,
      seed: this.opts.seed,
      logger: walletLog,
      ...(fast ? { cloudConfig: FAST_CLOUD_CONFIG, deviceConfig: FAST_DEVICE_CONFIG } : {}),
    });
    for (const behaviour of BEHAVIOURS) {
      for (const wallet of WALLETS) this.rig.gateway.bind(testCode(behaviour, wallet), BEHAVIOUR_INFO[behaviour].scenario(this.opts.timings));
    }
    this.box = await this.rig.addBox(BOX_NAME, MERCHANT, STORE, { posEcr: true });
    rmSync(this.link, { force: true });
    symlinkSync(this.box.ecrPath, this.link);
    void this.watch('box', this.box.proc, (l) => this.onBoxLine(l));
    void this.watch('cloud', this.rig.cloud, (l) => this.say('cloud', describeCloudLine(l)));
    this.banner();
  }

  private banner(): void {
    const { out } = this.deps;
    const timings = this.opts.timings === 'fast'
      ? 'fast (the demo\'s: a wallet gives up after 3 s, a payment after 10 s)'
      : "shop (the product's own: a wallet's poll deadline is 45–60 s, a payment's 60 s, a sale's 5 min; --fast for seconds)";
    out(`  box          ${this.box.deviceId}, paired to merchant ${MERCHANT} store ${STORE}, online`);
    out(`  cloud        ${this.rig.httpUrl}; logs in ${this.dir}/cloud.log and ${this.box.dir}/device.log`);
    out(`  timings      ${timings}`);
    out('');
    out(`ECR port for your POS: ${this.ecrDevice}`);
    out(`  stable link  ${this.link} (follows the port if it is recreated)`);
    out('  line         JSON lines: one object per line, UTF-8, ending in LF (CR and CRLF accepted), at most 1024 bytes');
    out('  serial       a real box: 9600 baud, 8N1, no flow control; a pseudo-terminal ignores the baud rate');
    out(`  protocol     ${ecrSpecPath()} (ECR v2: send hello first)`);
    out(`  lines        ${ECR_CAPABILITIES.join(', ')}`);
    out('');
    if (this.opts.auto) {
      out(`--auto ${this.opts.auto}: every sale is answered by a customer who ${BEHAVIOUR_INFO[this.opts.auto].customer} (${this.opts.wallet}), ${this.opts.scanAfterMs} ms after the box asks.`);
      out(`  the POS sees: ${BEHAVIOUR_INFO[this.opts.auto].register}`);
    } else {
      this.menu();
    }
    out('ready: ring up a sale on your POS. Ctrl-C stops everything.');
  }

  private menu(): void {
    const { out } = this.deps;
    out(`The customer of the next code: type a number or a name, or scan/type a test code (${this.opts.wallet}; ? shows this again)`);
    for (const [i, b] of BEHAVIOURS.entries()) {
      out(`  ${String(i + 1).padStart(2)}  ${b.padEnd(13)} ${testCode(b, this.opts.wallet)}  ${BEHAVIOUR_INFO[b].customer}`);
      out(`      ${' '.repeat(13)} ${' '.repeat(testCode(b, this.opts.wallet).length)}  → ${BEHAVIOUR_INFO[b].register}`);
    }
  }

  /** One line the vendor typed (or a scanner in keyboard mode sent): a behaviour, a test code, or `?`. */
  choose(input: string): void {
    const text = input.trim();
    if (text === '' || this.stopping) return;
    if (text === '?' || text === 'menu' || text === 'help') return this.menu();
    const choice = parseChoice(text, WALLETS);
    if (!choice) {
      this.say('sim', `"${text.slice(0, 40)}" is not a choice: type 1–${BEHAVIOURS.length}, a name (${BEHAVIOURS.join(', ')}) or a test code; ? shows the menu`);
      return;
    }
    if (this.waiting && this.scanTimer === undefined) return this.scan(this.waiting, choice);
    this.armed = choice;
    this.say('sim', `the next customer ${BEHAVIOUR_INFO[choice.behaviour].customer}; scans when the box next asks for a code`);
  }

  /** The vendor's input ended (a pipe closed, Ctrl-D): the counter keeps running for the POS. */
  inputClosed(): void {
    if (!this.stopping) this.say('sim', 'input closed: no more menu choices (--auto answers sales unattended); Ctrl-C stops');
  }

  /** Stops the box, the cloud, the wallet and the serial lines; idempotent. */
  async stop(code = 0): Promise<number> {
    if (this.stopping) return this.done;
    this.stopping = true;
    if (this.scanTimer !== undefined) this.deps.clock.clearTimeout(this.scanTimer);
    this.deps.out('stopping: box, cloud, wallet and serial lines…');
    try {
      await this.rig.stop();
    } catch (err) {
      this.deps.out(`could not stop everything cleanly: ${(err as Error).message}`);
      code = 1;
    }
    if (isOurLink(this.link, this.box.ecrPath)) rmSync(this.link, { force: true });
    if (this.opts.keep || code !== 0) this.deps.out(`kept: ${this.dir}`);
    else rmSync(this.dir, { recursive: true, force: true });
    this.deps.out('stopped');
    this.resolveDone(code);
    return code;
  }

  private async watch(name: string, proc: PartProcess, onLine: (l: LogLine) => void): Promise<void> {
    await followLog(proc, onLine, () => this.offerCode());
    if (this.stopping) return;
    const exit = await proc.exited;
    this.say('sim', `the ${name} process exited (${exit}) while the counter was running; its log: ${name === 'box' ? `${this.box.dir}/device.log` : `${this.dir}/cloud.log`}`);
    await this.stop(exit === 0 ? 0 : 1);
  }

  private onWalletLog(json: string): void {
    try {
      this.say('wallet', describeWalletLine(JSON.parse(json) as LogLine));
    } catch {
      // pino writes JSON; anything else is not a ledger line
    }
  }

  private onBoxLine(l: LogLine): void {
    this.say('box', describeBoxLine(l));
    const ref = typeof l.saleRef === 'string' ? l.saleRef : undefined;
    switch (l.msg) {
      case 'sale opened':
        this.openSales.set(ref!, Number(l.amount));
        this.waiting = { ref: ref!, amount: Number(l.amount), fresh: true, handled: false };
        return;
      case 'attempt created':
        this.saleOfAttempt.set(String(l.outTradeNo), ref!);
        if (this.waiting?.ref === ref) this.waiting = undefined;
        return;
      case 'attempt final': {
        const sale = this.saleOfAttempt.get(String(l.outTradeNo));
        // A code that failed leaves the sale open for another one, except AMOUNT_MISMATCH, which closes it (protocol/ECR.md).
        if (l.state !== 'SUCCESS' && l.reason !== 'AMOUNT_MISMATCH' && sale !== undefined && this.openSales.has(sale)) this.waiting = { ref: sale, amount: this.openSales.get(sale)!, fresh: false, handled: false };
        return;
      }
      case 'sale paid':
      case 'sale not paid':
        this.openSales.delete(ref!);
        if (this.waiting?.ref === ref) this.waiting = undefined;
        return;
    }
  }

  /** After each batch of box lines: the customer steps up if the box asks for a code. */
  private offerCode(): void {
    const w = this.waiting;
    if (!w || w.handled || this.scanTimer !== undefined || this.stopping) return;
    w.handled = true;
    if (this.armed) {
      const choice = this.armed;
      this.armed = undefined;
      return this.scan(w, choice);
    }
    if (this.opts.auto) {
      if (w.fresh) return this.scan(w, { behaviour: this.opts.auto });
      return this.say('sim', `sale ${w.ref}: the box takes another code; --auto answers each sale once, so cancel it on the POS (or it ends at its deadline)`);
    }
    const what = w.fresh ? 'the box asks for a payment code' : 'that code failed; the box takes another (or cancel the sale on the POS)';
    this.say('sim', `sale ${w.ref} ${formatAmount(w.amount)}: ${what} — pick the customer: 1–${BEHAVIOURS.length} (? for the menu)`);
  }

  private scan(w: Waiting, choice: Choice): void {
    const { behaviour } = choice;
    const code = choice.code ?? this.freshCode(behaviour);
    const wallet = classifyPaymentCode(code).wallet;
    this.say('sim', `sale ${w.ref}: the customer ${BEHAVIOUR_INFO[behaviour].customer}; scans its ${wallet} code ${code}`);
    this.scanTimer = this.deps.clock.setTimeout(() => {
      this.scanTimer = undefined;
      if (this.stopping) return;
      this.box.scanner.scan(code).catch((err: Error) => this.say('sim', `the scan could not be written: ${err.message}`));
    }, this.opts.scanAfterMs);
  }

  /** A code never shown before, so the box's duplicate-scan guard never mistakes two customers for one. */
  private freshCode(behaviour: Behaviour): string {
    const code = validCode(this.random, this.opts.wallet);
    this.rig.gateway.bind(code, BEHAVIOUR_INFO[behaviour].scenario(this.opts.timings));
    return code;
  }

  private say(source: EventSource, text: string | undefined): void {
    if (text === undefined) return;
    this.deps.out(`${clockTime(this.deps.clock.now())}  ${source.padEnd(6)} ${text}`);
  }
}

function isOurLink(link: string, target: string): boolean {
  try {
    return lstatSync(link).isSymbolicLink() && readlinkSync(link) === target;
  } catch {
    return false;
  }
}

function clockTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}
