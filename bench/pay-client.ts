import { deviceDownFilter, downTopic, upTopic, type DeviceAttemptRecord, type ResultMessage } from '../protocol/index.js';
import { validCode } from '../simulator/devices/codes.js';
import { createRandom, type Random } from '../simulator/random.js';
import { seenRecord } from './cloud-kit.js';
import { LiteClient } from './lite-mqtt.js';

/**
 * A box reduced to its protocol: a LiteClient with the device's credentials that publishes `up/pay`,
 * waits for the final `down/result`, acks it (`up/ack`, as the agent does) and remembers what it saw
 * in the shape of a box journal export, for reconciliation.
 */
export class PayingBox {
  readonly client: LiteClient;
  readonly seen: DeviceAttemptRecord[] = [];
  private seq = 0;
  private readonly random: Random;
  private readonly waiting = new Map<string, { resolve: (r: ResultMessage) => void; saleRef: string; createdAt: number }>();
  /** Results for attempts this client is not waiting for (must stay empty, unless they are `duplicates`). */
  unexpected = 0;
  /**
   * Of `unexpected`: a final result again for an attempt already seen final, in the same state. The
   * cloud sends unacknowledged results again when it thinks a box (re)connected — on an external
   * broker, a worker that has just started takes each box's first message for that
   * (cloud/broker/heartbeat-presence.ts). Acknowledged again, as the agent does.
   */
  duplicates = 0;
  private readonly finalStates = new Map<string, string>();
  heartbeats = 0;

  constructor(
    readonly deviceId: string,
    secret: string,
    host: string,
    port: number,
    opts: { keepaliveS?: number; seqBase?: number; localAddress?: string } = {},
  ) {
    const from = opts.localAddress ? { localAddress: opts.localAddress } : {};
    this.client = new LiteClient({ host, port, clientId: deviceId, username: deviceId, password: secret, clean: true, keepaliveS: opts.keepaliveS ?? 0, ...from });
    this.seq = opts.seqBase ?? 0;
    this.random = createRandom(`paying-box-${deviceId}`);
    this.client.onMessage = (topic, payload) => this.onMessage(topic, payload);
  }

  async connect(): Promise<void> {
    await this.client.connect();
    await this.client.subscribe(deviceDownFilter(this.deviceId));
  }

  /** One payment, closed loop: resolves with the result once it is final (and acked). */
  pay(amount = 100 + this.random.int(0, 9_900)): Promise<ResultMessage> {
    const n = ++this.seq;
    const outTradeNo = `${this.deviceId}-${n}`;
    const saleRef = `R${n}`;
    const createdAt = Date.now();
    const msg = { v: 1, id: `p${n}`, ts: createdAt, outTradeNo, saleId: `${this.deviceId}-s${n}`, saleRef, amount, currency: 'CNY', code: validCode(this.random, 'wechat'), wallet: 'wechat' };
    const done = new Promise<ResultMessage>((resolve) => this.waiting.set(outTradeNo, { resolve, saleRef, createdAt }));
    void this.client.publish(upTopic(this.deviceId, 'pay'), JSON.stringify(msg), 1);
    return done;
  }

  heartbeat(pendingAttempts: number): Promise<void> {
    this.heartbeats++;
    const ts = Date.now();
    const msg = { v: 1, id: `hb-${ts}-${this.heartbeats}`, ts, status: { firmware: 'bench', uptimeS: 0, outboxDepth: 0, pendingAttempts, scanner: 'open', ecr: 'open' } };
    return this.client.publish(upTopic(this.deviceId, 'heartbeat'), JSON.stringify(msg), 1);
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (topic !== downTopic(this.deviceId, 'result')) return;
    const r = JSON.parse(payload.toString()) as ResultMessage;
    const w = this.waiting.get(r.outTradeNo);
    if (!w) {
      this.unexpected++;
      if (this.finalStates.get(r.outTradeNo) === r.state) {
        this.duplicates++;
        this.ack(r);
      }
      return;
    }
    if (!['SUCCESS', 'FAILED', 'CANCELLED', 'REVERSED', 'REFUNDED'].includes(r.state)) return;
    this.waiting.delete(r.outTradeNo);
    this.finalStates.set(r.outTradeNo, r.state);
    this.seen.push(seenRecord(r, w.saleRef, w.createdAt));
    this.ack(r);
    w.resolve(r);
  }

  private ack(r: ResultMessage): void {
    void this.client.publish(upTopic(this.deviceId, 'ack'), JSON.stringify({ v: 1, id: `a${r.outTradeNo.slice(-12)}`, ts: Date.now(), outTradeNo: r.outTradeNo, state: r.state }), 1);
  }
}
