import mqtt, { type MqttClient } from 'mqtt';
import {
  ALL_UP_FILTER,
  PROTOCOL_VERSION,
  decodeUp,
  downTopic,
  parseTopic,
  type AttemptState,
  type PayMessage,
  type ResultReason,
  type UpKind,
  type UpMessage,
} from '../../protocol/index.js';
import { Collector } from './collector.js';

/** What the scripted cloud does with a pay, chosen by the payment code. */
export type PayScript = 'success' | 'failed' | 'userpaying-then-success' | 'silence';

export interface UpRecord {
  deviceId: string;
  kind: UpKind;
  msg: UpMessage;
}

interface CloudAttempt {
  pay: PayMessage;
  state: AttemptState;
  reason?: ResultReason;
}

/**
 * A scripted stand-in for the cloud: an ordinary MQTT client on every box's up/ topics that answers
 * pay by script, cancel with REVERSED (or the recorded success), query with the recorded state or
 * CANCELLED/UNKNOWN_ATTEMPT (and a tombstone), and records everything it saw.
 */
export class FakeCloud {
  readonly up = new Collector<UpRecord>();
  readonly attempts = new Map<string, CloudAttempt>();
  readonly tombstones = new Set<string>();
  /** Times the cloud would have charged: one entry per pay it let through to a "gateway". */
  readonly charges: string[] = [];
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
    client.on('connect', () => void client.subscribeAsync(ALL_UP_FILTER, { qos: 1 }));
    await client.subscribeAsync(ALL_UP_FILTER, { qos: 1 });
    return cloud;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }

  /** Messages from a box that failed the protocol's schemas; every test expects none. */
  readonly invalid: string[] = [];

  private onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (t.direction !== 'up') return;
    let msg: UpMessage;
    try {
      msg = decodeUp(t.kind, payload);
    } catch (err) {
      this.invalid.push(`${topic}: ${(err as Error).message}`);
      return;
    }
    this.up.push({ deviceId: t.deviceId, kind: t.kind, msg });
    if (t.kind === 'pay') this.onPay(t.deviceId, msg as PayMessage);
    else if (t.kind === 'cancel') this.onCancel(t.deviceId, msg as UpMessage<'cancel'>);
    else if (t.kind === 'query') this.onQuery(t.deviceId, msg as UpMessage<'query'>);
  }

  private onPay(deviceId: string, pay: PayMessage): void {
    if (this.tombstones.has(pay.outTradeNo)) return;
    const known = this.attempts.get(pay.outTradeNo);
    if (known) return this.result(deviceId, known);
    const script = this.scripts[pay.code] ?? 'success';
    const a: CloudAttempt = { pay, state: 'PAYING' };
    this.attempts.set(pay.outTradeNo, a);
    if (script === 'success') this.finish(deviceId, a, 'SUCCESS', 'PAID');
    else if (script === 'failed') this.finish(deviceId, a, 'FAILED', 'INSUFFICIENT_FUNDS');
    else if (script === 'userpaying-then-success') {
      this.send(deviceId, 'progress', { outTradeNo: pay.outTradeNo, stage: 'USERPAYING' });
      setTimeout(() => this.finish(deviceId, a, 'SUCCESS', 'PAID'), 50);
    }
  }

  private onCancel(deviceId: string, c: UpMessage<'cancel'>): void {
    const a = this.attempts.get(c.outTradeNo);
    if (!a) {
      this.tombstones.add(c.outTradeNo);
      return this.send(deviceId, 'result', { outTradeNo: c.outTradeNo, saleId: c.saleId, amount: c.amount, currency: c.currency, state: 'CANCELLED', reason: c.reason });
    }
    if (a.state === 'PAYING') this.finish(deviceId, a, 'REVERSED', c.reason);
    else this.result(deviceId, a);
  }

  private onQuery(deviceId: string, q: UpMessage<'query'>): void {
    const a = this.attempts.get(q.outTradeNo);
    if (a) return this.result(deviceId, a);
    // Unknown: answer CANCELLED and tombstone, so a late copy of the pay can never charge.
    this.tombstones.add(q.outTradeNo);
    // A query does not carry the amount: the answer echoes the sale and puts a placeholder amount.
    this.send(deviceId, 'result', { outTradeNo: q.outTradeNo, saleId: q.saleId, amount: 1, currency: 'CNY', state: 'CANCELLED', reason: 'UNKNOWN_ATTEMPT' });
  }

  /** Settle a pay that the test left silent (e.g. after killing the box). */
  settle(deviceId: string, outTradeNo: string, state: 'SUCCESS' | 'FAILED'): void {
    const a = this.attempts.get(outTradeNo);
    if (!a) throw new Error(`cloud never saw ${outTradeNo}`);
    this.finish(deviceId, a, state, state === 'SUCCESS' ? 'PAID' : 'DECLINED');
  }

  private finish(deviceId: string, a: CloudAttempt, state: AttemptState, reason?: ResultReason): void {
    a.state = state;
    if (reason) a.reason = reason;
    if (state === 'SUCCESS') this.charges.push(a.pay.outTradeNo);
    this.result(deviceId, a);
  }

  private result(deviceId: string, a: CloudAttempt): void {
    const { outTradeNo, saleId, amount, currency } = a.pay;
    this.send(deviceId, 'result', { outTradeNo, saleId, amount, currency, state: a.state, ...(a.reason ? { reason: a.reason } : {}) });
  }

  private send(deviceId: string, kind: 'result' | 'progress', body: Record<string, unknown>): void {
    const msg = { v: PROTOCOL_VERSION, id: `c${++this.seq}`, ts: Date.now(), ...body };
    this.client.publish(downTopic(deviceId, kind), JSON.stringify(msg), { qos: 1 });
  }
}
