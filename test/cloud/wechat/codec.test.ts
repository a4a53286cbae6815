import { describe, expect, it } from 'vitest';
import type { PayRequest } from '../../../cloud/gateway/gateway.js';
import { WechatCodec } from '../../../cloud/gateway/wechat/codec.js';
import type { ProviderCredentials, SubMerchant, WechatRequest } from '../../../cloud/gateway/wechat/requests.js';
import { refSign, signedAnswer } from './reference.js';

/**
 * The codec end to end against a tiny fake of WeChat written in this test: it reads the request body
 * with its own regex, checks the request's sign with the reference signer, and answers signed XML.
 */
const MERCHANT: SubMerchant = { subMchId: '1900000110', defaultBody: '扫码墩-测试店-商品' };
const ROUTE = { wallet: 'wechat', merchant: 'M1', channel: 'wechat' } as const;
const PAY: PayRequest = { outTradeNo: 'sb7K2M9QX4TA-7', amount: 2500, currency: 'CNY', code: '134567890123456789', ...ROUTE };

function readRequest(body: string): Record<string, string> {
  expect(body.startsWith('<xml>') && body.endsWith('</xml>')).toBe(true);
  const out: Record<string, string> = {};
  for (const m of body.matchAll(/<([a-z_0-9]+)><!\[CDATA\[([\s\S]*?)\]\]><\/\1>/g)) out[m[1]!] = m[2]!;
  return out;
}

/** WeChat as far as these tests need it: one order, answers scripted per call. */
function fakeWechat(creds: ProviderCredentials, script: Partial<Record<WechatRequest['call'], Record<string, string>[]>>) {
  const seen: { call: string; fields: Record<string, string> }[] = [];
  return {
    seen,
    post(req: WechatRequest): string {
      const fields = readRequest(WechatCodec.encode(req.params));
      seen.push({ call: req.call, fields });
      // A request whose sign WeChat cannot verify gets return_code FAIL, unsigned.
      const { sign, ...rest } = fields;
      if (fields.sign_type !== creds.signType || sign !== refSign(rest, creds.apiKey, creds.signType)) {
        return '<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[签名错误]]></return_msg></xml>';
      }
      const next = script[req.call]?.shift();
      if (!next) throw new Error(`no scripted answer for ${req.call}`);
      const answer = { return_code: 'SUCCESS', return_msg: 'OK', appid: fields.appid!, mch_id: fields.mch_id!, sub_mch_id: fields.sub_mch_id!, nonce_str: 'srv', ...next };
      return signedAnswer(answer, creds.apiKey, creds.signType);
    },
  };
}

for (const signType of ['MD5', 'HMAC-SHA256'] as const) {
  const creds: ProviderCredentials = { appid: 'wx8888888888888888', mchId: '1900000109', apiKey: 'k'.repeat(32), signType };
  const expect1 = { outTradeNo: PAY.outTradeNo, subMchId: MERCHANT.subMchId };

  describe(`codec end to end (${signType})`, () => {
    it('pay USERPAYING → query USERPAYING → query SUCCESS', () => {
      const wx = fakeWechat(creds, {
        micropay: [{ result_code: 'FAIL', err_code: 'USERPAYING', err_code_des: '需要用户输入支付密码' }],
        orderquery: [
          { result_code: 'SUCCESS', trade_state: 'USERPAYING', out_trade_no: PAY.outTradeNo },
          { result_code: 'SUCCESS', trade_state: 'SUCCESS', out_trade_no: PAY.outTradeNo, transaction_id: '4200000001', total_fee: '2500' },
        ],
      });
      const pay = WechatCodec.answer.pay(wx.post(WechatCodec.build.micropay(PAY, creds, MERCHANT, { spbillCreateIp: '10.0.0.5' })), creds, expect1);
      expect(pay).toEqual({ kind: 'in_progress', message: 'USERPAYING: 需要用户输入支付密码' });
      const q = () => WechatCodec.answer.query(wx.post(WechatCodec.build.orderquery({ outTradeNo: PAY.outTradeNo, ...ROUTE }, creds, MERCHANT)), creds, expect1);
      expect(q().kind).toBe('in_progress');
      expect(q()).toEqual({ kind: 'success', gatewayTradeNo: '4200000001', amount: 2500 });
      expect(wx.seen.map((s) => s.fields.out_trade_no)).toEqual([PAY.outTradeNo, PAY.outTradeNo, PAY.outTradeNo]);
      expect(wx.seen[0]!.fields.total_fee).toBe('2500');
      expect(wx.seen[0]!.fields.auth_code).toBe(PAY.code);
    });

    it('reverse: user still paying, then recall=Y, then reversed', () => {
      const wx = fakeWechat(creds, {
        reverse: [
          { result_code: 'FAIL', err_code: 'USERPAYING', err_code_des: '正在支付中不能发起撤销', recall: 'N' },
          { result_code: 'FAIL', err_code: 'SYSTEMERROR', recall: 'Y' },
          { result_code: 'SUCCESS', recall: 'N' },
        ],
      });
      const req = WechatCodec.build.reverse({ outTradeNo: PAY.outTradeNo, ...ROUTE }, creds, MERCHANT);
      expect(req.clientCert).toBe(true);
      const r = () => WechatCodec.answer.reverse(wx.post(req), creds, expect1);
      expect(r()).toEqual({ kind: 'retry_later', message: 'reverse: USERPAYING: 正在支付中不能发起撤销' });
      expect(r()).toMatchObject({ kind: 'unknown', code: 'SYSTEMERROR' });
      expect(r()).toEqual({ kind: 'reversed' });
    });

    it('refund: accepted, processing, then refunded', () => {
      const refund = { outTradeNo: PAY.outTradeNo, refundNo: 'sb7K2M9QX4TA-7-r1', amount: 2500, total: 2500, currency: 'CNY' as const, ...ROUTE };
      const listed = (status: string) => ({ result_code: 'SUCCESS', out_trade_no: PAY.outTradeNo, refund_count: '1', out_refund_no_0: refund.refundNo, refund_fee_0: '2500', refund_status_0: status });
      const wx = fakeWechat(creds, {
        refund: [{ result_code: 'SUCCESS', out_trade_no: PAY.outTradeNo, out_refund_no: refund.refundNo, refund_id: '503020301', refund_fee: '2500', total_fee: '2500' }],
        refundquery: [listed('PROCESSING'), listed('SUCCESS')],
      });
      const rx = { ...expect1, refundNo: refund.refundNo, amount: refund.amount };
      const applied = WechatCodec.answer.refundApply(wx.post(WechatCodec.build.refund(refund, creds, MERCHANT)), creds, rx);
      expect(applied).toEqual({ kind: 'accepted', gatewayRefundNo: '503020301' });
      const rq = () => WechatCodec.answer.refundQuery(wx.post(WechatCodec.build.refundQuery(refund.refundNo, creds, MERCHANT)), creds, rx);
      expect(rq().kind).toBe('retry_later');
      expect(rq()).toEqual({ kind: 'refunded', refundNo: refund.refundNo });
    });

    it('trade_state REFUND asks for a refund check, which the refund list then settles', () => {
      const wx = fakeWechat(creds, {
        orderquery: [{ result_code: 'SUCCESS', trade_state: 'REFUND', out_trade_no: PAY.outTradeNo }],
        refundquery: [{ result_code: 'SUCCESS', out_trade_no: PAY.outTradeNo, total_fee: '2500', refund_count: '1', out_refund_no_0: 'r1', refund_fee_0: '2500', refund_status_0: 'SUCCESS' }],
      });
      const q = WechatCodec.answer.query(wx.post(WechatCodec.build.orderquery({ outTradeNo: PAY.outTradeNo, ...ROUTE }, creds, MERCHANT)), creds, expect1);
      expect(q.kind).toBe('refund_check');
      const c = WechatCodec.answer.refundCheck(wx.post(WechatCodec.build.refundQueryByOrder(PAY.outTradeNo, creds, MERCHANT)), creds, expect1);
      expect(c).toEqual({ kind: 'refunded' });
    });

    it('a request signed with another key is refused by WeChat, and that refusal is unknown', () => {
      const wx = fakeWechat(creds, {});
      const wrong = { ...creds, apiKey: 'z'.repeat(32) };
      const o = WechatCodec.answer.pay(wx.post(WechatCodec.build.micropay(PAY, wrong, MERCHANT, { spbillCreateIp: '10.0.0.5' })), creds, expect1);
      expect(o).toEqual({ kind: 'unknown', code: 'OTHER', message: 'micropay: return_code FAIL: 签名错误' });
    });
  });
}

describe('codec surface', () => {
  it('names each call, its path and whether it needs the client certificate', () => {
    expect(Object.fromEntries(Object.entries(WechatCodec.calls).map(([k, v]) => [k, [v.path, v.clientCert]]))).toEqual({
      micropay: ['/pay/micropay', false],
      orderquery: ['/pay/orderquery', false],
      reverse: ['/secapi/pay/reverse', true],
      refund: ['/secapi/pay/refund', true],
      refundquery: ['/pay/refundquery', false],
      downloadbill: ['/pay/downloadbill', false],
    });
    expect(WechatCodec.hosts.primary).toBe('https://api.mch.weixin.qq.com');
  });
  it('carries the published policy numbers, each with its source', () => {
    for (const n of Object.values(WechatCodec.policy)) {
      expect(Number.isSafeInteger(n.value) && n.value > 0).toBe(true);
      expect(n.source).toMatch(/^https:\/\//);
    }
    expect(WechatCodec.policy.reverseMinDelayMs.value).toBe(15_000);
    expect(WechatCodec.policy.reverseWindowMs.value).toBe(7 * 24 * 3600 * 1000);
  });
});
