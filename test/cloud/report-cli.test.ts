import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { businessDayRange } from '../../protocol/index.js';
import type { Attempt } from '../../cloud/payments/transaction.js';
import type { Refund } from '../../cloud/refunds/refund-machine.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { tempDir } from './harness.js';

/**
 * `scanbox-cloud report`, `refunds` and `store limit` as the back office runs them: each a process
 * of its own on a store planted with one merchant's day (two stores, three boxes, two wallets) and
 * another merchant's. Each command takes a second or more on a loaded machine: explicit timeouts.
 */
const run = promisify(execFile);
const DATE = '2026-03-10';
const DAY = businessDayRange(DATE);
const NOON = DAY.from + 12 * 3_600_000;
let dir: string;
let remove: () => void;
let db: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
async function cli(...args: string[]): Promise<Result> {
  try {
    const r = await run(process.execPath, ['bin/scanbox-cloud.js', ...args, '--db', db], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function withStore<T>(fn: (s: SqliteStore) => Promise<T>): Promise<T> {
  const s = new SqliteStore(db);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

let codes = 0;
async function plant(s: SqliteStore): Promise<void> {
  const box = async (deviceId: string, merchantId: string, storeId: string) => {
    if (!(await s.getMerchant(merchantId))) await s.addMerchant(merchantId, {}, 1);
    const code = `REPORT${String(++codes).padStart(4, '0')}`;
    await s.createPairingCode({ code, merchantId, storeId, createdAt: 1, expiresAt: NOON * 2 });
    await s.redeemPairingCode(code, `hw-${deviceId}`, 2, { deviceId, secretHash: 'h', firmware: '1.0.0' });
  };
  await box('sbA', 'M1', 'S1');
  await box('sbB', 'M1', 'S1');
  await box('sbC', 'M1', 'S2');
  await box('sbZ', 'M2', 'S1');
  let sale = 0;
  const paid = async (deviceId: string, amount: number, wallet: 'wechat' | 'alipay', patch: Partial<Attempt> = {}) => {
    const outTradeNo = `${deviceId}-${++sale}`;
    const a: Attempt = {
      outTradeNo, deviceId, merchantId: deviceId === 'sbZ' ? 'M2' : 'M1', channel: wallet, saleId: `s${sale}`, saleRef: null, amount, currency: 'CNY', wallet,
      state: 'SUCCESS', reason: 'PAID', createdAt: NOON, updatedAt: NOON, payAt: NOON, deadlineAt: null, nextAt: null, step: null, inFlight: null, callSeq: 1,
      tries: 0, cancelReason: null, gatewayTradeNo: 'g', charged: amount, walletPaidAt: NOON, buyerPaid: amount, discount: 0, flag: null, ackedState: 'SUCCESS', version: 0,
      ...patch,
    };
    await s.writeAttempts([{ attempt: a, expectedVersion: 0, event: 'test', fromState: null, note: '', claimSale: false }]);
    return outTradeNo;
  };
  let r = 0;
  const refund = async (outTradeNo: string, amount: number, then: Partial<Refund>) => {
    const deviceId = outTradeNo.slice(0, outTradeNo.lastIndexOf('-'));
    const taken = (await s.requestRefund({ refundId: `${deviceId}-r${++r}`, deviceId, refundRef: `RF${r}`, outTradeNo, amount, currency: 'CNY', at: NOON })).refund;
    await s.writeRefund({ ...taken, ...then }, 1);
  };
  const a1 = await paid('sbA', 1_000, 'wechat');
  await paid('sbA', 2_050, 'wechat');
  const a3 = await paid('sbA', 800, 'alipay');
  await paid('sbB', 300, 'wechat');
  const c1 = await paid('sbC', 5_000, 'alipay');
  await paid('sbC', 999, 'wechat', { state: 'FAILED', reason: 'DECLINED' });
  await paid('sbC', 700, 'wechat', { walletPaidAt: DAY.to }); // the next day's
  await paid('sbZ', 9_999, 'wechat');
  await refund(a1, 400, { state: 'REFUNDED', finalAt: NOON + 1 });
  await refund(a3, 800, { state: 'REFUNDED', finalAt: NOON + 2 });
  await refund(c1, 1_000, { state: 'PENDING', flagged: true, tries: 12, message: 'unknown (SYSTEMERROR)' });
}

beforeAll(async () => {
  ({ dir, remove } = tempDir());
  db = join(dir, 'cloud.db');
  await withStore(plant);
});
afterAll(() => remove());

describe('scanbox-cloud report', () => {
  it('--csv: per store and box and wallet, then store and merchant totals; amounts in yuan; nothing of another merchant or day', async () => {
    const r = await cli('report', '--merchant', 'M1', '--date', DATE, '--csv');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.split('\r\n')).toEqual([
      'date,merchant,level,store,device,wallet,paid_count,paid_amount,refund_count,refund_amount,net_amount',
      `${DATE},M1,box,S1,sbA,wechat,2,30.50,1,4.00,26.50`,
      `${DATE},M1,box,S1,sbA,alipay,1,8.00,1,8.00,0.00`,
      `${DATE},M1,box,S1,sbB,wechat,1,3.00,0,0.00,3.00`,
      `${DATE},M1,store,S1,,wechat,3,33.50,1,4.00,29.50`,
      `${DATE},M1,store,S1,,alipay,1,8.00,1,8.00,0.00`,
      `${DATE},M1,store,S1,,all,4,41.50,2,12.00,29.50`,
      `${DATE},M1,box,S2,sbC,alipay,1,50.00,0,0.00,50.00`,
      `${DATE},M1,store,S2,,alipay,1,50.00,0,0.00,50.00`,
      `${DATE},M1,store,S2,,all,1,50.00,0,0.00,50.00`,
      `${DATE},M1,merchant,,,wechat,3,33.50,1,4.00,29.50`,
      `${DATE},M1,merchant,,,alipay,2,58.00,1,8.00,50.00`,
      `${DATE},M1,merchant,,,all,5,91.50,2,12.00,79.50`,
      '',
    ]);
  }, 120_000);

  it('as a table for a person, and as JSON in fen; the next day has the sale paid after midnight; a day with nothing says so', async () => {
    const [text, json, next, quiet] = await Promise.all([
      cli('report', '--merchant', 'M1', '--date', DATE),
      cli('report', '--merchant', 'M1', '--date', DATE, '--json'),
      cli('report', '--merchant', 'M1', '--date', '2026-03-11', '--json'),
      cli('report', '--merchant', 'M1', '--date', '2026-03-12'),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^report 2026-03-10 \(Beijing business day\), merchant M1, amounts in yuan \(CNY\)\n/);
    expect(text.stdout).toMatch(/STORE\s+BOX\s+WALLET\s+PAID\s+PAID AMOUNT\s+REFUNDS\s+REFUNDED\s+NET/);
    expect(text.stdout).toMatch(/S1\s+sbA\s+wechat\s+2\s+30\.50\s+1\s+4\.00\s+26\.50/);
    expect(text.stdout).toMatch(/\(merchant\)\s+all\s+5\s+91\.50\s+2\s+12\.00\s+79\.50/);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ merchantId: 'M1', date: DATE, currency: 'CNY' });
    expect(report.lines.at(-1)).toEqual({ level: 'merchant', storeId: null, deviceId: null, wallet: 'all', paidCount: 5, paidAmount: 9_150, refundCount: 2, refundAmount: 1_200, net: 7_950 });
    expect(JSON.parse(next.stdout).lines.filter((l: { level: string }) => l.level === 'box')).toEqual([
      { level: 'box', storeId: 'S2', deviceId: 'sbC', wallet: 'wechat', paidCount: 1, paidAmount: 700, refundCount: 0, refundAmount: 0, net: 700 },
    ]);
    expect(quiet.stdout).toContain('no paid sale and no refund on this day');
    expect(quiet.stdout).toMatch(/\(merchant\)\s+all\s+0\s+0\.00\s+0\s+0\.00\s+0\.00/);
  }, 120_000);

  it('refuses an unknown merchant, a day that is not one, and a store file that is not there — exit 1, with the reason', async () => {
    const [merchant, date, nodb] = await Promise.all([
      cli('report', '--merchant', 'M9', '--date', DATE),
      cli('report', '--merchant', 'M1', '--date', '2026-02-30'),
      run(process.execPath, ['bin/scanbox-cloud.js', 'report', '--merchant', 'M1', '--date', DATE, '--db', join(dir, 'nope.db')], { timeout: 60_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      ),
    ]);
    expect(merchant).toMatchObject({ code: 1, stdout: '', stderr: expect.stringContaining('MERCHANT_UNKNOWN') });
    expect(date).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/CONFIG_INVALID.*--date/) });
    expect(nodb).toMatchObject({ code: 1, stderr: expect.stringContaining('no cloud store') });
  }, 120_000);
});

describe('scanbox-cloud refunds and store limit', () => {
  it('lists refunds; --flagged only the stuck one; --id one that is not there is REFUND_UNKNOWN', async () => {
    const [all, flagged, unknown, one] = await Promise.all([cli('refunds'), cli('refunds', '--flagged', '--json'), cli('refunds', '--id', 'sbA-r99'), cli('refunds', '--id', 'sbA-r1')]);
    // One refund comes with its history (refund_events): here its request, as the store recorded it.
    expect(one.stdout).toMatch(/^sbA-r1\s+REFUNDED.*\n {2}\d{4}-\d\d-\d\dT[\d:.]+Z {2}request\s+-\s+→ PENDING\s+taken \(ref RF1\)$/m);
    expect(all.code).toBe(0);
    expect(all.stdout.split('\n').filter(Boolean)).toHaveLength(4);
    expect(all.stdout).toMatch(/sbA-r1\s+REFUNDED\s+-\s+sbA-1\s+4\.00 CNY\s+wechat/);
    expect(all.stdout).toMatch(/sbC-r3\s+PENDING.*FLAGGED\s+unknown \(SYSTEMERROR\)/);
    expect(JSON.parse(flagged.stdout)).toEqual([expect.objectContaining({ refundId: 'sbC-r3', state: 'PENDING', flagged: true, tries: 12, amount: 1_000 })]);
    expect(unknown).toMatchObject({ code: 1, stderr: expect.stringContaining('REFUND_UNKNOWN') });
  }, 120_000);

  it("shows, sets and clears a store's daily refund limit; refuses a bad amount and an unknown merchant, changing nothing", async () => {
    const set = await cli('store', 'limit', '--merchant', 'M1', '--store', 'S1', '--refund-daily', '50000');
    expect(set).toMatchObject({ code: 0, stdout: 'store S1 of merchant M1: daily refund limit 500.00 yuan (50000 fen)\n' });
    expect(await withStore((s) => s.storeRefundLimit('M1', 'S1'))).toBe(50_000);
    const [bad, merchant, shown] = await Promise.all([
      cli('store', 'limit', '--merchant', 'M1', '--store', 'S1', '--refund-daily', '12.5'),
      cli('store', 'limit', '--merchant', 'M9', '--store', 'S1', '--refund-daily', '100'),
      cli('store', 'limit', '--merchant', 'M1', '--store', 'S1'),
    ]);
    expect(bad).toMatchObject({ code: 1, stderr: expect.stringMatching(/CONFIG_INVALID.*whole fen/) });
    expect(merchant).toMatchObject({ code: 1, stderr: expect.stringContaining('MERCHANT_UNKNOWN') });
    expect(shown.stdout).toContain('500.00 yuan');
    expect(await withStore((s) => s.storeRefundLimit('M1', 'S1'))).toBe(50_000);
    const cleared = await cli('store', 'limit', '--merchant', 'M1', '--store', 'S1', '--refund-daily', 'none');
    expect(cleared.stdout).toBe('store S1 of merchant M1: daily refund limit none\n');
    expect(await withStore((s) => s.storeRefundLimit('M1', 'S1'))).toBeNull();
  }, 120_000);
});
