import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SerialPortMock } from 'serialport';
import { systemClock } from '../../protocol/clock.js';
import { Journal } from '../../device/journal.js';
import { OFFLINE_WILL_ID, PROTOCOL_VERSION, type HeartbeatMessage } from '../../protocol/index.js';
import { waitUntil } from './wait-until.js';
import { AgentHarness, SECRET, writeCredentials } from './agent-harness.js';
import { TestBroker } from './broker.js';
import { FakeCloud, type PayScript } from './fake-cloud.js';
import { useTempDirs } from './temp-dir.js';

/**
 * One process: the real agent (journal file, payment machine, outbox, MQTT link) against an
 * in-process aedes broker and a scripted fake cloud, with serialport's mock binding as hardware.
 */
const tempDir = useTempDirs();
const CODES = {
  success: '134567890123450001',
  failed: '134567890123450002',
  password: '134567890123450003',
  silence: '134567890123450004',
  success2: '281234567890120005',
  /** The customer is charged but the wallet never answers: only a cancel (which reverses) ends it. */
  chargedSilent: '134567890123450006',
  /** Paid, with the wallet's receipt (protocol v2). */
  receipt: '134567890123450007',
  /** The wallet charges another amount than the sale's: FAILED/AMOUNT_MISMATCH, the charge reversed. */
  mismatch: '134567890123450008',
} as const;
const SCRIPTS: Record<string, PayScript> = {
  [CODES.success]: 'success',
  [CODES.failed]: 'failed',
  [CODES.password]: 'userpaying-then-success',
  [CODES.silence]: 'silence',
  [CODES.success2]: 'success',
  [CODES.chargedSilent]: 'charge-and-hold',
  [CODES.receipt]: 'success-with-receipt',
  [CODES.mismatch]: 'amount-mismatch',
};

let broker: TestBroker;
let cloud: FakeCloud;
let box: AgentHarness;

async function startBox(config: Record<string, unknown> = {}, deviceId = 'box1', url?: string): Promise<AgentHarness> {
  const dir = tempDir();
  writeCredentials(dir, deviceId, url ?? broker.url);
  box = new AgentHarness(dir, { paymentDeadlineMs: 1500, recheckMs: 60_000, ...config });
  await box.start();
  return box;
}

const online = () => box.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up');

beforeEach(async () => {
  broker = await TestBroker.start();
  cloud = await FakeCloud.start(broker.url, SCRIPTS);
});

afterEach(async () => {
  await box?.stop();
  expect(cloud.invalid).toEqual([]);
  await cloud.close();
  await broker.close();
  SerialPortMock.binding.reset();
});

describe('agent against an in-process broker and a scripted cloud', () => {
  it('SUCCESS: sale → code → PAID, journaled, acked, outbox drained, secret never logged', async () => {
    await startBox();
    await online();
    box.sale('R1', 1234);
    await box.ecrOut.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    box.scan(`${CODES.success}\r\n`);
    const paid = await box.ecrOut.find((l) => l.type === 'result', 'result line');
    expect(paid).toEqual({ type: 'result', ref: 'R1', outcome: 'PAID', amount: 1234, currency: 'CNY', outTradeNo: 'box1-1', wallet: 'wechat' });
    await cloud.up.find((u) => u.kind === 'ack', 'ack');
    const pay = cloud.up.filter((u) => u.kind === 'pay');
    expect(pay).toHaveLength(1);
    expect(box.ecrOut.filter((l) => l.type === 'progress').map((l) => (l.type === 'progress' ? l.stage : ''))).toEqual(['WAITING_CODE', 'PAYING']);
    expect(box.screens()).toContain('支付成功 ¥12.34');
    await waitUntil(() => box.agent.status().outboxDepth === 0, 'outbox drained');
    const payLines = box.logs.filter((l) => l.outTradeNo === 'box1-1');
    expect(payLines.length).toBeGreaterThan(2);
    for (const l of payLines) expect(l.deviceId).toBe('box1');
    expect(JSON.stringify(box.logs.items)).not.toContain(SECRET);
    expect(JSON.stringify(box.logs.items)).not.toContain(CODES.success);
  });

  it("the wallet's receipt: on the PAID line, journaled, and still the attempt's after a restart", async () => {
    const first = await startBox();
    await online();
    box.sale('R1', 1234);
    box.scan(`${CODES.receipt}\r\n`);
    const paid = await box.ecrOut.find((l) => l.type === 'result', 'result line');
    const receipt = cloud.attempts.get('box1-1')!.receipt!;
    expect(receipt).toMatchObject({ total: 1234, buyerPaid: 1200, discount: 34 });
    expect(paid).toEqual({
      type: 'result',
      ref: 'R1',
      outcome: 'PAID',
      amount: 1234,
      currency: 'CNY',
      outTradeNo: 'box1-1',
      wallet: 'wechat',
      walletTradeNo: receipt.walletTradeNo,
      paidAt: receipt.paidAt,
      buyerPaid: 1200,
      discount: 34,
    });
    await cloud.up.find((u) => u.kind === 'ack', 'ack');
    await first.stop();
    box = new AgentHarness(first.dataDir, { recheckMs: 60_000 });
    await box.start();
    expect(box.agent.book().attempts['box1-1']).toMatchObject({ state: 'SUCCESS', receipt });
    // Written once: the restart does not tell the register again.
    await online();
    expect(box.ecrOut.filter((l) => l.type === 'result')).toEqual([]);
  });

  it('AMOUNT_MISMATCH: NOT_PAID with that reason at once, the sale closed, the charge undone by the cloud', async () => {
    await startBox();
    await online();
    box.sale('R7', 1234);
    box.scan(`${CODES.mismatch}\r\n`);
    const r = await box.ecrOut.find((l) => l.type === 'result', 'result line');
    expect(r).toEqual({ type: 'result', ref: 'R7', outcome: 'NOT_PAID', amount: 1234, currency: 'CNY', reason: 'AMOUNT_MISMATCH', outTradeNo: 'box1-1' });
    expect(box.ecrOut.filter((l) => l.type === 'progress' && l.stage === 'ATTEMPT_FAILED')).toEqual([]);
    const ack = await cloud.up.find((u) => u.kind === 'ack', 'ack');
    expect(ack.msg).toMatchObject({ outTradeNo: 'box1-1', state: 'FAILED' });
    expect(box.agent.book().attempts['box1-1']).toMatchObject({ state: 'FAILED', reason: 'AMOUNT_MISMATCH', receipt: { total: 1243 } });
    expect(cloud.ledger.map((e) => [e.kind, e.amount])).toEqual([
      ['charge', 1243],
      ['reverse', 1243],
    ]);
    expect(box.screens()).toContain('扣款金额不符，正在退回；本单未收款');
  });

  it('FAILED: the cashier is told, another code may be scanned; cancel closes NOT_PAID', async () => {
    await startBox();
    await online();
    box.sale('R2', 500);
    box.scan(`${CODES.failed}\r`);
    await box.ecrOut.find((l) => l.type === 'progress' && l.stage === 'ATTEMPT_FAILED', 'ATTEMPT_FAILED');
    expect(box.screens().some((s) => s.includes('余额不足'))).toBe(true);
    box.ecr({ type: 'cancel', ref: 'R2' });
    const r = await box.ecrOut.find((l) => l.type === 'result', 'result');
    expect(r).toMatchObject({ outcome: 'NOT_PAID', reason: 'CASHIER_CANCEL' });
  });

  it('USERPAYING then SUCCESS: shows the password screen, then PAID', async () => {
    await startBox();
    await online();
    box.sale('R3', 999);
    box.scan(`${CODES.password}\n`);
    await box.ecrOut.find((l) => l.type === 'progress' && l.stage === 'WAITING_PASSWORD', 'WAITING_PASSWORD');
    await box.ecrOut.find((l) => l.type === 'result' && l.outcome === 'PAID', 'PAID');
    expect(box.screens()).toContain('等待用户输入密码');
  });

  it('silence: the device deadline cancels; the cloud reverses; a re-scan pays; never a second pay for one attempt', async () => {
    await startBox();
    await online();
    box.sale('R4', 100);
    box.scan(`${CODES.silence}\r\n`);
    const cancel = await cloud.up.find((u) => u.kind === 'cancel', 'cancel after the deadline', 5_000);
    expect(cancel.msg).toMatchObject({ outTradeNo: 'box1-1', reason: 'DEADLINE' });
    await box.ecrOut.find((l) => l.type === 'progress' && l.stage === 'CANCELLING', 'CANCELLING');
    await box.logs.find((l) => l.msg === 'attempt final' && l.state === 'REVERSED', 'REVERSED applied');
    box.scan(`${CODES.success2}\r\n`);
    const r = await box.ecrOut.find((l) => l.type === 'result', 'result');
    expect(r).toMatchObject({ outcome: 'PAID', outTradeNo: 'box1-2', wallet: 'alipay' });
    expect(cloud.up.filter((u) => u.kind === 'pay').map((u) => (u.msg as { outTradeNo: string }).outTradeNo)).toEqual(['box1-1', 'box1-2']);
  });

  it('noise on the scanner: duplicate within the debounce window is one attempt; garbage and a 5 KB line change nothing', async () => {
    await startBox();
    await online();
    box.sale('R5', 100);
    box.scan('garbage\r');
    box.scan('x'.repeat(5000));
    box.scan('\r');
    await box.logs.find((l) => l.msg === 'scan rejected' && l.code === 'LINE_TOO_LONG', 'LINE_TOO_LONG');
    box.scan(`${CODES.success}\r${CODES.success}\r`);
    await box.ecrOut.find((l) => l.type === 'result', 'result');
    expect(box.logs.filter((l) => l.code === 'DUPLICATE_SCAN')).toHaveLength(1);
    expect(box.logs.filter((l) => l.code === 'CODE_NOT_DIGITS')).toHaveLength(1);
    expect(cloud.up.filter((u) => u.kind === 'pay')).toHaveLength(1);
  });

  it('a bad ECR line is answered with an error line naming the problem', async () => {
    await startBox();
    box.ecr('{"type":"sale","ref":"R6","amount":12.5,"currency":"CNY"}');
    const e = await box.ecrOut.find((l) => l.type === 'error', 'error line');
    expect(e).toMatchObject({ type: 'error', code: 'SCHEMA_INVALID', ref: 'R6' });
    expect((e as { message: string }).message).toContain('amount');
  });

  it('offline: a new sale and a payment are refused at once with OFFLINE', async () => {
    const dead = await TestBroker.start();
    const url = dead.url;
    await dead.close();
    await startBox({}, 'box1', url);
    box.sale('R7', 100);
    const e = await box.ecrOut.find((l) => l.type === 'error', 'OFFLINE error');
    expect(e).toMatchObject({ code: 'OFFLINE', ref: 'R7' });
    expect(box.screens()).toContain('网络未连接，暂不能收款，请使用其他方式');
  });

  it('link drop: a cancel made while offline waits in the outbox and goes out in order on reconnect', async () => {
    await startBox({ paymentDeadlineMs: 60_000 });
    await online();
    box.sale('R8', 100);
    box.scan(`${CODES.chargedSilent}\r`);
    await cloud.up.find((u) => u.kind === 'pay', 'pay');
    await broker.cut();
    await box.logs.find((l) => l.msg === 'cloud link down; new payments are refused until it is back', 'link down');
    box.ecr({ type: 'cancel', ref: 'R8' });
    await box.ecrOut.find((l) => l.type === 'progress' && l.stage === 'CANCELLING', 'CANCELLING');
    expect(box.agent.status().outboxDepth).toBe(1);
    await broker.restore();
    const r = await box.ecrOut.find((l) => l.type === 'result', 'result after reconnect', 15_000);
    expect(r).toMatchObject({ outcome: 'NOT_PAID', reason: 'CASHIER_CANCEL' });
    const kinds = cloud.up.filter((u) => u.kind !== 'heartbeat').map((u) => u.kind);
    expect(kinds.indexOf('cancel')).toBeGreaterThan(kinds.indexOf('pay'));
    // The customer had been charged: NOT_PAID holds only because the cancel reversed it.
    expect(cloud.ledger.map((e) => e.kind)).toEqual(['charge', 'reverse']);
    expect(cloud.net('box1-1')).toBe(0);
  });

  it('heartbeat carries the status; an unclean drop publishes the documented offline will', async () => {
    await startBox({ heartbeatIntervalS: 30 });
    const hb = await cloud.up.find((u) => u.kind === 'heartbeat', 'heartbeat');
    expect(hb.msg).toMatchObject({ status: { firmware: expect.any(String), scanner: 'open', ecr: 'open', outboxDepth: expect.any(Number), pendingAttempts: 0 } });
    expect(hb.msg.id).not.toBe(OFFLINE_WILL_ID);
    expect(broker.dropClient('box1')).toBe(true);
    const will = await cloud.up.find((u) => u.kind === 'heartbeat' && u.msg.id === OFFLINE_WILL_ID, 'last will');
    expect(will).toMatchObject({ deviceId: 'box1', msg: { status: { scanner: 'closed', ecr: 'closed' } } });
    // The heartbeats announce v2; the will is v1, which every cloud reads (it is registered before any could refuse v2).
    expect(hb.msg.v).toBe(PROTOCOL_VERSION);
    expect(will.msg.v).toBe(1);
  });

  it('a wall clock stepped back (NTP, chaos clock_jump) keeps heartbeats valid: uptime is monotonic, never negative', async () => {
    // Found by `scanbox-sim chaos`: a box whose clock jumped back behind its start time sent
    // heartbeats with a negative uptimeS; the cloud refused every one (SCHEMA_INVALID) and showed
    // a live box as stale for as long as the step.
    let stepMs = 0;
    const dir = tempDir();
    writeCredentials(dir, 'box1', broker.url);
    box = new AgentHarness(dir, { paymentDeadlineMs: 1500, recheckMs: 60_000, heartbeatIntervalS: 30 });
    box.clock = { ...systemClock, now: () => Date.now() + stepMs };
    await box.start();
    await cloud.up.find((u) => u.kind === 'heartbeat', 'first heartbeat');
    stepMs = -3_600_000;
    const heartbeats = () => cloud.up.filter((u) => u.kind === 'heartbeat' && u.msg.id !== OFFLINE_WILL_ID);
    expect(broker.dropClient('box1')).toBe(true);
    // The heartbeat sent on the reconnect, with the clock an hour behind the box's start.
    await waitUntil(() => heartbeats().length >= 2 || cloud.invalid.length > 0, 'heartbeat after the step');
    expect(cloud.invalid).toEqual([]);
    const hbs = heartbeats();
    expect((hbs.at(-1)!.msg as HeartbeatMessage).status.uptimeS).toBeGreaterThanOrEqual(0);
    // afterEach: the fake cloud validated every up/ message (cloud.invalid stays empty).
  });

  it('restart with a journaled, never-published pay: the pay is withdrawn, the query tombstones it, CANCELLED', async () => {
    const dir = tempDir();
    writeCredentials(dir, 'box1', broker.url);
    // A previous run journaled the attempt and its pay row, then died before the pay left the box.
    const j = Journal.open(dir);
    const { step } = await import('../../device/payment.js');
    let b = { ...j.loadBook('box1', { paymentDeadlineMs: 60_000, saleDeadlineMs: 300_000, recheckMs: 60_000 }, Date.now()), online: true };
    for (const e of [{ type: 'ecrSale', ref: 'R9', amount: 300, currency: 'CNY' }, { type: 'scan', code: { wallet: 'wechat', code: CODES.success } }] as const) {
      const r = step(b, e as never, Date.now());
      j.transaction(() => r.effects.forEach((x) => (x.kind === 'send' ? j.sql('INSERT INTO outbox (kind, out_trade_no, payload, created_at) VALUES (?,?,?,?)').run(x.up, x.outTradeNo, JSON.stringify(x.message), 1) : j.persist(x))));
      b = r.book;
    }
    j.close();
    box = new AgentHarness(dir, { recheckMs: 60_000 });
    await box.start();
    await box.logs.find((l) => l.msg === 'attempt final' && l.outTradeNo === 'box1-1', 'attempt final');
    expect(cloud.up.filter((u) => u.kind === 'pay')).toEqual([]);
    expect(box.agent.book().attempts['box1-1']).toMatchObject({ state: 'CANCELLED', reason: 'UNKNOWN_ATTEMPT' });
    expect(cloud.tombstones.has('box1-1')).toBe(true);
  });
});
