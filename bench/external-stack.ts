import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { ServerKey } from '../cloud/index.js';
import { PgConnection } from '../cloud/store/pg-connection.js';
import { migratePostgres } from '../cloud/store/pg-migrate.js';
import { PgStore } from '../cloud/store/pg-store.js';
// The throwaway servers of the tests (reusable parts moving to simulator/stack/; test/support keeps this API).
import { freeLoopbackPort } from '../test/support/free-port.js';
import { startMosquitto, type ConfigPaths, type MosquittoBroker } from '../test/support/mosquitto.js';
import { startPostgres, type PostgresCluster } from '../test/support/postgres.js';
import { seedDevices, type SeededDevices } from './cloud-kit.js';
import { addBoxAccounts } from './dynsec-file.js';
import { findPids, treeCpuMs } from './harness.js';

/**
 * What the scale-out benchmarks run the cloud's workers on: a PostgreSQL cluster (fsync on: its
 * commits are part of the figures) migrated as `scanbox-cloud migrate` does, `boxes` devices paired
 * through the store's own calls, and Mosquitto 2 with dynamic security holding each box's account
 * (written in bulk before it starts, bench/dynsec-file.ts), on loopback ports.
 *
 * Mosquitto runs with the shipped settings (deploy/mosquitto/scanbox.conf: no anonymous login,
 * TCP_NODELAY, `max_queued_messages 100000`, …) on two plain loopback listeners, the boxes' and the
 * workers' (as deploy/scale-out/ gives the workers their own) — no TLS, so a box's (re)connect here
 * costs no handshake — and without persistence (the load's boxes use clean sessions).
 * It logs errors, warnings, notices and information, without connection messages: the tests' broker
 * logs every packet, which at thousands of payments a second would be the benchmark.
 * `restartBroker` stops it (SIGTERM) and starts it again on the same ports with the same accounts
 * file, as `systemctl restart mosquitto` would.
 */
export interface ExternalStack {
  /** The store of every worker (`--store`). */
  pgUrl: string;
  /** The server key every worker shares (`secretKeyFile`). */
  keyFile: string;
  seeded: SeededDevices;
  /** Where boxes connect: mqtt://127.0.0.1:PORT. */
  brokerUrl: string;
  /**
   * The workers' `--broker`: the dynamic-security admin's credentials in the URL, on a listener of
   * their own, as deploy/scale-out does (each listener has its own accept queue, so the workers do not
   * queue behind a herd of reconnecting boxes).
   */
  adminUrl: string;
  /** Seconds each step of setting up took. */
  timings: { postgresS: number; migrateS: number; seedS: number; accountsS: number; brokerStartS: number };
  /** Mosquitto's process (it changes with a restart). */
  mosquittoPid(): number;
  /** CPU ms of PostgreSQL: the postmaster and its backends. */
  postgresCpuMs(): number;
  /**
   * The database's counters so far (pg_stat_database): committed transactions and rows written.
   * Backends report them at most once a second while busy, so a phase's figures are approximate.
   */
  postgresCounters(): Promise<PostgresCounters>;
  /** Mosquitto's log lines matching `re`, over every start so far. */
  brokerLogCount(re: RegExp): number;
  /** SIGTERM → exited → listening again (epoch ms of each). */
  restartBroker(): Promise<{ stopAt: number; stoppedAt: number; listeningAt: number }>;
  stop(): Promise<void>;
}

export interface PostgresCounters {
  commits: number;
  rowsWritten: number;
}

export interface ExternalStackOptions {
  boxes: number;
  /** Scratch directory: the server key lives here. */
  dir: string;
  /** Pairings in flight at once while seeding. */
  seedConcurrency?: number;
}

const QUIET_LOG = ['log_type none', 'log_type error', 'log_type warning', 'log_type notice', 'log_type information', 'connection_messages false'];

/** Mosquitto's notice when a client's queue is full and QoS 1 messages to it are thrown away. */
export const DROPPED_NOTICE = /messages are being dropped/i;

/** The shipped broker settings (deploy/mosquitto/scanbox.conf): the bench measures Mosquitto as deployed. */
export const SHIPPED_BROKER_CONF = new URL('../deploy/mosquitto/scanbox.conf', import.meta.url);
/** What the bench puts in their place: its own plugin file, a loopback listener without TLS, no persistence. */
const REPLACED = new Set(['plugin', 'plugin_opt_config_file', 'listener', 'certfile', 'keyfile', 'persistence', 'persistence_location']);

/** The shipped file's settings, minus the paths, the listener and TLS. */
export function shippedBrokerSettings(text = readFileSync(SHIPPED_BROKER_CONF, 'utf8')): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !REPLACED.has(l.split(/\s+/)[0]!));
}

/** The shipped settings with the bench's listeners (boxes', workers') and plugin file, filled before Mosquitto reads it. */
function brokerConfig(at: ConfigPaths, workersPort: number, fill: (dynsecFile: string) => void): string {
  fill(at.dynsecFile);
  return [...shippedBrokerSettings(), `listener ${at.port} 127.0.0.1`, `listener ${workersPort} 127.0.0.1`, `plugin ${at.plugin}`, `plugin_opt_config_file ${at.dynsecFile}`, 'persistence false'].join('\n');
}

export async function startExternalStack(opts: ExternalStackOptions): Promise<ExternalStack> {
  const since = (t: number) => Math.round((performance.now() - t) / 100) / 10;
  let cluster: PostgresCluster | undefined;
  let broker: MosquittoBroker | undefined;
  try {
    let t = performance.now();
    cluster = await startPostgres({ durable: true });
    const pgUrl = await cluster.createDatabase('scanbox');
    const postgresS = since(t);
    t = performance.now();
    const db = new PgConnection(pgUrl, { max: 1 });
    try {
      await migratePostgres(db);
    } finally {
      await db.close();
    }
    const migrateS = since(t);

    t = performance.now();
    const keyFile = path.join(opts.dir, 'server.key');
    const store = await PgStore.open(pgUrl);
    let seeded: SeededDevices;
    try {
      seeded = await seedDevices(store, ServerKey.load(keyFile), opts.boxes, 'M-BENCH', opts.seedConcurrency ?? 8);
    } finally {
      await store.close();
    }
    const seedS = since(t);

    let accountsS = 0;
    let dynsecFile = '';
    t = performance.now();
    const workersPort = await freeLoopbackPort();
    broker = await startMosquitto({
      extraConfig: QUIET_LOG,
      config: (at) =>
        brokerConfig(at, workersPort, (file) => {
          const a = performance.now();
          addBoxAccounts(file, seeded.ids, seeded.secret);
          accountsS = since(a);
          dynsecFile = file;
        }),
    });
    const brokerStartS = Math.round((since(t) - accountsS) * 10) / 10;
    const port = broker.port;
    const adminUrl = `mqtt://${encodeURIComponent(broker.admin.username)}:${encodeURIComponent(broker.admin.password)}@127.0.0.1:${workersPort}`;
    const postmaster = findPids((argv) => argv[0]!.endsWith('/postgres') && argv.some((a, i) => a === '-p' && argv[i + 1] === String(cluster!.port)));
    if (postmaster.length !== 1) throw new Error(`expected one postmaster on port ${cluster.port}, found ${postmaster.length}`);
    const mosquittoPid = () => {
      const dir = path.dirname(dynsecFile);
      const pids = findPids((argv) => argv[0]!.endsWith('mosquitto') && argv.some((a) => a.startsWith(`${dir}/`)));
      if (pids.length !== 1) throw new Error(`expected one mosquitto with its config in ${dir}, found ${pids.length}`);
      return pids[0]!;
    };

    let statsClient: pg.Client | undefined;
    let linesOfStoppedBrokers: string[] = [];
    return {
      pgUrl,
      keyFile,
      seeded,
      brokerUrl: broker.url,
      adminUrl,
      timings: { postgresS, migrateS, seedS, accountsS, brokerStartS },
      mosquittoPid,
      postgresCpuMs: () => treeCpuMs(postmaster[0]!),
      brokerLogCount: (re) => linesOfStoppedBrokers.filter((l) => re.test(l)).length + broker!.count(re),
      async postgresCounters() {
        if (!statsClient) {
          statsClient = new pg.Client({ connectionString: pgUrl });
          await statsClient.connect();
        }
        const { rows } = await statsClient.query<{ commits: string; written: string }>(
          'SELECT xact_commit AS commits, tup_inserted + tup_updated + tup_deleted AS written FROM pg_stat_database WHERE datname = current_database()',
        );
        return { commits: Number(rows[0]!.commits), rowsWritten: Number(rows[0]!.written) };
      },
      async restartBroker() {
        // Whatever the plugin wrote since (the cloud's service role) survives, as its file would.
        const accounts = readFileSync(dynsecFile, 'utf8');
        const stopAt = Date.now();
        linesOfStoppedBrokers = [...linesOfStoppedBrokers, ...broker!.lines()];
        await broker!.stop();
        const stoppedAt = Date.now();
        broker = await startMosquitto({
          extraConfig: QUIET_LOG,
          freePort: async () => port,
          config: (at) =>
            brokerConfig(at, workersPort, (file) => {
              writeFileSync(file, accounts);
              dynsecFile = file;
            }),
        });
        return { stopAt, stoppedAt, listeningAt: Date.now() };
      },
      async stop() {
        await statsClient?.end().catch(() => undefined);
        await broker?.stop();
        await cluster?.stop();
      },
    };
  } catch (err) {
    await broker?.stop();
    await cluster?.stop();
    throw err;
  }
}
