import type Database from 'better-sqlite3';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';
import { toAction, toOperator, toSession } from './rows.js';
import type { OperatorActionFilter, OperatorActionRow, OperatorRow, OperatorSessionRow } from './store.js';

type Db = Database.Database;
type Row = Record<string, unknown>;

/**
 * The SQLite side of the dashboard's operators, sessions and audit trail (schema 10), on the
 * store's main connection. None of it is on a payment's path: a login or an operator's action is a
 * small transaction of its own, never part of a group commit.
 */
export class SqliteOperators {
  private readonly stmt;

  constructor(private readonly db: Db) {
    this.stmt = {
      get: db.prepare('SELECT * FROM operators WHERE name=?'),
      session: db.prepare('SELECT * FROM operator_sessions WHERE id_hash=?'),
      touch: db.prepare('UPDATE operator_sessions SET last_seen_at=MAX(last_seen_at, ?) WHERE id_hash=?'),
      endSession: db.prepare('DELETE FROM operator_sessions WHERE id_hash=?'),
      endSessionsOf: db.prepare('DELETE FROM operator_sessions WHERE operator=?'),
      addAction: db.prepare(
        `INSERT INTO operator_actions (at, operator, action, subject_kind, subject_id, subject_state, note, outcome)
         VALUES (@at, @operator, @action, @subjectKind, @subjectId, @subjectState, @note, @outcome)`,
      ),
    };
  }

  add(name: string, passwordHash: string, now: number): OperatorRow {
    return this.db.transaction(() => {
      if (this.stmt.get.get(name)) throw new ProtocolError(ErrorCode.OPERATOR_EXISTS, `operator ${name} already exists; use operator password to change the password`);
      this.db.prepare('INSERT INTO operators (name, password_hash, created_at, updated_at) VALUES (?,?,?,?)').run(name, passwordHash, now, now);
      return toOperator(this.stmt.get.get(name) as Row);
    }).immediate();
  }

  get(name: string): OperatorRow | undefined {
    const r = this.stmt.get.get(name) as Row | undefined;
    return r ? toOperator(r) : undefined;
  }

  list(): OperatorRow[] {
    return (this.db.prepare('SELECT * FROM operators ORDER BY name').all() as Row[]).map(toOperator);
  }

  setPassword(name: string, passwordHash: string, now: number): void {
    this.db.transaction(() => {
      const r = this.db.prepare('UPDATE operators SET password_hash=?, updated_at=? WHERE name=?').run(passwordHash, now, name);
      if (r.changes === 0) throw new ProtocolError(ErrorCode.OPERATOR_UNKNOWN, `no operator ${name}`);
      this.stmt.endSessionsOf.run(name);
    }).immediate();
  }

  remove(name: string): boolean {
    return this.db.transaction(() => {
      this.stmt.endSessionsOf.run(name);
      return this.db.prepare('DELETE FROM operators WHERE name=?').run(name).changes > 0;
    }).immediate();
  }

  createSession(row: OperatorSessionRow): void {
    this.db.transaction(() => {
      if (!this.stmt.get.get(row.operator)) throw new ProtocolError(ErrorCode.OPERATOR_UNKNOWN, `no operator ${row.operator}`);
      this.db
        .prepare('INSERT INTO operator_sessions (id_hash, operator, csrf_token, created_at, last_seen_at) VALUES (?,?,?,?,?)')
        .run(row.idHash, row.operator, row.csrfToken, row.createdAt, row.lastSeenAt);
    }).immediate();
  }

  session(idHash: string): OperatorSessionRow | undefined {
    const r = this.stmt.session.get(idHash) as Row | undefined;
    return r ? toSession(r) : undefined;
  }

  touch(idHash: string, at: number): boolean {
    return this.stmt.touch.run(at, idHash).changes > 0;
  }

  endSession(idHash: string): boolean {
    return this.stmt.endSession.run(idHash).changes > 0;
  }

  endExpired(idleBefore: number, createdBefore: number): number {
    return this.db.prepare('DELETE FROM operator_sessions WHERE last_seen_at < ? OR created_at < ?').run(idleBefore, createdBefore).changes;
  }

  addAction(a: Omit<OperatorActionRow, 'id'>): OperatorActionRow {
    const id = Number(this.stmt.addAction.run(a).lastInsertRowid);
    return { id, ...a };
  }

  actions(filter: OperatorActionFilter): OperatorActionRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.subjectKind) (where.push('subject_kind=?'), args.push(filter.subjectKind));
    if (filter.subjectIds) (where.push(`subject_id IN (${filter.subjectIds.map(() => '?').join(',') || 'NULL'})`), args.push(...filter.subjectIds));
    if (filter.action) (where.push('action=?'), args.push(filter.action));
    const sql = `SELECT * FROM operator_actions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id${filter.newestFirst ? ' DESC' : ''} LIMIT ?`;
    return (this.db.prepare(sql).all(...args, filter.limit ?? -1) as Row[]).map(toAction);
  }
}
