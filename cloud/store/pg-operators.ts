import { ErrorCode, ProtocolError } from '../../protocol/index.js';
import type { PgConnection } from './pg-connection.js';
import { toAction, toOperator, toSession } from './rows.js';
import type { OperatorActionFilter, OperatorActionRow, OperatorRow, OperatorSessionRow } from './store.js';

const unknown = (name: string) => new ProtocolError(ErrorCode.OPERATOR_UNKNOWN, `no operator ${name}`);

/**
 * The PostgreSQL side of the dashboard's operators, sessions and audit trail. Each is a statement
 * or a short transaction of its own; a session's operator is checked under a key-share lock so a
 * removal cannot slip between the check and the insert (the foreign key would refuse it anyway).
 */
export class PgOperators {
  constructor(private readonly db: PgConnection) {}

  async add(name: string, passwordHash: string, now: number): Promise<OperatorRow> {
    const [row] = await this.db.rows('INSERT INTO operators (name, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $3) ON CONFLICT DO NOTHING RETURNING *', [name, passwordHash, now]);
    if (!row) throw new ProtocolError(ErrorCode.OPERATOR_EXISTS, `operator ${name} already exists; use operator password to change the password`);
    return toOperator(row);
  }

  async get(name: string): Promise<OperatorRow | undefined> {
    const [r] = await this.db.rows('SELECT * FROM operators WHERE name=$1', [name]);
    return r ? toOperator(r) : undefined;
  }

  async list(): Promise<OperatorRow[]> {
    return (await this.db.rows('SELECT * FROM operators ORDER BY name')).map(toOperator);
  }

  async setPassword(name: string, passwordHash: string, now: number): Promise<void> {
    await this.db.tx(async (sql) => {
      const r = await sql.query('UPDATE operators SET password_hash=$1, updated_at=$2 WHERE name=$3', [passwordHash, now, name]);
      if (r.rowCount === 0) throw unknown(name);
      await sql.query('DELETE FROM operator_sessions WHERE operator=$1', [name]);
    });
  }

  /** Its sessions go with it (ON DELETE CASCADE); its actions stay. */
  async remove(name: string): Promise<boolean> {
    const r = await this.db.query('DELETE FROM operators WHERE name=$1', [name]);
    return r.rowCount === 1;
  }

  async createSession(row: OperatorSessionRow): Promise<void> {
    await this.db.tx(async (sql) => {
      const found = await sql.query('SELECT 1 FROM operators WHERE name=$1 FOR KEY SHARE', [row.operator]);
      if (found.rowCount === 0) throw unknown(row.operator);
      await sql.query('INSERT INTO operator_sessions (id_hash, operator, csrf_token, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)', [
        row.idHash,
        row.operator,
        row.csrfToken,
        row.createdAt,
        row.lastSeenAt,
      ]);
    });
  }

  async session(idHash: string): Promise<OperatorSessionRow | undefined> {
    const [r] = await this.db.rows('SELECT * FROM operator_sessions WHERE id_hash=$1', [idHash]);
    return r ? toSession(r) : undefined;
  }

  async touch(idHash: string, at: number): Promise<boolean> {
    const r = await this.db.query('UPDATE operator_sessions SET last_seen_at=GREATEST(last_seen_at, $1) WHERE id_hash=$2', [at, idHash]);
    return r.rowCount === 1;
  }

  async endSession(idHash: string): Promise<boolean> {
    const r = await this.db.query('DELETE FROM operator_sessions WHERE id_hash=$1', [idHash]);
    return r.rowCount === 1;
  }

  async endExpired(idleBefore: number, createdBefore: number): Promise<number> {
    const r = await this.db.query('DELETE FROM operator_sessions WHERE last_seen_at < $1 OR created_at < $2', [idleBefore, createdBefore]);
    return r.rowCount ?? 0;
  }

  async addAction(a: Omit<OperatorActionRow, 'id'>): Promise<OperatorActionRow> {
    const [r] = await this.db.rows(
      `INSERT INTO operator_actions (at, operator, action, subject_kind, subject_id, subject_state, note, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
      [a.at, a.operator, a.action, a.subjectKind, a.subjectId, a.subjectState, a.note, a.outcome],
    );
    return { id: r!.id as number, ...a };
  }

  async actions(filter: OperatorActionFilter): Promise<OperatorActionRow[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const p = (v: unknown) => (args.push(v), `$${args.length}`);
    if (filter.subjectKind) where.push(`subject_kind=${p(filter.subjectKind)}`);
    if (filter.subjectIds) where.push(`subject_id = ANY(${p([...filter.subjectIds])}::text[])`);
    if (filter.action) where.push(`action=${p(filter.action)}`);
    const sql = `SELECT * FROM operator_actions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id${filter.newestFirst ? ' DESC' : ''} LIMIT ${p(filter.limit ?? null)}`;
    return (await this.db.rows(sql, args)).map(toAction);
  }
}
