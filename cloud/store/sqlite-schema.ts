import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import type { Attempt } from '../payments/transaction.js';

/** An attempt whose current state the box has not confirmed: the partial index's condition, verbatim. */
export const UNACKED_SQL = '(acked_state IS NULL OR acked_state <> state)';

const PAIRING_CODE_PURPOSE = 'scanbox-pairing-code:';
/** SQL function the connection registers (openConnection) so migration 4 can hash the codes in place. */
const PAIRING_CODE_HASH_SQL = 'scanbox_pairing_code_hash';

/**
 * The SQLite schema as numbered migrations. A database records the highest version applied in
 * `schema_version`; a newer database than this code knows is refused rather than guessed at.
 * Never edit a shipped migration: add the next one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: everything the cloud keeps
  `
  CREATE TABLE merchants (merchant_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
  CREATE TABLE stores (
    merchant_id TEXT NOT NULL REFERENCES merchants(merchant_id),
    store_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (merchant_id, store_id)
  );
  CREATE TABLE devices (
    device_id TEXT PRIMARY KEY,
    hardware_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
    connectivity TEXT NOT NULL DEFAULT 'never',
    last_seen_at INTEGER,
    firmware TEXT,
    outbox_depth INTEGER,
    pending_attempts INTEGER,
    paired_at INTEGER NOT NULL,
    revoked_at INTEGER,
    FOREIGN KEY (merchant_id, store_id) REFERENCES stores(merchant_id, store_id)
  );
  CREATE INDEX devices_hardware ON devices(hardware_id);
  CREATE INDEX devices_revoked ON devices(revoked_at) WHERE revoked_at IS NOT NULL;
  CREATE TABLE pairing_codes (
    code TEXT PRIMARY KEY,
    merchant_id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    used_by_hardware TEXT,
    device_id TEXT
  );
  CREATE TABLE attempts (
    out_trade_no TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    sale_id TEXT NOT NULL,
    sale_ref TEXT,
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    wallet TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    pay_at INTEGER,
    deadline_at INTEGER,
    next_at INTEGER,
    step TEXT,
    in_flight TEXT,
    call_seq INTEGER NOT NULL,
    tries INTEGER NOT NULL,
    cancel_reason TEXT,
    gateway_trade_no TEXT,
    acked_state TEXT,
    version INTEGER NOT NULL
  );
  CREATE INDEX attempts_state ON attempts(state);
  CREATE INDEX attempts_device ON attempts(device_id, state);
  CREATE INDEX attempts_work ON attempts(next_at) WHERE next_at IS NOT NULL;
  CREATE TABLE sale_claims (
    device_id TEXT NOT NULL,
    sale_id TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    claimed_at INTEGER NOT NULL,
    PRIMARY KEY (device_id, sale_id)
  );
  CREATE TABLE attempt_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    out_trade_no TEXT NOT NULL,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    note TEXT NOT NULL
  );
  CREATE INDEX attempt_events_attempt ON attempt_events(out_trade_no, seq);
  CREATE TRIGGER attempt_events_append_only_u BEFORE UPDATE ON attempt_events
    BEGIN SELECT RAISE(ABORT, 'attempt_events is append-only'); END;
  CREATE TRIGGER attempt_events_append_only_d BEFORE DELETE ON attempt_events
    BEGIN SELECT RAISE(ABORT, 'attempt_events is append-only'); END;
  CREATE TABLE refunds (
    refund_no TEXT PRIMARY KEY,
    out_trade_no TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    reason TEXT,
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'DONE')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  `,
  // 2: the per-device index holds only what a box has not acknowledged yet. Over all attempts, every
  // state change rewrote an entry in that device's part of the index, so a group commit of 66 writes
  // touched a leaf page per device (66-write commits: 3.7 → 2.8 ms mean); over the unacknowledged few
  // it stays a handful of hot pages. One device's attempts are found by the primary key instead: an
  // outTradeNo starts with its device id.
  `
  DROP INDEX attempts_device;
  CREATE INDEX attempts_unacked ON attempts(device_id) WHERE ${UNACKED_SQL};
  `,
  // 3: the audit trail is indexed by its attempt's rowid, not its outTradeNo. The attempts in flight
  // were created one after another, so their events land in the last leaves of this index instead
  // of one leaf per device (66-write commits: see bench/README.md); support still finds an
  // attempt's events through its outTradeNo → rowid. (The append-only trigger is lifted for the
  // backfill only.)
  `
  DROP TRIGGER attempt_events_append_only_u;
  ALTER TABLE attempt_events ADD COLUMN attempt_rowid INTEGER;
  UPDATE attempt_events SET attempt_rowid = (SELECT a.rowid FROM attempts a WHERE a.out_trade_no = attempt_events.out_trade_no);
  DROP INDEX attempt_events_attempt;
  CREATE INDEX attempt_events_by_attempt ON attempt_events(attempt_rowid, seq);
  CREATE TRIGGER attempt_events_append_only_u BEFORE UPDATE ON attempt_events
    BEGIN SELECT RAISE(ABORT, 'attempt_events is append-only'); END;
  `,
  // 4: pairing codes are kept as hashes (a copy of the store must not hand out live codes).
  `
  UPDATE pairing_codes SET code = ${PAIRING_CODE_HASH_SQL}(code);
  `,
  // 5: real wallets. A merchant carries its wallet sub-ids (the provider's adapters name them on
  // every call); an attempt carries its merchant and channel (every later call goes the same way),
  // the receipt the wallet reported, and a flag when a person must look. Older attempts started on
  // the channel named after their wallet, for the merchant their box belongs to.
  `
  ALTER TABLE merchants ADD COLUMN name TEXT;
  ALTER TABLE merchants ADD COLUMN wechat_sub_mch_id TEXT;
  ALTER TABLE merchants ADD COLUMN alipay_app_auth_token TEXT;
  ALTER TABLE merchants ADD COLUMN updated_at INTEGER;
  UPDATE merchants SET updated_at = created_at;
  ALTER TABLE attempts ADD COLUMN merchant_id TEXT;
  ALTER TABLE attempts ADD COLUMN channel TEXT;
  ALTER TABLE attempts ADD COLUMN charged INTEGER;
  ALTER TABLE attempts ADD COLUMN wallet_paid_at INTEGER;
  ALTER TABLE attempts ADD COLUMN buyer_paid INTEGER;
  ALTER TABLE attempts ADD COLUMN discount INTEGER;
  ALTER TABLE attempts ADD COLUMN flag TEXT;
  UPDATE attempts SET channel = wallet, merchant_id = (SELECT d.merchant_id FROM devices d WHERE d.device_id = attempts.device_id);
  CREATE INDEX attempts_flagged ON attempts(flag) WHERE flag IS NOT NULL;
  `,
  // 6: the morning reconciliation (cloud/reconcile/) keeps what it found in a day's bill and what it
  // did about it, beside the attempts, not in them: the attempt machine never reads it. A second run
  // sees its first run's refunds as settled instead of finding (and refunding) them again. No index on
  // attempts.created_at for the day's attempts: every attempt write sets every column, and a scan
  // once a morning is cheaper than an index touched by every payment.
  `
  CREATE TABLE reconcile_findings (
    bill_date TEXT NOT NULL,
    channel TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'settled')),
    merchant_id TEXT,
    amount INTEGER NOT NULL,
    detail TEXT NOT NULL,
    action TEXT,
    found_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (bill_date, channel, out_trade_no, kind)
  );
  `,
  // 7: channels. The operator's pins and disables (written by `scanbox-cloud channel`, read by every
  // running cloud), and each channel's breaker state as the running cloud last wrote it (for
  // `channel list`: the breaker itself lives in the process that routes).
  `
  CREATE TABLE channel_overrides (
    channel TEXT PRIMARY KEY,
    mode TEXT NOT NULL CHECK (mode IN ('pinned', 'disabled')),
    wallets TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE TABLE channel_states (channel TEXT PRIMARY KEY, summary TEXT NOT NULL, at INTEGER NOT NULL);
  `,
  // 8: refunds the cash register asks for (cloud/refunds/). Not the table of migration 1, which keeps
  // the cloud's own refunds of an attempt (a duplicate payment) written with the attempt: these are
  // the merchant's, several per attempt, keyed by the box's refund id. A refused one is kept too, so
  // a re-send gets the same answer. The indexes serve the request's checks (what remains of an
  // attempt; a store's day), the worker (PENDING due), the totals (a box's refunds by final time) and
  // the operator (flagged). A store's daily refund limit sits on the store; NULL is no limit.
  `
  CREATE TABLE customer_refunds (
    refund_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    merchant_id TEXT NOT NULL,
    store_id TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    refund_ref TEXT NOT NULL,
    wallet TEXT,
    channel TEXT,
    amount INTEGER NOT NULL CHECK (amount > 0),
    sale_total INTEGER,
    currency TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'REFUNDED', 'FAILED', 'REFUSED')),
    reason TEXT,
    message TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    final_at INTEGER,
    tries INTEGER NOT NULL,
    next_at INTEGER,
    in_flight INTEGER NOT NULL,
    call_seq INTEGER NOT NULL,
    flagged INTEGER NOT NULL,
    version INTEGER NOT NULL
  );
  CREATE INDEX customer_refunds_attempt ON customer_refunds(out_trade_no);
  CREATE INDEX customer_refunds_ref ON customer_refunds(device_id, refund_ref);
  CREATE INDEX customer_refunds_store_day ON customer_refunds(merchant_id, store_id, created_at);
  CREATE INDEX customer_refunds_pending ON customer_refunds(next_at) WHERE state = 'PENDING';
  CREATE INDEX customer_refunds_device_final ON customer_refunds(device_id, final_at) WHERE state = 'REFUNDED';
  CREATE INDEX customer_refunds_flagged ON customer_refunds(created_at) WHERE flagged = 1;
  ALTER TABLE stores ADD COLUMN refund_daily_limit INTEGER;
  `,
  // 9: commands for boxes (`scanbox-cloud devices reboot|unpair`). The CLI runs in another process
  // and only writes here; the running cloud sends each one on the box's down/command when the box is
  // connected (sent_at) and, for an unpair, revokes the box once it has left (done_at, outcome). The
  // partial index is the watcher's poll: only what is still to send or to finish.
  `
  CREATE TABLE device_commands (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    command TEXT NOT NULL CHECK (command IN ('reboot', 'resync', 'unpair')),
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    done_at INTEGER,
    outcome TEXT
  );
  CREATE INDEX device_commands_open ON device_commands(created_at) WHERE done_at IS NULL;
  CREATE INDEX device_commands_device ON device_commands(device_id, created_at);
  `,
  // 10: the dashboard's operators (cloud/dashboard/). A password is kept as a scrypt hash with its own
  // salt; a session only as the SHA-256 of its id (a copy of the store must not let anyone in), with
  // the CSRF token its forms carry. Removing an operator ends its sessions. What operators did to a
  // payment, a refund or a box is an append-only audit trail that keeps the operator's name even
  // after the operator is removed; the index serves a subject's timeline.
  `
  CREATE TABLE operators (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE operator_sessions (
    id_hash TEXT PRIMARY KEY,
    operator TEXT NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  );
  CREATE INDEX operator_sessions_operator ON operator_sessions(operator);
  CREATE TABLE operator_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    subject_state TEXT,
    note TEXT NOT NULL,
    outcome TEXT NOT NULL
  );
  CREATE INDEX operator_actions_subject ON operator_actions(subject_kind, subject_id, id);
  CREATE TRIGGER operator_actions_append_only_u BEFORE UPDATE ON operator_actions
    BEGIN SELECT RAISE(ABORT, 'operator_actions is append-only'); END;
  CREATE TRIGGER operator_actions_append_only_d BEFORE DELETE ON operator_actions
    BEGIN SELECT RAISE(ABORT, 'operator_actions is append-only'); END;
  `,
  // 11: the box's doctor (`scanbox-cloud devices doctor`: down/command `doctor`, answered on
  // up/doctor). The command table's CHECK names its commands and SQLite cannot change a CHECK in
  // place, so the table is rebuilt with `doctor` added, its rows and rowids kept (commands are listed
  // in rowid order within a time). Each box's latest report is kept, one row per box replaced by the
  // next, its checks as JSON: shown whole, never queried inside.
  `
  CREATE TABLE device_commands_v11 (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    command TEXT NOT NULL CHECK (command IN ('reboot', 'resync', 'unpair', 'doctor')),
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    done_at INTEGER,
    outcome TEXT
  );
  INSERT INTO device_commands_v11 (rowid, id, device_id, command, created_at, sent_at, done_at, outcome)
    SELECT rowid, id, device_id, command, created_at, sent_at, done_at, outcome FROM device_commands;
  DROP TABLE device_commands;
  ALTER TABLE device_commands_v11 RENAME TO device_commands;
  CREATE INDEX device_commands_open ON device_commands(created_at) WHERE done_at IS NULL;
  CREATE INDEX device_commands_device ON device_commands(device_id, created_at);
  CREATE TABLE doctor_reports (
    device_id TEXT PRIMARY KEY REFERENCES devices(device_id),
    command_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    firmware TEXT NOT NULL,
    checks TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    received_at INTEGER NOT NULL
  );
  `,
  // 12: leases, for several cloud workers on one store (the PostgreSQL store's reason for them; see
  // store.ts Lease): who drives an attempt or a refund, and until when. One process never sets them.
  // No index: a claim looks through the attempts with work left, as listActiveAttempts does.
  `
  ALTER TABLE attempts ADD COLUMN lease_owner TEXT;
  ALTER TABLE attempts ADD COLUMN lease_until INTEGER;
  ALTER TABLE customer_refunds ADD COLUMN lease_owner TEXT;
  ALTER TABLE customer_refunds ADD COLUMN lease_until INTEGER;
  `,
  // 13: each register refund's history, as attempt_events is an attempt's: its creation by the
  // request (from no state to PENDING, or to REFUSED and why) and every write that carried an event
  // (store.ts RefundWriteEvent) — each wallet answer, each retry, the flag, an operator's "now" —
  // written in the transaction of the write it records, so a refused write leaves none. Without it
  // the row says only where a refund stands, not what the wallet said on each try. Refunds recorded
  // before it have no history here (the payment timeline shows their row as it stands). Indexed by
  // the refund (its history) and by the payment (its timeline: every refund of it).
  `
  CREATE TABLE refund_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_id TEXT NOT NULL,
    out_trade_no TEXT NOT NULL,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    from_state TEXT CHECK (from_state IN ('PENDING', 'REFUNDED', 'FAILED', 'REFUSED')),
    to_state TEXT NOT NULL CHECK (to_state IN ('PENDING', 'REFUNDED', 'FAILED', 'REFUSED')),
    note TEXT NOT NULL
  );
  CREATE INDEX refund_events_refund ON refund_events(refund_id, seq);
  CREATE INDEX refund_events_payment ON refund_events(out_trade_no, seq);
  CREATE TRIGGER refund_events_append_only_u BEFORE UPDATE ON refund_events
    BEGIN SELECT RAISE(ABORT, 'refund_events is append-only'); END;
  CREATE TRIGGER refund_events_append_only_d BEFORE DELETE ON refund_events
    BEGIN SELECT RAISE(ABORT, 'refund_events is append-only'); END;
  `,
  // 14: the dashboard's charts, per minute and flow. Kept in the store, not in a process, so that a
  // chart shows every worker's payments (each adds what its own counters saw) and survives a restart.
  `
  CREATE TABLE traffic_minutes (
    minute INTEGER NOT NULL,
    flow TEXT NOT NULL,
    count INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (minute, flow)
  ) WITHOUT ROWID;
  `,
  // 15: the exception desk reads the refunds the wallet declined on every view; without this they
  // were found by reading every refund ever made.
  `
  CREATE INDEX customer_refunds_failed ON customer_refunds(created_at) WHERE state = 'FAILED';
  `,
];

/** SHA-256 hex of purpose + code: the key of pairing_codes since schema 4. */
export function pairingCodeHash(code: string): string {
  return createHash('sha256').update(PAIRING_CODE_PURPOSE + code).digest('hex');
}

/** Attempt field ↔ column; one list so reading and writing cannot drift apart. */
export const ATTEMPT_COLUMNS = [
  ['outTradeNo', 'out_trade_no'],
  ['deviceId', 'device_id'],
  ['merchantId', 'merchant_id'],
  ['channel', 'channel'],
  ['saleId', 'sale_id'],
  ['saleRef', 'sale_ref'],
  ['amount', 'amount'],
  ['currency', 'currency'],
  ['wallet', 'wallet'],
  ['state', 'state'],
  ['reason', 'reason'],
  ['createdAt', 'created_at'],
  ['updatedAt', 'updated_at'],
  ['payAt', 'pay_at'],
  ['deadlineAt', 'deadline_at'],
  ['nextAt', 'next_at'],
  ['step', 'step'],
  ['inFlight', 'in_flight'],
  ['callSeq', 'call_seq'],
  ['tries', 'tries'],
  ['cancelReason', 'cancel_reason'],
  ['gatewayTradeNo', 'gateway_trade_no'],
  ['charged', 'charged'],
  ['walletPaidAt', 'wallet_paid_at'],
  ['buyerPaid', 'buyer_paid'],
  ['discount', 'discount'],
  ['flag', 'flag'],
  ['ackedState', 'acked_state'],
  ['version', 'version'],
] as const satisfies readonly (readonly [keyof Attempt, string])[];

/** WAL size (pages) at which the commit thread checkpoints; see commit-thread-worker.ts. */
export const WAL_CHECKPOINT_PAGES = 10_000;

/** A connection as every part of the cloud uses it: WAL, a commit is durable (FULL), keys enforced. */
export function openConnection(path: string): Database.Database {
  const db = new Database(path, { timeout: 5000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.function(PAIRING_CODE_HASH_SQL, { deterministic: true }, (code: unknown) => pairingCodeHash(String(code)));
  return db;
}
