import { encodeUp, upTopic, type UpToSend } from '../protocol/index.js';
import type { Clock } from '../protocol/clock.js';
import type { Journal } from './journal.js';
import type { SendKind } from './payment.js';

/**
 * The SQLite outbox: the durable copy of everything that must reach the cloud (pay, cancel, query,
 * ack). Rows are added in the same transaction as the state change that needs them, published in
 * order, and removed only after the broker's PUBACK. mqtt.js keeps an in-flight message in memory
 * across a reconnect; after a restart the outbox is the only copy, so it is published again.
 */
export interface OutboxRow {
  id: number;
  kind: SendKind;
  outTradeNo: string;
  payload: string;
}

export class Outbox {
  constructor(private readonly journal: Journal) {}

  /** Inside the caller's transaction. The payload is validated here, so a bug never reaches the wire. */
  add(kind: SendKind, outTradeNo: string, message: unknown, now: number): void {
    const payload = encodeUp(kind, message as UpToSend<SendKind>);
    this.journal.sql('INSERT INTO outbox (kind, out_trade_no, payload, created_at) VALUES (?, ?, ?, ?)').run(kind, outTradeNo, payload, now);
  }

  /** A pay not yet delivered must not leave once its attempt is cancelled or the box restarted. */
  withdrawPay(outTradeNo: string): void {
    this.journal.sql("DELETE FROM outbox WHERE kind = 'pay' AND out_trade_no = ?").run(outTradeNo);
  }

  head(): OutboxRow | undefined {
    return this.journal.sql('SELECT id, kind, out_trade_no AS outTradeNo, payload FROM outbox ORDER BY id LIMIT 1').get() as OutboxRow | undefined;
  }

  remove(id: number): void {
    this.journal.sql('DELETE FROM outbox WHERE id = ?').run(id);
  }

  depth(): number {
    return (this.journal.sql('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
  }

  /**
   * At start: queries from the last run are stale (the reconnect queries every open attempt again).
   * Pays are withdrawn by the state machine's restart step, which also logs each one.
   */
  dropStaleQueries(): void {
    this.journal.sql("DELETE FROM outbox WHERE kind = 'query'").run();
  }
}

export interface Publisher {
  readonly connected: boolean;
  publish(topic: string, payload: string, done: (err?: Error) => void): void;
}

export interface OutboxPumpOptions {
  outbox: Outbox;
  publisher: Publisher;
  deviceId: string;
  /** Called after PUBACK; the caller removes the row (and notes a delivered pay) in one write. */
  onDelivered(row: OutboxRow): void;
  onError(row: OutboxRow, err: Error): void;
  /**
   * No PUBACK within `stallMs` on a live connection (a lost packet): the caller drops the connection,
   * and mqtt.js re-sends the in-flight message on the next one. Without this one lost PUBACK would
   * block every later payment.
   */
  onStall(row: OutboxRow): void;
  clock: Clock;
  stallMs: number;
}

/**
 * Stop-and-wait: one row in flight at a time, so the cloud sees pay before cancel before ack even
 * across reconnects, and a row is never in mqtt.js's memory and re-published by us at once.
 * Woken by commits and by (re)connect; it never polls.
 */
export class OutboxPump {
  private inFlight: number | null = null;
  private stallTimer: unknown = null;
  private stopped = false;
  /** Bumped on every new connection, so a callback from a publish on an old one is ignored. */
  private generation = 0;

  constructor(private readonly opts: OutboxPumpOptions) {}

  kick(): void {
    if (this.stopped || this.inFlight !== null || !this.opts.publisher.connected) return;
    const row = this.opts.outbox.head();
    if (!row) return;
    this.inFlight = row.id;
    this.armStall(row);
    const generation = this.generation;
    this.opts.publisher.publish(upTopic(this.opts.deviceId, row.kind), row.payload, (err) => {
      if (generation === this.generation) this.settled(row, err);
    });
  }

  /**
   * A new connection: the row in flight on the old one may never be acknowledged (mqtt.js does not
   * re-send it when the link died mid-PUBACK; seen in the demo's Wi-Fi drop), so start again from
   * the head. A duplicate is harmless: the cloud is idempotent on every message it receives.
   */
  restart(): void {
    this.generation++;
    this.inFlight = null;
    this.opts.clock.clearTimeout(this.stallTimer);
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    this.opts.clock.clearTimeout(this.stallTimer);
  }

  private armStall(row: OutboxRow): void {
    this.opts.clock.clearTimeout(this.stallTimer);
    this.stallTimer = this.opts.clock.setTimeout(() => {
      if (this.inFlight !== row.id || this.stopped) return;
      // Still waiting: keep watching, and tell the owner each time the wait crosses stallMs.
      if (this.opts.publisher.connected) this.opts.onStall(row);
      this.armStall(row);
    }, this.opts.stallMs);
  }

  private settled(row: OutboxRow, err?: Error): void {
    this.inFlight = null;
    this.opts.clock.clearTimeout(this.stallTimer);
    if (this.stopped) return;
    if (err) {
      // Left in the outbox; the next connect publishes it again.
      this.opts.onError(row, err);
      return;
    }
    this.opts.onDelivered(row);
    this.kick();
  }
}
