import path from 'node:path';
import { ensureMerchant } from '../../cloud/merchants/merchant.js';
import { systemClock } from '../../protocol/clock.js';
import { createPairingCode, startCloud } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { pairingQrText } from '../../protocol/index.js';
import { startWalletSimulators, type WalletSimulators } from '../../simulator/gateway/wallet-simulators.js';
import { cloudRecords, instantScriptedGateway } from '../cloud-kit.js';
import { tell, type IpcMessage } from '../harness.js';

/**
 * The cloud as its own process for the latency, throughput, fleet and wallets benchmarks, so the load
 * generator and the cloud each get a core of the two: `startCloud` with the scripted gateway (only
 * successful customers, no latency, a ledger for reconciliation) in-process, on free ports. Logs
 * (pino, stdout) go wherever the parent points stdout (the benchmarks: a file in the scratch dir).
 * IPC: `ready` once listening; `pair` {merchant?, store?} → `pairingCode` {code, expiresAt,
 * cloudUrl, qrText} (what `scanbox-cloud pair create --json` prints, so a real box can pair through
 * POST /v1/pair); `snapshot` → ledger and attempt records; `commits` → group-commit figures and
 * the calls so far per store method (with `countStoreCalls`);
 * `liveStats` → what the dashboards' live pushes cost its event loop so far (pushes, ms, bytes);
 * `stop` → close (queued writes commit) and exit; `drain` → the same, answering `drained` {ledger}
 * first: a worker leaving a multi-worker run, whose gateway's ledger is the oracle of what it charged.
 *
 * As one worker of several (the scale-out benchmarks): `config` names the PostgreSQL `store`, the
 * external `broker`, the `workerId` and the shared `secretKeyFile`, exactly what `scanbox-cloud start
 * --store … --broker … --worker-id …` passes to `startCloud`; `gatewaySeed` tells the workers' scripted
 * gateways apart.
 *
 * Opt-in, `wallets` {channels, merchant?} (the wallets benchmark; nothing changes without it): the
 * WeChat Pay / Alipay simulators (`startWalletSimulators`: HTTPS, signed wire formats, keys made
 * fresh into a directory next to the database) start in THIS process in front of the same instant
 * scripted gateway (one ledger), and the cloud's channels named in `channels` are the real adapters
 * pointed at them; a wallet not named still goes to the in-process scripted gateway. The simulators
 * share the cloud's event loop and core. `merchant` (default M-BENCH) gets the simulators' wallet
 * ids (added if missing). `ready` then also carries `wallets` (the channel names); `walletStats` →
 * `walletStats` {connections: {wechat, alipay}}: TLS connections each simulator accepted so far.
 *
 *   node --import tsx bench/children/cloud-proc.ts '{"dbPath":"…","mqttPort":0,"config":{…}}'
 *   node --import tsx bench/children/cloud-proc.ts '{"dbPath":"…","wallets":{"channels":["wechat"]}}'
 */
type WalletChannel = 'wechat' | 'alipay';
const args = JSON.parse(process.argv[2] ?? '{}') as { dbPath: string; mqttPort?: number; gatewaySeed?: string; countStoreCalls?: boolean; config?: Record<string, unknown>; wallets?: { channels: WalletChannel[]; merchant?: string } };
const gateway = instantScriptedGateway(args.gatewaySeed);
const logger = createLogger(String(args.config?.logLevel ?? 'warn'));
let sims: WalletSimulators | undefined;
let walletConfig: Record<string, unknown> = {};
if (args.wallets) {
  sims = await startWalletSimulators(gateway, path.join(path.dirname(path.resolve(args.dbPath)), 'wallet-simulators'));
  const s = sims;
  walletConfig = { channels: Object.fromEntries(args.wallets.channels.map((c) => [c, s.channels[c]])) };
}
const cloud = await startCloud({ gateway, dbPath: args.dbPath, mqttPort: args.mqttPort ?? 0, httpPort: 0, metricsPort: 0, config: { logLevel: 'warn', ...args.config, ...walletConfig }, logger });
if (args.wallets && sims) {
  const merchant = args.wallets.merchant ?? 'M-BENCH';
  const ids = { wechatSubMchId: sims.merchantFlags['--wechat-sub-mch-id'], alipayAppAuthToken: sims.merchantFlags['--alipay-app-auth-token'] };
  if (await cloud.store.getMerchant(merchant)) await cloud.store.updateMerchant(merchant, ids, Date.now());
  else await cloud.store.addMerchant(merchant, ids, Date.now());
}
const closeAll = async () => {
  await cloud.close();
  await sims?.close();
};
tell({ type: 'ready', mqttUrl: cloud.mqttUrl, httpUrl: cloud.httpUrl, pid: process.pid, ...(args.wallets ? { wallets: args.wallets.channels } : {}) });

// Group-commit figures, read off the store from outside: transactions, attempt writes in them, and the
// time a group commit was in flight (asked → committed on the commit thread; GroupCommit keeps at most
// one in flight, so the sum over a phase is the share of time the writer was busy).
const commits = { transactions: 0, writes: 0, ms: 0, maxBatch: 0 };
const store = cloud.store as { writeAttempts: (w: unknown[]) => Promise<unknown> };
const writeAttempts = store.writeAttempts.bind(store);
store.writeAttempts = (w) => {
  const t0 = performance.now();
  commits.transactions++;
  commits.writes += w.length;
  commits.maxBatch = Math.max(commits.maxBatch, w.length);
  return writeAttempts(w).finally(() => (commits.ms += performance.now() - t0));
};

// Opt-in (`countStoreCalls`): calls per store method, counted on the instance the services hold — what
// a payment asks of the store (on PostgreSQL each call outside writeAttempts is its own round trip).
const storeCalls: Record<string, number> = {};
const counted = cloud.store as unknown as Record<string, unknown>;
for (let proto = args.countStoreCalls ? (Object.getPrototypeOf(counted) as object | null) : null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
  for (const name of Object.getOwnPropertyNames(proto)) {
    const fn = counted[name];
    if (name === 'constructor' || typeof fn !== 'function' || Object.hasOwn(storeCalls, name)) continue;
    storeCalls[name] = 0;
    counted[name] = (...a: unknown[]) => {
      storeCalls[name]!++;
      return (fn as (...x: unknown[]) => unknown).apply(counted, a);
    };
  }
}

process.on('message', (m: IpcMessage) => {
  if (m.type === 'commits') tell({ type: 'commits', ...commits, storeCalls });
  else if (m.type === 'liveStats') tell({ type: 'liveStats', ...(cloud.dashboard?.live.stats ?? { pushes: 0, ms: 0, bytesWritten: 0 }) });
  else if (m.type === 'pair') {
    const merchant = typeof m.merchant === 'string' ? m.merchant : 'M-BENCH';
    const storeId = typeof m.store === 'string' ? m.store : 'S-1';
    void ensureMerchant(cloud.store, merchant)
      .then(() => createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: cloud.config.pairingCodeTtlS }, merchant, storeId))
      .then(
      (issued) => tell({ type: 'pairingCode', code: issued.code, expiresAt: issued.expiresAt, cloudUrl: cloud.httpUrl, qrText: pairingQrText({ code: issued.code, cloudUrl: cloud.httpUrl }) }),
      (err: unknown) => tell({ type: 'pairingCode', error: String(err) }),
    );
  }
  else if (m.type === 'snapshot') {
    void cloud.store.listAttempts({}).then((attempts) => tell({ type: 'snapshot', ledger: gateway.ledger.entries(), cloud: cloudRecords(attempts) }));
  } else if (m.type === 'walletStats') {
    tell({ type: 'walletStats', connections: { wechat: sims?.sims.get('wechat')?.connections() ?? 0, alipay: sims?.sims.get('alipay')?.connections() ?? 0 } });
  } else if (m.type === 'stop') {
    void closeAll().then(() => process.exit(0));
  } else if (m.type === 'drain') {
    // Exit once the message is out: exiting at once could cut a large ledger short.
    void closeAll().then(() => process.send?.({ type: 'drained', ledger: gateway.ledger.entries() }, () => process.exit(0)));
  }
});
process.on('disconnect', () => void closeAll().then(() => process.exit(0)));
