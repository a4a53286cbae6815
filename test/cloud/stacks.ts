import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloudConfigInput } from '../../cloud/config.js';
import { PgConnection } from '../../cloud/store/pg-connection.js';
import { migratePostgres } from '../../cloud/store/pg-migrate.js';
import { PgStore } from '../../cloud/store/pg-store.js';
import { openStore } from '../../cloud/store/open-store.js';
import type { CloudStore } from '../../cloud/store/store.js';
import { useMosquitto } from '../support/mosquitto.js';
import { usePostgres } from '../support/postgres.js';

/**
 * The stacks the cloud's integration suites run on, written once and run on each
 * (`describe.each(STACKS)`): what one machine runs out of the box (the embedded aedes broker and a
 * SQLite file), and what a provider runs at scale (Mosquitto with dynamic security, and PostgreSQL).
 * The cloud is the same code on both; these suites are where that is checked end to end.
 */
export type StackKind = 'embedded-sqlite' | 'mosquitto-postgres';
export const STACKS: readonly StackKind[] = ['embedded-sqlite', 'mosquitto-postgres'];

/** Where one cloud keeps its state; a cloud started again on the same place finds it (a restart). */
export interface CloudPlace {
  /** A temp dir of its own: the server key, and the SQLite file on the embedded stack. */
  readonly dir: string;
  /** The config that puts a cloud on this place: its store, server key and broker. */
  readonly config: CloudConfigInput;
  /** A handle of the test's own on the place's store (the cloud's own handle dies with a killed process). */
  openStore(): Promise<CloudStore>;
  remove(): void;
}

export interface TestStack {
  readonly kind: StackKind;
  /**
   * Whether the cloud sees boxes' connections come and go. On an external broker it does not: it
   * takes a box's first message after a silence for its connection, and its last will for its
   * leaving (cloud/broker/heartbeat-presence.ts).
   */
  readonly seesConnections: boolean;
  /** A fresh place: a new temp dir and, on PostgreSQL, a new schema migrated as `scanbox-cloud migrate` does. */
  place(): Promise<CloudPlace>;
}

export function tempDir(): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'scanbox-cloud-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const EMBEDDED_SQLITE: TestStack = {
  kind: 'embedded-sqlite',
  seesConnections: true,
  async place() {
    const { dir, remove } = tempDir();
    const dbPath = join(dir, 'cloud.db');
    return { dir, config: { dbPath }, openStore: () => openStore({ dbPath }), remove };
  },
};

/** Clouds on one Mosquitto share its messages by group; the clouds of one file run one at a time, so one group. */
const GROUP = 'scanbox-suite';

/**
 * The stack `kind` for the calling describe block (or file). On mosquitto-postgres it registers that
 * block's hooks: one PostgreSQL cluster and one Mosquitto, started before its first test and stopped
 * after its last; each place is a fresh schema of that cluster (~10 ms, where a database is ~150 ms).
 */
export function useStack(kind: StackKind): TestStack {
  if (kind === 'embedded-sqlite') return EMBEDDED_SQLITE;
  const postgres = usePostgres();
  const mosquitto = useMosquitto();
  return {
    kind,
    seesConnections: false,
    async place() {
      const url = await postgres().createSchema('clouds');
      const db = new PgConnection(url, { max: 1 });
      await migratePostgres(db).finally(() => db.close());
      const { dir, remove } = tempDir();
      const config: CloudConfigInput = {
        store: url,
        // Every worker on one database needs the same key; a PostgreSQL store refuses to start without one named.
        secretKeyFile: join(dir, 'server.key'),
        broker: { url: mosquitto().adminUrl, group: GROUP, accounts: 'dynsec' },
      };
      return { dir, config, openStore: () => PgStore.open(url), remove };
    },
  };
}
