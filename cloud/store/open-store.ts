import { hostname } from 'node:os';
import type { CloudConfig } from '../config.js';
import { isPostgresUrl, redactUrl } from './pg-connection.js';
import { PgStore } from './pg-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { CloudStore } from './store.js';

/**
 * Which store the cloud runs on, decided in one place: the SQLite file `dbPath` (the default; one
 * process), or PostgreSQL when `store` is a postgres:// connection string (several workers on one
 * database; `scanbox-cloud migrate --store …` first).
 */
export type StoreChoice = Pick<CloudConfig, 'dbPath' | 'store'>;

/**
 * `commitThread`: SQLite's writes on their own thread (sqlite-store.ts); the running cloud wants it,
 * tools that write a little do not. PostgreSQL's writes wait on the network, never on the event loop.
 * `worker`: a running worker's name, held on PostgreSQL for its life (pg-store.ts holdWorkerName).
 */
export async function openStore(c: StoreChoice, opts: { commitThread?: boolean; worker?: string } = {}): Promise<CloudStore> {
  if (c.store !== undefined && isPostgresUrl(c.store)) return PgStore.open(c.store, opts.worker === undefined ? {} : { worker: opts.worker });
  const store = new SqliteStore(c.dbPath, opts);
  try {
    await store.whenReady();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}

/** What the store is, for the ready line and messages: the file, or the connection string without its password. */
export function storeName(c: StoreChoice): string {
  return c.store !== undefined ? redactUrl(c.store) : c.dbPath;
}

/**
 * This worker's name on a shared store (its leases): the configured one, else the host's. A worker
 * restarted on its host is the same worker and resumes its own work at once; a second worker on one
 * host needs its own --worker-id (the store refuses a name in use).
 */
export function workerIdOf(c: Pick<CloudConfig, 'workerId'>): string {
  return c.workerId ?? hostname();
}
