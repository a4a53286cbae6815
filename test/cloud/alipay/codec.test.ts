import { verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AlipayCodec } from '../../../cloud/gateway/alipay/codec.js';
import { PayOutcome, ReverseOutcome } from '../../../cloud/gateway/gateway.js';
import { alipayBody, keys } from './support.js';

/**
 * The codec end to end against a fake Alipay that checks requests the way the gateway does (rebuilds the string
 * to sign from the received form by the published rule, verifies it with the app's public key) and answers with
 * bodies signed by "Alipay's" key.
 */
function fakeAlipay(form: string, answer: (biz: Record<string, string>) => Record<string, unknown>): string {
  const params = Object.fromEntries(new URLSearchParams(form));
  const { sign, ...rest } = params;
  const content = Object.keys(rest)
    .filter((k) => rest[k] !== '')
    .sort()
    .map((k) => `${k}=${rest[k]}`)
    .join('&');
  if (!sign || !verify('sha256', Buffer.from(content, 'utf8'), keys().app.publicKey, Buffer.from(sign, 'base64'))) {
    return JSON.stringify({ [`${params.method!.split('.').join('_')}_response`]: { code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.invalid-signature' } });
  }
  return alipayBody(params.method!, JSON.stringify(answer(JSON.parse(params.biz_content!) as Record<string, string>)));
}

const ctx = () => ({ app: { appId: '2021000000000001', privateKey: keys().app.privatePem }, appAuthToken: 'merchant-token-1', clock: { now: () => Date.UTC(2024, 0, 1) } });

describe('AlipayCodec', () => {
  it('pay → a signed request the gateway accepts → a verified success in fen', () => {
    const req = AlipayCodec.request.pay({ outTradeNo: 'box1-7', authCode: '287634438256643940', amountFen: 1234, subject: 'sale R1' }, ctx());
    const body = fakeAlipay(req.form, (biz) => ({ code: '10000', msg: 'Success', out_trade_no: biz.out_trade_no, trade_no: '2024X', total_amount: biz.total_amount }));
    const { outcome, facts } = AlipayCodec.decode.pay(Buffer.from(body), keys().alipay.publicPem, { outTradeNo: 'box1-7' });
    // No receipt fields in this answer: none are made up.
    expect(outcome).toEqual({ kind: 'success', gatewayTradeNo: '2024X', amount: 1234 });
    expect(PayOutcome.parse(outcome)).toEqual(outcome);
    expect(facts).toMatchObject({ verified: true, totalAmount: '12.34', tradeNo: '2024X' });
  });

  it('a request signed with another key is refused by the gateway, and that unsigned refusal is unknown', () => {
    const bad = { ...ctx(), app: { appId: '2021000000000001', privateKey: keys().stranger.privatePem } };
    const req = AlipayCodec.request.pay({ outTradeNo: 'box1-7', authCode: '287634438256643940', amountFen: 1, subject: 'x' }, bad);
    const body = fakeAlipay(req.form, () => ({ code: '10000' }));
    const { outcome, facts } = AlipayCodec.decode.pay(body, keys().alipay.publicPem, { outTradeNo: 'box1-7' });
    expect(outcome).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    expect(outcome.kind === 'unknown' && outcome.message).toContain('40002 isv.invalid-signature');
    expect(facts).toEqual({ verified: false, failure: 'NO_SIGN', unverifiedHint: '40002 isv.invalid-signature' });
  });

  it('cancel → reversed, with the action to record', () => {
    const req = AlipayCodec.request.cancel({ outTradeNo: 'box1-7' }, ctx());
    const body = fakeAlipay(req.form, (biz) => ({ code: '10000', msg: 'Success', action: 'refund', out_trade_no: biz.out_trade_no, retry_flag: 'N' }));
    const { outcome, facts } = AlipayCodec.decode.cancel(body, keys().alipay.publicPem, { outTradeNo: 'box1-7' });
    expect(ReverseOutcome.parse(outcome)).toEqual({ kind: 'reversed', action: 'refund' });
    expect([facts.action, facts.retryFlag]).toEqual(['refund', 'N']);
  });

  it('refund and refund query carry the refund id end to end', () => {
    const req = AlipayCodec.request.refund({ outTradeNo: 'box1-7', refundNo: 'box1-7-R', amountFen: 500 }, ctx());
    const body = fakeAlipay(req.form, (biz) => ({ code: '10000', fund_change: 'Y', out_trade_no: biz.out_trade_no, refund_fee: biz.refund_amount }));
    expect(AlipayCodec.decode.refund(body, keys().alipay.publicPem, { outTradeNo: 'box1-7', refundNo: 'box1-7-R' }).outcome).toEqual({ kind: 'refunded', refundNo: 'box1-7-R' });
    const q = AlipayCodec.request.refundQuery({ outTradeNo: 'box1-7', refundNo: 'box1-7-R' }, ctx());
    const qBody = fakeAlipay(q.form, (biz) => ({ code: '10000', out_trade_no: biz.out_trade_no, out_request_no: biz.out_request_no, refund_amount: '5.00', refund_status: 'REFUND_SUCCESS' }));
    expect(AlipayCodec.decode.refundQuery(qBody, keys().alipay.publicPem, { outTradeNo: 'box1-7', refundNo: 'box1-7-R' }).outcome).toEqual({ kind: 'refunded', refundNo: 'box1-7-R' });
  });

  it('bill url query', () => {
    const req = AlipayCodec.request.billUrl({ billType: 'trade', billDate: '2023-12-31' }, ctx());
    const body = fakeAlipay(req.form, () => ({ code: '10000', msg: 'Success', bill_download_url: 'https://bill.example/x.csv.zip' }));
    expect(AlipayCodec.decode.billUrl(body, keys().alipay.publicPem).outcome).toEqual({ kind: 'url', url: 'https://bill.example/x.csv.zip' });
  });
});
