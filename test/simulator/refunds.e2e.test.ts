import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUND_ID_PATTERN, type EcrRefundResult, type Wallet } from '../../protocol/index.js';
import { validCode } from '../../simulator/devices/codes.js';
import { createRandom } from '../../simulator/random.js';
import { reconcile } from '../../simulator/reconcile/reconcile.js';
import { FAST_CLOUD_CONFIG, FAST_DEVICE_CONFIG, Rig, type Box } from '../../simulator/rig.js';

/**
 * Refunds from the cash register, end to end: real box processes on pseudo-terminals, the cloud as
 * its own process over a real broker, the scripted gateway's ledger as the truth. Every story ends
 * with the ledger: one refund per register refund, never two.
 */
const SECOND = 1_000;
let rig: Rig;
let dir: string;
let box: Box;
let other: Box;
const random = createRandom('refunds-e2e');

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'scanbox-refunds-'));
  rig = await Rig.start({ dir, seed: 'refunds-e2e', wallets: 'scripted', channelsPerWallet: 1, cloudConfig: FAST_CLOUD_CONFIG, deviceConfig: FAST_DEVICE_CONFIG });
  [box, other] = await Promise.all([rig.addBox('box-a'), rig.addBox('box-b', 'M-OTHER', 'S-9')]);
  await Promise.all([box.ecr.hello(), other.ecr.hello()]);
}, 120_000);

afterAll(async () => {
  await rig?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** A paid sale on `b`; returns the attempt that paid it. */
async function paidSale(b: Box, ref: string, amount: number, wallet: Wallet = 'wechat'): Promise<string> {
  const mark = b.ecr.mark();
  await b.ecr.sale(ref, amount);
  await b.ecr.waitFor((m) => m.type === 'progress' && m.ref === ref && m.stage === 'WAITING_CODE', 10 * SECOND, mark);
  const code = validCode(random, wallet);
  rig.gateway.bind(code, { name: 'success' });
  await b.scanner.scan(code);
  const result = await b.ecr.resultFor(ref, 15 * SECOND);
  expect(result.outcome).toBe('PAID');
  return result.outTradeNo!;
}

async function refund(b: Box, req: { ref?: string; outTradeNo?: string; refundRef: string; amount: number }): Promise<EcrRefundResult> {
  await b.ecr.refund(req);
  return b.ecr.refundResultFor(req.refundRef, 30 * SECOND);
}

/** The gateway's refunds of an attempt made for registers (their numbers are refund ids). */
function ledgerRefunds(outTradeNo: string) {
  return rig.gateway.ledger.entries().filter((e) => e.kind === 'refund' && e.outTradeNo === outTradeNo && e.refundNo !== undefined && REFUND_ID_PATTERN.test(e.refundNo));
}

describe('refunds from the cash register, over pseudo-terminals', () => {
  it('a full refund: the money goes back once and the register hears REFUNDED with nothing left to refund', async () => {
    const paidBy = await paidSale(box, 'F-1', 1000);
    const done = await refund(box, { ref: 'F-1', refundRef: 'F-1-R', amount: 1000 });
    expect(done).toMatchObject({ outcome: 'REFUNDED', refundedTotal: 1000, remaining: 0, outTradeNo: paidBy });
    expect(ledgerRefunds(paidBy).map((e) => e.amount)).toEqual([1000]);
  }, 60_000);

  it('two partials pass; one fen over what remains is refused at the box and nothing reaches the wallet', async () => {
    const paidBy = await paidSale(box, 'P-1', 1000, 'alipay');
    expect(await refund(box, { ref: 'P-1', refundRef: 'P-1-R1', amount: 300 })).toMatchObject({ outcome: 'REFUNDED', refundedTotal: 300, remaining: 700 });
    expect(await refund(box, { ref: 'P-1', refundRef: 'P-1-R2', amount: 700 })).toMatchObject({ outcome: 'REFUNDED', refundedTotal: 1000, remaining: 0 });
    const mark = box.ecr.mark();
    await box.ecr.refund({ ref: 'P-1', refundRef: 'P-1-R3', amount: 1 });
    await box.ecr.waitFor((m) => m.type === 'error' && m.code === 'REFUND_EXCEEDS_REMAINING', 10 * SECOND, mark);
    expect(ledgerRefunds(paidBy).map((e) => e.amount)).toEqual([300, 700]);
  }, 60_000);

  it("another merchant's box cannot refund this merchant's sale: NOT_REFUNDED NOT_THIS_MERCHANT, nothing moves", async () => {
    const paidBy = await paidSale(box, 'M-1', 800);
    const done = await refund(other, { outTradeNo: paidBy, refundRef: 'M-1-X', amount: 100 });
    expect(done).toMatchObject({ outcome: 'NOT_REFUNDED', reason: 'NOT_THIS_MERCHANT' });
    expect(ledgerRefunds(paidBy)).toEqual([]);
  }, 60_000);

  it('the wallet errors first, then refunds: the cloud asks again with the same number, and the money goes back once', async () => {
    const paidBy = await paidSale(box, 'E-1', 650);
    rig.gateway.refunds.push('unknown', 'retry_later');
    const done = await refund(box, { ref: 'E-1', refundRef: 'E-1-R', amount: 650 });
    expect(done.outcome).toBe('REFUNDED');
    const entries = ledgerRefunds(paidBy);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.refundNo).toBe(done.refundId);
    expect(rig.gateway.refunds).toEqual([]);
  }, 60_000);

  it('offline: refused at once with OFFLINE; online again, the same refund line goes through', async () => {
    await paidSale(box, 'O-1', 400);
    const since = box.proc.mark();
    rig.proxy.cut(box.deviceId, 3_000);
    await box.proc.waitForMsg('cloud link closed; reconnecting', 10 * SECOND, since);
    const mark = box.ecr.mark();
    await box.ecr.refund({ ref: 'O-1', refundRef: 'O-1-R', amount: 400 });
    await box.ecr.waitFor((m) => m.type === 'error' && m.code === 'OFFLINE', 5 * SECOND, mark);
    await box.waitOnline(20 * SECOND, since);
    expect((await refund(box, { ref: 'O-1', refundRef: 'O-1-R', amount: 400 })).outcome).toBe('REFUNDED');
  }, 60_000);

  it('the box is killed (SIGKILL) right after taking the refund line: after the restart the register learns the result; one refund', async () => {
    const paidBy = await paidSale(box, 'K-1', 900);
    const mark = box.ecr.mark();
    await box.ecr.refund({ ref: 'K-1', refundRef: 'K-1-R', amount: 900 });
    await box.ecr.waitFor((m) => m.type === 'refund_progress' && m.refundRef === 'K-1-R', 10 * SECOND, mark);
    await box.kill();
    await box.restart();
    // Told without asking: the result the box learns after the restart is written to the register.
    const told = await box.ecr.refundResultFor('K-1-R', 30 * SECOND);
    expect(told.outcome).toBe('REFUNDED');
    // A register that is not sure sends the same line again: the same result, its seq, no second refund.
    const again = box.ecr.mark();
    await box.ecr.refund({ ref: 'K-1', refundRef: 'K-1-R', amount: 900 });
    const answer = await box.ecr.waitFor((m) => m.type === 'refund_result' && m.refundRef === 'K-1-R' && m.lookup === true, 10 * SECOND, again);
    expect(answer.seq).toBe(told.seq);
    expect(ledgerRefunds(paidBy)).toHaveLength(1);
  }, 90_000);

  it("the day's totals from the register agree with the gateway's ledger, and the three records reconcile", async () => {
    const snapshot = await rig.settle(30 * SECOND);
    const totals = await box.ecr.totals();
    expect(totals.type).toBe('totals');
    if (totals.type !== 'totals') return;
    expect(totals.confirmed).toBe(true);
    const mine = rig.gateway.ledger.entries().filter((e) => e.outTradeNo.startsWith(`${box.deviceId}-`));
    const ledgerNet = mine.reduce((sum, e) => sum + (e.kind === 'charge' ? e.amount : -e.amount), 0);
    expect(totals.wallets.reduce((sum, w) => sum + w.net, 0)).toBe(ledgerNet);
    const customerRefunds = mine.filter((e) => e.kind === 'refund' && e.refundNo !== undefined && REFUND_ID_PATTERN.test(e.refundNo));
    expect(totals.wallets.reduce((sum, w) => sum + w.refundCount, 0)).toBe(customerRefunds.length);
    const report = reconcile(snapshot);
    expect(report.mismatches, JSON.stringify(report.mismatches, null, 1)).toEqual([]);
    expect(report.totals.refunded).toBeGreaterThanOrEqual(6);
  }, 60_000);
});
