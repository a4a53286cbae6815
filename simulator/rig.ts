import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { z } from 'zod';
import { CloudRefundRecord, isFinal, type CloudAttemptRecord, type DeviceAttemptRecord, type DeviceRefundRecord } from '../protocol/index.js';
import { FaultProxy } from './chaos/fault-proxy.js';
import { ScriptedGateway } from './gateway/scripted-gateway.js';
import { startGatewayServer, type GatewayServer } from './gateway/gateway-server.js';
import { ONE_ACCOUNT_EACH, startWalletSimulators, TWO_ACCOUNTS_EACH, type WalletSimulators } from './gateway/wallet-simulators.js';
import { PartProcess, runPartJson } from './processes.js';
import { createSerialLine, type SerialLine, type SerialMode } from './devices/serial-line.js';
import type { SerialEnd } from './devices/serial-end.js';
import type { ScenarioMixInput } from './gateway/scenario.js';
import { VirtualEcr } from './devices/virtual-ecr.js';
import { VirtualScanner } from './devices/virtual-scanner.js';
import type { LedgerEntry } from './gateway/ledger.js';

/**
 * Everything a shop and its cloud consist of, on one machine: the scripted gateway (in this
 * process, over HTTP), the cloud as its own process, a fault proxy between boxes and broker, and
 * boxes as their own processes on pseudo-terminal scanners and cash registers, each paired through
 * the real pairing API. The demo, the fleet generator and the chaos runner are all stories on it.
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

export class Rig {
  readonly boxes: Box[] = [];
  cloud!: PartProcess;
  httpUrl = '';
  private mqttPort = 0;
  private httpPort = 0;
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
  }

  static async start(opts: RigOptions): Promise<Rig> {
    mkdirSync(opts.dir, { recursive: true });
    const rig = new Rig(opts);
    rig.gatewayServer = await startGatewayServer({ gateway: rig.gateway });
    await rig.startChannels();
    [rig.mqttPort, rig.httpPort] = await Promise.all([freePort(), freePort()]);
    rig.proxy = new FaultProxy({ targetPort: rig.mqttPort });
    await rig.proxy.start();
    await rig.startCloud();
    return rig;
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

  /** Each channel's breaker as the running cloud last wrote it (`scanbox-cloud channel list --json`). */
  async channelStates(): Promise<Record<string, string>> {
    const rows = await runPartJson<{ channel: string; health: { state: string } | null }[]>('cloud', ['channel', 'list', '--db', this.cloudDb, '--config', path.join(this.opts.dir, 'cloud.json'), '--json']);
    return Object.fromEntries(rows.map((r) => [r.channel, r.health?.state ?? 'unknown']));
  }

  /** The channels an outage may hit: every wallet's primary (the backups take over). */
  primaryChannels(): string[] {
    if (this.walletSims) return [...this.walletSims.sims.keys()].filter((n) => !n.endsWith('-backup'));
    return this.channelServers.has('primary') ? ['primary'] : [];
  }

  get cloudDb(): string {
    return path.join(this.opts.dir, 'cloud.db');
  }

  get gatewayUrl(): string {
    return this.gatewayServer.url;
  }

  /** (Re)start the cloud on the same ports and store: boxes reach it through the proxy. */
  async startCloud(): Promise<void> {
    const configFile = path.join(this.opts.dir, 'cloud.json');
    const channels = Object.keys(this.channelsConfig()).length ? { channels: this.channelsConfig() } : {};
    const config = { publicMqttUrl: `mqtt://127.0.0.1:${this.proxy.port}`, ...channels, ...this.opts.cloudConfig };
    await writeJson(configFile, config);
    this.cloud = PartProcess.start('cloud', [
      'start',
      '--config', configFile,
      '--db', this.cloudDb,
      '--mqtt-port', String(this.mqttPort),
      '--http-port', String(this.httpPort),
      '--gateway-url', this.gatewayUrl,
      '--metrics-port', '0',
    ], path.join(this.opts.dir, 'cloud.log'));
    const ready = await this.cloud.waitForMsg('ready', 20_000);
    this.httpUrl = String(ready.httpUrl);
  }

  /** Power cut of the cloud: SIGKILL, nothing flushed. */
  async killCloud(): Promise<void> {
    await this.cloud.kill();
  }

  /** Start the cloud again after `killCloud()`, on the same ports and store. */
  async restartCloud(): Promise<void> {
    if (this.cloud.running) throw new Error('the cloud is still running');
    await this.startCloud();
  }

  async createPairingCode(merchant: string, store: string): Promise<PairingCode> {
    await this.addMerchant(merchant);
    return runPartJson<PairingCode>('cloud', ['pair', 'create', '--merchant', merchant, '--store', store, '--db', this.cloudDb, '--cloud-url', this.httpUrl, '--json']);
  }

  /** The merchant, added once through the CLI as a field engineer would (boxes are added concurrently). */
  private addMerchant(merchant: string): Promise<void> {
    let added = this.merchants.get(merchant);
    if (!added) {
      const ids = Object.entries(this.merchantWalletIds).flatMap(([flag, value]) => [flag, value]);
      added = runPartJson<unknown>('cloud', ['merchant', 'add', merchant, ...ids, '--db', this.cloudDb, '--json']).then(() => undefined);
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

  async snapshot(): Promise<Snapshot> {
    const [cloud, devices, cloudRefunds, deviceRefunds] = await Promise.all([
      runPartJson<CloudAttemptRecord[]>('cloud', ['attempts', '--db', this.cloudDb, '--json']),
      Promise.all(this.boxes.map((b) => b.attempts())),
      runPartJson<unknown>('cloud', ['refunds', '--db', this.cloudDb, '--json']).then((rows) => z.array(CloudRefundRecord).parse(rows)),
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
    await this.cloud?.stop();
    await this.proxy?.stop();
    await this.gatewayServer?.close();
    await this.walletSims?.close();
    await Promise.all([...this.channelServers.values()].map((s) => s.close()));
    this.gateway.stop();
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
    const paired = await runPartJson<{ deviceId: string }>('device', ['pair', '--code', pairing.code, '--cloud', pairing.cloudUrl, '--data', box.dataDir, '--hardware-id', `sim-${name}`, '--json']);
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
    return runPartJson<DeviceAttemptRecord[]>('device', ['attempts', '--data', this.dataDir, '--json']);
  }

  refunds(): Promise<DeviceRefundRecord[]> {
    return runPartJson<DeviceRefundRecord[]>('device', ['refunds', '--data', this.dataDir, '--json']);
  }

  async close(): Promise<void> {
    await this.proc?.stop();
    await Promise.all(this.ends.map((e) => e.close()));
    await Promise.all([this.scannerPty.close(), this.ecrPty.close()]);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

