import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildBillUrlQuery, buildPay, buildQuery, METHODS, type RequestContext, type SignedRequest } from '../../cloud/gateway/alipay/requests.js';
import { openResponse, signRequest } from '../../cloud/gateway/alipay/sign.js';
import { startAlipaySimulator, type AlipaySimulator } from '../../simulator/gateway/alipay-server.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { keys } from '../cloud/alipay/support.js';
import { FakeClock } from '../support/fake-clock.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';

/**
 * The Alipay simulator at the wire, with hand-made requests: the gateway's own checks (common parameters, the app's
 * signature, app_id, app_auth_token) come before the wallet is asked anything, and every answer is framed and signed
 * the way the adapter's codec verifies it (over the node's exact text).
 */
const APP_ID = '2021000000000001';
const TOKEN = 'merchant-token-1';
const CODE = '281234567890123456';

let ca: TestCa;
let agent: Agent;
let clock: FakeClock;
let wallet: ScriptedGateway;
let sim: AlipaySimulator;

beforeAll(() => {
  ca = makeTestCa();
  agent = new Agent({ connect: { ca: ca.caCert } });
});
afterAll(async () => {
  await agent.close();
  ca.remove();
});
beforeEach(async () => {
  clock = new FakeClock(Date.UTC(2024, 2, 1, 2));
  wallet = new ScriptedGateway({ clock, mix: EVERY_CODE_SUCCEEDS });
  sim = await startAlipaySimulator({
    gateway: wallet,
    appId: APP_ID,
    appPublicKey: keys().app.publicPem,
    alipayPrivateKey: keys().alipay.privatePem,
    tls: { cert: ca.serverCert, key: ca.serverKey },
    appAuthTokens: [TOKEN],
    clock,
  });
});
afterEach(async () => {
  wallet.stop();
  await sim.close();
});

const ctx = (over: Partial<RequestContext> = {}): RequestContext => ({ app: { appId: APP_ID, privateKey: keys().app.privatePem }, appAuthToken: TOKEN, clock, ...over });
const payInput = (over: Partial<Parameters<typeof buildPay>[0]> = {}) => ({ outTradeNo: 'box1-1', authCode: CODE, amountFen: 1234, subject: '测试', ...over });

async function post(form: string, url = sim.url): Promise<{ status: number; text: string }> {
  const res = await request(url, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded;charset=utf-8' }, dispatcher: agent });
  return { status: res.statusCode, text: await res.body.text() };
}

/** The answer's node, verified with Alipay's key when `signed`; its raw text otherwise. */
async function answer(signed: SignedRequest | string, method: string, expectSigned = true): Promise<Record<string, unknown>> {
  const { status, text } = await post(typeof signed === 'string' ? signed : signed.form);
  expect(status).toBe(200);
  const opened = openResponse(text, method, keys().alipay.publicPem);
  if (expectSigned) {
    expect(opened.ok, text).toBe(true);
    return opened.ok ? opened.node : {};
  }
  expect(opened).toMatchObject({ ok: false, failure: 'NO_SIGN' });
  const body = JSON.parse(text) as Record<string, Record<string, unknown>>;
  return Object.values(body)[0]!;
}

describe('Alipay simulator: the gateway’s own checks', () => {
  it('answers a good pay with a node signed over its exact bytes, JSON slashes escaped as Alipay writes them', async () => {
    const node = await answer(buildPay(payInput(), ctx()), METHODS.pay);
    expect(node).toMatchObject({ code: '10000', msg: 'Success', out_trade_no: 'box1-1', total_amount: '12.34', buyer_pay_amount: '12.34', gmt_payment: '2024-03-01 10:00:00' });
    const link = await post(buildBillUrlQuery({ billType: 'trade', billDate: '2024-03-01' }, ctx()).form);
    expect(link.text).toContain('"bill_download_url":"https:\\/\\/127.0.0.1:');
    expect(openResponse(link.text, METHODS.billUrl, keys().alipay.publicPem).ok).toBe(true);
  });

  it('a request signed with another key: 40002 isv.invalid-signature (signed), and the wallet is not asked', async () => {
    const forged = buildPay(payInput(), ctx({ app: { appId: APP_ID, privateKey: keys().stranger.privatePem } }));
    expect(await answer(forged, METHODS.pay)).toMatchObject({ code: '40002', sub_code: 'isv.invalid-signature' });
    // A parameter changed after signing is a forgery too.
    const good = buildPay(payInput(), ctx()).form;
    expect(good).toContain('12.34');
    expect(await answer(good.replace('12.34', '0.01'), METHODS.pay)).toMatchObject({ sub_code: 'isv.invalid-signature' });
    expect(wallet.calls).toEqual([]);
  });

  it('an unknown app_id is refused unsigned (no key pair to sign with); a missing method in error_response', async () => {
    const other = buildPay(payInput(), ctx({ app: { appId: '2021999999999999', privateKey: keys().app.privatePem } }));
    expect(await answer(other, METHODS.pay, false)).toMatchObject({ code: '40002', sub_code: 'isv.invalid-app-id' });
    const { text } = await post('app_id=1&charset=utf-8');
    expect(JSON.parse(text)).toEqual({ error_response: { code: '40001', msg: 'Missing Required Arguments', sub_code: 'isv.missing-method', sub_msg: '缺少方法名参数' } });
  });

  it('missing common parameters and a non-RSA2 signature type are refused with their published sub-codes', async () => {
    const signed = buildQuery({ outTradeNo: 'box1-1' }, ctx());
    const without = (key: string) => {
      const p = new URLSearchParams(signed.form);
      p.delete(key);
      return p.toString();
    };
    expect(await answer(without('sign'), METHODS.query)).toMatchObject({ code: '40001', sub_code: 'isv.missing-signature' });
    expect(await answer(without('timestamp'), METHODS.query)).toMatchObject({ code: '40001', sub_code: 'isv.missing-timestamp' });
    const rsa1 = signRequest({ ...Object.fromEntries(new URLSearchParams(without('sign'))), sign_type: 'RSA' }, keys().app.privatePem);
    expect(await answer(new URLSearchParams(rsa1).toString(), METHODS.query)).toMatchObject({ code: '40002', sub_code: 'isv.invalid-signature-type' });
  });

  it('a token the merchant never gave: 20001 aop.invalid-app-auth-token', async () => {
    expect(await answer(buildPay(payInput(), ctx({ appAuthToken: 'someone-else' })), METHODS.pay)).toMatchObject({ code: '20001', sub_code: 'aop.invalid-app-auth-token' });
    expect(wallet.calls).toEqual([]);
  });

  it('accepts the common parameters in the URL and biz_content in the body, as Alipay’s SDKs send them; refuses a parameter given twice', async () => {
    const params = new URLSearchParams(buildPay(payInput(), ctx()).form);
    const body = new URLSearchParams({ biz_content: params.get('biz_content')! });
    params.delete('biz_content');
    const split = await post(body.toString(), `${sim.url}?${params.toString()}`);
    expect(openResponse(split.text, METHODS.pay, keys().alipay.publicPem)).toMatchObject({ ok: true, node: { code: '10000' } });
    const twice = await post(`${buildPay(payInput({ outTradeNo: 'box1-2' }), ctx()).form}&method=alipay.trade.query`);
    expect(twice.status).toBe(400);
  });
});

describe('Alipay simulator: business checks before the wallet', () => {
  it('a scene other than bar_code, an amount with 3 decimals, a code that is not Alipay’s: refused, nothing charged', async () => {
    const biz = (over: Record<string, string>) => {
      const p = Object.fromEntries(new URLSearchParams(buildPay(payInput(), ctx()).form));
      delete p.sign;
      return new URLSearchParams(signRequest({ ...p, biz_content: JSON.stringify({ ...JSON.parse(p.biz_content!), ...over }) }, keys().app.privatePem)).toString();
    };
    expect(await answer(biz({ scene: 'wave_code' }), METHODS.pay)).toMatchObject({ code: '40004', sub_code: 'ACQ.INVALID_PARAMETER' });
    expect(await answer(biz({ total_amount: '12.345' }), METHODS.pay)).toMatchObject({ code: '40004', sub_code: 'ACQ.INVALID_PARAMETER' });
    expect(await answer(biz({ auth_code: '134567890123456789' }), METHODS.pay)).toMatchObject({ code: '40004', sub_code: 'ACQ.PAYMENT_AUTH_CODE_INVALID' });
    expect(wallet.calls).toEqual([]);
  });

  it('books the pay under the token as merchant, its channel and the exact amount', async () => {
    const pay = wallet.pay.bind(wallet);
    const seen: unknown[] = [];
    wallet.pay = async (req, opts) => (seen.push(req), pay(req, opts));
    await answer(buildPay(payInput({ amountFen: 1 }), ctx()), METHODS.pay);
    expect(seen).toEqual([{ outTradeNo: 'box1-1', wallet: 'alipay', merchant: TOKEN, channel: 'alipay', amount: 1, currency: 'CNY', code: CODE, description: '测试' }]);
  });

  it('a bill link lives 30 seconds', async () => {
    await answer(buildPay(payInput(), ctx()), METHODS.pay);
    const node = await answer(buildBillUrlQuery({ billType: 'trade', billDate: '2024-03-01' }, ctx()), METHODS.billUrl);
    const url = String(node.bill_download_url);
    expect((await request(url, { dispatcher: agent }).then(async (r) => [r.statusCode, (await r.body.arrayBuffer()).byteLength]))[0]).toBe(200);
    clock.advanceSync(30_001);
    expect((await request(url, { dispatcher: agent }).then(async (r) => (await r.body.dump(), r.statusCode)))).toBe(404);
  });
});
