import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SerialPortMock } from 'serialport';
import { ALL_UP_FILTER, decodeDown, downTopic, parseTopic, PROTOCOL_VERSION, UP_SCHEMAS, type DownKind, type UpKind } from '../../protocol/index.js';
import { step } from '../../device/payment.js';
import { attempt, bookWithAttempt, ecrLines, only, sends, T0 } from './payment-fixtures.js';
import { AgentHarness, writeCredentials } from './agent-harness.js';
import { TestBroker } from './broker.js';
import { Collector } from './collector.js';
import { useTempDirs } from './temp-dir.js';
import { waitUntil } from './wait-until.js';

/**
 * Today's box (the real agent: journal, payment machine, outbox, MQTT link) against a cloud newer than
 * it: one that puts fields and enum values on its messages that this box has never heard of. The
 * box must read what it knows, take a success as a success, and never take an unknown state for one.
 */
const NEWER = PROTOCOL_VERSION + 1;
const tempDir = useTempDirs();
const CODE = '134567890123450001';

type Up = { deviceId: string; kind: UpKind; msg: Record<string, unknown> };
type Answer = (up: Up, cloud: NewerCloud) => void;

/** A stand-in for a future cloud: a plain MQTT client that answers as its test says, adding extras to everything. */
class NewerCloud {
  readonly up = new Collector<Up>();
  answer: Answer = () => undefined;
  private seq = 0;

  private constructor(private readonly client: MqttClient) {
    client.on('message', (topic, payload) => {
      const t = parseTopic(topic);
      if (t.direction !== 'up') return;
      const up = { deviceId: t.deviceId, kind: t.kind, msg: JSON.parse(payload.toString()) as Record<string, unknown> };
      this.up.push(up);
      this.answer(up, this);
    });
  }

  static async start(url: string): Promise<NewerCloud> {
    const client = await mqtt.connectAsync(url, { clientId: `newer-cloud-${process.pid}`, reconnectPeriod: 0, clean: true });
    await client.subscribeAsync(ALL_UP_FILTER, { qos: 1 });
    return new NewerCloud(client);
  }

  send(deviceId: string, kind: DownKind, body: Record<string, unknown>, v: number = PROTOCOL_VERSION): void {
    const extras = { receipt: { no: `RC-${this.seq}`, lines: [] }, channel: 'wxp-sub-7', traceId: 'f00d' };
    const msg = { v, id: `nc-${++this.seq}`, ts: Date.now(), ...extras, ...body };
    this.client.publish(downTopic(deviceId, kind), JSON.stringify(msg), { qos: 1 });
  }

  result(up: Up, state: string, extra: Record<string, unknown> = {}, v: number = PROTOCOL_VERSION): void {
    const { outTradeNo, saleId, amount, currency } = up.msg;
    this.send(up.deviceId, 'result', { outTradeNo, saleId, amount, currency, state, wallet: 'wechat', ...extra }, v);
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

let broker: TestBroker;
let cloud: NewerCloud;
let box: AgentHarness;

/** Nothing the box sent may carry anything but its own version's contract: strict on sending. */
function expectStrictSends(): void {
  for (const u of cloud.up.items) expect(UP_SCHEMAS[u.kind].safeParse(u.msg).success, `${u.kind} ${JSON.stringify(u.msg)}`).toBe(true);
}

describe("today's box against a newer cloud", () => {
  beforeEach(async () => {
    broker = await TestBroker.start();
    cloud = await NewerCloud.start(broker.url);
    const dir = tempDir();
    writeCredentials(dir, 'box1', broker.url);
    box = new AgentHarness(dir, { paymentDeadlineMs: 30_000, recheckMs: 300, heartbeatIntervalS: 30 });
    await box.start();
    await box.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up');
  });

  afterEach(async () => {
    await box?.stop();
    await cloud.close();
    await broker.close();
    SerialPortMock.binding.reset();
  });

  it('SUCCESS with extra fields, an unknown reason and an unknown progress stage: PAID to the register, acked', async () => {
    cloud.answer = (up, c) => {
      if (up.kind !== 'pay') return;
      c.send(up.deviceId, 'progress', { outTradeNo: up.msg.outTradeNo, stage: 'CAPTURING' }, NEWER);
      c.result(up, 'SUCCESS', { reason: 'PAID_WITH_COUPON', couponFen: 100 });
    };
    box.sale('R1', 1234);
    box.scan(`${CODE}\r\n`);
    const paid = await box.ecrOut.find((l) => l.type === 'result', 'result line');
    expect(paid).toEqual({ type: 'result', ref: 'R1', outcome: 'PAID', amount: 1234, currency: 'CNY', outTradeNo: 'box1-1', wallet: 'wechat' });
    const ack = await cloud.up.find((u) => u.kind === 'ack', 'ack');
    expect(ack.msg).toMatchObject({ v: PROTOCOL_VERSION, outTradeNo: 'box1-1', state: 'SUCCESS' });
    await box.logs.find((l) => l.msg === 'cloud progress' && l.stage === 'UNKNOWN', 'unknown stage read as generic progress');
    await box.logs.find((l) => l.msg.startsWith('cloud sent a newer protocol version') && l.cloudVersion === NEWER, 'one warn about the newer version');
    expect(box.logs.filter((l) => l.msg === 'bad message from the cloud; ignored')).toEqual([]);
    expect(box.screens()).toContain('支付成功 ¥12.34');
    expect(box.agent.status().pendingAttempts).toBe(0);
    expectStrictSends();
  });

  it('an unknown state is neither paid nor final: the box keeps querying, and takes the SUCCESS that follows', async () => {
    let settled = false;
    cloud.answer = (up, c) => {
      if (up.kind === 'pay' || up.kind === 'query') c.result(up, settled ? 'SUCCESS' : 'PARTIALLY_CAPTURED', { reason: settled ? 'PAID' : 'AWAITING_CAPTURE' });
    };
    box.sale('R2', 1234);
    box.scan(`${CODE}\r\n`);
    const warned = await box.logs.find((l) => l.msg.startsWith('result with a state this box does not know'), 'unknown state warned');
    expect(warned).toMatchObject({ level: 40, outTradeNo: 'box1-1', deviceId: 'box1' });
    const queried = cloud.up.mark();
    await cloud.up.find((u) => u.kind === 'query', 'a query after the unknown state', 5_000, queried);
    await waitUntil(() => cloud.up.items.slice(queried).filter((u) => u.kind === 'query').length >= 2, 'the box keeps querying');
    // Whatever else a newer cloud says changes no money.
    cloud.send('box1', 'error', { code: 'QUOTA_EXCEEDED', message: 'slow down', outTradeNo: 'box1-1' });
    cloud.send('box1', 'command', { command: 'selfTest' });
    await box.logs.find((l) => l.msg === 'cloud reported an error' && l.code === 'UNKNOWN', 'unknown error code logged');
    await box.logs.find((l) => l.msg.startsWith('cloud command not supported') && l.command === 'UNKNOWN', 'unknown command ignored');
    expect(box.ecrOut.items.filter((l) => l.type === 'result')).toEqual([]);
    expect(cloud.up.items.filter((u) => u.kind === 'ack' || u.kind === 'cancel')).toEqual([]);
    expect(box.agent.status().pendingAttempts).toBe(1);

    settled = true;
    const paid = await box.ecrOut.find((l) => l.type === 'result', 'result line after the cloud settles', 5_000);
    expect(paid).toMatchObject({ outcome: 'PAID', outTradeNo: 'box1-1' });
    await cloud.up.find((u) => u.kind === 'ack', 'ack');
    expect(cloud.up.items.filter((u) => u.kind === 'pay')).toHaveLength(1);
    expectStrictSends();
  });

  it('announces its version in the heartbeat it sends first on connecting: v 2, and no field a strict cloud would refuse', async () => {
    const hb = await cloud.up.find((u) => u.kind === 'heartbeat', 'heartbeat');
    expect(hb.msg.v).toBe(PROTOCOL_VERSION);
    expect(UP_SCHEMAS.heartbeat.safeParse(hb.msg).success).toBe(true);
  });
});

describe('the payment machine reading a newer cloud (pure)', () => {
  const newer = (state: string, reason?: string) => ({
    type: 'result' as const,
    message: decodeDown('result', JSON.stringify({ v: NEWER, id: 'n1', ts: T0, outTradeNo: 'box1-1', saleId: 'box1-s1', amount: 1234, currency: 'CNY', state, reason, channel: 'c-7' })),
  });

  it('an unknown state changes nothing but one warn line; the next recheck queries', () => {
    const book = bookWithAttempt();
    const r = step(book, newer('PARTIALLY_CAPTURED', 'AWAITING_CAPTURE'), T0 + 100);
    expect(r.effects).toEqual([expect.objectContaining({ kind: 'log', level: 'warn', fields: expect.objectContaining({ outTradeNo: 'box1-1' }) })]);
    expect(attempt(r.book)).toEqual(attempt(book));
    const later = step(r.book, { type: 'tick' }, attempt(book).nextCheckAt);
    expect(sends(later.effects, 'query')).toHaveLength(1);
  });

  it('a known final state with an unknown reason: the state decides, the reason is dropped, never journaled', () => {
    const r = step(bookWithAttempt(), newer('FAILED', 'FACE_CHECK_REFUSED'), T0 + 100);
    expect(attempt(r.book)).toMatchObject({ state: 'FAILED', reason: null });
    expect(only(r.effects, 'saveAttempt').map((e) => e.attempt.reason)).toEqual([null]);
    expect(ecrLines(r.effects)).toContainEqual(expect.objectContaining({ stage: 'ATTEMPT_FAILED', message: expect.stringContaining('(FAILED)') }));
    expect(sends(r.effects, 'ack').map((e) => e.message)).toEqual([expect.objectContaining({ v: PROTOCOL_VERSION, state: 'FAILED' })]);
  });
});
