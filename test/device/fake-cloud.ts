import mqtt, { type MqttClient } from 'mqtt';
import {
  ALL_UP_FILTER,
  ErrorCode,
  MIN_PROTOCOL_VERSION,
  OFFLINE_WILL_ID,
  decodeUp,
  downShapeVersion,
  downTopic,
  encodeDown,
  isFinal,
  isProtocolError,
  parseTopic,
  resultForVersion,
  salvageMessageId,
  type AttemptState,
  type Currency,
  type DownToSend,
  type FinalState,
  type PayMessage,
  type Receipt,
  type ResultReason,
  type UpKind,
  type UpMessage,
} from '../../protocol/index.js';
import { Collector } from './collector.js';

/**
 * What the scripted cloud does with a new pay, chosen by the payment code:
 * - `success`: charged and SUCCESS at once; `failed`: FAILED (INSUFFICIENT_FUNDS), never charged;
 * - `userpaying-then-success`: progress USERPAYING, SUCCESS 50 ms later;
 * - `userpaying`: progress USERPAYING, then pending until `settle` (the customer decides);
 * - `silence`: pending, nothing said, never charged unless `settle`d;
 * - `charge-and-hold`: the customer is charged but the cloud says nothing (a wallet that never
 *   answers); only a cancel, which reverses the charge, ends it;
 * - `success-with-receipt`: as `success`, and the wallet's receipt (protocol v2) is recorded;
 * - `amount-mismatch`: the wallet charges 9 fen more than the sale: FAILED/AMOUNT_MISMATCH with the
 *   receipt of that charge, and the charge is reversed.
 */
export type PayScript = 'success' | 'failed' | 'userpaying-then-success' | 'userpaying' | 'silence' | 'charge-and-hold' | 'success-with-receipt' | 'amount-mismatch';

/** What `success-with-receipt` records: the discount is the amount's last two digits. */
export function scriptedReceipt(outTradeNo: string, amount: number, paidAt: number): Receipt {
  const discount = amount % 100;
  return { walletTradeNo: `42000${outTradeNo.replace(/\D/g, '')}`, paidAt, total: amount, buyerPaid: amount - discount, discount };
}

export interface UpRecord {
  deviceId: string;
  kind: UpKind;
  msg: UpMessage;
}

export interface FakeLedgerEntry {
  outTradeNo: string;
  kind: 'charge' | 'reverse';
  amount: number;
}

interface CloudAttempt {
  deviceId: string;
  outTradeNo: string;
  saleId: string;
  amount: number;
  currency: Currency;
  state: AttemptState;
  reason?: ResultReason;
  /** The wallet's receipt, once it reported a payment. */
  receipt?: Receipt;
  /** The final state the box acknowledged; results are re-sent on every (re)subscribe until then. */
  acked: FinalState | null;
}

/**
 * A scripted stand-in for the cloud, for the box's tests: an ordinary MQTT client on every box's up/
 * topics that keeps one record per attempt and answers as the real cloud does — it passes the same
 * conformance suite (test/conformance/cloud-as-box-sees-it.ts): pay by script, a repeated pay with
 * the recorded result, a pay that contradicts the record with ATTEMPT_CONFLICT, a pay after a
 * tombstone with ATTEMPT_TOMBSTONED and the CANCELLED result; cancel reverses what is in flight;
 * query answers the record, or tombstones an unknown attempt (CANCELLED/UNKNOWN_ATTEMPT, echoing the
 * query's own money fields); a bad payload gets a down/error with its ErrorCode; final results are
 * re-sent each time the box subscribes until it acks them. Money movements go to `ledger`. Like the
 * real cloud it answers each box in the newest shape not newer than its heartbeat's `v` (v1 until
 * it sent one), built for that version (`resultForVersion`) and checked by `encodeDown`.
 */
export class FakeCloud {
  readonly up = new Collector<UpRecord>();
  readonly attempts = new Map<string, CloudAttempt>();
  readonly tombstones = new Set<string>();
  /** Every money movement, in order. */
  readonly ledger: FakeLedgerEntry[] = [];
  /** Messages from a box that failed the protocol's schemas; every test expects none. */
  readonly invalid: string[] = [];
  /** The protocol version each box announced in its latest heartbeat. */
  readonly announced = new Map<string, number>();
  private seq = 0;

  private constructor(
    private readonly client: MqttClient,
    private readonly scripts: Record<string, PayScript>,
  ) {}

  static async start(url: string, scripts: Record<string, PayScript>): Promise<FakeCloud> {
    const client = await mqtt.connectAsync(url, { clientId: `fake-cloud-${process.pid}-${Date.now()}`, reconnectPeriod: 100, clean: true });
    (client.stream as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
    client.on('connect', () => (client.stream as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true));
    const cloud = new FakeCloud(client, scripts);
    client.on('message', (topic, payload) => cloud.onMessage(topic, payload));
    // aedes announces every granted subscription on $SYS: the fake's cue that a box (re)subscribed.
    const filters = [ALL_UP_FILTER, '$SYS/+/new/subscribes'];
    client.on('connect', () => void client.subscribeAsync(filters, { qos: 1 }));
    await client.subscribeAsync(filters, { qos: 1 });
    return cloud;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }

  /** outTradeNos charged, in order (a charge later reversed stays listed: see `net`). */
  get charges(): string[] {
    return this.ledger.filter((e) => e.kind === 'charge').map((e) => e.outTradeNo);
  }

  /** Money that stays charged for one attempt. */
  net(outTradeNo: string): number {
    return this.ledger.filter((e) => e.outTradeNo === outTradeNo).reduce((s, e) => s + (e.kind === 'charge' ? e.amount : -e.amount), 0);
  }

  /** Settle a pending pay (silence, userpaying, or after killing the box): the customer decided. */
  settle(deviceId: string, outTradeNo: string, state: 'SUCCESS' | 'FAILED'): void {
    const a = this.attempts.get(outTradeNo);
    if (!a || a.deviceId !== deviceId) throw new Error(`cloud never saw ${outTradeNo} from ${deviceId}`);
    if (a.state !== 'PAYING') return;
    if (state === 'SUCCESS' && this.net(outTradeNo) === 0) this.move(a, 'charge');
    this.finish(a, state, state === 'SUCCESS' ? 'PAID' : 'DECLINED');
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic.startsWith('$SYS/')) return this.onSubscribed(payload);
    let deviceId: string | undefined;
    let kind: UpKind | undefined;
    let msg: UpMessage;
    try {
      const t = parseTopic(topic);
      if (t.direction !== 'up') return;
      deviceId = t.deviceId;
      kind = t.kind;
      msg = decodeUp(t.kind, payload);
    } catch (err) {
      this.invalid.push(`${topic}: ${(err as Error).message}`);
      if (deviceId && isProtocolError(err)) {
        const refId = salvageMessageId(payload);
        this.send(deviceId, 'error', { code: err.code, message: err.message.slice(0, 200), ...(refId ? { refId } : {}) }, 0);
      }
      return;
    }
    this.up.push({ deviceId, kind, msg });
    if (kind === 'heartbeat' && msg.id !== OFFLINE_WILL_ID) this.announced.set(deviceId, msg.v);
    if (kind === 'pay') this.onPay(deviceId, msg as PayMessage);
    else if (kind === 'cancel') this.onCancel(deviceId, msg as UpMessage<'cancel'>);
    else if (kind === 'query') this.onQuery(deviceId, msg as UpMessage<'query'>);
    else if (kind === 'ack') this.onAck(msg as UpMessage<'ack'>);
  }

  private onPay(deviceId: string, pay: PayMessage): void {
    const known = this.attempts.get(pay.outTradeNo);
    if (known) {
      if (conflicts(known, pay)) return this.conflict(known);
      if (known.state === 'CANCELLED') {
        this.error(known, ErrorCode.ATTEMPT_TOMBSTONED, `${known.outTradeNo} was cancelled before it was paid; this pay is refused and nothing was charged`);
      }
      return this.result(known);
    }
    const script = this.scripts[pay.code] ?? 'success';
    const a = this.record(deviceId, pay, 'PAYING');
    if (script === 'success') {
      this.move(a, 'charge');
      this.finish(a, 'SUCCESS', 'PAID');
    } else if (script === 'failed') this.finish(a, 'FAILED', 'INSUFFICIENT_FUNDS');
    else if (script === 'userpaying' || script === 'userpaying-then-success') {
      this.send(deviceId, 'progress', { outTradeNo: pay.outTradeNo, stage: 'USERPAYING' });
      if (script === 'userpaying-then-success') setTimeout(() => this.settle(deviceId, a.outTradeNo, 'SUCCESS'), 50);
    } else if (script === 'charge-and-hold') this.move(a, 'charge');
    else if (script === 'success-with-receipt') {
      this.move(a, 'charge');
      a.receipt = scriptedReceipt(a.outTradeNo, a.amount, Date.now());
      this.finish(a, 'SUCCESS', 'PAID');
    } else if (script === 'amount-mismatch') {
      const charged = a.amount + 9;
      this.move(a, 'charge', charged);
      a.receipt = { walletTradeNo: `2026${a.outTradeNo.replace(/\D/g, '')}`, paidAt: Date.now(), total: charged };
      this.finish(a, 'FAILED', 'AMOUNT_MISMATCH');
      this.move(a, 'reverse', charged);
    }
  }

  private onCancel(deviceId: string, c: UpMessage<'cancel'>): void {
    // As the real cloud does: a reason this side does not know is served as RECOVERY_CANCEL.
    const reason = c.reason === 'CASHIER_CANCEL' || c.reason === 'DEADLINE' ? c.reason : 'RECOVERY_CANCEL';
    const a = this.attempts.get(c.outTradeNo);
    if (!a) return this.tombstone(deviceId, c, reason);
    if (conflicts(a, c)) return this.conflict(a);
    if (a.state !== 'PAYING') return this.result(a);
    if (this.net(a.outTradeNo) > 0) this.move(a, 'reverse');
    this.finish(a, 'REVERSED', reason);
  }

  private onQuery(deviceId: string, q: UpMessage<'query'>): void {
    const a = this.attempts.get(q.outTradeNo);
    if (!a) return this.tombstone(deviceId, q, 'UNKNOWN_ATTEMPT');
    if (a.saleId !== q.saleId) return this.conflict(a);
    this.result(a);
  }

  private onAck(m: UpMessage<'ack'>): void {
    const a = this.attempts.get(m.outTradeNo);
    if (a && isFinal(a.state) && a.state === m.state) a.acked = a.state as FinalState;
  }

  /** A box subscribed: everything final it has not acknowledged goes out again, oldest first. */
  private onSubscribed(payload: Buffer): void {
    let deviceId: unknown;
    try {
      deviceId = (JSON.parse(payload.toString()) as { clientId?: unknown }).clientId;
    } catch {
      return;
    }
    for (const a of this.attempts.values()) {
      if (a.deviceId === deviceId && isFinal(a.state) && a.acked !== a.state) this.result(a);
    }
  }

  /** Never seen: recorded CANCELLED with the message's own money fields, so a late pay is refused. */
  private tombstone(deviceId: string, m: UpMessage<'query' | 'cancel'>, reason: ResultReason): void {
    this.tombstones.add(m.outTradeNo);
    const a = this.record(deviceId, m, 'CANCELLED');
    a.reason = reason;
    this.result(a);
  }

  private record(deviceId: string, m: { outTradeNo: string; saleId: string; amount: number; currency: Currency }, state: AttemptState): CloudAttempt {
    const a: CloudAttempt = { deviceId, outTradeNo: m.outTradeNo, saleId: m.saleId, amount: m.amount, currency: m.currency, state, acked: null };
    this.attempts.set(a.outTradeNo, a);
    return a;
  }

  private finish(a: CloudAttempt, state: FinalState, reason?: ResultReason): void {
    a.state = state;
    if (reason) a.reason = reason;
    this.result(a);
  }

  private move(a: CloudAttempt, kind: FakeLedgerEntry['kind'], amount = a.amount): void {
    this.ledger.push({ outTradeNo: a.outTradeNo, kind, amount });
  }

  private conflict(a: CloudAttempt): void {
    this.error(a, ErrorCode.ATTEMPT_CONFLICT, `${a.outTradeNo} is already recorded with another sale or amount; nothing was charged for this message`);
  }

  private error(a: CloudAttempt, code: ErrorCode, message: string): void {
    this.send(a.deviceId, 'error', { code, message, outTradeNo: a.outTradeNo }, 0);
  }

  private result(a: CloudAttempt): void {
    const { outTradeNo, saleId, amount, currency, state, reason, receipt } = a;
    this.send(a.deviceId, 'result', { outTradeNo, saleId, amount, currency, state, ...(reason ? { reason } : {}), ...(receipt ? { receipt } : {}) });
  }

  /** In the shape of the version the box announced, never newer: strict, as the real cloud's `send`. */
  private send(deviceId: string, kind: 'result' | 'progress' | 'error', body: Record<string, unknown>, qos: 0 | 1 = 1): void {
    const v = downShapeVersion(this.announced.get(deviceId) ?? MIN_PROTOCOL_VERSION);
    const msg = { v, id: `c${++this.seq}`, ts: Date.now(), ...body } as DownToSend;
    const payload = kind === 'result' ? encodeDown(kind, resultForVersion(msg as DownToSend<'result'>, v), v) : encodeDown(kind, msg as DownToSend<typeof kind>, v);
    this.client.publish(downTopic(deviceId, kind), payload, { qos });
  }
}

function conflicts(a: CloudAttempt, m: { saleId: string; amount: number; currency: Currency }): boolean {
  return a.saleId !== m.saleId || a.amount !== m.amount || a.currency !== m.currency;
}
