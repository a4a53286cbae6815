/**
 * The PostgreSQL schema as numbered migrations, applied by `scanbox-cloud migrate --store
 * postgres://…` (pg-migrate.ts), never by a starting worker. The tables mean what the SQLite
 * schema's do (sqlite-schema.ts; its comments say why each exists); the SQL is PostgreSQL's own:
 * BIGINT epoch ms and fen, real booleans, JSONB, text[], identity columns, and one server-side
 * function for a group commit. Never edit a shipped migration: add the next one.
 *
 * Every text key is `COLLATE "C"`: lists are ordered byte by byte as in SQLite, whatever the
 * database's locale, and a box's attempts are found by the key range [`<deviceId>-`, `<deviceId>.`).
 */

/**
 * transaction.ts `needsWork` in SQL: not final, or a late check due or in flight. Written out (not a
 * parameter) so that the planner uses the partial index `attempts_active`, which has it verbatim.
 */
export const NEEDS_WORK_SQL = `(state NOT IN ('SUCCESS','FAILED','CANCELLED','REVERSED','REFUNDED') OR next_at IS NOT NULL OR in_flight IS NOT NULL)`;

const T = 'text COLLATE "C"';

/**
 * The group commit's server-side function (store.ts writeAttempts), as migration 1 created it and
 * as later migrations replace it: `leaseCheck` is the condition under which a write is refused as
 * leased to another worker.
 */
function writeAttemptsFunction(verb: 'CREATE' | 'CREATE OR REPLACE', leaseCheck: string, forceField = ''): string {
  return `
  -- A group commit in one round trip: every write of the group in order, each succeeding or failing
  -- on its own (store.ts writeAttempts), in the caller's one transaction. Per write: the version,
  -- then the lease, then the sale claim, then the row, its event and its duplicate-payment refund;
  -- a refused write leaves nothing behind. The rows the group updates are locked first, in key
  -- order, so two workers' groups that share an attempt wait for each other instead of deadlocking.
  -- writes: [{ a: {column: value…}, expected, event, from, note, claim, lease: {owner, now, until${forceField}} | null,
  --            refund: {refund_no, state} | null }]
  ${verb} FUNCTION scanbox_write_attempts(writes jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
  DECLARE
    w jsonb;
    a attempts%ROWTYPE;
    cur attempts%ROWTYPE;
    expected integer;
    lease jsonb;
    winner text;
    row_id bigint;
    results jsonb := '[]'::jsonb;
  BEGIN
    PERFORM 1 FROM attempts WHERE out_trade_no IN (SELECT x->'a'->>'out_trade_no' FROM jsonb_array_elements(writes) AS x)
      ORDER BY out_trade_no FOR UPDATE;
    FOR w IN SELECT x FROM jsonb_array_elements(writes) WITH ORDINALITY AS t(x, i) ORDER BY i LOOP
      a := jsonb_populate_record(NULL::attempts, w->'a');
      expected := (w->>'expected')::integer;
      lease := NULLIF(w->'lease', 'null'::jsonb);
      SELECT * INTO cur FROM attempts WHERE out_trade_no = a.out_trade_no;
      IF (CASE WHEN FOUND THEN cur.version ELSE 0 END) <> expected THEN
        results := results || jsonb_build_array(jsonb_build_object('ok', false, 'why', 'version'));
        CONTINUE;
      END IF;
${leaseCheck}
        results := results || jsonb_build_array(jsonb_build_object('ok', false, 'why', 'leased', 'owner', cur.lease_owner, 'until', cur.lease_until));
        CONTINUE;
      END IF;
      row_id := NULL;
      IF expected = 0 THEN
        -- Created by another transaction since the read: this waits for it, then inserts nothing.
        INSERT INTO attempts (out_trade_no, device_id, merchant_id, channel, sale_id, sale_ref, amount, currency, wallet, state, reason,
          created_at, updated_at, pay_at, deadline_at, next_at, step, in_flight, call_seq, tries, cancel_reason, gateway_trade_no,
          charged, wallet_paid_at, buyer_paid, discount, flag, acked_state, version, lease_owner, lease_until)
        VALUES (a.out_trade_no, a.device_id, a.merchant_id, a.channel, a.sale_id, a.sale_ref, a.amount, a.currency, a.wallet, a.state, a.reason,
          a.created_at, a.updated_at, a.pay_at, a.deadline_at, a.next_at, a.step, a.in_flight, a.call_seq, a.tries, a.cancel_reason, a.gateway_trade_no,
          a.charged, a.wallet_paid_at, a.buyer_paid, a.discount, a.flag, a.acked_state, 1, lease->>'owner', (lease->>'until')::bigint)
        ON CONFLICT (out_trade_no) DO NOTHING
        RETURNING id INTO row_id;
        IF row_id IS NULL THEN
          results := results || jsonb_build_array(jsonb_build_object('ok', false, 'why', 'version'));
          CONTINUE;
        END IF;
      END IF;
      IF (w->>'claim')::boolean THEN
        INSERT INTO sale_claims (device_id, sale_id, out_trade_no, claimed_at) VALUES (a.device_id, a.sale_id, a.out_trade_no, a.updated_at)
          ON CONFLICT DO NOTHING;
        SELECT c.out_trade_no INTO winner FROM sale_claims c WHERE c.device_id = a.device_id AND c.sale_id = a.sale_id;
        IF winner <> a.out_trade_no THEN
          IF expected = 0 THEN DELETE FROM attempts WHERE id = row_id; END IF;
          results := results || jsonb_build_array(jsonb_build_object('ok', false, 'why', 'sale_taken', 'winner', winner));
          CONTINUE;
        END IF;
      END IF;
      IF expected > 0 THEN
        UPDATE attempts SET device_id = a.device_id, merchant_id = a.merchant_id, channel = a.channel, sale_id = a.sale_id, sale_ref = a.sale_ref,
          amount = a.amount, currency = a.currency, wallet = a.wallet, state = a.state, reason = a.reason, created_at = a.created_at,
          updated_at = a.updated_at, pay_at = a.pay_at, deadline_at = a.deadline_at, next_at = a.next_at, step = a.step, in_flight = a.in_flight,
          call_seq = a.call_seq, tries = a.tries, cancel_reason = a.cancel_reason, gateway_trade_no = a.gateway_trade_no, charged = a.charged,
          wallet_paid_at = a.wallet_paid_at, buyer_paid = a.buyer_paid, discount = a.discount, flag = a.flag, acked_state = a.acked_state,
          version = expected + 1,
          lease_owner = CASE WHEN lease IS NULL THEN attempts.lease_owner ELSE lease->>'owner' END,
          lease_until = CASE WHEN lease IS NULL THEN attempts.lease_until ELSE (lease->>'until')::bigint END
        WHERE out_trade_no = a.out_trade_no
        RETURNING id INTO row_id;
      END IF;
      INSERT INTO attempt_events (attempt_id, out_trade_no, at, event, from_state, to_state, note)
        VALUES (row_id, a.out_trade_no, a.updated_at, w->>'event', w->>'from', a.state, w->>'note');
      IF jsonb_typeof(w->'refund') = 'object' THEN
        INSERT INTO refunds (refund_no, out_trade_no, amount, currency, reason, state, created_at, updated_at)
          VALUES (w->'refund'->>'refund_no', a.out_trade_no, a.amount, a.currency, a.reason, w->'refund'->>'state', a.updated_at, a.updated_at)
          ON CONFLICT (refund_no) DO UPDATE SET state = excluded.state, reason = excluded.reason, updated_at = excluded.updated_at;
      END IF;
      results := results || jsonb_build_array(jsonb_build_object('ok', true, 'version', expected + 1));
    END LOOP;
    RETURN results;
  END
  $$;
`;
}

/** Migration 1's: refused while another owner's lease runs past `now`. */
const LEASE_HELD = `      IF expected > 0 AND lease IS NOT NULL AND cur.lease_owner IS NOT NULL AND cur.lease_owner <> lease->>'owner'
         AND cur.lease_until > (lease->>'now')::bigint THEN`;
/** Migration 2's: the same, unless the write forces the lease (store.ts Lease.force: it puts a wallet call out). */
const LEASE_HELD_UNFORCED = `      IF expected > 0 AND lease IS NOT NULL AND NOT COALESCE((lease->>'force')::boolean, false) AND cur.lease_owner IS NOT NULL
         AND cur.lease_owner <> lease->>'owner' AND cur.lease_until > (lease->>'now')::bigint THEN`;

export const PG_MIGRATIONS: readonly string[] = [
  // 1: everything the cloud keeps, as SQLite's migrations 1–12 left it, leases included.
  `
  CREATE TABLE merchants (
    merchant_id ${T} PRIMARY KEY,
    name text,
    wechat_sub_mch_id text,
    alipay_app_auth_token text,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
  );
  CREATE TABLE stores (
    merchant_id ${T} NOT NULL REFERENCES merchants(merchant_id),
    store_id ${T} NOT NULL,
    created_at bigint NOT NULL,
    refund_daily_limit bigint,
    PRIMARY KEY (merchant_id, store_id)
  );
  CREATE TABLE devices (
    device_id ${T} PRIMARY KEY,
    hardware_id ${T} NOT NULL,
    merchant_id ${T} NOT NULL,
    store_id ${T} NOT NULL,
    secret_hash text NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'revoked')),
    connectivity text NOT NULL DEFAULT 'never' CHECK (connectivity IN ('online', 'offline', 'stale', 'never')),
    last_seen_at bigint,
    firmware text,
    outbox_depth integer,
    pending_attempts integer,
    paired_at bigint NOT NULL,
    revoked_at bigint,
    FOREIGN KEY (merchant_id, store_id) REFERENCES stores(merchant_id, store_id)
  );
  CREATE INDEX devices_hardware ON devices(hardware_id);
  CREATE INDEX devices_revoked ON devices(revoked_at) WHERE revoked_at IS NOT NULL;
  -- Codes are kept as SHA-256 hashes (sqlite-schema.ts pairingCodeHash): a copy of the store hands out no live code.
  CREATE TABLE pairing_codes (
    code ${T} PRIMARY KEY,
    merchant_id ${T} NOT NULL,
    store_id ${T} NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    used_at bigint,
    used_by_hardware text,
    device_id text
  );

  -- The id orders the audit trail's index by when an attempt was created (SQLite's rowid, migration 3).
  CREATE TABLE attempts (
    out_trade_no ${T} PRIMARY KEY,
    id bigint GENERATED ALWAYS AS IDENTITY,
    device_id ${T} NOT NULL,
    merchant_id ${T},
    channel ${T},
    sale_id ${T} NOT NULL,
    sale_ref ${T},
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    wallet text,
    state text NOT NULL,
    reason text,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    pay_at bigint,
    deadline_at bigint,
    next_at bigint,
    step text,
    in_flight text,
    call_seq integer NOT NULL,
    tries integer NOT NULL,
    cancel_reason text,
    gateway_trade_no ${T},
    charged bigint,
    wallet_paid_at bigint,
    buyer_paid bigint,
    discount bigint,
    flag text,
    acked_state text,
    version integer NOT NULL,
    lease_owner text,
    lease_until bigint
  );
  CREATE INDEX attempts_state ON attempts(state);
  CREATE INDEX attempts_unacked ON attempts(device_id) WHERE (acked_state IS NULL OR acked_state <> state);
  CREATE INDEX attempts_flagged ON attempts(flag) WHERE flag IS NOT NULL;
  -- What claimAttempts and listActiveAttempts look through: only the attempts with work left.
  CREATE INDEX attempts_active ON attempts(created_at) WHERE ${NEEDS_WORK_SQL};
  -- One sale, one success: the primary key is the claim (store.ts AttemptWrite.claimSale).
  CREATE TABLE sale_claims (
    device_id ${T} NOT NULL,
    sale_id ${T} NOT NULL,
    out_trade_no ${T} NOT NULL,
    claimed_at bigint NOT NULL,
    PRIMARY KEY (device_id, sale_id)
  );
  CREATE TABLE attempt_events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id bigint NOT NULL,
    out_trade_no ${T} NOT NULL,
    at bigint NOT NULL,
    event text NOT NULL,
    from_state text,
    to_state text NOT NULL,
    note text NOT NULL
  );
  CREATE INDEX attempt_events_by_attempt ON attempt_events(attempt_id, seq);
  CREATE FUNCTION scanbox_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END
  $$;
  CREATE TRIGGER attempt_events_append_only BEFORE UPDATE OR DELETE ON attempt_events
    FOR EACH ROW EXECUTE FUNCTION scanbox_append_only();
  -- The cloud's own refunds of a duplicate payment, written with the attempt.
  CREATE TABLE refunds (
    refund_no ${T} PRIMARY KEY,
    out_trade_no ${T} NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    reason text,
    state text NOT NULL CHECK (state IN ('PENDING', 'DONE')),
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
  );

  CREATE TABLE reconcile_findings (
    bill_date ${T} NOT NULL,
    channel ${T} NOT NULL,
    out_trade_no ${T} NOT NULL,
    kind ${T} NOT NULL,
    status text NOT NULL CHECK (status IN ('open', 'settled')),
    merchant_id text,
    amount bigint NOT NULL,
    detail text NOT NULL,
    action text,
    found_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (bill_date, channel, out_trade_no, kind)
  );

  CREATE TABLE channel_overrides (
    channel ${T} PRIMARY KEY,
    mode text NOT NULL CHECK (mode IN ('pinned', 'disabled')),
    wallets text[] NOT NULL,
    at bigint NOT NULL
  );
  CREATE TABLE channel_states (channel ${T} PRIMARY KEY, summary jsonb NOT NULL, at bigint NOT NULL);

  CREATE TABLE customer_refunds (
    refund_id ${T} PRIMARY KEY,
    device_id ${T} NOT NULL,
    merchant_id ${T} NOT NULL,
    store_id ${T} NOT NULL,
    out_trade_no ${T} NOT NULL,
    refund_ref ${T} NOT NULL,
    wallet text,
    channel ${T},
    amount bigint NOT NULL CHECK (amount > 0),
    sale_total bigint,
    currency text NOT NULL,
    state text NOT NULL CHECK (state IN ('PENDING', 'REFUNDED', 'FAILED', 'REFUSED')),
    reason text,
    message text,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    final_at bigint,
    tries integer NOT NULL,
    next_at bigint,
    in_flight boolean NOT NULL,
    call_seq integer NOT NULL,
    flagged boolean NOT NULL,
    version integer NOT NULL,
    lease_owner text,
    lease_until bigint
  );
  CREATE INDEX customer_refunds_attempt ON customer_refunds(out_trade_no);
  CREATE INDEX customer_refunds_ref ON customer_refunds(device_id, refund_ref);
  CREATE INDEX customer_refunds_store_day ON customer_refunds(merchant_id, store_id, created_at);
  CREATE INDEX customer_refunds_pending ON customer_refunds(created_at) WHERE state = 'PENDING';
  CREATE INDEX customer_refunds_device_final ON customer_refunds(device_id, final_at) WHERE state = 'REFUNDED';
  CREATE INDEX customer_refunds_flagged ON customer_refunds(created_at) WHERE flagged;

  CREATE TABLE device_commands (
    id ${T} PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    device_id ${T} NOT NULL REFERENCES devices(device_id),
    command text NOT NULL CHECK (command IN ('reboot', 'resync', 'unpair', 'doctor')),
    created_at bigint NOT NULL,
    sent_at bigint,
    done_at bigint,
    outcome text
  );
  CREATE INDEX device_commands_open ON device_commands(created_at, seq) WHERE done_at IS NULL;
  CREATE INDEX device_commands_device ON device_commands(device_id, created_at, seq);
  CREATE TABLE doctor_reports (
    device_id ${T} PRIMARY KEY REFERENCES devices(device_id),
    command_id text NOT NULL,
    message_id text NOT NULL,
    firmware text NOT NULL,
    checks jsonb NOT NULL,
    sent_at bigint NOT NULL,
    received_at bigint NOT NULL
  );

  CREATE TABLE operators (
    name ${T} PRIMARY KEY,
    password_hash text NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
  );
  CREATE TABLE operator_sessions (
    id_hash ${T} PRIMARY KEY,
    operator ${T} NOT NULL REFERENCES operators(name) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at bigint NOT NULL,
    last_seen_at bigint NOT NULL
  );
  CREATE INDEX operator_sessions_operator ON operator_sessions(operator);
  CREATE TABLE operator_actions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at bigint NOT NULL,
    operator text NOT NULL,
    action text NOT NULL,
    subject_kind ${T} NOT NULL,
    subject_id ${T} NOT NULL,
    subject_state text,
    note text NOT NULL,
    outcome text NOT NULL
  );
  CREATE INDEX operator_actions_subject ON operator_actions(subject_kind, subject_id, id);
  CREATE TRIGGER operator_actions_append_only BEFORE UPDATE OR DELETE ON operator_actions
    FOR EACH ROW EXECUTE FUNCTION scanbox_append_only();
${writeAttemptsFunction('CREATE', LEASE_HELD)}  `,
  // 2: a write that puts a wallet call out takes the attempt's lease whoever holds it (Lease.force).
  writeAttemptsFunction('CREATE OR REPLACE', LEASE_HELD_UNFORCED, ', force?'),
  // 3: each register refund's history (SQLite's migration 13 says why), append-only like attempt_events.
  `
  CREATE TABLE refund_events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    refund_id ${T} NOT NULL,
    out_trade_no ${T} NOT NULL,
    at bigint NOT NULL,
    event text NOT NULL,
    from_state text CHECK (from_state IN ('PENDING', 'REFUNDED', 'FAILED', 'REFUSED')),
    to_state text NOT NULL CHECK (to_state IN ('PENDING', 'REFUNDED', 'FAILED', 'REFUSED')),
    note text NOT NULL
  );
  CREATE INDEX refund_events_refund ON refund_events(refund_id, seq);
  CREATE INDEX refund_events_payment ON refund_events(out_trade_no, seq);
  CREATE TRIGGER refund_events_append_only BEFORE UPDATE OR DELETE ON refund_events
    FOR EACH ROW EXECUTE FUNCTION scanbox_append_only();
  `,
  // 4: the dashboard's charts, per minute and flow (SQLite's migration 14 says why).
  `
  CREATE TABLE traffic_minutes (
    minute bigint NOT NULL,
    flow text NOT NULL,
    count bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (minute, flow)
  );
  `,
  // 5: the declined refunds the exception desk reads on every view (SQLite's migration 15 says why).
  `
  CREATE INDEX customer_refunds_failed ON customer_refunds(created_at) WHERE state = 'FAILED';
  `,
];
