import { describe, expect, it } from 'vitest';
import { formatAlipayBill, parseAlipayBill, type AlipayBill } from '../../../cloud/gateway/alipay/bill.js';
import { formatWechatBill, parseWechatBill, type WechatBill, type WechatBillRow } from '../../../cloud/gateway/wechat/bill.js';
import { alipayBillRows, BillRowError, wechatBillRows } from '../../../cloud/reconcile/bill-rows.js';
import { businessDay, wechatBillDate } from '../../../cloud/reconcile/day.js';

/** Both wallets' bills, written in their own formats and read back by their own parsers, as one row type. */
const DAY = businessDay('2026-01-01')!;
const AT = DAY.start + 3_600_000;

function wx(patch: Partial<WechatBillRow>): WechatBillRow {
  return {
    tradeTime: AT, appId: 'wx2421b1c4370ec43b', mchId: '10000100', subMchId: '1900000109', deviceInfo: '', transactionId: '4200000001', outTradeNo: 'sbA-1',
    openId: 'oX', tradeType: 'MICROPAY', tradeState: 'SUCCESS', bankType: 'OTHERS', currency: 'CNY', settlementFee: 0, couponFee: 0, refundId: null,
    outRefundNo: null, refundFee: 0, rechargeCouponRefundFee: 0, refundType: '', refundStatus: '', body: '', attach: '', feeMilliFen: 0, rate: '0.60%',
    orderFee: 0, refundRequestFee: 0, rateNote: '', ...patch,
  };
}
const wechatBill = (rows: WechatBillRow[]): WechatBill => parseWechatBill(formatWechatBill(rows));
const merchantOf = (sub: string) => (sub === '1900000109' ? 'M1' : null);

describe('the business day', () => {
  it('is a Beijing calendar day: 2026-01-01 runs from 2025-12-31T16:00Z for 24 hours', () => {
    expect(DAY).toEqual({ date: '2026-01-01', start: Date.parse('2025-12-31T16:00:00Z'), end: Date.parse('2026-01-01T16:00:00Z') });
    expect(wechatBillDate(DAY)).toBe('20260101');
  });

  it('refuses what is not a day', () => {
    for (const bad of ['2026-02-30', '2026-13-01', '2026-1-1', '20260101', '0099-01-01', '', '2026-01-01 ']) expect(businessDay(bad)).toBeUndefined();
    expect(businessDay('2028-02-29')?.date).toBe('2028-02-29');
  });
});

describe('WeChat ALL bill → rows', () => {
  it('SUCCESS is a charge of 订单金额, REFUND a refund of 退款金额 with our refund number, REVOKED a reversal', () => {
    const bill = wechatBill([
      wx({ orderFee: 1234, settlementFee: 1234 }),
      wx({ tradeState: 'REFUND', tradeTime: AT + 1_000, refundId: '5000001', outRefundNo: 'sbA-1-RC', refundFee: 234, refundRequestFee: 234, refundStatus: 'SUCCESS' }),
      wx({ tradeState: 'REVOKED', tradeTime: AT + 2_000, outTradeNo: 'sbA-2', transactionId: '4200000002', refundFee: 500, refundStatus: 'SUCCESS' }),
    ]);
    expect(wechatBillRows(bill, 'wx1', merchantOf)).toEqual([
      { channel: 'wx1', wallet: 'wechat', outTradeNo: 'sbA-1', walletTradeNo: '4200000001', kind: 'charge', amount: 1234, at: AT, merchantId: 'M1' },
      { channel: 'wx1', wallet: 'wechat', outTradeNo: 'sbA-1', walletTradeNo: '4200000001', kind: 'refund', amount: 234, at: AT + 1_000, refundNo: 'sbA-1-RC', merchantId: 'M1' },
      { channel: 'wx1', wallet: 'wechat', outTradeNo: 'sbA-2', walletTradeNo: '4200000002', kind: 'reverse', amount: 500, at: AT + 2_000, merchantId: 'M1' },
    ]);
  });

  it('the charge is the order total even when a coupon paid part of it (应结订单金额 is less)', () => {
    const [r] = wechatBillRows(wechatBill([wx({ orderFee: 1234, settlementFee: 1034, couponFee: 200 })]), 'wx1', merchantOf);
    expect(r).toMatchObject({ kind: 'charge', amount: 1234 });
  });

  it('a refund still processing moves no money yet: left out', () => {
    const bill = wechatBill([wx({ tradeState: 'REFUND', refundId: '5000001', outRefundNo: 'X', refundFee: 100, refundStatus: 'PROCESSING' })]);
    expect(wechatBillRows(bill, 'wx1', merchantOf)).toEqual([]);
  });

  it('a sub-merchant no merchant of ours has is named null', () => {
    expect(wechatBillRows(wechatBill([wx({ orderFee: 100, subMchId: '1900000999' })]), 'wx1', merchantOf)[0]!.merchantId).toBeNull();
  });

  it('a charge of 0 is no charge any bill of this wallet has: BillRowError naming the order', () => {
    expect(() => wechatBillRows(wechatBill([wx({ orderFee: 0 })]), 'wx1', merchantOf)).toThrow(BillRowError);
    expect(() => wechatBillRows(wechatBill([wx({ orderFee: 0 })]), 'wx1', merchantOf)).toThrow(/sbA-1/);
  });
});

describe('Alipay trade bill → rows', () => {
  const bill = (rows: Parameters<typeof formatAlipayBill>[0]): AlipayBill => parseAlipayBill(formatAlipayBill(rows, '2026-01-01'));
  const base = { tradeNo: '2026010122001', outTradeNo: 'sbA-1', createdAt: AT - 5_000 } as const;

  it('交易 is a charge, 退款 with a request number a refund, 退款 without one (a cancel that refunded) a reversal; amounts positive fen', () => {
    const rows = alipayBillRows(
      bill([
        { ...base, kind: 'trade', completedAt: AT, orderAmount: 1234, merchantReceived: 1234 },
        { ...base, kind: 'refund', completedAt: AT + 1_000, orderAmount: -34, merchantReceived: -34, refundNo: 'sbA-1-RC' },
        { ...base, outTradeNo: 'sbA-2', tradeNo: '2026010122002', kind: 'trade', completedAt: AT + 2_000, orderAmount: 500, merchantReceived: 500 },
        { ...base, outTradeNo: 'sbA-2', tradeNo: '2026010122002', kind: 'refund', completedAt: AT + 3_000, orderAmount: -500, merchantReceived: -500 },
      ]),
      'ali1',
      'M1',
    );
    expect(rows).toEqual([
      { channel: 'ali1', wallet: 'alipay', outTradeNo: 'sbA-1', walletTradeNo: '2026010122001', kind: 'charge', amount: 1234, at: AT, merchantId: 'M1' },
      { channel: 'ali1', wallet: 'alipay', outTradeNo: 'sbA-1', walletTradeNo: '2026010122001', kind: 'refund', amount: 34, at: AT + 1_000, refundNo: 'sbA-1-RC', merchantId: 'M1' },
      { channel: 'ali1', wallet: 'alipay', outTradeNo: 'sbA-2', walletTradeNo: '2026010122002', kind: 'charge', amount: 500, at: AT + 2_000, merchantId: 'M1' },
      { channel: 'ali1', wallet: 'alipay', outTradeNo: 'sbA-2', walletTradeNo: '2026010122002', kind: 'reverse', amount: 500, at: AT + 3_000, merchantId: 'M1' },
    ]);
  });

  it('a refund row with a positive amount, or a trade of 0, is refused (BillRowError)', () => {
    expect(() => alipayBillRows(bill([{ ...base, kind: 'refund', completedAt: AT, orderAmount: 100, merchantReceived: 100, refundNo: 'R1' }]), 'ali1', 'M1')).toThrow(BillRowError);
    expect(() => alipayBillRows(bill([{ ...base, kind: 'trade', completedAt: AT, orderAmount: 0, merchantReceived: 0 }]), 'ali1', 'M1')).toThrow(BillRowError);
  });
});
