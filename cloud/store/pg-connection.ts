import pg from 'pg';
import { createRequire } from 'node:module';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';

/**
 * The PostgreSQL store's connection pool, and the two ways it runs SQL: one statement (its own
 * transaction), or a transaction of several on one connection. A transaction that PostgreSQL
 * aborts as a deadlock or a serialization failure is run again from the start (a few times): every
 * transaction here is written to be re-runnable, and none calls out of the database inside.
 */

/** node-postgres returns BIGINT as a string (it may exceed 2^53); the store's are epoch ms and fen, far below. */
const INT8_OID = 20;
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid !== INT8_OID) return pg.types.getTypeParser(oid, format as 'text');
    return (text: string) => {
      const n = Number(text);
      if (!Number.isSafeInteger(n)) throw new ProtocolError(ErrorCode.STORE_CORRUPT, `a BIGINT of the store (${text}) is beyond what the cloud counts exactly`);
      return n;
    };
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/** PostgreSQL's codes for "run it again": deadlock_detected, serialization_failure. */
const RETRYABLE = new Set(['40P01', '40001']);
const TRIES = 3;

export type Row = Record<string, unknown>;
/** What runs SQL: the pool (each statement its own transaction) or a transaction's connection. */
export interface Sql {
  query<R extends Row = Row>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** The connection string without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'an unparseable PostgreSQL connection string';
  }
}

export function isPostgresUrl(s: string): boolean {
  return /^postgres(ql)?:\/\//.test(s);
}

/** The pgpass module (pg's own, CommonJS, untyped): `~/.pgpass` or PGPASSFILE, with libpq's rules (0600 or ignored). */
const pgpass = createRequire(import.meta.url)('pgpass') as (conn: { host: string; port: number; database: string; user: string }, cb: (password: string | undefined) => void) => void;

/**
 * The password as libpq finds it — the URL's, PGPASSWORD, then the password file — looked up here
 * rather than by pg, whose own lookup of the file is deprecated (a warning on every connection).
 */
function passwordOf(url: string): () => Promise<string> {
  const u = new URL(url);
  const conn = { host: u.hostname || 'localhost', port: Number(u.port || 5432), database: decodeURIComponent(u.pathname.slice(1)), user: decodeURIComponent(u.username) };
  return () => {
    if (u.password) return Promise.resolve(decodeURIComponent(u.password));
    if (process.env.PGPASSWORD !== undefined) return Promise.resolve(process.env.PGPASSWORD);
    // None found: the server's "password authentication failed for user …" says what is wrong.
    return new Promise((resolve) => pgpass(conn, (password) => resolve(password ?? '')));
  };
}

export class PgConnection implements Sql {
  private readonly pool: pg.Pool;
  /** Connections kept for their session locks (holdLock). */
  private readonly held: pg.PoolClient[] = [];

  constructor(
    readonly url: string,
    opts: { max?: number } = {},
  ) {
    this.pool = new pg.Pool({ connectionString: url, password: passwordOf(url), types: TYPES, max: opts.max ?? 10 });
    // An idle connection lost (a server restart, a network cut) is dropped by the pool; the next
    // query opens another or fails with its own error. Without a listener it would end the process.
    this.pool.on('error', () => undefined);
  }

  async query<R extends Row = Row>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pool.query<R>(sql, params);
      } catch (err) {
        if (attempt < TRIES && retryable(err)) continue;
        throw this.unavailable(err);
      }
    }
  }

  async rows<R extends Row = Row>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.query<R>(sql, params)).rows;
  }

  /** BEGIN … COMMIT on one connection; anything thrown rolls back (and is thrown again). */
  async tx<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.pool.connect();
      } catch (err) {
        throw this.unavailable(err);
      }
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const out = await fn(client);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => (broken = e as Error));
        if (attempt < TRIES && retryable(err)) continue;
        throw this.unavailable(err);
      } finally {
        client.release(broken);
      }
    }
  }

  /**
   * A session-level advisory lock on `name` in this schema (two deployments may share a database),
   * held on a connection of its own until close(): false when another session holds it. PostgreSQL
   * lets it go when that session ends, a killed process's included.
   */
  async holdLock(name: string): Promise<boolean> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw this.unavailable(err);
    }
    const r = await client.query<{ held: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1 || ':' || current_schema(), 0)) AS held", [name]).catch((err: unknown) => {
      client.release();
      throw this.unavailable(err);
    });
    if (!r.rows[0]?.held) {
      client.release();
      return false;
    }
    this.held.push(client);
    return true;
  }

  close(): Promise<void> {
    for (const c of this.held.splice(0)) c.release();
    return this.pool.end();
  }

  /** A server that cannot be reached is STORE_UNAVAILABLE; what PostgreSQL answered (a constraint, bad SQL) stays as it is. */
  private unavailable(err: unknown): unknown {
    if (!(err instanceof Error) || err instanceof ProtocolError) return err;
    const code = (err as { code?: string }).code;
    const lost = code === undefined ? /connection terminated|timeout exceeded when trying to connect/i.test(err.message) : NETWORK_CODES.test(code);
    if (!lost) return err;
    return new ProtocolError(ErrorCode.STORE_UNAVAILABLE, `PostgreSQL at ${redactUrl(this.url)} is unreachable: ${err.message}`, { code: code ?? null });
  }
}

/** The socket's errors, connection_exception (08…), and a server shutting down or starting (57P01–57P03). */
const NETWORK_CODES = /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|EPIPE|08...|57P0[123])$/;

function retryable(err: unknown): boolean {
  return RETRYABLE.has((err as { code?: string }).code ?? '');
}
