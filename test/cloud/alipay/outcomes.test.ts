import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome } from '../../../cloud/gateway/gateway.js';
import { mapBillUrl, mapCancel, mapPay, mapQuery, mapRefund, mapRefundQuery } from '../../../cloud/gateway/alipay/outcomes.js';
import { openResponse } from '../../../cloud/gateway/alipay/sign.js';
import { alipayBody, keys, rsa2 } from './support.js';

/**
 * Every mapped Alipay answer against an expectation table written out here by hand — not derived from the
 * tables in outcomes.ts. Unknown outcomes are pinned by kind and code; their messages are free text.
 */
const OTN = 'box1-7';
const RNO = 'box1-7-R';
const TRADE_NO = '2024010122001400000001';

type Node = Record<string, unknown>;
const paid = (over: Node = {}): Node => ({ code: '10000', msg: 'Success', out_trade_no: OTN, trade_no: TRADE_NO, total_amount: '12.30', buyer_pay_amount: '12.30', ...over });
const biz = (sub_code: string, over: Node = {}): Node => ({ code: '40004', msg: 'Business Failed', sub_code, sub_msg: '…', out_trade_no: OTN, ...over });
const UNKNOWN_OTHER = { kind: 'unknown', code: 'OTHER' } as const;
const UNKNOWN_SYS = { kind: 'unknown', code: 'SYSTEMERROR' } as const;

const METHOD = {
  pay: 'alipay.trade.pay',
  query: 'alipay.trade.query',
  cancel: 'alipay.trade.cancel',
  refund: 'alipay.trade.refund',
  refundQuery: 'alipay.trade.fastpay.refund.query',
  billUrl: 'alipay.data.dataservice.bill.downloadurl.query',
} as const;
type Call = keyof typeof METHOD;

function decode(call: Call, body: string, pub: string = keys().alipay.publicPem) {
  const opened = openResponse(body, METHOD[call], pub);
  const expect = { outTradeNo: OTN, refundNo: RNO };
  switch (call) {
    case 'pay':
      return mapPay(opened, expect);
    case 'query':
      return mapQuery(opened, expect);
    case 'cancel':
      return mapCancel(opened, expect);
    case 'refund':
      return mapRefund(opened, expect);
    case 'refundQuery':
      return mapRefundQuery(opened, expect);
    case 'billUrl':
      return mapBillUrl(opened);
  }
}

const SCHEMA = { pay: PayOutcome, query: QueryOutcome, cancel: ReverseOutcome, refund: RefundOutcome, refundQuery: RefundOutcome } as const;

type Case = [name: string, call: Call, node: Node, expected: Record<string, unknown>];

const CASES: Case[] = [
  // ---- alipay.trade.pay
  ['pay 10000 → success, trade_no and total_amount in fen', 'pay', paid(), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230, discount: 0 }],
  ['pay 10000 with "12.3" → 1230 fen', 'pay', paid({ total_amount: '12.3' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230, discount: 0 }],
  ['pay 10000 of 0.01', 'pay', paid({ total_amount: '0.01' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1 }],
  ['pay 10000 without trade_no → unknown', 'pay', paid({ trade_no: undefined }), UNKNOWN_OTHER],
  ['pay 10000 with an empty trade_no → unknown', 'pay', paid({ trade_no: '' }), UNKNOWN_OTHER],
  ['pay 10000 with 3 decimals → unknown', 'pay', paid({ total_amount: '12.345' }), UNKNOWN_OTHER],
  ['pay 10000 with a numeric amount → unknown', 'pay', paid({ total_amount: 12.3 }), UNKNOWN_OTHER],
  ['pay 10000 of 0.00 → unknown', 'pay', paid({ total_amount: '0.00' }), UNKNOWN_OTHER],
  ['pay 10000 above the interface maximum → unknown', 'pay', paid({ total_amount: '100000.01' }), UNKNOWN_OTHER],
  ['pay 10000 for another order → unknown', 'pay', paid({ out_trade_no: 'box1-8' }), UNKNOWN_OTHER],
  ['pay 10000 naming no order → unknown', 'pay', paid({ out_trade_no: undefined }), UNKNOWN_OTHER],
  ['pay 10000 as a number code → unknown', 'pay', paid({ code: 10000 }), UNKNOWN_OTHER],
  ['pay without code → unknown', 'pay', paid({ code: undefined }), UNKNOWN_OTHER],
  ['pay 10003 → in progress', 'pay', { code: '10003', msg: ' order success pay inprocess', out_trade_no: OTN }, { kind: 'in_progress' }],
  ['pay 20000 → unknown SYSTEMERROR', 'pay', { code: '20000', msg: 'Service Currently Unavailable', sub_code: 'isp.unknow-error' }, UNKNOWN_SYS],
  ['pay 20000 aop.unknow-error → unknown SYSTEMERROR', 'pay', { code: '20000', sub_code: 'aop.unknow-error' }, UNKNOWN_SYS],
  ['pay 20000 without sub_code → unknown SYSTEMERROR', 'pay', { code: '20000', msg: 'Service Currently Unavailable' }, UNKNOWN_SYS],
  ['pay 20000 with an unheard-of sub_code → unknown SYSTEMERROR', 'pay', { code: '20000', sub_code: 'isp.something-else' }, UNKNOWN_SYS],
  ['pay ACQ.SYSTEM_ERROR → unknown SYSTEMERROR', 'pay', biz('ACQ.SYSTEM_ERROR'), UNKNOWN_SYS],
  ['pay AQC.SYSTEM_ERROR → unknown SYSTEMERROR', 'pay', biz('AQC.SYSTEM_ERROR'), UNKNOWN_SYS],
  ['pay aop.ACQ.SYSTEM_ERROR → unknown SYSTEMERROR', 'pay', { code: '20000', sub_code: 'aop.ACQ.SYSTEM_ERROR' }, UNKNOWN_SYS],
  ['pay code invalid', 'pay', biz('ACQ.PAYMENT_AUTH_CODE_INVALID'), { kind: 'failed', reason: 'CODE_INVALID' }],
  ['pay balance not enough', 'pay', biz('ACQ.BUYER_BALANCE_NOT_ENOUGH'), { kind: 'failed', reason: 'INSUFFICIENT_FUNDS' }],
  ['pay bank card balance not enough', 'pay', biz('ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH'), { kind: 'failed', reason: 'INSUFFICIENT_FUNDS' }],
  ...[
    'ACQ.ERROR_BALANCE_PAYMENT_DISABLE',
    'ACQ.PAYMENT_FAIL',
    'ACQ.PAYMENT_REQUEST_HAS_RISK',
    'ACQ.NO_PAYMENT_INSTRUMENTS_AVAILABLE',
    'ACQ.PULL_MOBILE_CASHIER_FAIL',
    'ACQ.MOBILE_PAYMENT_SWITCH_OFF',
    'ACQ.USER_FACE_PAYMENT_SWITCH_OFF',
    'ACQ.BUYER_ENABLE_STATUS_FORBID',
    'ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR',
    'ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR',
    'ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT',
    'ACQ.BUYER_SELLER_EQUAL',
    'ACQ.INVALID_PARAMETER',
    'ACQ.ACCESS_FORBIDDEN',
    'ACQ.PARTNER_ERROR',
    'ACQ.TOTAL_FEE_EXCEED',
    'ACQ.EXIST_FORBIDDEN_WORD',
    'ACQ.SELLER_BEEN_BLOCKED',
    'ACQ.INVALID_STORE_ID',
    'ACQ.BEYOND_PAY_RESTRICTION',
    'ACQ.BEYOND_PER_RECEIPT_RESTRICTION',
  ].map((sub): Case => [`pay ${sub} → declined`, 'pay', biz(sub), { kind: 'failed', reason: 'DECLINED' }]),
  ['pay failure for another order → unknown', 'pay', biz('ACQ.BUYER_BALANCE_NOT_ENOUGH', { out_trade_no: 'other-1' }), UNKNOWN_OTHER],
  ['pay failure naming no order → failed all the same', 'pay', biz('ACQ.PAYMENT_AUTH_CODE_INVALID', { out_trade_no: undefined }), { kind: 'failed', reason: 'CODE_INVALID' }],
  ['pay ACQ.TRADE_HAS_SUCCESS (a repeated pay) → unknown, never failed', 'pay', biz('ACQ.TRADE_HAS_SUCCESS'), UNKNOWN_OTHER],
  ['pay ACQ.TRADE_HAS_CLOSE → unknown', 'pay', biz('ACQ.TRADE_HAS_CLOSE'), UNKNOWN_OTHER],
  ['pay ACQ.CONTEXT_INCONSISTENT → unknown', 'pay', biz('ACQ.CONTEXT_INCONSISTENT'), UNKNOWN_OTHER],
  ['pay ACQ.TRADE_BUYER_NOT_MATCH → unknown', 'pay', biz('ACQ.TRADE_BUYER_NOT_MATCH'), UNKNOWN_OTHER],
  ['pay an unheard-of sub_code → unknown', 'pay', biz('ACQ.SOMETHING_NEW'), UNKNOWN_OTHER],
  ['pay sub_code "constructor" → unknown', 'pay', biz('constructor'), UNKNOWN_OTHER],
  ['pay sub_code "__proto__" → unknown', 'pay', biz('__proto__'), UNKNOWN_OTHER],
  ['pay 40004 without sub_code → unknown', 'pay', { code: '40004', msg: 'Business Failed', out_trade_no: OTN }, UNKNOWN_OTHER],
  ['pay signed 40002 (gateway rejected) → unknown', 'pay', { code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.invalid-signature' }, UNKNOWN_OTHER],
  ['pay signed 20001 (app_auth_token) → unknown', 'pay', { code: '20001', sub_code: 'aop.invalid-app-auth-token' }, UNKNOWN_OTHER],
  ['pay 10000 is a success even with a stray sub_code', 'pay', paid({ sub_code: 'ACQ.PAYMENT_FAIL' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230, discount: 0 }],
  // [RECEIPT]: receipt data never changes the amount, and what cannot be read exactly is left out.
  ['pay 10000 with gmt_payment → paidAt (Beijing time)', 'pay', paid({ gmt_payment: '2024-03-01 10:20:30' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230, discount: 0, paidAt: Date.UTC(2024, 2, 1, 2, 20, 30) }],
  ['pay 10000 with an impossible gmt_payment → no paidAt', 'pay', paid({ gmt_payment: '2024-02-30 10:20:30' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230, discount: 0 }],
  ['pay 10000 with an ISO gmt_payment → no paidAt', 'pay', paid({ gmt_payment: '2024-03-01T10:20:30+08:00' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230, discount: 0 }],
  ['pay 10000 buyer paid less → discount is the rest of the total', 'pay', paid({ buyer_pay_amount: '10.30' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1030, discount: 200 }],
  ['pay 10000 all by coupon → buyer paid 0, discount the total', 'pay', paid({ buyer_pay_amount: '0.00' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 0, discount: 1230 }],
  ['pay 10000 discount fields win over the difference', 'pay', paid({ buyer_pay_amount: '10.00', discount_amount: '2.00', mdiscount_amount: '0.10' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1000, discount: 210 }],
  ['pay 10000 an inexact discount field → no discount', 'pay', paid({ discount_amount: '2.001' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230 }],
  ['pay 10000 a discount above the total → no discount', 'pay', paid({ discount_amount: '12.31' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230 }],
  ['pay 10000 buyer paid more than the total → neither, and the total stands', 'pay', paid({ buyer_pay_amount: '12.31' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230 }],
  ['pay 10000 an inexact buyer_pay_amount → neither', 'pay', paid({ buyer_pay_amount: '1.234' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230 }],

  // ---- alipay.trade.query
  ['query TRADE_SUCCESS → success', 'query', paid({ trade_status: 'TRADE_SUCCESS' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230, discount: 0 }],
  ['query TRADE_SUCCESS with send_pay_date → paidAt', 'query', paid({ trade_status: 'TRADE_SUCCESS', send_pay_date: '2024-03-01 00:00:00' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 1230, buyerPaid: 1230, discount: 0, paidAt: Date.UTC(2024, 1, 29, 16) }],
  ['query TRADE_FINISHED → success', 'query', paid({ trade_status: 'TRADE_FINISHED', total_amount: '100000.00' }), { kind: 'success', gatewayTradeNo: TRADE_NO, amount: 10_000_000, buyerPaid: 1230, discount: 9_998_770 }],
  ['query WAIT_BUYER_PAY → in progress', 'query', paid({ trade_status: 'WAIT_BUYER_PAY' }), { kind: 'in_progress' }],
  ['query TRADE_CLOSED → closed', 'query', paid({ trade_status: 'TRADE_CLOSED' }), { kind: 'closed' }],
  ['query TRADE_CLOSED with a payment time (paid, then refunded in full) → refunded', 'query', paid({ trade_status: 'TRADE_CLOSED', send_pay_date: '2024-03-01 10:20:30' }), { kind: 'refunded' }],
  ['query TRADE_CLOSED with an unreadable payment time → closed', 'query', paid({ trade_status: 'TRADE_CLOSED', send_pay_date: 'yesterday' }), { kind: 'closed' }],
  ['query 10000 without trade_status → unknown', 'query', paid(), UNKNOWN_OTHER],
  ['query an unheard-of status → unknown', 'query', paid({ trade_status: 'TRADE_PENDING' }), UNKNOWN_OTHER],
  ['query a lower-case status → unknown', 'query', paid({ trade_status: 'trade_success' }), UNKNOWN_OTHER],
  ['query TRADE_SUCCESS without amount → unknown', 'query', paid({ trade_status: 'TRADE_SUCCESS', total_amount: undefined }), UNKNOWN_OTHER],
  ['query TRADE_SUCCESS for another order → unknown', 'query', paid({ trade_status: 'TRADE_SUCCESS', out_trade_no: 'box2-7' }), UNKNOWN_OTHER],
  ['query TRADE_CLOSED for another order → unknown', 'query', paid({ trade_status: 'TRADE_CLOSED', out_trade_no: 'box2-7' }), UNKNOWN_OTHER],
  ['query ACQ.TRADE_NOT_EXIST → not found', 'query', biz('ACQ.TRADE_NOT_EXIST'), { kind: 'not_found' }],
  ['query ACQ.TRADE_NOT_EXIST naming no order → not found', 'query', biz('ACQ.TRADE_NOT_EXIST', { out_trade_no: undefined }), { kind: 'not_found' }],
  ['query TRADE_NOT_EXIST outside 40004 → unknown', 'query', { code: '40002', sub_code: 'ACQ.TRADE_NOT_EXIST' }, UNKNOWN_OTHER],
  ['query 20000 → unknown SYSTEMERROR', 'query', { code: '20000', sub_code: 'isp.unknow-error' }, UNKNOWN_SYS],
  ['query ACQ.SYSTEM_ERROR → unknown SYSTEMERROR', 'query', biz('ACQ.SYSTEM_ERROR'), UNKNOWN_SYS],
  ['query ACQ.INVALID_PARAMETER → unknown (says nothing about the trade)', 'query', biz('ACQ.INVALID_PARAMETER'), UNKNOWN_OTHER],
  ['query a pay failure code → unknown', 'query', biz('ACQ.PAYMENT_AUTH_CODE_INVALID'), UNKNOWN_OTHER],

  // ---- alipay.trade.cancel
  ['cancel 10000 action close → reversed', 'cancel', { code: '10000', msg: 'Success', action: 'close', out_trade_no: OTN, retry_flag: 'N', trade_no: TRADE_NO }, { kind: 'reversed', action: 'close' }],
  ['cancel 10000 action refund → reversed', 'cancel', { code: '10000', msg: 'Success', action: 'refund', out_trade_no: OTN, retry_flag: 'N' }, { kind: 'reversed', action: 'refund' }],
  ['cancel 10000 with an unheard-of action → reversed, without it', 'cancel', { code: '10000', msg: 'Success', action: 'freeze', out_trade_no: OTN, retry_flag: 'N' }, { kind: 'reversed' }],
  ['cancel 10000 without action → reversed', 'cancel', { code: '10000', msg: 'Success', out_trade_no: OTN, retry_flag: 'N' }, { kind: 'reversed' }],
  ['cancel 10000 retry_flag Y → retry later', 'cancel', { code: '10000', msg: 'Success', out_trade_no: OTN, retry_flag: 'Y' }, { kind: 'retry_later' }],
  ['cancel ACQ.SYSTEM_ERROR retry_flag Y → retry later', 'cancel', biz('ACQ.SYSTEM_ERROR', { retry_flag: 'Y' }), { kind: 'retry_later' }],
  ['cancel ACQ.SYSTEM_ERROR retry_flag N → unknown SYSTEMERROR', 'cancel', biz('ACQ.SYSTEM_ERROR', { retry_flag: 'N' }), UNKNOWN_SYS],
  ['cancel 20000 → unknown SYSTEMERROR', 'cancel', { code: '20000', sub_code: 'isp.unknow-error' }, UNKNOWN_SYS],
  ['cancel past 24 h → window passed', 'cancel', biz('ACQ.TRADE_CANCEL_TIME_OUT', { retry_flag: 'N' }), { kind: 'window_passed' }],
  ['cancel seller balance not enough → retry later', 'cancel', biz('ACQ.SELLER_BALANCE_NOT_ENOUGH', { retry_flag: 'N' }), { kind: 'retry_later' }],
  ['cancel ACQ.TRADE_NOT_EXIST → unknown (the pay may land late)', 'cancel', biz('ACQ.TRADE_NOT_EXIST'), UNKNOWN_OTHER],
  ['cancel ACQ.REASON_TRADE_BEEN_FREEZEN → unknown', 'cancel', biz('ACQ.REASON_TRADE_BEEN_FREEZEN'), UNKNOWN_OTHER],
  ['cancel ACQ.CANCEL_NOT_ALLOWED → unknown', 'cancel', biz('ACQ.CANCEL_NOT_ALLOWED'), UNKNOWN_OTHER],
  ['cancel 10000 for another order → unknown', 'cancel', { code: '10000', action: 'close', out_trade_no: 'box9-1', retry_flag: 'N' }, UNKNOWN_OTHER],
  ['cancel 10000 naming no order → unknown', 'cancel', { code: '10000', action: 'close', retry_flag: 'N' }, UNKNOWN_OTHER],
  ['cancel retry_flag "y" (not Y) and no code → unknown', 'cancel', { retry_flag: 'y', out_trade_no: OTN }, UNKNOWN_OTHER],

  // ---- alipay.trade.refund
  ['refund 10000 fund_change Y → refunded', 'refund', { code: '10000', msg: 'Success', fund_change: 'Y', out_trade_no: OTN, trade_no: TRADE_NO, refund_fee: '2.50' }, { kind: 'refunded', refundNo: RNO }],
  ['refund 10000 fund_change N → unknown (confirm by refund query)', 'refund', { code: '10000', fund_change: 'N', out_trade_no: OTN, refund_fee: '2.50' }, UNKNOWN_OTHER],
  ['refund 10000 without fund_change → unknown', 'refund', { code: '10000', out_trade_no: OTN }, UNKNOWN_OTHER],
  ['refund 10000 Y for another order → unknown', 'refund', { code: '10000', fund_change: 'Y', out_trade_no: 'box1-70' }, UNKNOWN_OTHER],
  ['refund 10000 Y naming no order → unknown', 'refund', { code: '10000', fund_change: 'Y' }, UNKNOWN_OTHER],
  ['refund 20000 → unknown SYSTEMERROR', 'refund', { code: '20000', sub_code: 'aop.unknow-error' }, UNKNOWN_SYS],
  ['refund ACQ.SYSTEM_ERROR → unknown SYSTEMERROR', 'refund', biz('ACQ.SYSTEM_ERROR'), UNKNOWN_SYS],
  ['refund seller balance not enough → retry later', 'refund', biz('ACQ.SELLER_BALANCE_NOT_ENOUGH'), { kind: 'retry_later' }],
  ...[
    'ACQ.TRADE_NOT_EXIST',
    'ACQ.TRADE_HAS_FINISHED',
    'ACQ.TRADE_STATUS_ERROR',
    'ACQ.TRADE_NOT_ALLOW_REFUND',
    'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL',
    'ACQ.REASON_TRADE_REFUND_FEE_ERR',
    'ACQ.REFUND_FEE_ERROR',
  ].map((sub): Case => [`refund ${sub} → failed`, 'refund', biz(sub), { kind: 'failed', reason: 'DECLINED' }]),
  ['refund ACQ.DISCORDANT_REPEAT_REQUEST → unknown (an earlier refund with this id exists)', 'refund', biz('ACQ.DISCORDANT_REPEAT_REQUEST'), UNKNOWN_OTHER],
  ['refund a pay failure code → unknown', 'refund', biz('ACQ.BUYER_BALANCE_NOT_ENOUGH'), UNKNOWN_OTHER],

  // ---- alipay.trade.fastpay.refund.query
  ['refund query REFUND_SUCCESS → refunded', 'refundQuery', { code: '10000', msg: 'Success', out_request_no: RNO, out_trade_no: OTN, refund_amount: '2.50', total_amount: '12.30', refund_status: 'REFUND_SUCCESS' }, { kind: 'refunded', refundNo: RNO }],
  ['refund query 10000 without refund_status → retry later', 'refundQuery', { code: '10000', msg: 'Success', out_trade_no: OTN }, { kind: 'retry_later' }],
  ['refund query 10000 with data but no refund_status → retry later', 'refundQuery', { code: '10000', out_request_no: RNO, out_trade_no: OTN, refund_amount: '2.50' }, { kind: 'retry_later' }],
  ['refund query REFUND_SUCCESS of another refund → unknown', 'refundQuery', { code: '10000', out_request_no: 'box1-7-X', out_trade_no: OTN, refund_status: 'REFUND_SUCCESS' }, UNKNOWN_OTHER],
  ['refund query REFUND_SUCCESS naming no refund → unknown', 'refundQuery', { code: '10000', out_trade_no: OTN, refund_status: 'REFUND_SUCCESS' }, UNKNOWN_OTHER],
  ['refund query REFUND_SUCCESS of another order → unknown', 'refundQuery', { code: '10000', out_request_no: RNO, out_trade_no: 'x-1', refund_status: 'REFUND_SUCCESS' }, UNKNOWN_OTHER],
  ['refund query 20000 → unknown SYSTEMERROR', 'refundQuery', { code: '20000', sub_code: 'isp.unknow-error' }, UNKNOWN_SYS],
  ['refund query ACQ.TRADE_NOT_EXIST → unknown', 'refundQuery', biz('ACQ.TRADE_NOT_EXIST'), UNKNOWN_OTHER],

  // ---- alipay.data.dataservice.bill.downloadurl.query
  ['bill url 10000 → url', 'billUrl', { code: '10000', msg: 'Success', bill_download_url: 'http://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=trade&fileType=csv.zip' }, { kind: 'url', url: 'http://dwbillcenter.alipay.com/downloadBillFile.resource?bizType=trade&fileType=csv.zip' }],
  ['bill url 10000 without url → unknown', 'billUrl', { code: '10000', msg: 'Success' }, UNKNOWN_OTHER],
  ['bill url 10000 with a non-http url → unknown', 'billUrl', { code: '10000', bill_download_url: 'javascript:alert(1)' }, UNKNOWN_OTHER],
  ['bill url isp.bill_not_exist → no bill', 'billUrl', { code: '40004', sub_code: 'isp.bill_not_exist' }, { kind: 'no_bill' }],
  ['bill url BILL_NOT_EXIST → no bill', 'billUrl', { code: '40004', sub_code: 'BILL_NOT_EXIST' }, { kind: 'no_bill' }],
  ['bill url NO_BILL_DATA → no bill', 'billUrl', { code: '40004', sub_code: 'NO_BILL_DATA' }, { kind: 'no_bill' }],
  ['bill url 20000 → unknown SYSTEMERROR', 'billUrl', { code: '20000', sub_code: 'isp.unknow-error' }, UNKNOWN_SYS],
  ['bill url 40004 other → unknown', 'billUrl', { code: '40004', sub_code: 'USER_RATE_LIMIT' }, UNKNOWN_OTHER],
];

describe('alipay outcomes: every mapped answer, signed by Alipay', () => {
  it.each(CASES)('%s', (_name, call, node, expected) => {
    const { outcome, facts } = decode(call, alipayBody(METHOD[call], JSON.stringify(node)));
    if (expected.kind === 'unknown') expect(outcome).toMatchObject(expected);
    else if (expected.kind === 'failed' || expected.kind === 'in_progress' || expected.kind === 'retry_later') expect(outcome).toMatchObject(expected);
    else expect(outcome).toEqual(expected);
    expect(facts.verified).toBe(true);
    if (call !== 'billUrl') SCHEMA[call].parse(outcome); // every outcome is valid on the interface (messages ≤ 200, etc.)
  });

  it('keeps the cancel’s action and retry_flag, and the other raw facts, for the attempt’s record', () => {
    const close = decode('cancel', alipayBody(METHOD.cancel, JSON.stringify({ code: '10000', action: 'close', out_trade_no: OTN, retry_flag: 'N', trade_no: TRADE_NO })));
    expect(close.facts).toMatchObject({ verified: true, action: 'close', retryFlag: 'N', tradeNo: TRADE_NO, outTradeNo: OTN, code: '10000' });
    const refund = decode('cancel', alipayBody(METHOD.cancel, JSON.stringify({ code: '10000', action: 'refund', out_trade_no: OTN, retry_flag: 'N' })));
    expect(refund.facts.action).toBe('refund');
    const retry = decode('cancel', alipayBody(METHOD.cancel, JSON.stringify(biz('ACQ.SYSTEM_ERROR', { retry_flag: 'Y' }))));
    expect(retry.facts).toMatchObject({ retryFlag: 'Y', subCode: 'ACQ.SYSTEM_ERROR' });
    expect(retry.facts.action).toBeUndefined();
    const r = decode('refund', alipayBody(METHOD.refund, JSON.stringify({ code: '10000', fund_change: 'Y', out_trade_no: OTN, refund_fee: '2.50' })));
    expect(r.facts).toMatchObject({ fundChange: 'Y', refundFee: '2.50' });
    const q = decode('refundQuery', alipayBody(METHOD.refundQuery, JSON.stringify({ code: '10000', out_request_no: RNO, out_trade_no: OTN, refund_status: 'REFUND_SUCCESS' })));
    expect(q.facts).toMatchObject({ refundStatus: 'REFUND_SUCCESS', outRequestNo: RNO });
    // Non-string values are not facts.
    const odd = decode('cancel', alipayBody(METHOD.cancel, JSON.stringify({ code: '10000', action: { x: 1 }, out_trade_no: OTN, retry_flag: true })));
    expect(odd.facts.action).toBeUndefined();
    expect(odd.facts.retryFlag).toBeUndefined();
  });

  it('says why a repeated pay is not a failure: the trade behind this out_trade_no must be queried', () => {
    const mapped = decode('pay', alipayBody(METHOD.pay, JSON.stringify(biz('ACQ.TRADE_HAS_SUCCESS'))));
    expect(mapped.outcome).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(mapped.outcome.kind === 'unknown' && mapped.outcome.message).toMatch(/already paid.*query/);
    expect(mapped.next).toBe('query');
    // The other "a trade exists" answers are left to the cloud's own query: none of them can be a success of THIS pay.
    expect(decode('pay', alipayBody(METHOD.pay, JSON.stringify(biz('ACQ.CONTEXT_INCONSISTENT')))).next).toBeUndefined();
    expect(decode('pay', alipayBody(METHOD.pay, JSON.stringify(biz('ACQ.TRADE_HAS_CLOSE')))).next).toBeUndefined();
  });

  it('asks for the refund query exactly when a refund of our trade moved no money', () => {
    const node = (over: Node) => alipayBody(METHOD.refund, JSON.stringify({ code: '10000', out_trade_no: OTN, ...over }));
    expect(decode('refund', node({ fund_change: 'N' })).next).toBe('refund_query');
    expect(decode('refund', node({})).next).toBe('refund_query');
    expect(decode('refund', node({ fund_change: 'Y' })).next).toBeUndefined();
    expect(decode('refund', node({ fund_change: 'N', out_trade_no: 'box9-9' })).next).toBeUndefined();
    expect(decode('refund', alipayBody(METHOD.refund, JSON.stringify(biz('ACQ.SYSTEM_ERROR')))).next).toBeUndefined();
  });

  it('clips long messages to the interface’s 200 characters', () => {
    const { outcome } = decode('pay', alipayBody(METHOD.pay, JSON.stringify(biz('ACQ.PAYMENT_FAIL', { sub_msg: '支'.repeat(500) }))));
    expect(outcome.kind).toBe('failed');
    PayOutcome.parse(outcome);
  });
});

describe('alipay outcomes: an answer that is not verified is unknown BAD_SIGNATURE, never success', () => {
  const SUCCESS_NODES: Record<Call, Node> = {
    pay: paid(),
    query: paid({ trade_status: 'TRADE_SUCCESS' }),
    cancel: { code: '10000', action: 'refund', out_trade_no: OTN, retry_flag: 'N' },
    refund: { code: '10000', fund_change: 'Y', out_trade_no: OTN },
    refundQuery: { code: '10000', out_request_no: RNO, out_trade_no: OTN, refund_status: 'REFUND_SUCCESS' },
    billUrl: { code: '10000', bill_download_url: 'https://example.alipay.com/bill.zip' },
  };

  for (const call of Object.keys(METHOD) as Call[]) {
    it(`${call}: tampered body, wrong key, missing or empty sign, signed by a stranger`, () => {
      const { alipay, stranger } = keys();
      const text = JSON.stringify(SUCCESS_NODES[call]);
      const good = alipayBody(METHOD[call], text);
      // The control: correctly signed, the same node is a positive answer.
      expect(decode(call, good).outcome.kind).not.toBe('unknown');

      const nodeKey = `${METHOD[call].split('.').join('_')}_response`;
      const bodies: Record<string, string> = {
        tampered: good.replace('"10000"', '"10000" '),
        injected: good.replace('"code":"10000"', '"code":"10000","note":"x"'),
        wrongKeyVerify: good,
        missingSign: `{"${nodeKey}":${text}}`,
        emptySign: `{"${nodeKey}":${text},"sign":""}`,
        stranger: alipayBody(METHOD[call], text, stranger.privateKey),
        signOfAnotherText: `{"${nodeKey}":${text},"sign":"${rsa2(text.replace('10000', '10003'), alipay.privateKey)}"}`,
      };
      for (const [name, body] of Object.entries(bodies)) {
        const pub = name === 'wrongKeyVerify' ? stranger.publicPem : alipay.publicPem;
        const { outcome, facts } = decode(call, body, pub);
        expect(outcome, name).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
        expect(facts.verified, name).toBe(false);
        // Nothing unverified leaks into the facts the adapter records.
        expect(facts.action ?? facts.tradeNo ?? facts.retryFlag ?? facts.code, name).toBeUndefined();
        if (call !== 'billUrl') SCHEMA[call].parse(outcome);
      }
    });
  }

  it('property: whatever the node says, if the signature does not cover it the outcome is unknown', () => {
    const { alipay, stranger } = keys();
    const codes = ['10000', '10003', '20000', '40004', '40002'];
    const subs = [undefined, 'ACQ.SYSTEM_ERROR', 'ACQ.TRADE_NOT_EXIST', 'ACQ.PAYMENT_AUTH_CODE_INVALID', 'ACQ.TRADE_CANCEL_TIME_OUT'];
    const statuses = [undefined, 'TRADE_SUCCESS', 'TRADE_FINISHED', 'WAIT_BUYER_PAY', 'TRADE_CLOSED'];
    const node = fc.record({
      code: fc.constantFrom(...codes),
      sub_code: fc.constantFrom(...subs),
      trade_status: fc.constantFrom(...statuses),
      retry_flag: fc.constantFrom(undefined, 'Y', 'N'),
      action: fc.constantFrom(undefined, 'close', 'refund'),
      fund_change: fc.constantFrom(undefined, 'Y', 'N'),
      refund_status: fc.constantFrom(undefined, 'REFUND_SUCCESS'),
      bill_download_url: fc.constantFrom(undefined, 'https://x/y'),
    });
    const forge = fc.constantFrom('stranger', 'tamper', 'nosign', 'othertext');
    fc.assert(
      fc.property(fc.constantFrom(...(Object.keys(METHOD) as Call[])), node, forge, (call, n, how) => {
        const text = JSON.stringify({ ...n, out_trade_no: OTN, out_request_no: RNO, trade_no: TRADE_NO, total_amount: '1.00' });
        const nodeKey = `${METHOD[call].split('.').join('_')}_response`;
        const body =
          how === 'stranger'
            ? alipayBody(METHOD[call], text, stranger.privateKey)
            : how === 'tamper'
              ? alipayBody(METHOD[call], text).replace('"1.00"', '"9.00"')
              : how === 'nosign'
                ? `{"${nodeKey}":${text}}`
                : `{"${nodeKey}":${text},"sign":"${rsa2(text + ' ', alipay.privateKey)}"}`;
        const { outcome } = decode(call, body);
        expect(outcome).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
      }),
      { numRuns: 150 },
    );
  });
});
