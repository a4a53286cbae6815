import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DOWN_SHAPES, deviceDownFilter, isFinal, parseTopic, upTopic, type DownKind, type UpKind } from '../../protocol/index.js';

/**
 * The cloud as the box sees it: the contract of the MQTT conversation from the box's side, written
 * once and run against the real cloud and against every stand-in the box's tests use (the mqtt.js
 * "abstract store" idea). What the box relies on, clause by clause:
 *
 * - a pay ends in one final result echoing its outTradeNo, saleId, amount and currency;
 * - a redelivered pay is answered with the recorded result and never charges again; the same
 *   outTradeNo with another amount is refused (ATTEMPT_CONFLICT);
 * - a query of an attempt the cloud never saw (it carries the money fields) is answered
 *   CANCELLED/UNKNOWN_ATTEMPT echoing them, and tombstones it: a later pay is refused
 *   (ATTEMPT_TOMBSTONED) and charges nothing; a query of a known attempt answers its state;
 * - a cancel reverses what is in flight (a charge is undone) and returns the recorded result once
 *   final; a cancel of an unknown attempt tombstones it;
 * - USERPAYING is reported as progress before the final result;
 * - a final result is re-sent each time the box subscribes until the box acks it, never after;
 * - a payload the cloud cannot read is answered on down/error with a protocol ErrorCode (and the
 *   message id when it can be read), and nothing is recorded;
 * - everything the cloud sends is valid by the protocol's strict (sending) schemas, in the shape of
 *   the version the box announced (v1 here: this box sends no heartbeat), never newer.
 *
 * "Nothing charged" is only ever asserted where the script would charge if the defence failed, and
 * "nothing arrived" only after a later answer on the same connection proves the cloud got that far.
 */

/** What the scripted wallet does with a payment code (each subject scripts these four codes). */
export type PayStory =
  /** charged at once */
  | 'pays'
  /** declined at once (INSUFFICIENT_FUNDS) */
  | 'declines'
  /** USERPAYING; charged when the test calls `confirm` */
  | 'waits'
  /** the customer is charged, but the wallet never answers the pay */
  | 'charges-silently';

export const STORY_CODES: Readonly<Record<PayStory, string>> = {
  pays: '134567890123450101',
  declines: '134567890123450102',
  waits: '134567890123450103',
  'charges-silently': '134567890123450104',
};

export interface BoxLogin {
  url: string;
  deviceId: string;
  password: string;
}

export interface CloudSubject {
  /** A box this cloud accepts (paired, for the real one), fresh for each clause. */
  newBox(): Promise<BoxLogin>;
  /** The customer of a `waits` payment confirms now. */
  confirm(deviceId: string, outTradeNo: string): void;
  /** Every money movement of one attempt, in order, from the subject's own money record (the gateway's ledger). */
  movements(outTradeNo: string): string[];
  close(): Promise<void>;
}

/** Far above any answer on a working machine; only a broken cloud waits this long. */
const ANSWER_MS = 10_000;

type Down = { kind: DownKind; msg: Record<string, any> };

/** The box's side of the connection: device id as client id and username, QoS 1, its own down/ filter. */
class BoxSide {
  readonly invalid: string[] = [];
  private received: Down[] = [];
  private wake: (() => void)[] = [];
  private client: MqttClient | undefined;
  private seq = 0;

  constructor(readonly login: BoxLogin) {}

  get deviceId(): string {
    return this.login.deviceId;
  }

  /**
   * A clean session: what arrives after a (re)connect was sent after it (a persistent session would
   * also deliver what was queued while away, which would blur "re-sent on reconnect").
   */
  async connect(): Promise<void> {
    const { url, deviceId, password } = this.login;
    const c = mqtt.connect(url, { clientId: deviceId, username: deviceId, password, clean: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: ANSWER_MS });
    c.on('message', (topic, payload) => this.onMessage(topic, payload));
    await new Promise<void>((resolve, reject) => {
      c.once('connect', () => resolve());
      c.once('error', reject);
      c.once('close', () => reject(new Error(`${deviceId}: connection closed before CONNACK`)));
    });
    (c.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    await c.subscribeAsync(deviceDownFilter(deviceId), { qos: 1 });
    this.client = c;
  }

  /** Drop the connection and come back; forgets what arrived before. */
  async reconnect(): Promise<void> {
    await this.client?.endAsync();
    this.received = [];
    await this.connect();
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const t = parseTopic(topic);
    if (t.direction !== 'down') return;
    let msg: unknown;
    try {
      msg = JSON.parse(payload.toString());
    } catch {
      this.invalid.push(`${topic}: not JSON`);
      return;
    }
    // This box speaks v1 and sends no heartbeat, so it announced nothing: it must be sent v1 shapes.
    const shape = DOWN_SHAPES[1]![t.kind];
    if (!shape) {
      this.invalid.push(`${topic}: protocol v1 has no down/${t.kind}`);
      return;
    }
    const strict = shape.safeParse(msg);
    if (!strict.success) this.invalid.push(`${topic}: ${strict.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')} in ${payload.toString().slice(0, 300)}`);
    this.received.push({ kind: t.kind, msg: msg as Record<string, any> });
    for (const w of this.wake.splice(0)) w();
  }

  envelope() {
    return { v: 1 as const, id: `cbs-${++this.seq}`, ts: Date.now() };
  }

  async send(kind: UpKind, body: Record<string, unknown>): Promise<void> {
    await this.sendRaw(kind, JSON.stringify({ ...this.envelope(), ...body }));
  }

  async sendRaw(kind: UpKind, payload: string): Promise<void> {
    await this.client!.publishAsync(upTopic(this.deviceId, kind), payload, { qos: 1 });
  }

  /** The first `kind` message (already here or still to come) matching `match`; taken out of the inbox. */
  async next(kind: DownKind, match: (m: Record<string, any>) => boolean, what: string, timeoutMs = ANSWER_MS): Promise<Record<string, any>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex((r) => r.kind === kind && match(r.msg));
      if (i >= 0) return this.received.splice(i, 1)[0]!.msg;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.deviceId}: no down/${kind} (${what}) within ${timeoutMs} ms; inbox ${JSON.stringify(this.received).slice(0, 800)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** What is in the inbox now (not taken out). */
  inbox(kind: DownKind, match: (m: Record<string, any>) => boolean = () => true): Record<string, any>[] {
    return this.received.filter((r) => r.kind === kind && match(r.msg)).map((r) => r.msg);
  }
}

export function describeCloudAsBoxSeesIt(name: string, makeSubject: () => Promise<CloudSubject>): void {
  describe(`the cloud as the box sees it: ${name}`, () => {
    let subject: CloudSubject;
    let box: BoxSide;

    beforeEach(async () => {
      subject = await makeSubject();
      box = new BoxSide(await subject.newBox());
      await box.connect();
    });
    afterEach(async () => {
      await box?.close();
      await subject?.close();
      expect(box.invalid, 'every message the cloud sent is valid by the strict schemas').toEqual([]);
    });

    /** The money fields of attempt `n` of this box, with an amount no placeholder could match. */
    const money = (n: number, amount: number) => ({ outTradeNo: `${box.deviceId}-${n}`, saleId: `${box.deviceId}-s${n}`, amount, currency: 'CNY' as const });
    const pay = (m: ReturnType<typeof money>, story: PayStory) => box.send('pay', { ...m, saleRef: `R-${m.outTradeNo}`, code: STORY_CODES[story], wallet: 'wechat' });
    const of = (m: { outTradeNo: string }) => (x: Record<string, any>) => x.outTradeNo === m.outTradeNo;
    const finalOf = (m: { outTradeNo: string }) => (x: Record<string, any>) => x.outTradeNo === m.outTradeNo && isFinal(x.state);
    /** A round trip on this connection: once its answer is here, everything the cloud sent before it is too. */
    const roundTrip = async (n: number) => {
      const m = money(n, 1);
      await box.send('query', m);
      await box.next('result', of(m), 'the answer to a later query');
    };

    it('pay → one final result with the same outTradeNo, saleId, amount and currency; charged that amount', async () => {
      const m = money(1, 1201);
      await pay(m, 'pays');
      expect(await box.next('result', finalOf(m), 'final result')).toMatchObject({ ...m, state: 'SUCCESS' });
      expect(subject.movements(m.outTradeNo)).toEqual(['charge']);
    });

    it('a declined pay → FAILED with a reason, echoing the money fields', async () => {
      const m = money(2, 1202);
      await pay(m, 'declines');
      expect(await box.next('result', finalOf(m), 'final result')).toMatchObject({ ...m, state: 'FAILED', reason: expect.any(String) });
    });

    it('a redelivered pay (new message id) → the recorded result again, charged once', async () => {
      const m = money(3, 1203);
      await pay(m, 'pays');
      await box.next('result', finalOf(m), 'first result');
      await pay(m, 'pays');
      expect(await box.next('result', of(m), 'answer to the redelivery')).toMatchObject({ ...m, state: 'SUCCESS' });
      expect(subject.movements(m.outTradeNo)).toEqual(['charge']);
    });

    it('the same outTradeNo with another amount → down/error ATTEMPT_CONFLICT; the record keeps the first', async () => {
      const m = money(4, 1204);
      await pay(m, 'pays');
      await box.next('result', finalOf(m), 'first result');
      await pay({ ...m, amount: 9999 }, 'pays');
      expect(await box.next('error', of(m), 'conflict')).toMatchObject({ code: 'ATTEMPT_CONFLICT', outTradeNo: m.outTradeNo });
      await box.send('query', m);
      expect(await box.next('result', of(m), 'recorded state')).toMatchObject({ ...m, state: 'SUCCESS' });
      expect(subject.movements(m.outTradeNo)).toEqual(['charge']);
    });

    it('query of an unknown outTradeNo → CANCELLED/UNKNOWN_ATTEMPT echoing its amount; a later pay is refused and charges nothing', async () => {
      const m = money(5, 4321);
      await box.send('query', m);
      expect(await box.next('result', of(m), 'tombstone')).toMatchObject({ ...m, state: 'CANCELLED', reason: 'UNKNOWN_ATTEMPT' });
      await pay(m, 'pays'); // a code that charges: only the tombstone stands in its way
      expect(await box.next('error', of(m), 'refusal')).toMatchObject({ code: 'ATTEMPT_TOMBSTONED', outTradeNo: m.outTradeNo });
      expect(await box.next('result', of(m), 'recorded state')).toMatchObject({ ...m, state: 'CANCELLED' });
      expect(subject.movements(m.outTradeNo)).toEqual([]);
    });

    it('a cancel while the pay is in flight (the customer already charged) → REVERSED with the cancel reason; the charge is undone', async () => {
      const m = money(6, 1206);
      await pay(m, 'charges-silently');
      await box.send('query', m); // as the box asks after a restart: the answer proves the pay is recorded
      expect(await box.next('result', of(m), 'state in flight')).toMatchObject({ ...m, state: 'PAYING' });
      await box.send('cancel', { ...m, reason: 'CASHIER_CANCEL' });
      expect(await box.next('result', finalOf(m), 'final result', 20_000)).toMatchObject({ ...m, state: 'REVERSED', reason: 'CASHIER_CANCEL' });
      expect(subject.movements(m.outTradeNo)).toEqual(['charge', 'reverse']);
    });

    it('a cancel after the final result → the recorded result; nothing is reversed', async () => {
      const m = money(7, 1207);
      await pay(m, 'pays');
      await box.next('result', finalOf(m), 'first result');
      await box.send('cancel', { ...m, reason: 'CASHIER_CANCEL' });
      expect(await box.next('result', of(m), 'answer to the cancel')).toMatchObject({ ...m, state: 'SUCCESS' });
      expect(subject.movements(m.outTradeNo)).toEqual(['charge']);
    });

    it('a cancel of an unknown attempt → CANCELLED with its reason; a later pay is refused and charges nothing', async () => {
      const m = money(8, 1208);
      await box.send('cancel', { ...m, reason: 'DEADLINE' });
      expect(await box.next('result', of(m), 'tombstone')).toMatchObject({ ...m, state: 'CANCELLED', reason: 'DEADLINE' });
      await pay(m, 'pays');
      expect(await box.next('error', of(m), 'refusal')).toMatchObject({ code: 'ATTEMPT_TOMBSTONED', outTradeNo: m.outTradeNo });
      expect(subject.movements(m.outTradeNo)).toEqual([]);
    });

    it('USERPAYING: progress first, then the final result once the customer confirms', async () => {
      const m = money(9, 1209);
      await pay(m, 'waits');
      expect(await box.next('progress', of(m), 'progress')).toMatchObject({ outTradeNo: m.outTradeNo, stage: 'USERPAYING' });
      subject.confirm(box.deviceId, m.outTradeNo);
      expect(await box.next('result', finalOf(m), 'final result')).toMatchObject({ ...m, state: 'SUCCESS' });
      expect(subject.movements(m.outTradeNo)).toEqual(['charge']);
    });

    it('a final result is re-sent after every reconnect until the box acks it, and never after', async () => {
      const x = money(10, 1210);
      await pay(x, 'pays');
      await box.next('result', finalOf(x), 'result');
      for (const round of [1, 2]) {
        await box.reconnect();
        expect(await box.next('result', of(x), `re-sent after reconnect ${round}`)).toMatchObject({ ...x, state: 'SUCCESS' });
      }
      await box.send('ack', { outTradeNo: x.outTradeNo, state: 'SUCCESS' });
      const y = money(11, 1211);
      await pay(y, 'pays');
      await box.next('result', finalOf(y), 'result of a later attempt');
      await box.reconnect();
      // y, unacked, is re-sent in the same pass x would be (oldest first); a later answer closes the window.
      expect(await box.next('result', of(y), 'y re-sent')).toMatchObject({ ...y, state: 'SUCCESS' });
      await roundTrip(12);
      expect(box.inbox('result', of(x))).toEqual([]);
    });

    it('a payload the cloud cannot read → down/error with its ErrorCode (and the message id when readable); nothing recorded', async () => {
      const m = money(13, 1213);
      await box.sendRaw('pay', 'not json {');
      expect(await box.next('error', (e) => e.code === 'BAD_JSON', 'BAD_JSON')).toMatchObject({ code: 'BAD_JSON' });
      await box.sendRaw('pay', JSON.stringify({ v: 1, id: 'bad-pay-1', ts: Date.now(), ...m, saleRef: 'R13', wallet: 'wechat' })); // no code
      expect(await box.next('error', (e) => e.refId === 'bad-pay-1', 'SCHEMA_INVALID')).toMatchObject({ code: 'SCHEMA_INVALID' });
      await box.sendRaw('query', JSON.stringify({ v: 1, id: 'bad-query-1', ts: Date.now(), ...m, amount: 12.13 }));
      expect(await box.next('error', (e) => e.refId === 'bad-query-1', 'SCHEMA_INVALID')).toMatchObject({ code: 'SCHEMA_INVALID' });
      // Nothing was recorded: the attempt is still unknown.
      await box.send('query', m);
      expect(await box.next('result', of(m), 'tombstone')).toMatchObject({ ...m, state: 'CANCELLED', reason: 'UNKNOWN_ATTEMPT' });
    });
  });
}
