import { startCloud } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { cloudRecords, instantScriptedGateway } from '../cloud-kit.js';
import { tell, type IpcMessage } from '../harness.js';

/**
 * The cloud as its own process for the throughput and fleet benchmarks, so the load generator and
 * the cloud each get a core of the two: `startCloud` with the scripted gateway (only successful
 * customers, no latency, a ledger for reconciliation) on free ports. IPC: `ready` once listening;
 * `snapshot` → ledger and attempt records; `stop` → close (queued writes commit) and exit.
 *
 *   node --import tsx bench/children/cloud-proc.ts '{"dbPath":"…","config":{…}}'
 */
const args = JSON.parse(process.argv[2] ?? '{}') as { dbPath: string; config?: Record<string, unknown> };
const gateway = instantScriptedGateway();
const logger = createLogger(String(args.config?.logLevel ?? 'warn'));
const cloud = await startCloud({ gateway, dbPath: args.dbPath, mqttPort: 0, httpPort: 0, config: { logLevel: 'warn', ...args.config }, logger });
tell({ type: 'ready', mqttUrl: cloud.mqttUrl, httpUrl: cloud.httpUrl, pid: process.pid });

// Group-commit figures, read off the store from outside: transactions, attempt writes in them, and the
// time the (synchronous) SQLite transaction held the event loop, fsync included.
const commits = { transactions: 0, writes: 0, ms: 0, maxBatch: 0 };
const store = cloud.store as { writeAttempts: (w: unknown[]) => Promise<unknown> };
const writeAttempts = store.writeAttempts.bind(store);
store.writeAttempts = (w) => {
  const t0 = performance.now();
  const r = writeAttempts(w);
  commits.ms += performance.now() - t0;
  commits.transactions++;
  commits.writes += w.length;
  commits.maxBatch = Math.max(commits.maxBatch, w.length);
  return r;
};

process.on('message', (m: IpcMessage) => {
  if (m.type === 'commits') tell({ type: 'commits', ...commits });
  else if (m.type === 'snapshot') {
    void cloud.store.listAttempts({}).then((attempts) => tell({ type: 'snapshot', ledger: gateway.ledger.entries(), cloud: cloudRecords(attempts) }));
  } else if (m.type === 'stop') {
    void cloud.close().then(() => process.exit(0));
  }
});
process.on('disconnect', () => void cloud.close().then(() => process.exit(0)));
