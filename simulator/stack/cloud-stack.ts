import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { runPart } from '../processes.js';
import { freeLoopbackPort } from './free-port.js';
import { startMosquitto, type MosquittoBroker } from './mosquitto.js';
import { startPostgres, type PostgresCluster } from './postgres.js';

/**
 * What the rig's cloud runs on. `embedded-sqlite` (the default, and a shop's): one `scanbox-cloud
 * start` with its embedded broker and a SQLite file. `mosquitto-postgres` (a provider's): a
 * throwaway PostgreSQL and a Mosquitto with dynamic security on this machine, and N workers
 * (`start --worker-id wN`, each its own HTTP port) sharing them; boxes reach Mosquitto (through the
 * rig's fault proxy), the workers split the boxes' messages with a shared subscription.
 *
 * A stack says where things are; the rig starts, kills and restarts the worker processes the same
 * way on both.
 */
export type CloudStackKind = 'embedded-sqlite' | 'mosquitto-postgres';
export const CLOUD_STACKS: readonly CloudStackKind[] = ['embedded-sqlite', 'mosquitto-postgres'];

/** Workers of a mosquitto-postgres stack unless told otherwise: enough that one can die and others share the work. */
export const DEFAULT_SCALE_OUT_WORKERS = 3;
export const MAX_WORKERS = 16;
/**
 * How long a worker's hold on an attempt lasts unrenewed (the cloud's `workerLeaseMs`, default 30 s):
 * short, so a killed worker's attempts are taken over within seconds — well inside the simulated
 * boxes' 10 s payment deadline — and a run sees the takeover rather than the boxes giving up.
 */
export const SCALE_OUT_LEASE_MS = 3_000;

export interface CloudStack {
  readonly kind: CloudStackKind;
  /** The cloud processes' names: `cloud` alone on the embedded stack; w1 … wN (their --worker-id). */
  readonly workers: readonly string[];
  /** The MQTT port boxes are to reach (through the fault proxy): the embedded broker's, or Mosquitto's. */
  readonly brokerPort: number;
  /** What every worker's config file (and so every support command's) must hold on this stack. */
  readonly config: Record<string, unknown>;
  /** `scanbox-cloud start` arguments of worker `i` besides the shared ones (config, gateway, metrics). */
  startArgs(i: number): string[];
  /** Where worker `i`'s output is kept. */
  logFile(i: number): string;
  /**
   * How a support command (`attempts`, `pair create` …) finds the store. `withConfig`: the command
   * reads the config file too (its channels); on PostgreSQL it always does, that is where the store is.
   */
  storeArgs(configFile: string, withConfig: boolean): string[];
  /** Stops what the stack started (the workers are the rig's: stop them first). */
  stop(): Promise<void>;
}

export interface StackOptions {
  /** The rig's working directory: the SQLite file, the server key, the logs. */
  dir: string;
  /** Cloud processes: 1 on the embedded stack (its broker is in it); default 3 on mosquitto-postgres. */
  workers?: number;
  freePort?: () => Promise<number>;
}

export function startCloudStack(kind: CloudStackKind, opts: StackOptions): Promise<CloudStack> {
  return kind === 'mosquitto-postgres' ? mosquittoPostgres(opts) : embeddedSqlite(opts);
}

/** A worker count that is not a whole number from 1 to MAX_WORKERS, or more than one on the embedded stack, is refused by name. */
export function checkWorkers(kind: CloudStackKind, workers: number | undefined): number {
  const n = workers ?? (kind === 'mosquitto-postgres' ? DEFAULT_SCALE_OUT_WORKERS : 1);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) throw new Error(`workers must be a whole number from 1 to ${MAX_WORKERS}, not ${workers}`);
  if (kind === 'embedded-sqlite' && n !== 1) throw new Error('the embedded-sqlite stack runs one cloud process (the broker is inside it): several workers need the mosquitto-postgres stack');
  return n;
}

async function embeddedSqlite(opts: StackOptions): Promise<CloudStack> {
  checkWorkers('embedded-sqlite', opts.workers);
  const freePort = opts.freePort ?? freeLoopbackPort;
  const [mqttPort, httpPort] = await Promise.all([freePort(), freePort()]);
  const db = path.join(opts.dir, 'cloud.db');
  return {
    kind: 'embedded-sqlite',
    workers: ['cloud'],
    brokerPort: mqttPort,
    config: {},
    startArgs: () => ['--db', db, '--mqtt-port', String(mqttPort), '--http-port', String(httpPort)],
    logFile: () => path.join(opts.dir, 'cloud.log'),
    storeArgs: (configFile, withConfig) => ['--db', db, ...(withConfig ? ['--config', configFile] : [])],
    stop: async () => undefined,
  };
}

async function mosquittoPostgres(opts: StackOptions): Promise<CloudStack> {
  const n = checkWorkers('mosquitto-postgres', opts.workers);
  const freePort = opts.freePort ?? freeLoopbackPort;
  const [pg, mq] = await Promise.allSettled([startPostgres({ freePort }), startMosquitto({ freePort, logFile: path.join(opts.dir, 'mosquitto.log') })]);
  const cluster: PostgresCluster | undefined = pg.status === 'fulfilled' ? pg.value : undefined;
  const broker: MosquittoBroker | undefined = mq.status === 'fulfilled' ? mq.value : undefined;
  const stop = async () => {
    await broker?.stop();
    await cluster?.stop();
  };
  try {
    if (pg.status === 'rejected') throw pg.reason;
    if (mq.status === 'rejected') throw mq.reason;
    const store = await cluster!.createDatabase('scanbox');
    // The operator's step before any worker of a new version starts.
    const migrated = await runPart('cloud', ['migrate', '--store', store], 60_000);
    if (migrated.code !== 0) throw new Error(`scanbox-cloud migrate exited ${migrated.code}: ${migrated.stderr.trim()}`);
    const workers = Array.from({ length: n }, (_, i) => `w${i + 1}`);
    const httpPorts = await Promise.all(workers.map(() => freePort()));
    for (const w of workers) mkdirSync(path.join(opts.dir, w), { recursive: true });
    return {
      kind: 'mosquitto-postgres',
      workers,
      brokerPort: broker!.port,
      config: {
        store,
        // The admin's password is in the URL: it stays in the 0600 config file, off every command line.
        broker: { url: broker!.adminUrl, accounts: 'dynsec' },
        // One key for all workers: a box paired through one logs in through any.
        secretKeyFile: path.join(opts.dir, 'server.key'),
        // Nothing should open a SQLite file on this stack; should something, it lands here, not in the cwd.
        dbPath: path.join(opts.dir, 'unused.db'),
        workerLeaseMs: SCALE_OUT_LEASE_MS,
      },
      startArgs: (i) => ['--worker-id', workers[i]!, '--http-port', String(httpPorts[i])],
      logFile: (i) => path.join(opts.dir, workers[i]!, 'cloud.log'),
      storeArgs: (configFile) => ['--config', configFile],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
