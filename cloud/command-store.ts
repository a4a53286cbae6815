import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { ErrorCode, ProtocolError } from '../protocol/index.js';
import { loadConfig, type CloudConfig } from './config.js';
import { openStore, storeName } from './store/open-store.js';
import type { CloudStore } from './store/store.js';

/**
 * The store a support command (merchant, pair create, devices, channel, attempts, operator,
 * refunds, report, store limit, reconcile) works on, chosen as `start` chooses it
 * (store/open-store.ts): PostgreSQL when the config names a postgres:// `store` (`--config` file,
 * or SCANBOX_CLOUD_STORE), else the SQLite file of `--db` or the config's `dbPath`. A PostgreSQL
 * store is shared by every worker, so the command works alongside them as it works alongside one
 * cloud on SQLite (WAL).
 */
export interface StoreFlags {
  db?: string;
  config?: string;
}

export const DB_HELP = 'SQLite store file (default: the config\'s dbPath)';
export const CONFIG_HELP = 'JSON config file; its "store": "postgres://…" puts the command on that PostgreSQL store';

/** `--db` and `--config`, described once for every command. */
export function storeOptions(c: Command, configHelp = CONFIG_HELP): Command {
  return c.option('--db <path>', DB_HELP).option('--config <file>', configHelp);
}

/** defaults < config file < SCANBOX_CLOUD_* < --db. */
export function commandConfig(o: StoreFlags): CloudConfig {
  const config = loadConfig({ file: o.config, env: process.env, overrides: { dbPath: o.db } });
  // Either would be a guess: the flag usually wins, but a store is where the money is.
  if (o.db !== undefined && config.store !== undefined) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `--db ${o.db} names a SQLite store, but the config (${o.config ? `--config ${o.config}` : 'SCANBOX_CLOUD_STORE'}) names the PostgreSQL store ${storeName(config)}: give one or the other`);
  }
  return config;
}

export interface OpenOptions {
  /**
   * Refuse a SQLite file that is not there instead of creating an empty one (a report or a
   * reconciliation of an empty store would say "nothing happened"). PostgreSQL needs no check: a
   * database `scanbox-cloud migrate` has not prepared is refused anyway (STORE_UNAVAILABLE).
   */
  mustExist?: boolean;
}

export async function openCommandStore(config: CloudConfig, opts: OpenOptions = {}): Promise<CloudStore> {
  if (opts.mustExist && config.store === undefined && !existsSync(config.dbPath)) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `there is no cloud store at ${config.dbPath}`);
  return openStore(config);
}

/** Opens the command's store, runs `fn` on it, and closes it whatever happens. */
export async function withCommandStore<T>(o: StoreFlags, fn: (store: CloudStore, config: CloudConfig) => Promise<T>, opts: OpenOptions = {}): Promise<T> {
  const config = commandConfig(o);
  const store = await openCommandStore(config, opts);
  try {
    return await fn(store, config);
  } finally {
    await store.close();
  }
}
