import { ChannelConfig } from '../cloud/gateway/channel-config.js';
import diagnostics from 'node:diagnostics_channel';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { alipayGatewayFromConfig } from '../cloud/gateway/alipay/adapter.js';
import type { ChannelGateway, PayRequest } from '../cloud/gateway/gateway.js';
import { wechatGatewayFromConfig } from '../cloud/gateway/wechat/adapter.js';
import type { Merchant } from '../cloud/merchants/merchant.js';
import { systemClock } from '../protocol/clock.js';
import type { CloudAttemptRecord } from '../protocol/index.js';
import { validCode } from '../simulator/devices/codes.js';
import { netCharged, type LedgerEntry } from '../simulator/gateway/ledger.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../simulator/gateway/scripted-gateway.js';
import { startWalletSimulators } from '../simulator/gateway/wallet-simulators.js';
import { createRandom } from '../simulator/random.js';
import { reconcile } from '../simulator/reconcile/reconcile.js';
import { median } from '../simulator/stats.js';
import { seedDevicesAt, type SeededDevices } from './cloud-kit.js';
import { cpuShare, histogram, nextMessage, procSample, scratch, sleep, spawnHelper, stopHelper, summary } from './harness.js';
import { hostPort } from './lite-mqtt.js';
import { PayingBox } from './pay-client.js';
import type { BenchResult } from './result.js';

/**
 * 6. wallets — what the WeChat Pay and Alipay adapters cost, in two parts, each side by side in one run.
 *
 * A. Pay round trip through each adapter against its simulator (`startWalletSimulators`: HTTPS, the
 *    wallets' signed wire formats, keys made fresh; both in front of one scripted wallet where every
 *    code succeeds at once, INSTANT). Everything in this process: per wallet, two adapter instances
 *    built from the same channel config, keep-alive on and off, one pay at a time (a fresh
 *    outTradeNo, a valid code of that wallet). Blocks of `block` pays go round the four lanes
 *    (wallet × keep-alive): `warmup` pays per lane unmeasured, then, the order rotating every round,
 *    until each lane has `calls`. Each call's wall time; the TLS connections the simulator accepted
 *    during each lane's calls, and of those how many the client resumed a cached TLS session on.
 * B. The cloud's payments/s through the WeChat adapter: two cloud processes (bench/children/cloud-proc.ts),
 *    one with its `wechat` channel on the adapter → WeChat simulator (opt-in `wallets`: the simulator
 *    runs INSIDE that cloud process on the same instant scripted gateway, so it shares the cloud's
 *    core and its CPU is in the cloud's figure), one on the plain in-process scripted gateway (what
 *    the throughput benchmark measures). `boxes` LiteClient boxes per cloud in this process, paying
 *    WeChat codes as fast as results come back; phases alternate adapter / scripted, `rounds` times,
 *    each `leadInS` uncounted then `phaseS` counted, after a warm-up of each; medians compared. The
 *    TLS connections the cloud's adapter opened, per phase. Both clouds reconcile.
 */
export interface WalletsParams {
  /** Measured pays per adapter × keep-alive. */
  calls: number;
  /** Pays in a row on one lane before the next lane's turn. */
  block: number;
  /** Unmeasured pays per adapter instance first (the keep-alive lane opens its connection here). */
  warmup: number;
  boxes: number;
  phaseS: number;
  /** Uncounted seconds at the start of each measured phase (the idle cloud's pool reconnects in it). */
  leadInS: number;
  rounds: number;
  warmupS: number;
  /** The clouds' pino level; their stdout goes to files, as under a process supervisor. */
  logLevel: string;
}

export const WALLETS_DEFAULTS: WalletsParams = { calls: 1000, block: 20, warmup: 200, boxes: 100, phaseS: 3, leadInS: 1, rounds: 8, warmupS: 2, logLevel: 'info' };
export const WALLETS_SMOKE: WalletsParams = { calls: 6, block: 3, warmup: 2, boxes: 2, phaseS: 0.3, leadInS: 0.05, rounds: 1, warmupS: 0.1, logLevel: 'info' };

const MERCHANT = 'M-BENCH';
type Wallet = 'wechat' | 'alipay';
type Mode = 'on' | 'off';

interface Lane {
  wallet: Wallet;
  mode: Mode;
  adapter: ChannelGateway;
  ms: number[];
  calls: number;
  failures: string[];
  /** TLS connections the simulator accepted while this lane's calls ran (warm-up included). */
  connections: number;
  /** Of those, the client resumed a cached TLS session on (undici's `undici:client:connected`). */
  resumed: number;
  /** What each successful pay charged: the ledger must say the same. */
  amounts: Map<string, number>;
}

export async function wallets(p: WalletsParams): Promise<BenchResult> {
  // B's two clouds boot while A makes its keys and starts its simulators; A's calls wait for both to be
  // ready (and idle).
  const clouds = await startClouds(p);
  let adapters: Awaited<ReturnType<typeof adapterRoundTrips>>;
  let cloud: Awaited<ReturnType<typeof cloudThroughput>>;
  try {
    adapters = await adapterRoundTrips(p, clouds.ready);
    cloud = await cloudThroughput(p, clouds);
  } finally {
    await clouds.close();
  }
  const reconciled = adapters.reconciled && cloud.reconciled;
  const lane = (w: Wallet, m: Mode) => adapters.lanes.find((l) => l.wallet === w && l.mode === m)!;
  const lat = (w: Wallet, m: Mode) => summary(lane(w, m).ms);
  const figures: BenchResult['figures'] = {};
  for (const w of ['wechat', 'alipay'] as const) {
    const on = lat(w, 'on');
    const off = lat(w, 'off');
    figures[`${w} keep-alive on: pay p50 ms`] = on.p50;
    figures[`${w} keep-alive on: pay p99 ms`] = on.p99;
    figures[`${w} keep-alive off: pay p50 ms`] = off.p50;
    figures[`${w} keep-alive off: pay p99 ms`] = off.p99;
    figures[`${w} off / on (p50)`] = round3(off.p50 / on.p50);
    figures[`${w} TLS connections on / off`] = `${lane(w, 'on').connections} / ${lane(w, 'off').connections} (${lane(w, 'on').calls} calls each; off: ${lane(w, 'off').resumed} resumed sessions)`;
  }
  Object.assign(figures, {
    'cloud payments/s, WeChat adapter (median)': Math.round(cloud.adapterRate),
    'cloud payments/s, scripted gateway (median)': Math.round(cloud.scriptedRate),
    'adapter / scripted': round3(cloud.adapterRate / cloud.scriptedRate),
    'adapter / scripted, median of rounds': round3(median(cloud.adapterRates.map((a, i) => a / cloud.scriptedRates[i]!))),
    'pay→result p50 ms under load, adapter': cloud.adapterLat.p50,
    'pay→result p50 ms under load, scripted': cloud.scriptedLat.p50,
    'cloud CPU % of a core, adapter (incl. simulator)': Math.round(median(cloud.adapterCpu)),
    'cloud CPU % of a core, scripted': Math.round(median(cloud.scriptedCpu)),
    "cloud's WeChat TLS connections, most in a phase": Math.max(...cloud.openedByPhase.map((x) => x.leadIn + x.measured)),
    'payments reconciled': adapters.paid + cloud.paid,
    reconciled,
  });
  const why = [...adapters.problems, ...cloud.problems];
  return {
    name: 'wallets',
    params: {
      ...p,
      adapters: 'A: both adapters and both simulators in the bench process (loopback HTTPS, no network RTT); keep-alive on/off lanes interleaved in blocks, order rotating',
      cloudProcesses: 'B: two cloud processes (bench/children/cloud-proc.ts), boxes in the bench process; phases alternate',
      adapterCloud: "wechat channel = WeChat adapter (keep-alive on) → WeChat simulator running INSIDE the cloud process on the same instant scripted gateway: it shares the cloud's core and event loop",
      scriptedCloud: 'the in-process scripted gateway, success only, INSTANT (as bench/throughput.ts)',
      wallet: 'EVERY_CODE_SUCCEEDS, INSTANT',
    },
    figures,
    targets: [{ what: 'reconciliation', target: 'ok', actual: reconciled ? 'ok' : why.slice(0, 3).join('; ') || 'not ok', met: reconciled }],
    raw: {
      adapterPayMs: Object.fromEntries(adapters.lanes.map((l) => [`${l.wallet}-${l.mode}`, { ...summary(l.ms), histogram: histogram(l.ms) }])),
      blockMedianMs: adapters.blockMedians,
      connections: Object.fromEntries(adapters.lanes.map((l) => [`${l.wallet}-${l.mode}`, { calls: l.calls, accepted: l.connections, resumedSessions: l.resumed }])),
      adapterFailures: Object.fromEntries(adapters.lanes.map((l) => [`${l.wallet}-${l.mode}`, l.failures.slice(0, 5)])),
      cloud: {
        adapterRates: cloud.adapterRates.map(Math.round),
        scriptedRates: cloud.scriptedRates.map(Math.round),
        adapterCpu: cloud.adapterCpu.map(Math.round),
        scriptedCpu: cloud.scriptedCpu.map(Math.round),
        loadCpu: cloud.loadCpu.map(Math.round),
        payLatencyMs: { adapter: cloud.adapterLat, scripted: cloud.scriptedLat },
        roundRatios: cloud.adapterRates.map((a, i) => round3(a / cloud.scriptedRates[i]!)),
        wechatConnectionsOpenedByPhase: cloud.openedByPhase,
        wechatConnectionsAll: cloud.adapterConnections,
        reconcile: cloud.reconcile,
      },
      problems: why.slice(0, 20),
    },
  };
}

// ── A: the adapters against their simulators ──────────────────────────────────────────────────

async function adapterRoundTrips(p: WalletsParams, before: Promise<unknown>) {
  const tmp = scratch('wallets');
  const gateway = new ScriptedGateway({ seed: 'bench-wallets', mix: EVERY_CODE_SUCCEEDS });
  const sims = await startWalletSimulators(gateway, path.join(tmp.dir, 'wallets'));
  const merchant: Merchant = {
    merchantId: MERCHANT,
    name: null,
    wechatSubMchId: sims.merchantFlags['--wechat-sub-mch-id'] ?? null,
    alipayAppAuthToken: sims.merchantFlags['--alipay-app-auth-token'] ?? null,
    createdAt: 0,
    updatedAt: 0,
  };
  const merchants = async (id: string) => (id === MERCHANT ? merchant : undefined);
  const build = (wallet: Wallet, mode: Mode): ChannelGateway => {
    const c = sims.channels[wallet] && ChannelConfig.parse(sims.channels[wallet]);
    if (c?.kind === 'wechat') return wechatGatewayFromConfig(wallet, { ...c, keepAlive: mode === 'on' }, { merchants });
    if (c?.kind === 'alipay') return alipayGatewayFromConfig(wallet, { ...c, keepAlive: mode === 'on' }, { merchants, clock: systemClock });
    throw new Error(`no ${wallet} channel from startWalletSimulators`);
  };
  const lanes: Lane[] = [];
  for (const wallet of ['wechat', 'alipay'] as const) {
    for (const mode of ['on', 'off'] as const) lanes.push({ wallet, mode, adapter: build(wallet, mode), ms: [], calls: 0, failures: [], connections: 0, resumed: 0, amounts: new Map() });
  }
  // One pay at a time, so a connection made now is the current lane's.
  let current: Lane | undefined;
  const onConnected = (m: unknown) => {
    const socket = (m as { socket?: Partial<TLSSocket> }).socket;
    if (current && socket?.isSessionReused?.()) current.resumed++;
  };
  diagnostics.subscribe('undici:client:connected', onConnected);
  const random = createRandom('bench-wallets');
  let seq = 0;
  const blockMedians: Record<string, number[]> = Object.fromEntries(lanes.map((l) => [`${l.wallet}-${l.mode}`, []]));

  const pay = async (lane: Lane, record: boolean) => {
    const sim = sims.sims.get(lane.wallet)!;
    const req: PayRequest = {
      outTradeNo: `wb${lane.wallet === 'wechat' ? 'wx' : 'ali'}${lane.mode}-${++seq}`,
      amount: 100 + random.int(0, 9_900),
      currency: 'CNY',
      code: validCode(random, lane.wallet),
      wallet: lane.wallet,
      merchant: MERCHANT,
      channel: lane.wallet,
    };
    current = lane;
    const before = sim.connections();
    const t0 = performance.now();
    const outcome = await lane.adapter.pay(req, { signal: AbortSignal.timeout(10_000) });
    const ms = performance.now() - t0;
    lane.connections += sim.connections() - before;
    lane.calls++;
    current = undefined;
    if (outcome.kind === 'success') lane.amounts.set(req.outTradeNo, req.amount);
    else lane.failures.push(`${req.outTradeNo}: ${JSON.stringify(outcome).slice(0, 200)}`);
    if (record) lane.ms.push(ms);
    return ms;
  };

  try {
    // Nothing boots next to the adapters' calls; and no pause between warm-up and measured calls
    // (an idle keep-alive connection is dropped after 3–4 s).
    await before;
    // The warm-up goes round the lanes in blocks too: a lane left idle for seconds would lose its connection.
    for (let done = 0; done < p.warmup; done += p.block) {
      for (const lane of lanes) for (let i = 0; i < Math.min(p.block, p.warmup - done); i++) await pay(lane, false);
    }
    const blocks = Math.ceil(p.calls / p.block);
    for (let b = 0; b < blocks; b++) {
      const n = Math.min(p.block, p.calls - b * p.block);
      // Rotate the order every round: wechat on/off, alipay on/off, then shifted by one lane.
      const order = lanes.map((_, i) => lanes[(i + b) % lanes.length]!);
      for (const lane of order) {
        const ms: number[] = [];
        for (let i = 0; i < n; i++) ms.push(await pay(lane, true));
        blockMedians[`${lane.wallet}-${lane.mode}`]!.push(round3(median(ms)));
      }
    }
    // The oracle is the wallet's ledger: each successful pay charged once, its amount.
    const charged = netCharged(gateway.ledger.entries());
    const problems: string[] = [];
    let paid = 0;
    for (const lane of lanes) {
      problems.push(...lane.failures);
      for (const [otn, amount] of lane.amounts) {
        paid++;
        if (charged.get(otn) !== amount) problems.push(`${otn}: adapter said success for ${amount}, ledger has ${charged.get(otn) ?? 0}`);
      }
    }
    if (charged.size !== paid) problems.push(`ledger has ${charged.size} charged orders, adapters reported ${paid} successes`);
    return { lanes, blockMedians, paid, problems, reconciled: problems.length === 0 };
  } finally {
    diagnostics.unsubscribe('undici:client:connected', onConnected);
    for (const lane of lanes) await lane.adapter.close?.();
    await sims.close();
    gateway.stop();
    tmp.remove();
  }
}

// ── B: the cloud's payments/s through the WeChat adapter vs the scripted gateway ──────────────

type Snapshot = { type: 'snapshot'; ledger: LedgerEntry[]; cloud: CloudAttemptRecord[] };

const SIDES = ['adapter', 'scripted'] as const;
type Side = (typeof SIDES)[number];
type Ready = { type: 'ready'; mqttUrl: string; pid: number; wallets?: string[] };
type Clouds = Awaited<ReturnType<typeof startClouds>>;

/** Both clouds seeded with `boxes` devices each and spawned; `ready` resolves once both listen. */
async function startClouds(p: WalletsParams) {
  const tmp = scratch('wallets-cloud');
  const dbOf = (s: Side) => path.join(tmp.dir, s, 'cloud.db');
  for (const s of SIDES) mkdirSync(path.dirname(dbOf(s)), { recursive: true });
  let seeded: Record<Side, SeededDevices>;
  try {
    seeded = { adapter: await seedDevicesAt(dbOf('adapter'), p.boxes), scripted: await seedDevicesAt(dbOf('scripted'), p.boxes) };
  } catch (err) {
    tmp.remove();
    throw err;
  }
  const spawnCloud = (s: Side) =>
    spawnHelper('children/cloud-proc.ts', [JSON.stringify({ dbPath: dbOf(s), config: { logLevel: p.logLevel }, ...(s === 'adapter' ? { wallets: { channels: ['wechat'], merchant: MERCHANT } } : {}) })], {
      stdoutFile: path.join(tmp.dir, s, 'cloud.log'),
    });
  const procs = { adapter: spawnCloud('adapter'), scripted: spawnCloud('scripted') };
  // Both listeners now: a `ready` that came before anyone listened would be lost.
  const ready = Promise.all([nextMessage<Ready>(procs.adapter, 'ready', 60_000), nextMessage<Ready>(procs.scripted, 'ready', 60_000)]).then(([adapter, scripted]) => ({ adapter, scripted }));
  ready.catch(() => undefined); // awaited later (by A before its measured calls, by B); a failure surfaces there
  return {
    seeded,
    procs,
    ready,
    close: async () => {
      await Promise.all(SIDES.map((s) => stopHelper(procs[s])));
      tmp.remove();
    },
  };
}

async function cloudThroughput(p: WalletsParams, clouds: Clouds) {
  const { procs, seeded } = clouds;
  const sides = SIDES;
  const boxes: Record<Side, PayingBox[]> = { adapter: [], scripted: [] };
  try {
    const ready = await clouds.ready;
    if (!ready.adapter.wallets?.includes('wechat')) throw new Error('the adapter cloud did not start with its WeChat channel on the simulator');
    for (const s of sides) {
      const c = hostPort(ready[s].mqttUrl);
      for (const id of seeded[s].ids) boxes[s].push(new PayingBox(id, seeded[s].secret, c.host, c.port));
      await Promise.all(boxes[s].map((b) => b.connect()));
    }

    const rates: Record<Side, number[]> = { adapter: [], scripted: [] };
    const cpu: Record<Side, number[]> = { adapter: [], scripted: [] };
    const lat: Record<Side, number[]> = { adapter: [], scripted: [] };
    const loadCpu: number[] = [];
    /** TLS connections the cloud's WeChat adapter opened in each adapter phase: in its lead-in, and while measured. */
    const openedByPhase: Array<{ phase: string; leadIn: number; measured: number }> = [];
    const wechatConnections = async () => {
      procs.adapter.send({ type: 'walletStats' });
      return (await nextMessage<{ type: 'walletStats'; connections: { wechat: number; alipay: number } }>(procs.adapter, 'walletStats', 10_000)).connections.wechat;
    };

    /**
     * The boxes of one cloud pay for `leadInS` (not counted), then for `seconds` (counted when
     * `record`). The lead-in: the other cloud's phase left this one idle for 5–10 s, longer than
     * the adapter's pool keeps an idle connection (undici: the server's keep-alive timeout minus
     * 2 s, else 4 s), so its first payments reopen the connections; the figure is the steady state.
     */
    let adapterPhases = 0;
    const phase = async (s: Side, seconds: number, record: boolean, leadInS: number) => {
      const c0 = s === 'adapter' ? await wechatConnections() : 0;
      let running = true;
      let counting = false;
      let count = 0;
      const loops = boxes[s].map(async (b) => {
        while (running) {
          const a = performance.now();
          const whole = counting;
          await b.pay();
          if (!running) break;
          if (!counting) continue;
          count++; // every payment that completes in the counted time, as bench/throughput.ts counts
          if (record && whole) lat[s].push(performance.now() - a);
        }
      });
      await sleep(leadInS * 1000);
      const c1 = s === 'adapter' ? await wechatConnections() : 0;
      counting = true;
      const s0 = procSample(ready[s].pid);
      const u0 = process.cpuUsage();
      const t0 = performance.now();
      await sleep(seconds * 1000);
      running = false;
      const elapsed = (performance.now() - t0) / 1000;
      const s1 = procSample(ready[s].pid);
      const u = process.cpuUsage(u0);
      await Promise.all(loops);
      if (s === 'adapter') {
        const c2 = await wechatConnections();
        openedByPhase.push({ phase: record ? `round ${++adapterPhases}` : 'warm-up', leadIn: c1 - c0, measured: c2 - c1 });
      }
      if (record) {
        rates[s].push(count / elapsed);
        cpu[s].push(cpuShare(s0, s1));
        loadCpu.push((u.user + u.system) / 10 / (elapsed * 1000));
      }
    };

    await phase('adapter', p.warmupS, false, 0);
    await phase('scripted', p.warmupS, false, 0);
    for (let r = 0; r < p.rounds; r++) {
      // Alternate which goes first, so drift (a warming cache, a neighbour) does not favour one side.
      const order: Side[] = r % 2 === 0 ? ['adapter', 'scripted'] : ['scripted', 'adapter'];
      for (const s of order) await phase(s, p.phaseS, true, p.leadInS);
    }

    await sleep(300); // last acks land
    const adapterConnections = await wechatConnections();
    const problems: string[] = [];
    const reconciles: Record<string, unknown> = {};
    let paid = 0;
    for (const s of sides) {
      procs[s].send({ type: 'snapshot' });
      const snap = await nextMessage<Snapshot>(procs[s], 'snapshot', 60_000);
      const devices = boxes[s].map((b) => b.seen);
      const report = reconcile({ ledger: snap.ledger, cloud: snap.cloud, devices });
      const seen = devices.reduce((n, d) => n + d.filter((x) => x.state === 'SUCCESS').length, 0);
      const unexpected = boxes[s].reduce((n, b) => n + b.unexpected, 0);
      const allSuccess = snap.cloud.every((a) => a.state === 'SUCCESS') && snap.cloud.length === seen && unexpected === 0;
      if (!report.ok) problems.push(`${s} cloud: ${report.mismatches.length} reconciliation mismatches`);
      if (!allSuccess) problems.push(`${s} cloud: ${snap.cloud.length} attempts, ${snap.cloud.filter((a) => a.state !== 'SUCCESS').length} not SUCCESS, ${seen} successes seen, ${unexpected} unexpected results`);
      paid += snap.cloud.length;
      reconciles[s] = { ok: report.ok, mismatches: report.mismatches.slice(0, 10), totals: report.totals, unexpectedResults: unexpected, attempts: snap.cloud.length };
    }
    if (adapterConnections === 0) problems.push('the adapter cloud never reached the WeChat simulator');
    return {
      adapterRate: median(rates.adapter),
      scriptedRate: median(rates.scripted),
      adapterRates: rates.adapter,
      scriptedRates: rates.scripted,
      adapterCpu: cpu.adapter,
      scriptedCpu: cpu.scripted,
      loadCpu,
      adapterLat: summary(lat.adapter),
      scriptedLat: summary(lat.scripted),
      adapterConnections,
      openedByPhase,
      reconcile: reconciles,
      paid,
      problems,
      reconciled: problems.length === 0,
    };
  } finally {
    await Promise.all(sides.flatMap((s) => boxes[s].map((b) => b.client.end().catch(() => undefined))));
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
