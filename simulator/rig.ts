import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { CloudRefundRecord, isFinal, type CloudAttemptRecord, type DeviceAttemptRecord, type DeviceRefundRecord } from '../protocol/index.js';
import { FaultProxy } from './chaos/fault-proxy.js';
import { ScriptedGateway } from './gateway/scripted-gateway.js';
import { startGatewayServer, type GatewayServer } from './gateway/gateway-server.js';
import { ONE_ACCOUNT_EACH, startWalletSimulators, TWO_ACCOUNTS_EACH, type WalletSimulators } from './gateway/wallet-simulators.js';
import { PartProcess, runPartJson, type LogLine } from './processes.js';
import { createSerialLine, type SerialLine, type SerialMode } from './devices/serial-line.js';
import type { SerialEnd } from './devices/serial-end.js';
import type { ScenarioMixInput } from './gateway/scenario.js';
import { VirtualEcr } from './devices/virtual-ecr.js';
import { VirtualScanner } from './devices/virtual-scanner.js';
import type { LedgerEntry } from './gateway/ledger.js';
import { createRandom, hashSeed, type Random } from './random.js';
import { checkWorkers, startCloudStack, type CloudStack, type CloudStackKind } from './stack/cloud-stack.js';
import { freeLoopbackPort } from './stack/free-port.js';

/**
 * Everything a shop and its cloud consist of, on one machine: the scripted gateway (in this
 * process, over HTTP), the cloud as its own process (or several workers on Mosquitto and
 * PostgreSQL: stack/cloud-stack.ts), a fault proxy between boxes and broker, and boxes as their own
 * processes on pseudo-terminal scanners and cash registers, each paired through the real pairing
 * API. The demo, the fleet generator and the chaos runner are all stories on it.
 */
/**
 * Wallet timings shortened from about a minute to seconds (poll deadline 3 s, reverse after 1 s,
 * box deadline 10 s), so the demo, the fleet and the chaos runs see every abnormal path quickly.
 */
export const FAST_CLOUD_CONFIG = {
  gatewayCallTimeoutMs: 1_500,
  queryFirstDelayMs: 300,
  queryIntervalMs: 400,
  pollDeadlineMs: { wechat: 3_000, alipay: 3_000, unionpay: 3_000 },
  reverseMinDelayMs: 1_000,
  reverseRetryMs: 300,
  lateCheckDelayMs: 1_500,
  // A cashier's refund the wallet left unanswered is asked again within a second; one pending 10 s is flagged.
  refundRetryMs: 300,
  refundRetryMaxMs: 1_000,
  refundFlagAfterMs: 10_000,
  heartbeatIntervalS: 2,
  logLevel: 'info',
  // Channel health on the same scale: a window of seconds, a short cool-down.
  // Every new payment probes a half-open channel, and one success closes it: the switch-back is prompt.
  channelHealth: { windowMs: 8_000, minCalls: 8, coolDownMs: 4_000, slowCallMs: 1_400, probeShare: 1, probesToClose: 1 },
  channelPollMs: 250,
};
export const FAST_DEVICE_CONFIG = {
  paymentDeadlineMs: 10_000,
  recheckMs: 1_500,
  heartbeatIntervalS: 2,
  reconnect: { baseMs: 200, maxMs: 1_000 },
  keepaliveS: 5,
};

/**
 * What a box needs from whoever hosts it: a working directory (the box gets `dir/<name>`) and its
 * agent's config and extra environment, read at each (re)start. The rig is one host (its options);
 * a benchmark with its own cloud is another.
 */
export interface BoxHost {
  dir: string;
  deviceConfig?: Record<string, unknown>;
  /** Extra environment for a box's agent process (e.g. libfaketime for the chaos runner's clock jumps). */
  deviceEnv?: (boxName: string) => NodeJS.ProcessEnv | undefined;
  /** How a box's scanner and ECR lines are made (devices/serial-line.ts); default `pty`. */
  serial?: SerialMode;
}

/** `scripted`: one JSON gateway for every wallet. `real-formats`: WeChat and Alipay through the cloud's adapters and their wire-faithful simulators (UnionPay stays on the JSON gateway). */
export type WalletMode = 'scripted' | 'real-formats';
export const WALLET_MODES: readonly WalletMode[] = ['scripted', 'real-formats'];

export interface RigOptions extends BoxHost {
  seed: number | string;
  wallets?: WalletMode;
  /**
   * Provider accounts per wallet: 1, or 2 — a cheap primary and a dearer backup, each with its own
   * simulator (real-formats: `wechat`/`wechat-backup`, `alipay`/`alipay-backup`; scripted: `primary`
   * and `backup` JSON gateways serving every wallet), so channel outages can be played.
   */
  channelsPerWallet?: 1 | 2;
  mix?: ScenarioMixInput;
  cloudConfig?: Record<string, unknown>;
  logger?: Logger;
  /** What the cloud runs on (stack/cloud-stack.ts): `embedded-sqlite` (default) or `mosquitto-postgres`. */
  stack?: CloudStackKind;
  /** Cloud processes: 1 on embedded-sqlite (the only choice); default 3 on mosquitto-postgres. */
  workers?: number;
}

export interface PairingCode {
  code: string;
  expiresAt: number;
  cloudUrl: string;
  qrText: string;
}

export interface Snapshot {
  ledger: LedgerEntry[];
  cloud: CloudAttemptRecord[];
  devices: DeviceAttemptRecord[][];
  cloudRefunds: CloudRefundRecord[];
  deviceRefunds: DeviceRefundRecord[][];
}

/** How long a cloud process may take from spawn to its ready line. */
const READY_MS = 20_000;
/**
 * How long a support command may take (`attempts --json`, `pair create` …): a snapshot runs two
 * plus two per box at once, beside the cloud and the boxes, and on a busy two-core machine one
 * took over 30 s (runPart's default).
 */
const CLI_MS = 60_000;

export class Rig {
  readonly boxes: Box[] = [];
  /** The cloud's processes: one on the embedded stack, w1 … wN on mosquitto-postgres (`stack.workers` names them). */
  readonly workers: PartProcess[] = [];
  /** Worker 1's HTTP address: where boxes pair. */
  httpUrl = '';
  private httpUrls: string[] = [];
  private stack!: CloudStack;
  /** Picks the worker a `killCloud()` hits: seeded, so a chaos run replays its kills. */
  private readonly killRandom: Random;
  private readonly log: Logger;
  private readonly merchants = new Map<string, Promise<void>>();
  /** CLI flags naming a merchant's wallet sub-accounts (the wallet simulators' test ids in real-formats mode). */
  private merchantWalletIds: Record<string, string> = {};
  readonly gateway: ScriptedGateway;
  private gatewayServer!: GatewayServer;
  private walletSims: WalletSimulators | undefined;
  /** The scripted mode's extra JSON gateways, one per channel, when there are two. */
  private channelServers = new Map<string, GatewayServer>();
  proxy!: FaultProxy;

  private constructor(readonly opts: RigOptions) {
    this.log = opts.logger ?? pino({ level: 'silent' });
    this.gateway = new ScriptedGateway({ seed: opts.seed, ...(opts.mix ? { mix: opts.mix } : {}), logger: this.log });
    this.killRandom = createRandom(hashSeed('rig-cloud-kill', opts.seed));
  }

  static async start(opts: RigOptions): Promise<Rig> {
    // Before anything starts: a bad worker count is the caller's mistake, said at once.
    checkWorkers(opts.stack ?? 'embedded-sqlite', opts.workers);
    mkdirSync(opts.dir, { recursive: true });
    const rig = new Rig(opts);
    try {
      rig.gatewayServer = await startGatewayServer({ gateway: rig.gateway });
      await rig.startChannels();
      rig.stack = await startCloudStack(opts.stack ?? 'embedded-sqlite', { dir: opts.dir, workers: opts.workers, freePort });
      rig.proxy = new FaultProxy({ targetPort: rig.stack.brokerPort });
      await rig.proxy.start();
      await rig.startCloud();
    } catch (err) {
      // A PostgreSQL and a Mosquitto must not outlive a rig that never ran.
      await rig.stop().catch(() => undefined);
      throw err;
    }
    return rig;
  }

  /** The embedded cloud, or worker 1 (for what reads one cloud's log). */
  get cloud(): PartProcess {
    return this.workers[0]!;
  }

  /** The workers' names, in `workers` order: `cloud`, or w1 … wN. */
  get workerNames(): readonly string[] {
    return this.stack.workers;
  }

  /**
   * Each worker's log directory (its `cloud.log`) when there are several; empty on the embedded
   * stack, whose one cloud logs to `<dir>/cloud.log` beside the boxes' directories.
   */
  workerLogDirs(): Array<{ worker: string; dir: string }> {
    if (this.stack.kind === 'embedded-sqlite') return [];
    return this.stack.workers.map((worker, i) => ({ worker, dir: path.dirname(this.stack.logFile(i)) }));
  }

  private async startChannels(): Promise<void> {
    const two = this.opts.channelsPerWallet === 2;
    if (this.opts.wallets === 'real-formats') {
      this.walletSims = await startWalletSimulators(this.gateway, path.join(this.opts.dir, 'wallets'), { accounts: two ? TWO_ACCOUNTS_EACH : ONE_ACCOUNT_EACH });
      this.merchantWalletIds = this.walletSims.merchantFlags;
    } else if (two) {
      for (const name of ['primary', 'backup']) this.channelServers.set(name, await startGatewayServer({ gateway: this.gateway }));
    }
  }

  /** The cloud config's `channels`: the wallet simulators', or the two JSON gateways', or none (`--gateway-url` serves all). */
  private channelsConfig(): Record<string, unknown> {
    if (this.walletSims) return this.walletSims.channels;
    const cost = { primary: { bps: 20 }, backup: { bps: 38 } } as Record<string, { bps: number }>;
    return Object.fromEntries([...this.channelServers].map(([name, server]) => [name, { kind: 'http', url: server.url, wallets: ['wechat', 'alipay', 'unionpay'], cost: cost[name] }]));
  }

  /** Where each worker's log is now: pass to waitChannelTransition so it sees only later lines. */
  logMarks(): number[] {
    return this.workers.map((w) => w.mark());
  }

  /**
   * Until some worker logs `channel`'s breaker moving to `to` after `marks`. An event, not a poll:
   * an open breaker turns half-open by itself after its cool-down, so polling `channel list` from a
   * slow CLI can miss the whole open spell.
   */
  async waitChannelTransition(channel: string, to: string, marks: readonly number[], timeoutMs: number): Promise<void> {
    const isIt = (l: LogLine) => l.channel === channel && l.to === to;
    await Promise.any(this.workers.map((w, i) => w.waitForLog(isIt, timeoutMs, marks[i] ?? 0))).catch(() => {
      throw new Error(`no worker logged ${channel}'s breaker turning ${to} within ${timeoutMs} ms`);
    });
  }

  /** Each channel's breaker as the running cloud last wrote it (`scanbox-cloud channel list --json`). */
  async channelStates(): Promise<Record<string, string>> {
    const rows = await runPartJson<{ channel: string; health: { state: string } | null }[]>('cloud', ['channel', 'list', ...this.stack.storeArgs(this.configFile, true), '--json'], CLI_MS);
    return Object.fromEntries(rows.map((r) => [r.channel, r.health?.state ?? 'unknown']));
  }

  /** The channels an outage may hit: every wallet's primary (the backups take over). */
  primaryChannels(): string[] {
    if (this.walletSims) return [...this.walletSims.sims.keys()].filter((n) => !n.endsWith('-backup'));
    return this.channelServers.has('primary') ? ['primary'] : [];
  }

  /** The embedded stack's SQLite file. */
  get cloudDb(): string {
    return path.join(this.opts.dir, 'cloud.db');
  }

  private get configFile(): string {
    return path.join(this.opts.dir, 'cloud.json');
  }

  /** How a support command reaches the store: `--db` (embedded) or `--config` (PostgreSQL). */
  private get storeArgs(): string[] {
    return this.stack.storeArgs(this.configFile, false);
  }

  get gatewayUrl(): string {
    return this.gatewayServer.url;
  }

  /** (Re)start every worker on the same ports and store: boxes reach the broker through the proxy. */
  async startCloud(): Promise<void> {
    await this.writeCloudConfig();
    // Worker 1 alone first: on Mosquitto it sets up the cloud's broker role once (Mosquitto then
    // drops that user's connections), so the others do not start into that; then the rest together.
    await this.spawnWorker(0);
    const rest = this.stack.workers.slice(1).map((_, k) => k + 1);
    await Promise.all(rest.map((i) => this.spawnWorker(i, READY_MS * rest.length)));
  }

  /** One config file for every worker and support command; 0600, since on Mosquitto it holds the broker admin's password. */
  private async writeCloudConfig(): Promise<void> {
    const channels = Object.keys(this.channelsConfig()).length ? { channels: this.channelsConfig() } : {};
    const config = { publicMqttUrl: `mqtt://127.0.0.1:${this.proxy.port}`, ...channels, ...this.stack.config, ...this.opts.cloudConfig };
    await writeJson(this.configFile, config, 0o600);
  }

  /** `readyMs`: more when several start at once on a small machine. */
  private async spawnWorker(i: number, readyMs = READY_MS): Promise<void> {
    const proc = PartProcess.start('cloud', ['start', '--config', this.configFile, ...this.stack.startArgs(i), '--gateway-url', this.gatewayUrl, '--metrics-port', '0'], this.stack.logFile(i));
    this.workers[i] = proc;
    const ready = await proc.waitForMsg('ready', readyMs);
    this.httpUrls[i] = String(ready.httpUrl);
    if (i === 0) this.httpUrl = this.httpUrls[0]!;
  }

  /**
   * Power cut of the cloud: SIGKILL, nothing flushed. On several workers, one of the running ones
   * (picked by the seed); the others carry on. Returns the name of the one killed.
   */
  async killCloud(): Promise<string> {
    const running = this.workers.map((w, i) => ({ w, i })).filter(({ w }) => w.running);
    if (running.length === 0) throw new Error('no cloud process is running');
    const { i } = running.length === 1 ? running[0]! : this.killRandom.pick(running);
    await this.killWorker(i);
    return this.stack.workers[i]!;
  }

  /** Start every cloud process `killCloud()` or `killWorker()` took down, on the same ports and store. */
  async restartCloud(): Promise<void> {
    const down = this.workers.map((w, i) => ({ w, i })).filter(({ w }) => !w.running);
    if (down.length === 0) throw new Error('the cloud is still running');
    await this.writeCloudConfig();
    await Promise.all(down.map(({ i }) => this.spawnWorker(i, READY_MS * down.length)));
  }

  /** SIGKILL worker `i` (0-based, in `workerNames` order). */
  async killWorker(i: number): Promise<void> {
    await this.worker(i).kill();
  }

  /** Start worker `i` again after a kill, on the same ports and store. */
  async restartWorker(i: number): Promise<void> {
    if (this.worker(i).running) throw new Error(`${this.stack.workers[i]} is still running`);
    await this.writeCloudConfig();
    await this.spawnWorker(i);
  }

  private worker(i: number): PartProcess {
    const w = this.workers[i];
    if (!w) throw new Error(`no worker ${i}: the cloud runs ${this.workers.length} (0 … ${this.workers.length - 1})`);
    return w;
  }

  async createPairingCode(merchant: string, store: string): Promise<PairingCode> {
    await this.addMerchant(merchant);
    // Any running worker pairs: the code and the box land in the one store.
    const up = this.workers.findIndex((w) => w.running);
    const cloudUrl = this.httpUrls[up === -1 ? 0 : up]!;
    return runPartJson<PairingCode>('cloud', ['pair', 'create', '--merchant', merchant, '--store', store, ...this.storeArgs, '--cloud-url', cloudUrl, '--json'], CLI_MS);
  }

  /** The merchant, added once through the CLI as a field engineer would (boxes are added concurrently). */
  private addMerchant(merchant: string): Promise<void> {
    let added = this.merchants.get(merchant);
    if (!added) {
      const ids = Object.entries(this.merchantWalletIds).flatMap(([flag, value]) => [flag, value]);
      added = runPartJson<unknown>('cloud', ['merchant', 'add', merchant, ...ids, ...this.storeArgs, '--json'], CLI_MS).then(() => undefined);
      this.merchants.set(merchant, added);
    }
    return added;
  }

  /** A new box: its own pseudo-terminals, paired with a fresh code through POST /v1/pair, started. */
  async addBox(name: string, merchant = 'M-DEMO', store = 'S-1', boxOpts: BoxOptions = {}): Promise<Box> {
    const pairing = await this.createPairingCode(merchant, store);
    const box = await Box.create(this.opts, name, pairing, boxOpts);
    this.boxes.push(box);
    return box;
  }

  /** Every attempt as the cloud's store holds it (`scanbox-cloud attempts --json`). */
  cloudAttempts(): Promise<CloudAttemptRecord[]> {
    return runPartJson<CloudAttemptRecord[]>('cloud', ['attempts', ...this.storeArgs, '--json'], CLI_MS);
  }

  async snapshot(): Promise<Snapshot> {
    const [cloud, devices, cloudRefunds, deviceRefunds] = await Promise.all([
      this.cloudAttempts(),
      Promise.all(this.boxes.map((b) => b.attempts())),
      runPartJson<unknown>('cloud', ['refunds', ...this.storeArgs, '--json'], CLI_MS).then((rows) => z.array(CloudRefundRecord).parse(rows)),
      Promise.all(this.boxes.map((b) => b.refunds())),
    ]);
    return { ledger: [...this.gateway.ledger.entries()], cloud, devices, cloudRefunds, deviceRefunds };
  }

  /** The wallet simulators' addresses (real-formats mode). */
  walletUrls(): string[] {
    return [...(this.walletSims?.sims.values() ?? [])].map((sim) => sim.url);
  }

  /** A share of channel `channel`'s calls refused by its provider from now on (0: healed). */
  outage(channel: string, share: number): void {
    const sim = this.walletSims?.sims.get(channel);
    if (sim) return sim.faults.outage(share);
    const server = this.channelServers.get(channel);
    if (!server) throw new Error(`no simulated channel ${channel}`);
    server.outage(share);
  }

  /** Until the gateway's ledger shows the charge of `outTradeNo` undone (reversed or refunded). */
  async waitUndone(outTradeNo: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const undone = () => this.gateway.ledger.entries().some((e) => e.outTradeNo === outTradeNo && e.kind !== 'charge' && e.amount > 0) && this.gateway.net(outTradeNo) === 0;
    while (!undone()) {
      if (Date.now() > deadline) throw new Error(`${outTradeNo} was not undone within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Until every attempt is final on the cloud and on every box (bounded), then one snapshot. */
  async settle(timeoutMs: number): Promise<Snapshot> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const snap = await this.snapshot();
      const open = [...snap.cloud, ...snap.devices.flat()].filter((a) => !isFinal(a.state));
      const openRefunds = [...snap.cloudRefunds, ...snap.deviceRefunds.flat()].filter((r) => r.state === 'PENDING' || r.state === 'REQUESTED');
      if (open.length + openRefunds.length === 0 || Date.now() > deadline) return snap;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.boxes.map((b) => b.close()));
    await Promise.all(this.workers.map((w) => w.stop()));
    await this.proxy?.stop();
    await this.gatewayServer?.close();
    await this.walletSims?.close();
    await Promise.all([...this.channelServers.values()].map((s) => s.close()));
    this.gateway.stop();
    await this.stack?.stop();
  }
}

/** `posEcr`: leave the register's end of the ECR line free for a real POS (`box.ecrPath`); no VirtualEcr is attached. */
export interface BoxOptions {
  posEcr?: boolean;
}

export class Box {
  proc!: PartProcess;
  scanner!: VirtualScanner;
  deviceId = '';
  private ends: SerialEnd[] = [];
  private virtualEcr: VirtualEcr | undefined;

  private constructor(
    readonly host: BoxHost,
    readonly name: string,
    readonly dir: string,
    readonly scannerPty: SerialLine,
    readonly ecrPty: SerialLine,
  ) {}

  /** Pairs with `pairing.code` at `pairing.cloudUrl` (POST /v1/pair, through the device CLI): any cloud will do. */
  static async create(host: BoxHost, name: string, pairing: Pick<PairingCode, 'code' | 'cloudUrl'>, opts: BoxOptions = {}): Promise<Box> {
    const dir = path.join(host.dir, name);
    mkdirSync(dir, { recursive: true });
    const [scannerPty, ecrPty] = await Promise.all([
      createSerialLine(host.serial ?? 'pty', { dir, name: 'scanner' }),
      createSerialLine(host.serial ?? 'pty', { dir, name: 'ecr' }),
    ]);
    const box = new Box(host, name, dir, scannerPty, ecrPty);
    const paired = await runPartJson<{ deviceId: string }>('device', ['pair', '--code', pairing.code, '--cloud', pairing.cloudUrl, '--data', box.dataDir, '--hardware-id', `sim-${name}`, '--json'], CLI_MS);
    box.deviceId = paired.deviceId;
    const scannerEnd = await scannerPty.openEnd();
    box.ends = [scannerEnd];
    box.scanner = new VirtualScanner({ end: scannerEnd, terminator: 'CR' });
    if (!opts.posEcr) {
      const ecrEnd = await ecrPty.openEnd();
      box.ends.push(ecrEnd);
      box.virtualEcr = new VirtualEcr({ end: ecrEnd });
    }
    await box.start();
    return box;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  /** The simulated cash register on the ECR line; a box made with `posEcr` has none. */
  get ecr(): VirtualEcr {
    if (!this.virtualEcr) throw new Error(`${this.name}'s ECR line is left to a POS at ${this.ecrPath}`);
    return this.virtualEcr;
  }

  /** The register's end of the ECR line (a socat link to a /dev/pts device): where a POS connects. */
  get ecrPath(): string {
    return this.ecrPty.b;
  }

  /** Start (or restart after a kill) the agent process and wait until it is connected. */
  async start(): Promise<void> {
    await this.spawn();
    await this.waitOnline();
  }

  /** Power cut of the box: SIGKILL the agent, nothing flushed. Its serial lines stay. */
  async kill(): Promise<void> {
    await this.proc.kill();
  }

  /**
   * Start the agent again after `kill()`; waits for `ready` and, unless `waitOnline` is false (the
   * cloud may be down right now), for the cloud link.
   */
  async restart(opts: { waitOnline?: boolean } = {}): Promise<void> {
    if (this.proc.running) throw new Error(`${this.name} is still running`);
    await this.spawn();
    if (opts.waitOnline ?? true) await this.waitOnline();
  }

  private async spawn(): Promise<void> {
    const configFile = path.join(this.dir, 'device.json');
    await writeJson(configFile, this.host.deviceConfig ?? {});
    const extra = this.host.deviceEnv?.(this.name);
    this.proc = PartProcess.start(
      'device',
      ['start', '--scanner', this.scannerPty.a, '--ecr', this.ecrPty.a, '--data', this.dataDir, '--config', configFile, ...(this.host.serial === 'mock' ? ['--serial', 'mock'] : [])],
      path.join(this.dir, 'device.log'),
      extra ? { ...process.env, ...extra } : process.env,
    );
    await this.proc.waitForMsg('ready', 20_000);
  }

  waitOnline(timeoutMs = 20_000, since = 0): Promise<unknown> {
    return this.proc.waitForMsg('cloud link up; querying every attempt in flight', timeoutMs, since);
  }

  /**
   * Screens the box showed for sale `ref`: every screen tagged with it, and untagged ones (an
   * offline notice) logged between `from` and `to`. By tag, because a sale's last screen may be
   * logged after the next sale has begun.
   */
  screens(ref: string, from: number, to?: number): string[] {
    return this.proc.lines
      .map((l, i) => ({ l, i }))
      .filter(({ l, i }) => l.msg === 'display' && (l.saleRef === ref || (l.saleRef === undefined && i >= from && (to === undefined || i < to))))
      .map(({ l }) => String(l.screen));
  }

  attempts(): Promise<DeviceAttemptRecord[]> {
    return runPartJson<DeviceAttemptRecord[]>('device', ['attempts', '--data', this.dataDir, '--json'], CLI_MS);
  }

  refunds(): Promise<DeviceRefundRecord[]> {
    return runPartJson<DeviceRefundRecord[]>('device', ['refunds', '--data', this.dataDir, '--json'], CLI_MS);
  }

  async close(): Promise<void> {
    await this.proc?.stop();
    await Promise.all(this.ends.map((e) => e.close()));
    await Promise.all([this.scannerPty.close(), this.ecrPty.close()]);
  }
}

/** A loopback port free at the moment of asking (stack/free-port.ts). */
export const freePort = freeLoopbackPort;

async function writeJson(file: string, value: unknown, mode?: number): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`, mode === undefined ? {} : { mode });
}

