import { join } from 'node:path';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { PgStore } from '../../cloud/store/pg-store.js';
import { PgConnection } from '../../cloud/store/pg-connection.js';
import { migratePostgres } from '../../cloud/store/pg-migrate.js';
import type { CloudStore } from '../../cloud/store/store.js';
import { tempDir } from '../cloud/harness.js';
import { usePostgres } from '../support/postgres.js';
import { describeStoreConformance, type StoreSubject } from './store.js';

/**
 * Every CloudStore through the same suite, each test on fresh data: a temp file for SQLite, a
 * fresh schema of one database per file for PostgreSQL (migrated as `scanbox-cloud migrate` does).
 * `open` opens one handle on that data; the subject opens more for the lease clauses.
 */
function subjectOf(make: () => Promise<{ open: () => Promise<CloudStore>; remove: () => Promise<void> | void }>): () => Promise<StoreSubject> {
  return async () => {
    const data = await make();
    const handles = [await data.open()];
    return {
      store: handles[0]!,
      another: async () => {
        const h = await data.open();
        handles.push(h);
        return h;
      },
      dispose: async () => {
        for (const h of handles) await h.close();
        await data.remove();
      },
    };
  };
}

function sqlite(opts: { commitThread?: boolean }) {
  return subjectOf(async () => {
    const { dir, remove } = tempDir();
    const path = join(dir, 'conformance.db');
    return {
      open: async () => {
        const store = new SqliteStore(path, opts);
        await store.whenReady();
        return store;
      },
      remove,
    };
  });
}

const postgres = usePostgres();
const pgSubject = subjectOf(async () => {
  const url = await postgres().createSchema('conformance');
  const admin = new PgConnection(url, { max: 1 });
  await migratePostgres(admin).finally(() => admin.close());
  return { open: () => PgStore.open(url), remove: () => undefined };
});

describeStoreConformance('SqliteStore (inline writes)', sqlite({}));
describeStoreConformance('SqliteStore (commit thread)', sqlite({ commitThread: true }));
describeStoreConformance('PgStore', pgSubject);
