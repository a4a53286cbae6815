import { verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AlipayRequestError,
  beijingTimestamp,
  parseBeijingTimestamp,
  buildBillUrlQuery,
  buildCancel,
  buildPay,
  buildQuery,
  buildRefund,
  buildRefundQuery,
  type RequestContext,
  type SignedRequest,
} from '../../../cloud/gateway/alipay/requests.js';
import { AlipayAmountError } from '../../../cloud/gateway/alipay/amount.js';
import { keys } from './support.js';

// 2014-07-23 19:07:50 UTC is 2014-07-24 03:07:50 in Beijing: the published example timestamp.
const T0 = Date.UTC(2014, 6, 23, 19, 7, 50);

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return { app: { appId: '2021000000000001', privateKey: keys().app.privatePem }, appAuthToken: '201510BBaabdb44d8fd04607abf8d5931ec75D84', clock: { now: () => T0 }, ...over };
}

/** The string Alipay recomputes, written out by hand for each request (independent of signContent). */
function expectSignedOver(req: SignedRequest, expected: string): void {
  const ok = verify('sha256', Buffer.from(expected, 'utf8'), keys().app.publicKey, Buffer.from(req.params.sign!, 'base64'));
  expect(ok, expected).toBe(true);
}

const COMMON = { app_id: '2021000000000001', format: 'JSON', charset: 'utf-8', sign_type: 'RSA2', timestamp: '2014-07-24 03:07:50', version: '1.0' };
const TOKEN = '201510BBaabdb44d8fd04607abf8d5931ec75D84';

describe('alipay timestamps', () => {
  it('are Beijing time, yyyy-MM-dd HH:mm:ss, from the injected clock', () => {
    expect(beijingTimestamp(T0)).toBe('2014-07-24 03:07:50');
    expect(beijingTimestamp(Date.UTC(2023, 11, 31, 16, 0, 0))).toBe('2024-01-01 00:00:00');
    expect(beijingTimestamp(Date.UTC(2024, 1, 28, 16, 0, 0))).toBe('2024-02-29 00:00:00');
    expect(beijingTimestamp(Date.UTC(2024, 5, 30, 15, 59, 59, 999))).toBe('2024-06-30 23:59:59');
    expect(() => beijingTimestamp(Number.NaN)).toThrow(AlipayRequestError);
  });
});

describe('alipay request builders', () => {
  it('pay: bar_code, payment code, exact total_amount, common params with the merchant’s app_auth_token, signed', () => {
    const req = buildPay({ outTradeNo: 'box1-7', authCode: '287634438256643940', amountFen: 1230, subject: '门店 R20261125-0042' }, ctx());
    const biz = '{"out_trade_no":"box1-7","scene":"bar_code","auth_code":"287634438256643940","subject":"门店 R20261125-0042","total_amount":"12.30"}';
    expect(req.method).toBe('alipay.trade.pay');
    expect(req.params).toEqual({ ...COMMON, method: 'alipay.trade.pay', app_auth_token: TOKEN, biz_content: biz, sign: req.params.sign });
    expectSignedOver(
      req,
      `app_auth_token=${TOKEN}&app_id=2021000000000001&biz_content=${biz}&charset=utf-8&format=JSON&method=alipay.trade.pay&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0`,
    );
    // The form body carries exactly the signed parameters.
    expect(Object.fromEntries(new URLSearchParams(req.form))).toEqual(req.params);
  });

  it('pay: the amount is a JSON string with two decimals, never a number', () => {
    for (const [fen, text] of [[1, '0.01'], [10, '0.10'], [100, '1.00'], [10_000_000, '100000.00']] as const) {
      const req = buildPay({ outTradeNo: 'box1-7', authCode: '28763443825664394', amountFen: fen, subject: 'x' }, ctx());
      expect(JSON.parse(req.params.biz_content!).total_amount).toBe(text);
      expect(req.params.biz_content).toContain(`"total_amount":"${text}"`);
    }
  });

  it('pay: optional product_code, store_id and terminal_id are carried when given', () => {
    const req = buildPay({ outTradeNo: 'box1-7', authCode: '28763443825664394', amountFen: 5, subject: 'x', productCode: 'OFFLINE_PAYMENT', storeId: 'S01', terminalId: 'box1' }, ctx());
    expect(JSON.parse(req.params.biz_content!)).toEqual({ out_trade_no: 'box1-7', scene: 'bar_code', auth_code: '28763443825664394', subject: 'x', total_amount: '0.05', product_code: 'OFFLINE_PAYMENT', store_id: 'S01', terminal_id: 'box1' });
  });

  it('direct mode: no app_auth_token parameter at all when the context has none', () => {
    const req = buildQuery({ outTradeNo: 'box1-7' }, ctx({ appAuthToken: undefined }));
    expect('app_auth_token' in req.params).toBe(false);
    expectSignedOver(req, 'app_id=2021000000000001&biz_content={"out_trade_no":"box1-7"}&charset=utf-8&format=JSON&method=alipay.trade.query&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0');
  });

  it('query and cancel name the order by out_trade_no', () => {
    const q = buildQuery({ outTradeNo: 'box1-7' }, ctx());
    expect(q.params).toEqual({ ...COMMON, method: 'alipay.trade.query', app_auth_token: TOKEN, biz_content: '{"out_trade_no":"box1-7"}', sign: q.params.sign });
    const c = buildCancel({ outTradeNo: 'box1-7' }, ctx());
    expect(c.params).toEqual({ ...COMMON, method: 'alipay.trade.cancel', app_auth_token: TOKEN, biz_content: '{"out_trade_no":"box1-7"}', sign: c.params.sign });
    expectSignedOver(c, `app_auth_token=${TOKEN}&app_id=2021000000000001&biz_content={"out_trade_no":"box1-7"}&charset=utf-8&format=JSON&method=alipay.trade.cancel&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0`);
  });

  it('refund carries out_request_no = the refund id and refund_amount from fen; refund query names both', () => {
    const r = buildRefund({ outTradeNo: 'box1-7', refundNo: 'box1-7-R', amountFen: 250, reason: '顾客退货' }, ctx());
    const biz = '{"out_trade_no":"box1-7","out_request_no":"box1-7-R","refund_amount":"2.50","refund_reason":"顾客退货"}';
    expect(r.params).toEqual({ ...COMMON, method: 'alipay.trade.refund', app_auth_token: TOKEN, biz_content: biz, sign: r.params.sign });
    expectSignedOver(r, `app_auth_token=${TOKEN}&app_id=2021000000000001&biz_content=${biz}&charset=utf-8&format=JSON&method=alipay.trade.refund&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0`);
    const q = buildRefundQuery({ outTradeNo: 'box1-7', refundNo: 'box1-7-R' }, ctx());
    expect(q.params.method).toBe('alipay.trade.fastpay.refund.query');
    expect(q.params.biz_content).toBe('{"out_trade_no":"box1-7","out_request_no":"box1-7-R"}');
  });

  it('bill download url query: trade or signcustomer, by day or month', () => {
    const b = buildBillUrlQuery({ billType: 'trade', billDate: '2024-01-31' }, ctx());
    expect(b.params.method).toBe('alipay.data.dataservice.bill.downloadurl.query');
    expect(b.params.biz_content).toBe('{"bill_type":"trade","bill_date":"2024-01-31"}');
    expect(buildBillUrlQuery({ billType: 'signcustomer', billDate: '2024-01' }, ctx()).params.biz_content).toBe('{"bill_type":"signcustomer","bill_date":"2024-01"}');
    for (const d of ['2024-13', '2024-1-01', '24-01-01', '2024-01-32', '2024/01/01', '']) {
      expect(() => buildBillUrlQuery({ billType: 'trade', billDate: d }, ctx()), d).toThrow(AlipayRequestError);
    }
    expect(() => buildBillUrlQuery({ billType: 'all' as 'trade', billDate: '2024-01' }, ctx())).toThrow(AlipayRequestError);
  });

  it('the timestamp follows the injected clock', () => {
    const req = buildQuery({ outTradeNo: 'box1-7' }, ctx({ clock: { now: () => Date.UTC(2030, 0, 1, 0, 0, 0) } }));
    expect(req.params.timestamp).toBe('2030-01-01 08:00:00');
  });

  it('refuses inputs Alipay would refuse, before signing anything', () => {
    const base = { outTradeNo: 'box1-7', authCode: '28763443825664394', amountFen: 100, subject: 'x' };
    expect(() => buildPay({ ...base, amountFen: 0 }, ctx())).toThrow(AlipayAmountError);
    expect(() => buildPay({ ...base, amountFen: -1 }, ctx())).toThrow(AlipayAmountError);
    expect(() => buildPay({ ...base, amountFen: 12.5 }, ctx())).toThrow(AlipayAmountError);
    expect(() => buildRefund({ outTradeNo: 'box1-7', refundNo: 'r', amountFen: 0.5 }, ctx())).toThrow(AlipayAmountError);
    for (const subject of ['', 'a/b', 'a=b', 'a&b', 'tab\there', 'x'.repeat(257)]) {
      expect(() => buildPay({ ...base, subject }, ctx()), subject).toThrow(AlipayRequestError);
    }
    for (const outTradeNo of ['', 'a b', 'a'.repeat(65), 'a.b', '订单1']) {
      expect(() => buildPay({ ...base, outTradeNo }, ctx()), outTradeNo).toThrow(AlipayRequestError);
    }
    for (const authCode of ['', '28763443825664394a', ' 28763443825664394', '2'.repeat(65)]) {
      expect(() => buildPay({ ...base, authCode }, ctx()), authCode).toThrow(AlipayRequestError);
    }
    expect(() => buildRefund({ outTradeNo: 'box1-7', refundNo: 'has space', amountFen: 1 }, ctx())).toThrow(AlipayRequestError);
    expect(() => buildQuery({ outTradeNo: 'box1-7' }, ctx({ app: { appId: 'app-1', privateKey: keys().app.privatePem } }))).toThrow(AlipayRequestError);
    expect(() => buildQuery({ outTradeNo: 'box1-7' }, ctx({ appAuthToken: 'has space' }))).toThrow(AlipayRequestError);
    expect(() => buildQuery({ outTradeNo: 'box1-7' }, ctx({ app: { appId: '2021000000000001', privateKey: keys().alipay.publicPem } }))).toThrow();
  });
});

describe('parseBeijingTimestamp: Alipay times back to instants', () => {
  it('reads what beijingTimestamp writes, and nothing else', () => {
    for (const t of [0, Date.UTC(2023, 11, 31, 16), Date.UTC(2024, 1, 28, 16), Date.UTC(2024, 5, 30, 15, 59, 59)]) {
      expect(parseBeijingTimestamp(beijingTimestamp(t))).toBe(t);
    }
    for (const bad of ['2024-02-30 10:00:00', '2023-02-29 00:00:00', '2024-01-01 24:00:00', '2024-01-01 10:60:00', '2024-1-1 10:00:00', '2024-01-01T10:00:00', ' 2024-01-01 10:00:00', '', 20240101, undefined]) {
      expect(parseBeijingTimestamp(bad), String(bad)).toBeUndefined();
    }
  });
});
