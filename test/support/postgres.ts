import { startPostgres, type PostgresCluster, type PostgresOptions } from '../../simulator/stack/postgres.js';
import { perTestFile } from './per-test-file.js';

/**
 * The throwaway PostgreSQL cluster lives in the simulator (simulator/stack/postgres.ts), which the
 * rig's PostgreSQL stack runs too; tests take it from here, with the per-file hook.
 */
export { findPostgresBinDir, startPostgres, type PostgresCluster, type PostgresOptions } from '../../simulator/stack/postgres.js';

/** A cluster for the calling test file: started before its first test, stopped after its last. */
export function usePostgres(opts: PostgresOptions = {}): () => PostgresCluster {
  return perTestFile('usePostgres', 'cluster', () => startPostgres(opts), 60_000);
}
