import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SerialPortMock } from 'serialport';
import { ECR_CAPABILITIES, ECR_VERSION, isEcrLineFor, type EcrOutbound } from '../../protocol/index.js';
import { Journal } from '../../device/journal.js';
import type { Attempt, Sale } from '../../device/payment.js';
import { FIRMWARE_VERSION } from '../../device/version.js';
import { AgentHarness, writeCredentials } from './agent-harness.js';
import { runCli } from './child-box.js';
import { TestBroker } from './broker.js';
import { FakeCloud, type PayScript } from './fake-cloud.js';
import { useTempDirs } from './temp-dir.js';

/**
 * ECR protocol v2 end to end: the real agent (journal, payment machine, MQTT link) against an
 * in-process broker and the scripted fake cloud, the cash register on serialport's mock binding.
 */
const tempDir = useTempDirs();
const CODES = { userpaying: '134567890123450003', success: '134567890123450001' } as const;
const SCRIPTS: Record<string, PayScript> = { [CODES.userpaying]: 'userpaying', [CODES.success]: 'success' };

let broker: TestBroker;
let cloud: FakeCloud;
let box: AgentHarness;

async function startBox(dir = tempDir(), fresh = true): Promise<AgentHarness> {
  if (fresh) writeCredentials(dir, 'box1', broker.url);
  box = new AgentHarness(dir, { paymentDeadlineMs: 30_000, recheckMs: 60_000 });
  await box.start();
  await box.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up');
  return box;
}

/** What the register does after a restart of its own: hello, and the box's answer. */
async function hello(): Promise<EcrOutbound> {
  const mark = box.ecrOut.mark();
  box.ecr({ type: 'hello', v: 2, name: 'POS-1' });
  return box.ecrOut.find((l) => l.type === 'hello', 'hello answer', 10_000, mark);
}

async function lookup(ref: string): Promise<EcrOutbound> {
  const mark = box.ecrOut.mark();
  box.ecr({ type: 'lookup', ref });
  return box.ecrOut.find((l) => l.ref === ref && (l.type === 'error' || l.lookup === true), `lookup answer for ${ref}`, 10_000, mark);
}

const pays = () => cloud.up.filter((u) => u.kind === 'pay').length;

beforeEach(async () => {
  broker = await TestBroker.start();
  cloud = await FakeCloud.start(broker.url, SCRIPTS);
});

afterEach(async () => {
  await box?.stop();
  // Every line the box wrote is exactly a v1 line (before the register said it reads v2) or a v2 line.
  for (const l of box?.ecrOut.items ?? []) expect(isEcrLineFor((l as { v?: number }).v ?? 1, l), JSON.stringify(l)).toBe(true);
  expect(cloud.invalid).toEqual([]);
  await cloud.close();
  await broker.close();
  SerialPortMock.binding.reset();
});

describe('ECR v2 against a running agent', () => {
  it('a register that never said it reads v2 gets v1 lines (no v, seq or lookup); after its hello, every line is numbered', async () => {
    await startBox();
    box.ecr({ type: 'sale', ref: 'R0', amount: 100, currency: 'CNY' });
    const v1 = await box.ecrOut.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    expect(v1).toEqual({ type: 'progress', ref: 'R0', stage: 'WAITING_CODE', message: expect.any(String) });
    const hi = await hello();
    expect(hi).toMatchObject({ v: ECR_VERSION, seq: expect.any(Number) });
    const mark = box.ecrOut.mark();
    box.ecr({ type: 'cancel', ref: 'R0' });
    const closed = await box.ecrOut.find((l) => l.type === 'result' && l.ref === 'R0', 'NOT_PAID', 10_000, mark);
    expect(closed).toMatchObject({ v: ECR_VERSION, seq: expect.any(Number), outcome: 'NOT_PAID' });
  });


  it('the register restarts mid-sale: hello, lookup → the current stage; it misses the result; lookup → the result with its original seq', async () => {
    await startBox();
    box.ecr({ type: 'sale', v: 2, ref: 'R1', amount: 1234, currency: 'CNY' });
    await box.ecrOut.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    box.scan(`${CODES.userpaying}\r\n`);
    await box.ecrOut.find((l) => l.type === 'progress' && l.stage === 'WAITING_PASSWORD', 'WAITING_PASSWORD');

    // The register restarts here: it knows only that R1 was open.
    const hi = await hello();
    expect(hi).toEqual({ type: 'hello', v: ECR_VERSION, seq: expect.any(Number), deviceId: 'box1', firmware: FIRMWARE_VERSION, capabilities: [...ECR_CAPABILITIES] });
    await box.logs.find((l) => l.msg === 'cash register said hello' && l.registerVersion === 2 && l.name === 'POS-1', 'hello logged');
    expect(await lookup('R1')).toMatchObject({ type: 'progress', ref: 'R1', stage: 'PAYING', outTradeNo: 'box1-1', lookup: true });

    // The customer confirms while the register is down again: it misses the result line.
    cloud.settle('box1', 'box1-1', 'SUCCESS');
    const original = await box.ecrOut.find((l) => l.type === 'result', 'the result line');
    expect(original).toMatchObject({ outcome: 'PAID', ref: 'R1', outTradeNo: 'box1-1' });

    await hello();
    const answer = await lookup('R1');
    expect(answer).toEqual({ ...original, lookup: true });
    // A repeat is recognisable: same seq as the line it repeats; every new line has a higher one.
    const fresh = box.ecrOut.items.filter((l) => !(l.type === 'result' && l.lookup === true));
    const seqs = fresh.map((l) => l.seq!);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(cloud.charges).toEqual(['box1-1']);
    expect(pays()).toBe(1);
  });

  it('a repeated sale of a NOT_PAID ref is answered with its outcome, not reopened, charges nothing; seq goes on after a restart', async () => {
    const first = await startBox();
    box.ecr({ type: 'sale', v: 2, ref: 'R2', amount: 500, currency: 'CNY' });
    await box.ecrOut.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    box.ecr({ type: 'cancel', ref: 'R2' });
    const closed = await box.ecrOut.find((l) => l.type === 'result' && l.ref === 'R2', 'NOT_PAID');
    expect(closed).toMatchObject({ outcome: 'NOT_PAID', reason: 'CASHIER_CANCEL' });

    const mark = box.ecrOut.mark();
    box.ecr({ type: 'sale', v: 2, ref: 'R2', amount: 500, currency: 'CNY' });
    const again = await box.ecrOut.find((l) => l.ref === 'R2', 'the answer to the repeated sale', 10_000, mark);
    expect(again).toEqual({ ...closed, lookup: true });
    await box.logs.find((l) => l.msg.startsWith('sale line for a ref already closed NOT_PAID'), 'logged');
    // Nothing is waiting for a code: a scan now is refused, nothing is paid.
    box.scan(`${CODES.success}\r\n`);
    await box.logs.find((l) => l.msg === 'code scanned but no sale is waiting', 'no sale waiting');
    expect(Object.values(box.agent.book().sales).filter((s) => s.ref === 'R2')).toHaveLength(1);
    expect(pays()).toBe(0);
    expect(cloud.charges).toEqual([]);

    // Power cut / restart: numbering goes on above every number used, never repeats.
    const maxBefore = Math.max(...first.ecrOut.items.map((l) => l.seq!));
    await first.stop();
    await startBox(first.dataDir, false);
    const hi = await hello();
    expect(hi.seq).toBeGreaterThan(maxBefore);
    // And the used ref is still answered from the journal, with the seq its result line had.
    expect(await lookup('R2')).toEqual({ ...closed, lookup: true });
  });

  it('a box restart is invisible to the register: once it showed it reads v2, lines stay numbered after the restart until forgotten', async () => {
    const first = await startBox();
    const v1 = async (ref: string) => {
      const mark = box.ecrOut.mark();
      box.ecr({ type: 'sale', ref, amount: 100, currency: 'CNY' });
      return box.ecrOut.find((l) => l.type === 'progress' && l.ref === ref && l.stage === 'WAITING_CODE', `WAITING_CODE for ${ref}`, 10_000, mark);
    };
    await hello();
    expect(await v1('R3')).toMatchObject({ v: ECR_VERSION, seq: expect.any(Number) });
    await first.stop();

    // Power cut: the register did not restart, so it sends no hello; a v1-shaped sale line still gets v2 lines.
    const second = await startBox(first.dataDir, false);
    box.ecr({ type: 'cancel', ref: 'R3' });
    expect(await box.ecrOut.find((l) => l.type === 'result' && l.ref === 'R3', 'R3 closed')).toMatchObject({ v: ECR_VERSION, seq: expect.any(Number), outcome: 'NOT_PAID' });
    expect(await v1('R4')).toMatchObject({ v: ECR_VERSION, seq: expect.any(Number) });
    box.ecr({ type: 'cancel', ref: 'R4' });
    await box.ecrOut.find((l) => l.type === 'result' && l.ref === 'R4', 'R4 closed');
    await second.stop();

    // A register integrated before v2 replaced it: the field engineer forgets the old one.
    const forget = await runCli(['register', '--data', first.dataDir, '--forget']);
    expect(forget.stdout, forget.stderr).toMatch(/cash register: v1 lines from the agent's next start/);
    await startBox(first.dataDir, false);
    expect(await v1('R5')).toEqual({ type: 'progress', ref: 'R5', stage: 'WAITING_CODE', message: expect.any(String) });
  });

  it('a ref known only to the journal (a sale from before v2, long out of memory) is looked up and never reopened', async () => {
    const dir = tempDir();
    writeCredentials(dir, 'box1', broker.url);
    const j = Journal.open(dir);
    // An hour ago: well within the journal's retention (30 days), so housekeeping keeps it.
    const t0 = Date.now() - 3_600_000;
    const base = { amount: 700, currency: 'CNY' as const, endReason: null, paidBy: null, deadline: t0 + 1, reported: true };
    const old: Sale = { ...base, saleId: 'box1-s1', ref: 'R-OLD', state: 'NOT_PAID', endReason: 'CASHIER_CANCEL', createdAt: t0, updatedAt: t0 };
    const oldAttempt: Attempt = { outTradeNo: 'box1-1', saleId: 'box1-s1', saleRef: 'R-OLD', amount: 700, currency: 'CNY', wallet: 'wechat', state: 'REVERSED', reason: null, createdAt: t0, updatedAt: t0, deadline: t0 + 2_000, nextCheckAt: 0 };
    j.transaction(() => {
      j.persist({ kind: 'saveSale', sale: old, from: null, cause: 'test' });
      j.persist({ kind: 'saveAttempt', attempt: oldAttempt, from: null, cause: 'test' });
      // 40 newer finished sales push it out of what a restart loads.
      for (let i = 2; i < 42; i++) j.persist({ kind: 'saveSale', sale: { ...base, saleId: `box1-s${i}`, ref: `R-${i}`, state: 'NOT_PAID', createdAt: t0 + i, updatedAt: t0 + i }, from: null, cause: 'test' });
      j.persist({ kind: 'saveSeq', nextAttemptSeq: 2, nextSaleSeq: 42 });
    });
    j.close();
    await startBox(dir, false);
    expect(Object.values(box.agent.book().sales).some((s) => s.ref === 'R-OLD')).toBe(false);

    const found = await lookup('R-OLD');
    expect(found).toEqual({ type: 'result', v: 2, seq: expect.any(Number), ref: 'R-OLD', outcome: 'NOT_PAID', amount: 700, currency: 'CNY', reason: 'CASHIER_CANCEL', outTradeNo: 'box1-1', lookup: true });
    const mark = box.ecrOut.mark();
    box.ecr({ type: 'sale', v: 2, ref: 'R-OLD', amount: 700, currency: 'CNY' });
    expect(await box.ecrOut.find((l) => l.ref === 'R-OLD', 'answer to the sale', 10_000, mark)).toEqual(found);
    box.ecr({ type: 'cancel', ref: 'R-OLD', reason: 'an unknown field, ignored' });
    expect(await box.ecrOut.find((l) => l.type === 'error' && l.ref === 'R-OLD', 'cancel answer', 10_000, mark)).toMatchObject({ code: 'SALE_UNKNOWN', message: expect.stringContaining('NOT_PAID') });
    expect(await lookup('NEVER')).toMatchObject({ type: 'error', code: 'SALE_UNKNOWN', ref: 'NEVER' });
    expect(pays()).toBe(0);
    expect(Object.values(box.agent.book().sales).filter((s) => s.ref === 'R-OLD')).toEqual([expect.objectContaining({ saleId: 'box1-s1', state: 'NOT_PAID', resultSeq: found.seq })]);
  });
});
