import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BillDownloadOutcome } from '../../../cloud/gateway/alipay/adapter.js';
import { formatAlipayBill, parseAlipayBill, type AlipayBillRowInput } from '../../../cloud/gateway/alipay/bill.js';
import type { WechatBillResult } from '../../../cloud/gateway/wechat/adapter.js';
import { formatWechatBill, parseWechatBill, type WechatBillRow } from '../../../cloud/gateway/wechat/bill.js';
import type { QueryOutcome, QueryRequest, RefundOutcome, RefundRequest } from '../../../cloud/gateway/gateway.js';
import type { Attempt } from '../../../cloud/payments/transaction.js';
import { businessDay } from '../../../cloud/reconcile/day.js';
import { reconcile, type ReconcileChannel, type ReconcileReport } from '../../../cloud/reconcile/reconcile.js';
import { SqliteStore } from '../../../cloud/store/sqlite-store.js';
import { FakeClock } from '../../support/fake-clock.js';

/**
 * reconcile.ts with scripted bills and a scripted wallet (the end-to-end test has the real ones):
 * what `--apply` does with each finding, what it leaves alone, bills that fail per channel and per
 * merchant, and what a later run makes of an earlier run's records.
 */
const DAY = businessDay('2026-01-01')!;
const NOON = DAY.start + 12 * 3_600_000;
const SUB = '1900000109';

let store: SqliteStore;
let clock: FakeClock;
let queries: QueryRequest[];
let refunds: RefundRequest[];
let answers: Map<string, QueryOutcome>;
let refundAnswer: RefundOutcome;

beforeEach(async () => {
  store = new SqliteStore(':memory:');
  clock = new FakeClock(DAY.end + 8 * 3_600_000);
  queries = [];
  refunds = [];
  answers = new Map();
  refundAnswer = { kind: 'refunded', refundNo: 'x' };
  await store.addMerchant('M1', { wechatSubMchId: SUB, alipayAppAuthToken: 'tok-1' }, 0);
});
afterEach(async () => {
  await store.close();
});

const gateway = {
  async query(req: QueryRequest): Promise<QueryOutcome> {
    queries.push(req);
    return answers.get(req.outTradeNo) ?? { kind: 'not_found' };
  },
  async refund(req: RefundRequest): Promise<RefundOutcome> {
    refunds.push(req);
    return refundAnswer.kind === 'refunded' ? { kind: 'refunded', refundNo: req.refundNo } : refundAnswer;
  },
};

function wx(outTradeNo: string, patch: Partial<WechatBillRow>): WechatBillRow {
  return {
    tradeTime: NOON, appId: 'wx1', mchId: '10000100', subMchId: SUB, deviceInfo: '', transactionId: `42${outTradeNo}`, outTradeNo, openId: 'o', tradeType: 'MICROPAY',
    tradeState: 'SUCCESS', bankType: 'OTHERS', currency: 'CNY', settlementFee: 0, couponFee: 0, refundId: null, outRefundNo: null, refundFee: 0,
    rechargeCouponRefundFee: 0, refundType: '', refundStatus: '', body: '', attach: '', feeMilliFen: 0, rate: '0.60%', orderFee: 0, refundRequestFee: 0, rateNote: '', ...patch,
  };
}
const charge = (otn: string, fen: number) => wx(otn, { orderFee: fen, settlementFee: fen });

function wechat(result: WechatBillResult | (() => never)): ReconcileChannel {
  return { name: 'wx', wallet: 'wechat', bills: { downloadBill: async () => (typeof result === 'function' ? result() : result) } };
}
const bill = (rows: WechatBillRow[]): WechatBillResult => ({ kind: 'bill', bill: parseWechatBill(formatWechatBill(rows)) });

function alipay(byMerchant: Record<string, BillDownloadOutcome>): ReconcileChannel & { asked: string[] } {
  const asked: string[] = [];
  return {
    name: 'ali',
    wallet: 'alipay',
    asked,
    bills: {
      downloadBill: async (_date, opts) => {
        asked.push(opts?.merchant ?? '(app)');
        return byMerchant[opts?.merchant ?? ''] ?? { kind: 'no_bill' };
      },
    },
  };
}
const alipayBill = (rows: AlipayBillRowInput[]): BillDownloadOutcome => ({ kind: 'bill', bill: parseAlipayBill(formatAlipayBill(rows, DAY.date)) });

async function keep(channel: string, outTradeNo: string, state: Attempt['state'], patch: Partial<Attempt> = {}): Promise<void> {
  const wallet = channel === 'ali' ? 'alipay' : 'wechat';
  const a: Attempt = {
    outTradeNo, deviceId: outTradeNo.slice(0, outTradeNo.lastIndexOf('-')), merchantId: 'M1', channel, saleId: `s-${outTradeNo}`, saleRef: null, amount: 1000,
    currency: 'CNY', wallet, state, reason: null, createdAt: NOON - 1_000, updatedAt: NOON, payAt: NOON, deadlineAt: null, nextAt: null, step: null,
    inFlight: null, callSeq: 1, tries: 0, cancelReason: null, gatewayTradeNo: null, charged: null, walletPaidAt: state === 'SUCCESS' ? NOON : null,
    buyerPaid: null, discount: null, flag: null, ackedState: null, version: 0, ...patch,
  };
  expect(await store.writeAttempts([{ attempt: a, expectedVersion: 0, event: 'test', fromState: null, note: '', claimSale: false }])).toEqual([{ ok: true, version: 1 }]);
}

const run = (channels: ReconcileChannel[], apply = true, channel?: string) =>
  reconcile({ store, gateway, channels, clock, callTimeoutMs: 1_000, billTimeoutMs: 1_000 }, { date: DAY.date, apply, ...(channel ? { channel } : {}) });
const lines = (r: ReconcileReport) => r.channels.flatMap((c) => c.findings.map((f) => `${f.outTradeNo}:${f.kind}:${f.status}`));
const actionOf = (r: ReconcileReport, otn: string) => r.channels.flatMap((c) => c.findings).find((f) => f.outTradeNo === otn)?.action;

describe('--apply: charged_not_success', () => {
  it('CANCELLED here, charged there, the wallet confirms it is charged: refunded for the net kept, as <outTradeNo>-RC, with the bill charge as the total', async () => {
    // 1000 charged, 300 of it refunded in the merchant's portal: 700 kept for a sale that never happened.
    await keep('wx', 'sbA-2', 'CANCELLED');
    answers.set('sbA-2', { kind: 'success', gatewayTradeNo: '42sbA-2', amount: 1000 });
    const r2 = await run([wechat(bill([charge('sbA-2', 1000), wx('sbA-2', { tradeState: 'REFUND', refundFee: 300, refundStatus: 'SUCCESS', refundId: 'r1', outRefundNo: 'PORTAL' })]))]);
    expect(lines(r2)).toEqual(['sbA-2:charged_not_success:settled']);
    expect(refunds).toEqual([{ outTradeNo: 'sbA-2', wallet: 'wechat', merchant: 'M1', channel: 'wx', refundNo: 'sbA-2-RC', amount: 700, total: 1000, currency: 'CNY' }]);
    expect(actionOf(r2, 'sbA-2')).toBe('refunded 7.00 as sbA-2-RC');
    expect(r2.exitCode).toBe(0);
  });

  it('the wallet says it is refunded or closed already (on another day): settled, nothing refunded', async () => {
    await keep('wx', 'sbA-1', 'REVERSED');
    await keep('wx', 'sbA-2', 'FAILED');
    answers.set('sbA-1', { kind: 'refunded' });
    answers.set('sbA-2', { kind: 'closed' });
    const r = await run([wechat(bill([charge('sbA-1', 1000), charge('sbA-2', 500)]))]);
    expect(lines(r)).toEqual(['sbA-1:charged_not_success:settled', 'sbA-2:charged_not_success:settled']);
    expect(refunds).toEqual([]);
  });

  it('a query that does not confirm the charge, or a refund that is not done, leaves it open with the answer', async () => {
    await keep('wx', 'sbA-1', 'FAILED');
    await keep('wx', 'sbA-2', 'FAILED');
    answers.set('sbA-1', { kind: 'unknown', code: 'SYSTEMERROR', message: 'SYSTEMERROR' });
    answers.set('sbA-2', { kind: 'success', gatewayTradeNo: 'g', amount: 1000 });
    refundAnswer = { kind: 'retry_later', message: 'BIZERR_NEED_RETRY' };
    const r = await run([wechat(bill([charge('sbA-1', 1000), charge('sbA-2', 1000)]))]);
    expect(lines(r)).toEqual(['sbA-1:charged_not_success:open', 'sbA-2:charged_not_success:open']);
    expect(actionOf(r, 'sbA-1')).toMatch(/query answered unknown: SYSTEMERROR; not refunded/);
    expect(actionOf(r, 'sbA-2')).toMatch(/refund sbA-2-RC of 10.00 answered retry_later: BIZERR_NEED_RETRY/);
    expect(refunds.map((x) => x.outTradeNo)).toEqual(['sbA-2']);
    expect(r.exitCode).toBe(1);
  });

  it('no attempt here, an attempt still in progress, an order charged twice: never refunded by a machine, not even queried', async () => {
    await keep('wx', 'sbA-2', 'REFUND_PENDING');
    await keep('wx', 'sbA-3', 'FAILED');
    const r = await run([wechat(bill([charge('sbZ-1', 1000), charge('sbA-2', 1000), charge('sbA-3', 1000), charge('sbA-3', 1000)]))]);
    expect(lines(r)).toEqual(['sbA-2:charged_not_success:open', 'sbA-3:charged_not_success:open', 'sbA-3:duplicate:open', 'sbZ-1:charged_not_success:open']);
    expect(queries).toEqual([]);
    expect(refunds).toEqual([]);
    expect(actionOf(r, 'sbZ-1')).toMatch(/no attempt here/);
    expect(actionOf(r, 'sbA-2')).toMatch(/REFUND_PENDING/);
  });
});

describe('--apply: the findings a query can settle, and those only a person can', () => {
  it('success_not_charged: the wallet confirms the amount → settled; not found → open; refund_only_here: refunded → settled', async () => {
    await keep('wx', 'sbA-1', 'SUCCESS');
    await keep('wx', 'sbA-2', 'SUCCESS');
    await keep('wx', 'sbA-3', 'REFUNDED');
    answers.set('sbA-1', { kind: 'success', gatewayTradeNo: 'g', amount: 1000, paidAt: DAY.end + 1_000 });
    answers.set('sbA-3', { kind: 'refunded' });
    const r = await run([wechat(bill([charge('sbA-3', 1000)]))]);
    expect(lines(r)).toEqual(['sbA-1:success_not_charged:settled', 'sbA-2:success_not_charged:open', 'sbA-3:refund_only_here:settled']);
    expect(actionOf(r, 'sbA-1')).toBe("the wallet confirms 10.00 charged at 2026-01-02 00:00:01: on another day's bill");
    expect(actionOf(r, 'sbA-2')).toMatch(/not_found: a person must look/);
    expect(refunds).toEqual([]);
  });

  it('success_not_charged: the wallet charged another amount → open', async () => {
    await keep('wx', 'sbA-1', 'SUCCESS');
    answers.set('sbA-1', { kind: 'success', gatewayTradeNo: 'g', amount: 990 });
    expect(lines(await run([wechat({ kind: 'no_bill' })]))).toEqual(['sbA-1:success_not_charged:open']);
  });

  it('amount_mismatch, refund_only_there and duplicates are left to a person: no call at all', async () => {
    await keep('wx', 'sbA-1', 'SUCCESS');
    await keep('wx', 'sbA-2', 'SUCCESS');
    const r = await run([wechat(bill([charge('sbA-1', 990), charge('sbA-2', 1000), wx('sbA-2', { tradeState: 'REFUND', refundFee: 100, refundStatus: 'SUCCESS', refundId: 'r', outRefundNo: 'P1' })]))]);
    expect(lines(r)).toEqual(['sbA-1:amount_mismatch:open', 'sbA-2:refund_only_there:open']);
    expect([queries, refunds]).toEqual([[], []]);
  });
});

describe('what a run records, and what the next one makes of it', () => {
  it('without --apply: no call, nothing recorded; with it every finding is recorded with its status and action', async () => {
    await keep('wx', 'sbA-1', 'FAILED');
    answers.set('sbA-1', { kind: 'success', gatewayTradeNo: 'g', amount: 1000 });
    const channels = [wechat(bill([charge('sbA-1', 1000)]))];
    expect(lines(await run(channels, false))).toEqual(['sbA-1:charged_not_success:open']);
    expect([queries, refunds, await store.listReconcileFindings(DAY.date, 'wx')]).toEqual([[], [], []]);
    await run(channels);
    expect(await store.listReconcileFindings(DAY.date, 'wx')).toEqual([
      expect.objectContaining({ outTradeNo: 'sbA-1', kind: 'charged_not_success', status: 'settled', amount: 1000, merchantId: 'M1', action: 'refunded 10.00 as sbA-1-RC', foundAt: clock.now() }),
    ]);
    // The next run (still the same bill: the refund is on tomorrow's) says settled and sends nothing.
    clock.advanceSync(60_000);
    const again = await run(channels);
    expect(lines(again)).toEqual(['sbA-1:charged_not_success:settled']);
    expect(refunds).toHaveLength(1);
    expect(queries).toHaveLength(1);
    expect((await store.listReconcileFindings(DAY.date, 'wx'))[0]).toMatchObject({ foundAt: clock.now() - 60_000, updatedAt: clock.now() });
  });

  it('an open finding no longer found (the bill and the store agree by now) is settled', async () => {
    await keep('wx', 'sbA-1', 'SUCCESS');
    await run([wechat({ kind: 'no_bill' })]);
    expect((await store.listReconcileFindings(DAY.date, 'wx')).map((f) => f.status)).toEqual(['open']);
    const r = await run([wechat(bill([charge('sbA-1', 1000)]))]);
    expect(lines(r)).toEqual(['sbA-1:success_not_charged:settled']);
    expect(actionOf(r, 'sbA-1')).toMatch(/^no longer found: bill and store agree/);
    expect(r.exitCode).toBe(0);
    expect((await store.listReconcileFindings(DAY.date, 'wx')).map((f) => f.status)).toEqual(['settled']);
  });
});

describe('bills that cannot be had: exit 2, saying which', () => {
  it('a WeChat bill that fails, throws, or says what no bill says: the channel is not compared, the error names channel and day', async () => {
    await keep('wx', 'sbA-1', 'SUCCESS');
    const cases: [ReconcileChannel, RegExp][] = [
      [wechat({ kind: 'unknown', message: 'downloadbill: HTTP 500' }), /channel wx: the WeChat bill of 2026-01-01 cannot be fetched or read: downloadbill: HTTP 500/],
      [wechat(() => { throw new Error('parser surprise'); }), /parser surprise/],
      [wechat(bill([charge('sbA-1', 0)])), /sbA-1.*订单金额 0/],
    ];
    for (const [channel, why] of cases) {
      const r = await run([channel], false);
      expect(r.exitCode).toBe(2);
      expect(r.channels[0]!.errors).toEqual([expect.stringMatching(why)]);
      expect(r.channels[0]!.findings).toEqual([]);
    }
  });

  it("Alipay: one bill per authorised merchant; a merchant whose bill fails is left out (not 'not charged'), the others are compared", async () => {
    await store.addMerchant('M2', { alipayAppAuthToken: 'tok-2' }, 0);
    await store.addMerchant('M3', { wechatSubMchId: '1900000110' }, 0);
    await keep('ali', 'sbL-1', 'SUCCESS');
    await keep('ali', 'sbL-2', 'FAILED', { merchantId: 'M2' });
    const channel = alipay({
      M1: { kind: 'unknown', code: 'OTHER', message: 'isv.invalid-app-auth-token' },
      M2: alipayBill([{ tradeNo: 't2', outTradeNo: 'sbL-2', kind: 'trade', createdAt: NOON, completedAt: NOON, orderAmount: 1000, merchantReceived: 1000 }]),
    });
    const r = await run([channel], false);
    expect(channel.asked).toEqual(['M1', 'M2']);
    expect(lines(r)).toEqual(['sbL-2:charged_not_success:open']);
    expect(r.channels[0]!.errors).toEqual([expect.stringMatching(/channel ali: the Alipay bill of 2026-01-01 for merchant M1 cannot be fetched or read: isv.invalid-app-auth-token/)]);
    expect(r.exitCode).toBe(2);
  });

  it('Alipay: SUCCESS attempts of a merchant with no app_auth_token (authorisation withdrawn) cannot be checked: said, exit 2', async () => {
    await store.addMerchant('M3', {}, 0);
    await keep('ali', 'sbL-1', 'SUCCESS', { merchantId: 'M3' });
    await keep('ali', 'sbL-2', 'FAILED', { merchantId: 'M3' });
    const r = await run([alipay({})], false);
    expect(r.channels[0]!.errors).toEqual([expect.stringMatching(/merchant M3 has SUCCESS attempts around 2026-01-01 but no bill can be asked for it/)]);
    expect(lines(r)).toEqual([]);
    expect(r.exitCode).toBe(2);
  });
});

describe('usage errors', () => {
  it('no channel with a bill, an unknown channel, a bad date', async () => {
    await expect(run([])).rejects.toThrow(/no WeChat or Alipay channel/);
    await expect(run([wechat({ kind: 'no_bill' })], false, 'ali')).rejects.toThrow(/channel ali is not a WeChat or Alipay channel of this cloud \(reconcilable: wx\)/);
    await expect(reconcile({ store, gateway, channels: [wechat({ kind: 'no_bill' })], clock, callTimeoutMs: 1, billTimeoutMs: 1 }, { date: '2026-1-1', apply: false })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it("--channel reconciles that channel only; another channel's attempts are not its business", async () => {
    await keep('ali', 'sbL-1', 'SUCCESS');
    const r = await run([wechat({ kind: 'no_bill' }), alipay({})], false, 'wx');
    expect(r.channels.map((c) => c.channel)).toEqual(['wx']);
    expect(lines(r)).toEqual([]);
  });
});
