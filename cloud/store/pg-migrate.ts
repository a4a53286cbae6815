import { ErrorCode, ProtocolError } from '../../protocol/index.js';
import { PgConnection, redactUrl, type Sql } from './pg-connection.js';
import { PG_MIGRATIONS } from './pg-schema.js';

/**
 * Applying and checking the PostgreSQL schema. Only `scanbox-cloud migrate` changes it: workers
 * starting together must not race to alter tables, and an operator decides when a schema moves. All
 * pending migrations run in one transaction under an advisory lock (PostgreSQL's DDL is
 * transactional): two migrates at once apply each step once, and a failed step leaves the schema as
 * it was.
 */

/** pg_advisory_xact_lock key of `migrate` (any constant unlikely to be another application's). */
const MIGRATE_LOCK = 0x5ca4b0c5;

export interface MigrateResult {
  from: number;
  to: number;
}

async function versionOf(sql: Sql): Promise<number | null> {
  const exists = await sql.query<{ t: string | null }>(`SELECT to_regclass('schema_version')::text AS t`);
  if (exists.rows[0]?.t === null) return null;
  const r = await sql.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_version');
  return r.rows[0]?.v ?? 0;
}

function tooNew(url: string, current: number): ProtocolError {
  return new ProtocolError(ErrorCode.STORE_TOO_NEW, `cloud store ${redactUrl(url)} has schema version ${current}; this cloud knows up to ${PG_MIGRATIONS.length}. Upgrade the cloud`, {});
}

export async function migratePostgres(db: PgConnection): Promise<MigrateResult> {
  return db.tx(async (sql) => {
    await sql.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
    await sql.query('CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    const from = (await versionOf(sql)) ?? 0;
    if (from > PG_MIGRATIONS.length) throw tooNew(db.url, from);
    for (let v = from + 1; v <= PG_MIGRATIONS.length; v++) {
      await sql.query(PG_MIGRATIONS[v - 1]!);
      await sql.query('INSERT INTO schema_version (version) VALUES ($1)', [v]);
    }
    return { from, to: PG_MIGRATIONS.length };
  });
}

/** A worker's check at start: the schema is exactly this cloud's, or it refuses with what to do. */
export async function checkSchema(db: PgConnection): Promise<void> {
  const current = await versionOf(db);
  if (current === null || current < PG_MIGRATIONS.length) {
    throw new ProtocolError(
      ErrorCode.STORE_UNAVAILABLE,
      `cloud store ${redactUrl(db.url)} has schema version ${current ?? 'none'}; this cloud needs ${PG_MIGRATIONS.length}: run scanbox-cloud migrate --store <the same connection string> first`,
      {},
    );
  }
  if (current > PG_MIGRATIONS.length) throw tooNew(db.url, current);
}
