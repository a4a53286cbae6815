import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PayRequest } from '../../cloud/gateway/gateway.js';
import { buildDownloadBill, buildMicropay, buildReverse, type ProviderCredentials, type SubMerchant, type WechatRequest } from '../../cloud/gateway/wechat/requests.js';
import { withSign } from '../../cloud/gateway/wechat/sign.js';
import { decodeXml, encodeXml } from '../../cloud/gateway/wechat/xml.js';
import { startWechatSimulator, type WechatSimulator } from '../../simulator/gateway/wechat-server.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { FakeClock } from '../support/fake-clock.js';
import { issueClientCert, makeTestCa, type TestCa, type TestClientCert } from '../support/test-ca.js';
import { refSign } from '../cloud/wechat/reference.js';

/**
 * The simulator on the wire, checked with raw HTTPS requests and the independent reference signer
 * (test/cloud/wechat/reference.ts), not with the adapter: what WeChat checks and what it answers.
 */
const API_KEY = randomBytes(16).toString('hex');
const ACCOUNT = { appId: 'wx8888888888888888', mchId: '1900000109', apiKey: API_KEY, signType: 'HMAC-SHA256' } as const;
const MERCHANT: SubMerchant = { subMchId: '1900000110', defaultBody: '扫码墩-测试店-商品' };
const credsOf = (signType: 'MD5' | 'HMAC-SHA256', apiKey = API_KEY): ProviderCredentials => ({ appid: ACCOUNT.appId, mchId: ACCOUNT.mchId, apiKey, signType });
const ROUTE = { wallet: 'wechat', merchant: 'M1', channel: 'wx1' } as const;
let seq = 0;
const payReq = (code = '134567890123456789'): PayRequest => ({ outTradeNo: `simwx-${++seq}`, amount: 1234, currency: 'CNY', code, ...ROUTE });

let ca: TestCa;
let otherCa: TestCa;
let client: TestClientCert;
let stranger: TestClientCert;
beforeAll(() => {
  ca = makeTestCa();
  otherCa = makeTestCa();
  client = issueClientCert(ca);
  stranger = issueClientCert(otherCa, 'stranger');
});
afterAll(() => {
  ca.remove();
  otherCa.remove();
});

let gateway: ScriptedGateway;
let sim: WechatSimulator;
const opened: Agent[] = [];
async function start(): Promise<void> {
  gateway = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS, clock: new FakeClock() });
  sim = await startWechatSimulator({ gateway, channel: 'wx1', credentials: ACCOUNT, tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert } });
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((a) => a.close()));
  gateway.stop();
  await sim.close();
});

/** POSTs one request as a client with `cert` (or none). */
async function post(req: Pick<WechatRequest, 'path'> & { params: Readonly<Record<string, string>> }, cert?: TestClientCert): Promise<{ status: number; text: string; fields?: Record<string, string> }> {
  const agent = new Agent({ connect: { ca: ca.caCert, ...(cert ? { cert: cert.cert, key: cert.key } : {}) } });
  opened.push(agent);
  const res = await request(`${sim.url}${req.path}`, { method: 'POST', body: encodeXml(req.params), dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, text, ...(text.startsWith('<xml>') ? { fields: decodeXml(text) } : {}) };
}

function checkSigned(fields: Record<string, string> | undefined, type: 'MD5' | 'HMAC-SHA256'): Record<string, string> {
  const { sign, ...rest } = fields ?? {};
  expect(sign).toBe(refSign(rest, API_KEY, type));
  return rest;
}

describe('WeChat simulator: what it checks', () => {
  beforeEach(start);

  for (const type of ['MD5', 'HMAC-SHA256'] as const) {
    it(`answers a ${type} micropay signed the way the request was, with the fields WeChat returns`, async () => {
      const r = payReq();
      const { status, fields } = await post(buildMicropay(r, credsOf(type), MERCHANT, { spbillCreateIp: '10.0.0.5' }));
      expect(status).toBe(200);
      expect(checkSigned(fields, type)).toMatchObject({
        return_code: 'SUCCESS',
        result_code: 'SUCCESS',
        appid: ACCOUNT.appId,
        mch_id: ACCOUNT.mchId,
        sub_mch_id: MERCHANT.subMchId,
        out_trade_no: r.outTradeNo,
        trade_type: 'MICROPAY',
        total_fee: '1234',
        cash_fee: '1234',
        fee_type: 'CNY',
        // FakeClock starts 2026-01-01T00:00:00Z: 08:00 in Beijing.
        time_end: '20260101080000',
      });
      expect(fields?.transaction_id).toMatch(/.+/);
      expect(gateway.calls).toContainEqual({ call: 'pay', outTradeNo: r.outTradeNo });
    });
  }

  it('a sign_type left out is MD5 ("默认为MD5")', async () => {
    const built = buildMicropay(payReq(), credsOf('MD5'), MERCHANT, { spbillCreateIp: '10.0.0.5' });
    const { sign_type: _, sign: __, ...rest } = built.params;
    const { fields } = await post({ path: built.path, params: withSign(rest, API_KEY, 'MD5') });
    expect(checkSigned(fields, 'MD5')).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS' });
  });

  it('a request signed with another key, or re-signed after a change, is refused unsigned with 签名错误 and never reaches the wallet', async () => {
    const before = gateway.calls.length;
    const wrongKey = await post(buildMicropay(payReq(), credsOf('MD5', 'z'.repeat(32)), MERCHANT, { spbillCreateIp: '10.0.0.5' }));
    const good = buildMicropay(payReq(), credsOf('HMAC-SHA256'), MERCHANT, { spbillCreateIp: '10.0.0.5' });
    const tampered = await post({ path: good.path, params: { ...good.params, total_fee: '1' } });
    const unsigned = await post({ path: good.path, params: (({ sign: _, ...rest }) => rest)(good.params) });
    for (const answer of [wrongKey, tampered, unsigned]) expect(answer.fields).toEqual({ return_code: 'FAIL', return_msg: '签名错误' });
    expect(gateway.calls.length).toBe(before);
  });

  it('another mch_id or an appid not bound to it is refused', async () => {
    const other = (over: Partial<ProviderCredentials>) => buildMicropay(payReq(), { ...credsOf('MD5'), ...over }, MERCHANT, { spbillCreateIp: '10.0.0.5' });
    expect((await post(other({ mchId: '1900000999' }))).fields).toMatchObject({ return_code: 'FAIL' });
    expect((await post(other({ appid: 'wx0000000000000000' }))).fields).toMatchObject({ return_code: 'FAIL', return_msg: 'appid和mch_id不匹配' });
  });

  it('/secapi/ without a client certificate, or with one of another CA: HTTP 400 from nginx, the wallet never asked', async () => {
    const r = payReq();
    await post(buildMicropay(r, credsOf('MD5'), MERCHANT, { spbillCreateIp: '10.0.0.5' }));
    const reverse = buildReverse({ outTradeNo: r.outTradeNo, ...ROUTE }, credsOf('MD5'), MERCHANT);
    const none = await post(reverse);
    expect([none.status, none.fields]).toEqual([400, undefined]);
    expect(none.text).toContain('No required SSL certificate was sent');
    const foreign = await post(reverse, stranger);
    expect(foreign.status).toBe(400);
    expect(foreign.text).toContain('The SSL certificate error');
    expect(gateway.count('reverse')).toBe(0);
    expect(gateway.net(r.outTradeNo)).toBe(1234);
    const trusted = await post(reverse, client);
    expect(checkSigned(trusted.fields, 'MD5')).toMatchObject({ return_code: 'SUCCESS', result_code: 'SUCCESS', recall: 'N' });
    expect(gateway.net(r.outTradeNo)).toBe(0);
  });

  it('USERPAYING is result_code FAIL with err_code USERPAYING, signed', async () => {
    gateway.bind('104567890123456789', { name: 'user_paying', confirmAfterMs: 60_000 });
    const { fields } = await post(buildMicropay(payReq('104567890123456789'), credsOf('MD5'), MERCHANT, { spbillCreateIp: '10.0.0.5' }));
    expect(checkSigned(fields, 'MD5')).toMatchObject({ return_code: 'SUCCESS', result_code: 'FAIL', err_code: 'USERPAYING' });
  });

  it('downloadbill of a day without records: unsigned "No Bill Exist", error_code 20002', async () => {
    const { status, fields } = await post(buildDownloadBill({ date: '20250101', type: 'ALL' }, credsOf('MD5'), undefined));
    expect(status).toBe(200);
    expect(fields).toEqual({ return_code: 'FAIL', return_msg: 'No Bill Exist', error_code: '20002' });
  });
});
