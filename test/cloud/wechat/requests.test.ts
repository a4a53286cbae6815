import { describe, expect, it } from 'vitest';
import type { PayRequest, RefundRequest } from '../../../cloud/gateway/gateway.js';
import {
  buildDownloadBill,
  buildMicropay,
  buildOrderQuery,
  buildRefund,
  buildRefundQuery,
  buildReverse,
  fen,
  randomNonce,
  type ProviderCredentials,
  type SubMerchant,
} from '../../../cloud/gateway/wechat/requests.js';
import { decodeXml, encodeXml } from '../../../cloud/gateway/wechat/xml.js';
import { refSign } from './reference.js';

const CREDS: ProviderCredentials = { appid: 'wx8888888888888888', mchId: '1900000109', apiKey: '192006250b4c09247ec02edce69f6a2d', signType: 'MD5' };
const HMAC: ProviderCredentials = { ...CREDS, signType: 'HMAC-SHA256' };
const MERCHANT: SubMerchant = { subMchId: '1900000110', defaultBody: '扫码墩-深圳南山店-商品' };
const NONCE = { nonce: () => '5K8264ILTKCH16CQ2502SI8ZNMTM67VS' };
const ROUTE = { wallet: 'wechat', merchant: 'M1', channel: 'wechat' } as const;
const PAY: PayRequest = { outTradeNo: 'sb7K2M9QX4TA-42', amount: 1234, currency: 'CNY', code: '134567890123456789', ...ROUTE, description: 'Coffee' };
const REFUND: RefundRequest = { outTradeNo: 'sb7K2M9QX4TA-42', refundNo: 'sb7K2M9QX4TA-42-r1', amount: 500, total: 1234, currency: 'CNY', ...ROUTE };

/** Every field but the sign, and the sign checked against the reference implementation. */
function checkSigned(params: Readonly<Record<string, string>>, creds = CREDS): Record<string, string> {
  const { sign, ...rest } = params;
  expect(sign).toBe(refSign(rest, creds.apiKey, creds.signType));
  return rest;
}

describe('micropay request', () => {
  it('carries exactly the documented fields (provider mode) and is signed', () => {
    const r = buildMicropay(PAY, CREDS, MERCHANT, { spbillCreateIp: '10.0.0.5' }, NONCE);
    expect(r.path).toBe('/pay/micropay');
    expect(r.clientCert).toBe(false);
    expect(checkSigned(r.params)).toEqual({
      appid: 'wx8888888888888888',
      mch_id: '1900000109',
      sub_mch_id: '1900000110',
      nonce_str: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
      sign_type: 'MD5',
      body: 'Coffee',
      out_trade_no: 'sb7K2M9QX4TA-42',
      total_fee: '1234',
      fee_type: 'CNY',
      spbill_create_ip: '10.0.0.5',
      auth_code: '134567890123456789',
    });
  });
  it('adds sub_appid and device_info when given; HMAC-SHA256 gives a 64-digit sign', () => {
    const r = buildMicropay(PAY, HMAC, { ...MERCHANT, subAppid: 'wx7777777777777777' }, { spbillCreateIp: '2001:db8::1', deviceInfo: 'S1-T3' }, NONCE);
    const f = checkSigned(r.params, HMAC);
    expect(f.sub_appid).toBe('wx7777777777777777');
    expect(f.device_info).toBe('S1-T3');
    expect(f.sign_type).toBe('HMAC-SHA256');
    expect(r.params.sign).toMatch(/^[0-9A-F]{64}$/);
  });
  it('total_fee is always a whole number of fen, never a float', () => {
    for (const amount of [1, 99, 100, 10_000_000]) {
      const r = buildMicropay({ ...PAY, amount }, CREDS, MERCHANT, { spbillCreateIp: '10.0.0.5' });
      expect(r.params.total_fee).toBe(String(amount));
      expect(r.params.total_fee).toMatch(/^[1-9][0-9]*$/);
    }
    for (const amount of [12.34, 0.5, 0, -1, Number.NaN, 1e21]) {
      expect(() => buildMicropay({ ...PAY, amount }, CREDS, MERCHANT, { spbillCreateIp: '10.0.0.5' })).toThrow();
    }
    expect(() => fen(1.5)).toThrow(RangeError);
    expect(() => fen(2 ** 53)).toThrow(RangeError);
    expect(fen(100)).toBe('100');
  });
  it('body: the description, else the merchant default, cut to 127 UTF-8 bytes between characters', () => {
    const { description: _, ...noDesc } = PAY;
    expect(buildMicropay(noDesc, CREDS, MERCHANT, { spbillCreateIp: '10.0.0.5' }).params.body).toBe(MERCHANT.defaultBody);
    const long = buildMicropay({ ...PAY, description: '咖'.repeat(100) }, CREDS, MERCHANT, { spbillCreateIp: '10.0.0.5' }).params.body!;
    expect(long).toBe('咖'.repeat(42)); // 126 bytes; a 43rd would make 129
    expect(() => buildMicropay(noDesc, CREDS, { ...MERCHANT, defaultBody: '' }, { spbillCreateIp: '10.0.0.5' })).toThrow();
  });
  it('refuses what WeChat would refuse or what is not WeChat', () => {
    const x = { spbillCreateIp: '10.0.0.5' };
    expect(() => buildMicropay(PAY, CREDS, MERCHANT, { spbillCreateIp: 'localhost' })).toThrow(/spbill_create_ip/);
    expect(() => buildMicropay({ ...PAY, wallet: 'alipay' }, CREDS, MERCHANT, x)).toThrow(/alipay/);
    expect(() => buildMicropay(PAY, CREDS, { ...MERCHANT, subMchId: '' }, x)).toThrow(/sub_mch_id/);
    expect(() => buildMicropay(PAY, { ...CREDS, signType: 'SHA1' as never }, MERCHANT, x)).toThrow(/sign type/);
    expect(() => buildMicropay({ ...PAY, code: 'abc' }, CREDS, MERCHANT, x)).toThrow();
  });
  it('each request gets a fresh 32-character alphanumeric nonce from the crypto RNG', () => {
    const a = buildMicropay(PAY, CREDS, MERCHANT, { spbillCreateIp: '10.0.0.5' }).params;
    const b = buildMicropay(PAY, CREDS, MERCHANT, { spbillCreateIp: '10.0.0.5' }).params;
    expect(a.nonce_str).toMatch(/^[0-9A-Za-z]{32}$/);
    expect(a.nonce_str).not.toBe(b.nonce_str);
    expect(a.sign).not.toBe(b.sign);
    const seen = new Set(Array.from({ length: 200 }, () => randomNonce()));
    expect(seen.size).toBe(200);
  });
  it('encodes to the <xml> body WeChat reads back field for field', () => {
    const r = buildMicropay({ ...PAY, description: 'A&B <c>' }, CREDS, MERCHANT, { spbillCreateIp: '10.0.0.5' });
    expect(decodeXml(encodeXml(r.params))).toEqual(r.params);
  });
});

describe('orderquery and reverse requests', () => {
  const expected = {
    appid: 'wx8888888888888888',
    mch_id: '1900000109',
    sub_mch_id: '1900000110',
    nonce_str: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
    sign_type: 'MD5',
    out_trade_no: 'sb7K2M9QX4TA-42',
  };
  it('orderquery by out_trade_no, no certificate', () => {
    const r = buildOrderQuery({ outTradeNo: 'sb7K2M9QX4TA-42', ...ROUTE }, CREDS, MERCHANT, NONCE);
    expect([r.path, r.clientCert]).toEqual(['/pay/orderquery', false]);
    expect(checkSigned(r.params)).toEqual(expected);
  });
  it('reverse by out_trade_no on secapi, with the client certificate', () => {
    const r = buildReverse({ outTradeNo: 'sb7K2M9QX4TA-42', ...ROUTE }, CREDS, MERCHANT, NONCE);
    expect([r.path, r.clientCert]).toEqual(['/secapi/pay/reverse', true]);
    expect(checkSigned(r.params)).toEqual(expected);
  });
});

describe('refund and refundquery requests', () => {
  it('refund: secapi with certificate, order total (the request total) and refund amount in fen, the refund id as out_refund_no', () => {
    const r = buildRefund(REFUND, CREDS, MERCHANT, { reason: '退货' }, NONCE);
    expect([r.path, r.clientCert]).toEqual(['/secapi/pay/refund', true]);
    expect(checkSigned(r.params)).toEqual({
      appid: 'wx8888888888888888',
      mch_id: '1900000109',
      sub_mch_id: '1900000110',
      nonce_str: '5K8264ILTKCH16CQ2502SI8ZNMTM67VS',
      sign_type: 'MD5',
      out_trade_no: 'sb7K2M9QX4TA-42',
      out_refund_no: 'sb7K2M9QX4TA-42-r1',
      total_fee: '1234',
      refund_fee: '500',
      refund_fee_type: 'CNY',
      refund_desc: '退货',
    });
  });
  it('refund: refuses more than the order, a float total, a refund id WeChat cannot take', () => {
    expect(() => buildRefund({ ...REFUND, amount: 2000 }, CREDS, MERCHANT)).toThrow(/more than/);
    expect(() => buildRefund({ ...REFUND, total: 12.34 }, CREDS, MERCHANT)).toThrow(/whole/);
    expect(() => buildRefund({ ...REFUND, refundNo: 'r 1' }, CREDS, MERCHANT)).toThrow(/refundNo/);
    expect(() => buildRefund({ ...REFUND, amount: 1.5 }, CREDS, MERCHANT)).toThrow();
  });
  it('refundquery by out_refund_no, or by out_trade_no with an offset', () => {
    const one = buildRefundQuery({ refundNo: 'sb7K2M9QX4TA-42-r1' }, CREDS, MERCHANT, NONCE);
    expect([one.path, one.clientCert]).toEqual(['/pay/refundquery', false]);
    expect(checkSigned(one.params)).toMatchObject({ out_refund_no: 'sb7K2M9QX4TA-42-r1' });
    expect(one.params.out_trade_no).toBeUndefined();
    const all = buildRefundQuery({ outTradeNo: 'sb7K2M9QX4TA-42', offset: 10 }, CREDS, MERCHANT, NONCE);
    expect(checkSigned(all.params)).toMatchObject({ out_trade_no: 'sb7K2M9QX4TA-42', offset: '10' });
    expect(() => buildRefundQuery({ outTradeNo: 'sb7K2M9QX4TA-42', offset: 1.5 }, CREDS, MERCHANT)).toThrow();
  });
  it('downloadbill: date and type, with or without a sub-merchant', () => {
    const r = buildDownloadBill({ date: '20260101', type: 'ALL' }, CREDS, MERCHANT, NONCE);
    expect(r.path).toBe('/pay/downloadbill');
    expect(checkSigned(r.params)).toMatchObject({ bill_date: '20260101', bill_type: 'ALL', sub_mch_id: '1900000110' });
    expect(buildDownloadBill({ date: '20260101', type: 'SUCCESS' }, CREDS, undefined).params.sub_mch_id).toBeUndefined();
    expect(() => buildDownloadBill({ date: '2026-01-01', type: 'ALL' }, CREDS, MERCHANT)).toThrow();
  });
});
