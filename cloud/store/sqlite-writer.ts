import type Database from 'better-sqlite3';
import type { AttemptState } from '../../protocol/index.js';
import { ATTEMPT_COLUMNS } from './sqlite-schema.js';
import type { AttemptWrite, FleetUpdate, WriteResult } from './store.js';
import { refundNoOf, type Attempt } from '../payments/transaction.js';

type Row = Record<string, unknown>;

/**
 * The store's steady-state writes — attempt transitions (with their sale claims, audit events and
 * refunds) and fleet updates — on one connection, synchronously. The cloud runs it on a commit
 * thread (commit-thread.ts) so the fsync of each group commit does not stall the event loop;
 * tools and tests run it inline. Either way these are the only statements that write them.
 */
export class SqliteWriter {
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    const cols = ATTEMPT_COLUMNS.map(([, c]) => c);
    this.stmt = {
      insertAttempt: db.prepare(`INSERT OR IGNORE INTO attempts (${cols.join(',')}) VALUES (${cols.map((c) => `@${c}`).join(',')})`),
      updateAttempt: db.prepare(`UPDATE attempts SET ${cols.filter((c) => c !== 'out_trade_no').map((c) => `${c}=@${c}`).join(',')} WHERE out_trade_no=@out_trade_no AND version=@expected`),
      attemptVersion: db.prepare('SELECT version FROM attempts WHERE out_trade_no=?').pluck(),
      attemptLease: db.prepare('SELECT lease_owner, lease_until FROM attempts WHERE out_trade_no=?'),
      takeLease: db.prepare('UPDATE attempts SET lease_owner=?, lease_until=? WHERE out_trade_no=?'),
      claimSale: db.prepare('INSERT OR IGNORE INTO sale_claims (device_id, sale_id, out_trade_no, claimed_at) VALUES (?,?,?,?)'),
      saleWinner: db.prepare('SELECT out_trade_no FROM sale_claims WHERE device_id=? AND sale_id=?').pluck(),
      insertEvent: db.prepare(
        'INSERT INTO attempt_events (out_trade_no, attempt_rowid, at, event, from_state, to_state, note) VALUES (@o, (SELECT rowid FROM attempts WHERE out_trade_no=@o), @at, @event, @from, @to, @note)',
      ),
      upsertRefund: db.prepare(
        `INSERT INTO refunds (refund_no, out_trade_no, amount, currency, reason, state, created_at, updated_at) VALUES (@refundNo,@outTradeNo,@amount,@currency,@reason,@state,@at,@at)
         ON CONFLICT(refund_no) DO UPDATE SET state=excluded.state, reason=excluded.reason, updated_at=excluded.updated_at`,
      ),
      fleet: db.prepare(
        `UPDATE devices SET last_seen_at=MAX(COALESCE(last_seen_at,0), @at), connectivity=COALESCE(@connectivity, connectivity),
         firmware=COALESCE(@firmware, firmware), outbox_depth=COALESCE(@outboxDepth, outbox_depth), pending_attempts=COALESCE(@pendingAttempts, pending_attempts)
         WHERE device_id=@deviceId`,
      ),
      staleIds: db.prepare(`SELECT device_id FROM devices WHERE connectivity='online' AND last_seen_at < ?`).pluck(),
      markStale: db.prepare(`UPDATE devices SET connectivity='stale' WHERE connectivity='online' AND last_seen_at < ?`),
    };
  }

  /** One transaction for the whole group: one fsync, all or nothing. */
  writeAttempts(writes: AttemptWrite[]): WriteResult[] {
    return this.db.transaction(() => writes.map((w) => this.writeOne(w))).immediate();
  }

  updateFleet(updates: FleetUpdate[]): void {
    if (updates.length === 0) return;
    this.db.transaction(() => {
      for (const u of updates) this.stmt.fleet.run({ connectivity: null, firmware: null, outboxDepth: null, pendingAttempts: null, ...u });
    }).immediate();
  }

  markStale(before: number): string[] {
    return this.db.transaction(() => {
      const ids = this.stmt.staleIds.all(before) as string[];
      this.stmt.markStale.run(before);
      return ids;
    }).immediate();
  }

  /** Version check, then the lease, then the sale claim, then the write: a refused write leaves no claim behind. */
  private writeOne(w: AttemptWrite): WriteResult {
    const a = w.attempt;
    const current = this.stmt.attemptVersion.get(a.outTradeNo) as number | undefined;
    if ((current ?? 0) !== w.expectedVersion) return { ok: false, why: 'version' };
    if (w.lease && !w.lease.force && current !== undefined) {
      const held = this.stmt.attemptLease.get(a.outTradeNo) as { lease_owner: string | null; lease_until: number | null };
      if (held.lease_owner !== null && held.lease_owner !== w.lease.owner && (held.lease_until ?? 0) > w.lease.now) {
        return { ok: false, why: 'leased', owner: held.lease_owner, until: held.lease_until ?? 0 };
      }
    }
    if (w.claimSale) {
      this.stmt.claimSale.run(a.deviceId, a.saleId, a.outTradeNo, a.updatedAt);
      const winner = this.stmt.saleWinner.get(a.deviceId, a.saleId) as string;
      if (winner !== a.outTradeNo) return { ok: false, why: 'sale_taken', winner };
    }
    const version = w.expectedVersion + 1;
    const params: Row = { expected: w.expectedVersion };
    for (const [field, col] of ATTEMPT_COLUMNS) params[col] = a[field];
    params.version = version;
    if (w.expectedVersion === 0) this.stmt.insertAttempt.run(params);
    else this.stmt.updateAttempt.run(params);
    if (w.lease) this.stmt.takeLease.run(w.lease.owner, w.lease.until, a.outTradeNo);
    this.stmt.insertEvent.run({ o: a.outTradeNo, at: a.updatedAt, event: w.event, from: w.fromState, to: a.state, note: w.note });
    this.recordRefund(a, w.fromState);
    return { ok: true, version };
  }

  private recordRefund(a: Attempt, from: AttemptState | null): void {
    const refunding = a.state === 'REFUND_PENDING' || (a.state === 'REFUNDED' && from === 'REFUND_PENDING');
    if (!refunding) return;
    this.stmt.upsertRefund.run({
      refundNo: refundNoOf(a.outTradeNo),
      outTradeNo: a.outTradeNo,
      amount: a.amount,
      currency: a.currency,
      reason: a.reason,
      state: a.state === 'REFUNDED' ? 'DONE' : 'PENDING',
      at: a.updatedAt,
    });
  }
}

/** The writer's calls as the store makes them: the same whether inline or on the commit thread. */
export interface AsyncWriter {
  writeAttempts(writes: AttemptWrite[]): Promise<WriteResult[]>;
  updateFleet(updates: FleetUpdate[]): Promise<void>;
  markStale(before: number): Promise<string[]>;
  /** Resolved when writes can be taken (a thread has opened its connection). */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

export function inlineWriter(w: SqliteWriter): AsyncWriter {
  return {
    writeAttempts: async (writes) => w.writeAttempts(writes),
    updateFleet: async (updates) => w.updateFleet(updates),
    markStale: async (before) => w.markStale(before),
    ready: Promise.resolve(),
    close: async () => undefined,
  };
}
