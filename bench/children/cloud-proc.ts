import { systemClock } from '../../protocol/clock.js';
import { createPairingCode, startCloud } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { pairingQrText } from '../../protocol/index.js';
import { cloudRecords, instantScriptedGateway } from '../cloud-kit.js';
import { tell, type IpcMessage } from '../harness.js';

/**
 * The cloud as its own process for the latency, throughput and fleet benchmarks, so the load
 * generator and the cloud each get a core of the two: `startCloud` with the scripted gateway (only
 * successful customers, no latency, a ledger for reconciliation) in-process, on free ports. Logs
 * (pino, stdout) go wherever the parent points stdout (the benchmarks: a file in the scratch dir).
 * IPC: `ready` once listening; `pair` {merchant?, store?} → `pairingCode` {code, expiresAt,
 * cloudUrl, qrText} (what `scanbox-cloud pair create --json` prints, so a real box can pair through
 * POST /v1/pair); `snapshot` → ledger and attempt records; `commits` → group-commit figures;
 * `stop` → close (queued writes commit) and exit.
 *
 *   node --import tsx bench/children/cloud-proc.ts '{"dbPath":"…","mqttPort":0,"config":{…}}'
 */
const args = JSON.parse(process.argv[2] ?? '{}') as { dbPath: string; mqttPort?: number; config?: Record<string, unknown> };
const gateway = instantScriptedGateway();
const logger = createLogger(String(args.config?.logLevel ?? 'warn'));
const cloud = await startCloud({ gateway, dbPath: args.dbPath, mqttPort: args.mqttPort ?? 0, httpPort: 0, metricsPort: 0, config: { logLevel: 'warn', ...args.config }, logger });
tell({ type: 'ready', mqttUrl: cloud.mqttUrl, httpUrl: cloud.httpUrl, pid: process.pid });

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

process.on('message', (m: IpcMessage) => {
  if (m.type === 'commits') tell({ type: 'commits', ...commits });
  else if (m.type === 'pair') {
    const merchant = typeof m.merchant === 'string' ? m.merchant : 'M-BENCH';
    const storeId = typeof m.store === 'string' ? m.store : 'S-1';
    void createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: cloud.config.pairingCodeTtlS }, merchant, storeId).then(
      (issued) => tell({ type: 'pairingCode', code: issued.code, expiresAt: issued.expiresAt, cloudUrl: cloud.httpUrl, qrText: pairingQrText({ code: issued.code, cloudUrl: cloud.httpUrl }) }),
      (err: unknown) => tell({ type: 'pairingCode', error: String(err) }),
    );
  }
  else if (m.type === 'snapshot') {
    void cloud.store.listAttempts({}).then((attempts) => tell({ type: 'snapshot', ledger: gateway.ledger.entries(), cloud: cloudRecords(attempts) }));
  } else if (m.type === 'stop') {
    void cloud.close().then(() => process.exit(0));
  }
});
process.on('disconnect', () => void cloud.close().then(() => process.exit(0)));
