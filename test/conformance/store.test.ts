import { join } from 'node:path';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { tempDir } from '../cloud/harness.js';
import { describeStoreConformance, type StoreSubject } from './store.js';

/** Every CloudStore through the same suite, each on a fresh temp file. */
function sqlite(opts: { commitThread?: boolean }): () => Promise<StoreSubject> {
  return async () => {
    const { dir, remove } = tempDir();
    const store = new SqliteStore(join(dir, 'conformance.db'), opts);
    await store.whenReady();
    return {
      store,
      dispose: async () => {
        await store.close();
        remove();
      },
    };
  };
}

describeStoreConformance('SqliteStore (inline writes)', sqlite({}));
describeStoreConformance('SqliteStore (commit thread)', sqlite({ commitThread: true }));
