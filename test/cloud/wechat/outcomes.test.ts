import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome } from '../../../cloud/gateway/gateway.js';
import { WechatCodec } from '../../../cloud/gateway/wechat/codec.js';
import {
  MICROPAY_ERR_CODES,
  ORDERQUERY_ERR_CODES,
  REFUND_ERR_CODES,
  REFUND_STATES,
  REFUNDQUERY_ERR_CODES,
  REVERSE_ERR_CODES,
  TRADE_STATES,
  mapPay,
  mapQuery,
  mapRefundApply,
  mapRefundCheck,
  mapRefundQuery,
  mapReverse,
  type CheckedAnswer,
} from '../../../cloud/gateway/wechat/outcomes.js';
import type { SignType } from '../../../cloud/gateway/wechat/sign.js';
import { signedAnswer } from './reference.js';

const KEY = 'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6';
const CREDS = { apiKey: KEY, signType: 'MD5' as SignType };
const OTN = 'sb7K2M9QX4TA-42';
const EXPECT = { outTradeNo: OTN, subMchId: '1900000110' };
const BASE = { return_code: 'SUCCESS', return_msg: 'OK', appid: 'wx8888888888888888', mch_id: '1900000109', sub_mch_id: '1900000110', nonce_str: 'n0nce' };

const answer = (fields: Record<string, string>, sign?: string | null, creds = CREDS) => signedAnswer({ ...BASE, ...fields }, creds.apiKey, creds.signType, sign);
const fail = (err_code: string, more: Record<string, string> = {}) => ({ result_code: 'FAIL', err_code, err_code_des: `des of ${err_code}`, ...more });

/**
 * What each published code must become — written here from the pages, not read from the mapping
 * tables. A new row in a mapping table fails the coverage tests until it is given an expectation here.
 */
type Exp = string; // 'success' | 'in_progress' | 'failed:REASON' | 'unknown:CODE' | 'not_found' | 'closed' | 'refund_check' | 'refunded' | 'retry_later' | 'reversed' | 'window_passed' | 'accepted'
const PAY_EXPECT: Record<string, Exp> = {
  USERPAYING: 'in_progress',
  SYSTEMERROR: 'unknown:SYSTEMERROR',
  BANKERROR: 'unknown:BANKERROR',
  AUTHCODEEXPIRE: 'failed:CODE_EXPIRED',
  AUTH_CODE_ERROR: 'failed:CODE_INVALID',
  AUTH_CODE_INVALID: 'failed:CODE_INVALID',
  NOTENOUGH: 'failed:INSUFFICIENT_FUNDS',
  NOTSUPORTCARD: 'failed:DECLINED',
  TRADE_ERROR: 'failed:DECLINED',
  ORDERCLOSED: 'failed:DECLINED',
  ORDERREVERSED: 'failed:DECLINED',
  // An order under this out_trade_no exists: only a query can tell whether money moved.
  ORDERPAID: 'unknown:OTHER',
  OUT_TRADE_NO_USED: 'unknown:OTHER',
  BUYER_MISMATCH: 'unknown:OTHER',
  INVALID_REQUEST: 'unknown:OTHER',
  PARAM_ERROR: 'failed:DECLINED',
  NOAUTH: 'failed:DECLINED',
  APPID_NOT_EXIST: 'failed:DECLINED',
  MCHID_NOT_EXIST: 'failed:DECLINED',
  APPID_MCHID_NOT_MATCH: 'failed:DECLINED',
  LACK_PARAMS: 'failed:DECLINED',
  XML_FORMAT_ERROR: 'failed:DECLINED',
  REQUIRE_POST_METHOD: 'failed:DECLINED',
  SIGNERROR: 'failed:DECLINED',
  NOT_UTF8: 'failed:DECLINED',
  // Not in the published table: unknown, never failed.
  SOMETHING_NEW: 'unknown:OTHER',
};
const TRADE_STATE_EXPECT: Record<string, Exp> = {
  SUCCESS: 'success',
  REFUND: 'refund_check',
  NOTPAY: 'in_progress',
  CLOSED: 'closed',
  REVOKED: 'closed',
  USERPAYING: 'in_progress',
  PAYERROR: 'unknown:OTHER',
  ACCEPT: 'in_progress',
  SOMETHING_NEW: 'unknown:OTHER',
};
const QUERY_ERR_EXPECT: Record<string, Exp> = { ORDERNOTEXIST: 'not_found', SYSTEMERROR: 'unknown:SYSTEMERROR', PARAM_ERROR: 'unknown:OTHER' };
const REVERSE_ERR_EXPECT: Record<string, Exp> = {
  USERPAYING: 'retry_later',
  REVERSE_EXPIRE: 'window_passed',
  SYSTEMERROR: 'unknown:SYSTEMERROR',
  TRADE_ERROR: 'unknown:OTHER',
  INVALID_REQUEST: 'unknown:OTHER',
  INVALID_TRANSACTIONID: 'unknown:OTHER',
  PARAM_ERROR: 'unknown:OTHER',
  REQUIRE_POST_METHOD: 'unknown:OTHER',
  SIGNERROR: 'unknown:OTHER',
  SOMETHING_NEW: 'unknown:OTHER',
};
const REFUND_ERR_EXPECT: Record<string, Exp> = {
  SYSTEMERROR: 'unknown:SYSTEMERROR',
  BIZERR_NEED_RETRY: 'retry_later',
  INVALID_REQ_TOO_MUCH: 'retry_later',
  FREQUENCY_LIMITED: 'retry_later',
  NOTENOUGH: 'failed:INSUFFICIENT_FUNDS',
  TRADE_OVERDUE: 'failed:DECLINED',
  USER_ACCOUNT_ABNORMAL: 'failed:DECLINED',
  ERROR: 'failed:DECLINED',
  INVALID_TRANSACTIONID: 'failed:DECLINED',
  PARAM_ERROR: 'failed:DECLINED',
  APPID_NOT_EXIST: 'failed:DECLINED',
  MCHID_NOT_EXIST: 'failed:DECLINED',
  REQUIRE_POST_METHOD: 'failed:DECLINED',
  SIGNERROR: 'failed:DECLINED',
  XML_FORMAT_ERROR: 'failed:DECLINED',
  SOMETHING_NEW: 'unknown:OTHER',
};
const REFUND_STATE_EXPECT: Record<string, Exp> = {
  SUCCESS: 'refunded',
  PROCESSING: 'retry_later',
  REFUNDCLOSE: 'failed:DECLINED',
  CHANGE: 'failed:DECLINED',
  SOMETHING_NEW: 'unknown:OTHER',
};
const REFUNDQUERY_ERR_EXPECT: Record<string, Exp> = { SYSTEMERROR: 'unknown:SYSTEMERROR', REFUNDNOTEXIST: 'unknown:OTHER', SOMETHING_NEW: 'unknown:OTHER' };

function label(o: { kind: string; reason?: string; code?: string }): Exp {
  if (o.kind === 'failed') return `failed:${o.reason}`;
  if (o.kind === 'unknown') return `unknown:${o.code}`;
  return o.kind;
}

const published = (table: Record<string, Exp>) => Object.keys(table).filter((k) => k !== 'SOMETHING_NEW').sort();

describe('every mapping row has an expectation in this test, and every expectation a row', () => {
  const pairs: [string, Record<string, unknown>, Record<string, Exp>][] = [
    ['micropay err_code', MICROPAY_ERR_CODES, PAY_EXPECT],
    ['orderquery trade_state', TRADE_STATES, TRADE_STATE_EXPECT],
    ['orderquery err_code', ORDERQUERY_ERR_CODES, { ORDERNOTEXIST: '', SYSTEMERROR: '' }],
    ['reverse err_code', REVERSE_ERR_CODES, REVERSE_ERR_EXPECT],
    ['refund err_code', REFUND_ERR_CODES, REFUND_ERR_EXPECT],
    ['refund_status', REFUND_STATES, REFUND_STATE_EXPECT],
    ['refundquery err_code', REFUNDQUERY_ERR_CODES, REFUNDQUERY_ERR_EXPECT],
  ];
  for (const [what, table, exp] of pairs) {
    it(what, () => {
      expect(Object.keys(table).sort()).toEqual(published(exp));
      for (const row of Object.values(table) as { source: string; doc: string }[]) {
        expect(row.source).toMatch(/^https:\/\//);
        expect(row.doc.length).toBeGreaterThan(0);
      }
    });
  }
});

describe('micropay answers', () => {
  for (const [code, exp] of Object.entries(PAY_EXPECT)) {
    it(`err_code ${code} → ${exp}`, () => {
      const o = WechatCodec.answer.pay(answer(fail(code)), CREDS, EXPECT);
      expect(PayOutcome.parse(o)).toEqual(o);
      expect(label(o)).toBe(exp);
    });
  }
  it('SUCCESS → success with transaction_id as the gateway trade no and total_fee as the amount', () => {
    const o = WechatCodec.answer.pay(answer({ result_code: 'SUCCESS', out_trade_no: OTN, transaction_id: '4200000985202103031441826014', total_fee: '1234' }), CREDS, EXPECT);
    expect(o).toEqual({ kind: 'success', gatewayTradeNo: '4200000985202103031441826014', amount: 1234 });
  });
  describe('receipt data of a SUCCESS: time_end (Beijing), cash_fee, coupon_fee', () => {
    const paid = { result_code: 'SUCCESS', out_trade_no: OTN, transaction_id: '4200000985202103031441826014', total_fee: '1234' };
    const pay = (extra: Record<string, string>) => WechatCodec.answer.pay(answer({ ...paid, ...extra }), CREDS, EXPECT);
    it('time_end is Beijing wall-clock time (UTC+8): 20260101080000 is 2026-01-01T00:00:00Z', () => {
      expect(pay({ time_end: '20260101080000' })).toMatchObject({ kind: 'success', paidAt: Date.UTC(2026, 0, 1, 0, 0, 0) });
      expect(pay({ time_end: '20251231235959' })).toMatchObject({ paidAt: Date.UTC(2025, 11, 31, 15, 59, 59) });
    });
    it('cash_fee is what the buyer paid; coupon_fee the discount; the amount stays total_fee', () => {
      expect(pay({ cash_fee: '1000', coupon_fee: '234' })).toEqual({ kind: 'success', gatewayTradeNo: paid.transaction_id, amount: 1234, buyerPaid: 1000, discount: 234 });
      // all paid by coupon: cash_fee 0 is a valid receipt
      expect(pay({ cash_fee: '0', coupon_fee: '1234' })).toMatchObject({ amount: 1234, buyerPaid: 0, discount: 1234 });
    });
    it('without coupon_fee the discount is total_fee − cash_fee (0 when the buyer paid it all)', () => {
      expect(pay({ cash_fee: '1234' })).toMatchObject({ buyerPaid: 1234, discount: 0 });
      expect(pay({ cash_fee: '1000' })).toMatchObject({ buyerPaid: 1000, discount: 234 });
    });
    it('a malformed receipt field is left out, the payment stays a success', () => {
      const bads: Record<string, string>[] = [{ time_end: '20260231080000' }, { time_end: '2026-01-01 08:00:00' }, { time_end: '20260101250000' }, { cash_fee: '12.5' }, { cash_fee: '-1' }, { coupon_fee: 'x' }];
      for (const bad of bads) {
        const o = pay(bad);
        expect(o.kind).toBe('success');
        expect(PayOutcome.parse(o)).toEqual(o);
        for (const [field, key] of [['time_end', 'paidAt'], ['cash_fee', 'buyerPaid'], ['coupon_fee', 'discount']] as const) if (field in bad) expect(o).not.toHaveProperty(key);
      }
    });
  });
  it('USERPAYING keeps the wallet message; BANKERROR keeps its code (the cloud queries at once)', () => {
    expect(WechatCodec.answer.pay(answer(fail('USERPAYING', { err_code_des: '需要用户输入支付密码' })), CREDS, EXPECT)).toEqual({ kind: 'in_progress', message: 'USERPAYING: 需要用户输入支付密码' });
    expect(WechatCodec.answer.pay(answer(fail('BANKERROR')), CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BANKERROR' });
  });
  const successFields = { result_code: 'SUCCESS', out_trade_no: OTN, transaction_id: '4200000985202103031441826014', total_fee: '1234' };
  const notSuccess: [string, Record<string, string>][] = [
    ['total_fee with decimals', { ...successFields, total_fee: '12.34' }],
    ['total_fee zero', { ...successFields, total_fee: '0' }],
    ['total_fee negative', { ...successFields, total_fee: '-1234' }],
    ['total_fee with an exponent', { ...successFields, total_fee: '1e3' }],
    ['total_fee with leading zero', { ...successFields, total_fee: '01234' }],
    ['total_fee beyond a safe integer', { ...successFields, total_fee: '9999999999999999' }],
    ['no total_fee', (({ total_fee: _, ...r }) => r)(successFields)],
    ['no transaction_id', (({ transaction_id: _, ...r }) => r)(successFields)],
    ['empty transaction_id', { ...successFields, transaction_id: '' }],
    ['no out_trade_no', (({ out_trade_no: _, ...r }) => r)(successFields)],
    ['another out_trade_no', { ...successFields, out_trade_no: 'sb7K2M9QX4TA-43' }],
    ['another sub_mch_id', { ...successFields, sub_mch_id: '1900000999' }],
    ['result_code missing', (({ result_code: _, ...r }) => r)(successFields)],
    ['result_code lower case', { ...successFields, result_code: 'success' }],
  ];
  for (const [what, fields] of notSuccess) {
    it(`a signed SUCCESS with ${what} → unknown OTHER, never success`, () => {
      expect(WechatCodec.answer.pay(answer(fields), CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    });
  }
});

describe('a bad, missing or unreadable answer is unknown, never success or failed', () => {
  const success = { result_code: 'SUCCESS', out_trade_no: OTN, transaction_id: '4200000985202103031441826014', total_fee: '1234' };
  it('tampered body: the amount changed after signing', () => {
    const xml = answer(success).replace('<total_fee>1234</total_fee>', '<total_fee>1</total_fee>');
    expect(xml).toContain('<total_fee>1</total_fee>');
    expect(WechatCodec.answer.pay(xml, CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
  });
  it('tampered body: a failure turned into a success', () => {
    const xml = answer({ ...success, result_code: 'FAIL', err_code: 'NOTENOUGH' }).replace('<![CDATA[FAIL]]>', '<![CDATA[SUCCESS]]>');
    expect(WechatCodec.answer.pay(xml, CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
  });
  it('signed with the wrong key', () => {
    expect(WechatCodec.answer.pay(answer(success, undefined, { apiKey: 'f'.repeat(32), signType: 'MD5' }), CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
  });
  it('signed with the other sign type', () => {
    expect(WechatCodec.answer.pay(answer(success, undefined, { apiKey: KEY, signType: 'HMAC-SHA256' }), CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
  });
  it('no sign, an empty sign', () => {
    expect(WechatCodec.answer.pay(answer(success, null), CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    expect(WechatCodec.answer.pay(answer(success, ''), CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
  });
  it('a definite failure without a valid sign is not believed either', () => {
    expect(WechatCodec.answer.pay(answer(fail('NOTENOUGH'), null), CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    expect(WechatCodec.answer.pay(answer(fail('AUTHCODEEXPIRE'), 'F'.repeat(32)), CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
  });
  it('says which: a sign that does not verify (tampering, wrong key) or no sign at all; a wrong sign wins over return_code FAIL', () => {
    expect(mapPay({ fields: { return_code: 'SUCCESS', result_code: 'SUCCESS' }, signature: 'invalid' }, EXPECT)).toEqual({ kind: 'unknown', code: 'BAD_SIGNATURE', message: "micropay: the answer's sign does not verify" });
    expect(mapPay({ fields: { return_code: 'SUCCESS', result_code: 'SUCCESS' }, signature: 'missing' }, EXPECT)).toEqual({ kind: 'unknown', code: 'BAD_SIGNATURE', message: 'micropay: the answer has no sign' });
    expect(mapPay({ fields: { return_code: 'FAIL', return_msg: 'x' }, signature: 'invalid' }, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
  });
  it('return_code FAIL (unsigned, as WeChat sends it) → unknown OTHER with its message', () => {
    const xml = '<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[system error]]></return_msg></xml>';
    expect(WechatCodec.answer.pay(xml, CREDS, EXPECT)).toEqual({ kind: 'unknown', code: 'OTHER', message: 'micropay: return_code FAIL: system error' });
  });
  it('malformed, oversize, DOCTYPE, empty → unknown BAD_SIGNATURE (an answer that cannot be authenticated)', () => {
    for (const body of ['', '<xml><return_code>SUCCESS', `<xml><a>${'x'.repeat(70_000)}</a></xml>`, '<!DOCTYPE x><xml></xml>', '<html>502 Bad Gateway</html>']) {
      expect(WechatCodec.answer.pay(body, CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
      expect(WechatCodec.answer.query(body, CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
      expect(WechatCodec.answer.reverse(body, CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
      expect(WechatCodec.answer.refundApply(body, CREDS, { ...EXPECT, refundNo: 'r1' })).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
      expect(WechatCodec.answer.refundQuery(body, CREDS, { ...EXPECT, refundNo: 'r1' })).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
      expect(WechatCodec.answer.refundCheck(body, CREDS, EXPECT)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    }
  });

  // Property: whatever an answer says, with a sign that is not valid or return_code not SUCCESS, every mapper says unknown.
  const codes = [...new Set([...Object.keys(PAY_EXPECT), ...Object.keys(REFUND_ERR_EXPECT), ...Object.keys(REVERSE_ERR_EXPECT), 'ORDERNOTEXIST', 'REFUNDNOTEXIST'])];
  const field = (values: string[]) => fc.option(fc.oneof(fc.constantFrom(...values), fc.string({ maxLength: 8 })), { nil: undefined });
  const fieldsArb = fc
    .record({
      return_code: field(['SUCCESS', 'FAIL']),
      result_code: field(['SUCCESS', 'FAIL']),
      err_code: field(codes),
      trade_state: field(Object.keys(TRADE_STATE_EXPECT)),
      recall: field(['Y', 'N']),
      out_trade_no: field([OTN]),
      out_refund_no: field(['r1']),
      refund_id: field(['5030']),
      transaction_id: field(['4200000985202103031441826014']),
      total_fee: field(['1234', '100']),
      refund_fee: field(['100']),
      refund_count: field(['1']),
      out_refund_no_0: field(['r1']),
      refund_fee_0: field(['1234', '100']),
      refund_status_0: field(Object.keys(REFUND_STATE_EXPECT)),
    })
    .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as Record<string, string>);
  const mappers = (a: CheckedAnswer) => [
    mapPay(a, EXPECT),
    mapQuery(a, EXPECT),
    mapReverse(a, EXPECT),
    mapRefundApply(a, { ...EXPECT, refundNo: 'r1' }),
    mapRefundQuery(a, { ...EXPECT, refundNo: 'r1' }),
    mapRefundCheck(a, EXPECT),
  ];
  it('property: a sign that is invalid or missing → unknown from every mapper', () => {
    fc.assert(
      fc.property(fieldsArb, fc.constantFrom('invalid' as const, 'missing' as const), (fields, signature) => {
        for (const o of mappers({ fields, signature })) expect(o.kind).toBe('unknown');
      }),
      { numRuns: 1000 },
    );
  });
  it('property: return_code other than SUCCESS → unknown from every mapper, even when signed', () => {
    fc.assert(
      fc.property(fieldsArb, (fields) => {
        fc.pre(fields.return_code !== 'SUCCESS');
        for (const o of mappers({ fields, signature: 'valid' })) expect(o.kind).toBe('unknown');
      }),
      { numRuns: 1000 },
    );
  });
  it('property: success and refunded only come from a valid SUCCESS answer about our order; every outcome fits the interface', () => {
    fc.assert(
      fc.property(fieldsArb, fc.constantFrom('valid' as const, 'invalid' as const, 'missing' as const), (fields, signature) => {
        const a = { fields, signature };
        const [pay, query, reverse, refundApply, refundQuery, refundCheck] = mappers(a);
        const trusted = signature === 'valid' && fields.return_code === 'SUCCESS' && fields.result_code === 'SUCCESS';
        if (pay!.kind === 'success') expect(trusted && fields.out_trade_no === OTN).toBe(true);
        if (query!.kind === 'success') expect(trusted && fields.trade_state === 'SUCCESS').toBe(true);
        if (reverse!.kind === 'reversed') expect(trusted && fields.recall === 'N').toBe(true);
        if (refundQuery!.kind === 'refunded') expect(trusted && fields.refund_status_0 === 'SUCCESS').toBe(true);
        if (refundCheck!.kind === 'refunded') expect(trusted && fields.refund_status_0 === 'SUCCESS' && fields.refund_fee_0 === fields.total_fee).toBe(true);
        PayOutcome.parse(pay);
        if (query!.kind !== 'refund_check') QueryOutcome.parse(query);
        ReverseOutcome.parse(reverse);
        if (refundApply!.kind !== 'accepted') RefundOutcome.parse(refundApply);
        RefundOutcome.parse(refundQuery);
        QueryOutcome.parse(refundCheck);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('orderquery answers', () => {
  for (const [state, exp] of Object.entries(TRADE_STATE_EXPECT)) {
    it(`trade_state ${state} → ${exp}`, () => {
      const o = WechatCodec.answer.query(answer({ result_code: 'SUCCESS', trade_state: state, out_trade_no: OTN, transaction_id: '4200000985202103031441826014', total_fee: '1234' }), CREDS, EXPECT);
      expect(label(o)).toBe(exp);
      if (o.kind !== 'refund_check') expect(QueryOutcome.parse(o)).toEqual(o);
    });
  }
  for (const [code, exp] of Object.entries(QUERY_ERR_EXPECT)) {
    it(`err_code ${code} → ${exp}`, () => {
      expect(label(WechatCodec.answer.query(answer(fail(code)), CREDS, EXPECT))).toBe(exp);
    });
  }
  it('SUCCESS carries the trade no and amount', () => {
    expect(WechatCodec.answer.query(answer({ result_code: 'SUCCESS', trade_state: 'SUCCESS', out_trade_no: OTN, transaction_id: '4200000985', total_fee: '88' }), CREDS, EXPECT)).toEqual({
      kind: 'success',
      gatewayTradeNo: '4200000985',
      amount: 88,
    });
  });
  it('trade_state SUCCESS without transaction_id (e.g. not our answer) is unknown; a missing trade_state too', () => {
    expect(label(WechatCodec.answer.query(answer({ result_code: 'SUCCESS', trade_state: 'SUCCESS', out_trade_no: OTN, total_fee: '88' }), CREDS, EXPECT))).toBe('unknown:OTHER');
    expect(label(WechatCodec.answer.query(answer({ result_code: 'SUCCESS', out_trade_no: OTN }), CREDS, EXPECT))).toBe('unknown:OTHER');
  });
  it('a long trade_state_desc is cut to the interface limit', () => {
    const o = WechatCodec.answer.query(answer({ result_code: 'SUCCESS', trade_state: 'USERPAYING', trade_state_desc: '请'.repeat(500), out_trade_no: OTN }), CREDS, EXPECT);
    expect(QueryOutcome.parse(o)).toEqual(o);
  });
});

describe('reverse answers', () => {
  for (const [code, exp] of Object.entries(REVERSE_ERR_EXPECT)) {
    it(`err_code ${code} (recall N) → ${exp}`, () => {
      const o = WechatCodec.answer.reverse(answer(fail(code, { recall: 'N' })), CREDS, EXPECT);
      expect(ReverseOutcome.parse(o)).toEqual(o);
      expect(label(o)).toBe(exp);
    });
  }
  it('SUCCESS recall=N → reversed; recall=Y → retry_later, whatever result_code says', () => {
    expect(WechatCodec.answer.reverse(answer({ result_code: 'SUCCESS', recall: 'N' }), CREDS, EXPECT)).toEqual({ kind: 'reversed' });
    expect(label(WechatCodec.answer.reverse(answer({ result_code: 'SUCCESS', recall: 'Y' }), CREDS, EXPECT))).toBe('retry_later');
    expect(label(WechatCodec.answer.reverse(answer(fail('SOMETHING_NEW', { recall: 'Y' })), CREDS, EXPECT))).toBe('retry_later');
  });
  it('SUCCESS without recall is not proof of a reverse', () => {
    expect(label(WechatCodec.answer.reverse(answer({ result_code: 'SUCCESS' }), CREDS, EXPECT))).toBe('unknown:OTHER');
  });
  it('a reverse refused while the customer is still paying → retry_later with the wallet message', () => {
    const o = WechatCodec.answer.reverse(answer(fail('USERPAYING', { err_code_des: '正在支付中不能发起撤销', recall: 'N' })), CREDS, EXPECT);
    expect(o).toEqual({ kind: 'retry_later', message: 'reverse: USERPAYING: 正在支付中不能发起撤销' });
  });
});

describe('refund answers', () => {
  const RX = { ...EXPECT, refundNo: 'sb7K2M9QX4TA-42-r1', amount: 500 };
  for (const [code, exp] of Object.entries(REFUND_ERR_EXPECT)) {
    it(`apply err_code ${code} → ${exp}`, () => {
      const o = WechatCodec.answer.refundApply(answer(fail(code)), CREDS, RX);
      if (o.kind !== 'accepted') expect(RefundOutcome.parse(o)).toEqual(o);
      expect(label(o)).toBe(exp);
    });
  }
  it('apply SUCCESS is only accepted (not refunded) and needs our refund no and amount', () => {
    const ok = { result_code: 'SUCCESS', out_trade_no: OTN, out_refund_no: RX.refundNo, refund_id: '50302030148218522032126281690', refund_fee: '500', total_fee: '1234' };
    expect(WechatCodec.answer.refundApply(answer(ok), CREDS, RX)).toEqual({ kind: 'accepted', gatewayRefundNo: '50302030148218522032126281690' });
    expect(label(WechatCodec.answer.refundApply(answer({ ...ok, out_refund_no: 'other' }), CREDS, RX))).toBe('unknown:OTHER');
    expect(label(WechatCodec.answer.refundApply(answer({ ...ok, refund_fee: '1234' }), CREDS, RX))).toBe('unknown:OTHER');
    expect(label(WechatCodec.answer.refundApply(answer({ ...ok, refund_id: '' }), CREDS, RX))).toBe('unknown:OTHER');
  });
  const listed = (status: string, more: Record<string, string> = {}) => ({
    result_code: 'SUCCESS',
    out_trade_no: OTN,
    total_fee: '1234',
    refund_count: '2',
    out_refund_no_0: 'sb7K2M9QX4TA-42-r0',
    refund_fee_0: '100',
    refund_status_0: 'SUCCESS',
    out_refund_no_1: RX.refundNo,
    refund_fee_1: '500',
    refund_status_1: status,
    ...more,
  });
  for (const [status, exp] of Object.entries(REFUND_STATE_EXPECT)) {
    it(`refundquery refund_status ${status} → ${exp}`, () => {
      const o = WechatCodec.answer.refundQuery(answer(listed(status)), CREDS, RX);
      expect(RefundOutcome.parse(o)).toEqual(o);
      expect(label(o)).toBe(exp);
      if (o.kind === 'refunded') expect(o.refundNo).toBe(RX.refundNo);
    });
  }
  for (const [code, exp] of Object.entries(REFUNDQUERY_ERR_EXPECT)) {
    it(`refundquery err_code ${code} → ${exp}`, () => {
      expect(label(WechatCodec.answer.refundQuery(answer(fail(code)), CREDS, RX))).toBe(exp);
    });
  }
  it('refundquery: our refund missing, listed twice, another amount, a gap in the list → unknown', () => {
    expect(label(WechatCodec.answer.refundQuery(answer(listed('SUCCESS', { out_refund_no_1: 'x' })), CREDS, RX))).toBe('unknown:OTHER');
    expect(label(WechatCodec.answer.refundQuery(answer(listed('SUCCESS', { out_refund_no_0: RX.refundNo })), CREDS, RX))).toBe('unknown:OTHER');
    expect(label(WechatCodec.answer.refundQuery(answer(listed('SUCCESS', { refund_fee_1: '499' })), CREDS, RX))).toBe('unknown:OTHER');
    expect(label(WechatCodec.answer.refundQuery(answer(listed('SUCCESS', { refund_count: '3' })), CREDS, RX))).toBe('unknown:OTHER');
  });
});

describe('trade_state REFUND is refunded only when every fen is back (refundquery by order)', () => {
  const order = (refunds: [string, string][], more: Record<string, string> = {}) => ({
    result_code: 'SUCCESS',
    out_trade_no: OTN,
    total_fee: '1000',
    refund_count: String(refunds.length),
    ...Object.fromEntries(refunds.flatMap(([fee, status], n) => [[`out_refund_no_${n}`, `r${n}`], [`refund_fee_${n}`, fee], [`refund_status_${n}`, status]])),
    ...more,
  });
  const check = (fields: Record<string, string>) => label(WechatCodec.answer.refundCheck(answer(fields), CREDS, EXPECT));
  it('in full, in one or several refunds → refunded', () => {
    expect(check(order([['1000', 'SUCCESS']]))).toBe('refunded');
    expect(check(order([['400', 'SUCCESS'], ['600', 'SUCCESS']]))).toBe('refunded');
    expect(check(order([['400', 'SUCCESS'], ['600', 'SUCCESS'], ['50', 'REFUNDCLOSE']]))).toBe('refunded');
  });
  it('in part, still processing, closed, or more than one page → unknown', () => {
    expect(check(order([['400', 'SUCCESS']]))).toBe('unknown:OTHER');
    expect(check(order([['400', 'SUCCESS'], ['600', 'PROCESSING']]))).toBe('unknown:OTHER');
    expect(check(order([['1000', 'REFUNDCLOSE']]))).toBe('unknown:OTHER');
    expect(check(order([['1000', 'CHANGE']]))).toBe('unknown:OTHER');
    expect(check(order([['1000', 'SUCCESS']], { total_refund_count: '11' }))).toBe('unknown:OTHER');
    expect(check(order([['1000', 'SUCCESS']], { out_trade_no: 'sb7K2M9QX4TA-1' }))).toBe('unknown:OTHER');
    expect(check(fail('REFUNDNOTEXIST'))).toBe('unknown:OTHER');
  });
});
