import { generateKeyPairSync, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openResponse, signContent, signRequest, verifyResponse } from '../../../cloud/gateway/alipay/sign.js';
import { alipayBody, keys, rsa2 } from './support.js';

const PAY = 'alipay.trade.pay';
const NODE = '{"code":"10000","msg":"Success","out_trade_no":"box1-7","trade_no":"2024010122001400001","total_amount":"12.30"}';

describe('alipay request signing', () => {
  it('builds the string to sign: no sign, no empty values, keys in ASCII order, raw k=v joined with &', () => {
    // The published example's parameters (自行实现签名), with an empty and a sign value that must not take part.
    const params = {
      timestamp: '2014-07-24 03:07:50',
      method: 'alipay.mobile.public.menu.add',
      app_id: '2014072300007148',
      sign_type: 'RSA2',
      charset: 'GBK',
      version: '1.0',
      biz_content: '{"button":[{"name":"话费充值"}]}',
      notify_url: '',
      app_auth_token: undefined,
      sign: 'must-not-be-signed',
    };
    expect(signContent(params)).toBe(
      'app_id=2014072300007148&biz_content={"button":[{"name":"话费充值"}]}&charset=GBK&method=alipay.mobile.public.menu.add' +
        '&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0',
    );
  });

  it('sorts by ASCII code, not by locale: uppercase before underscore before lowercase', () => {
    expect(signContent({ b: '1', a_b: '2', A: '3', a: '4', ab: '5' })).toBe('A=3&a=4&a_b=2&ab=5&b=1');
  });

  it('signs RSA2 with the app key: Node verifies the signature over the expected string with the app public key', () => {
    const { app, stranger } = keys();
    const params = { app_id: '2021000000000001', method: PAY, charset: 'utf-8', sign_type: 'RSA2', timestamp: '2024-01-01 08:00:00', version: '1.0', biz_content: '{"a":"b"}', empty: '' };
    const out = signRequest(params, app.privatePem);
    const expected = 'app_id=2021000000000001&biz_content={"a":"b"}&charset=utf-8&method=alipay.trade.pay&sign_type=RSA2&timestamp=2024-01-01 08:00:00&version=1.0';
    const sig = Buffer.from(out.sign!, 'base64');
    expect(verify('sha256', Buffer.from(expected, 'utf8'), app.publicKey, sig)).toBe(true);
    expect(verify('sha256', Buffer.from(expected, 'utf8'), stranger.publicKey, sig)).toBe(false);
    // Sent = signed: the empty parameter is not sent either.
    expect(Object.keys(out).sort()).toEqual(['app_id', 'biz_content', 'charset', 'method', 'sign', 'sign_type', 'timestamp', 'version']);
    // RSA PKCS#1 v1.5 is deterministic: the same content gives the same signature, which is what Alipay recomputes.
    expect(out.sign).toBe(rsa2(expected, app.privateKey));
  });

  it('takes the app key as bare base64 (PKCS#8 or PKCS#1), the form Alipay’s key tool prints', () => {
    const { app } = keys();
    const pkcs8 = app.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64');
    const pkcs1 = app.privateKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');
    const pem = signRequest({ a: '1' }, app.privatePem).sign;
    expect(signRequest({ a: '1' }, pkcs8).sign).toBe(pem);
    expect(signRequest({ a: '1' }, pkcs1.replace(/(.{64})/g, '$1\n')).sign).toBe(pem);
    expect(() => signRequest({ a: '1' }, 'not a key')).toThrow();
    expect(() => signRequest({ a: '1' }, app.publicPem)).toThrow();
    // RSA2 is RSA: an EC key would sign something Alipay never verifies.
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(() => signRequest({ a: '1' }, ec.privateKey)).toThrow(/RSA/);
    expect(() => signRequest({ a: '1' }, ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString())).toThrow(/RSA/);
  });
});

describe('alipay response verification', () => {
  it('round trip: a body signed by Alipay’s key verifies, and the node comes from the verified text', () => {
    const { alipay } = keys();
    const body = alipayBody(PAY, NODE);
    expect(verifyResponse(body, PAY, alipay.publicPem)).toBe(true);
    const opened = openResponse(body, PAY, alipay.publicPem);
    expect(opened).toEqual({ ok: true, nodeKey: 'alipay_trade_pay_response', signedText: NODE, node: JSON.parse(NODE) });
    // Bytes work the same as text, and Alipay's console form of the public key (bare base64 SPKI) too.
    expect(verifyResponse(Buffer.from(body, 'utf8'), PAY, alipay.publicPem)).toBe(true);
    const bare = alipay.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    expect(verifyResponse(body, PAY, bare)).toBe(true);
    expect(verifyResponse(body, PAY, alipay.publicKey)).toBe(true);
  });

  it('verifies the node text as sent: other whitespace, key order, escaped slashes and Chinese still verify', () => {
    const { alipay } = keys();
    const odd = '{ "total_amount" : "12.30",\n  "code":"10000" ,"sub_msg":"成功 \\u0041","url":"http:\\/\\/x.alipay.com\\/a","out_trade_no":"box1-7","trade_no":"2024"}';
    const body = `{\n  "alipay_trade_pay_response" :  ${odd} ,\r\n "sign" : "${rsa2(odd, alipay.privateKey)}"\n}`;
    const opened = openResponse(body, PAY, alipay.publicPem);
    expect(opened.ok).toBe(true);
    if (opened.ok) {
      expect(opened.signedText).toBe(odd);
      expect(opened.node.url).toBe('http://x.alipay.com/a');
    }
  });

  it('a re-serialised node does not verify, changed or not: only the raw text is signed', () => {
    const { alipay } = keys();
    const odd = '{"code":"10000", "url":"http:\\/\\/x", "out_trade_no":"box1-7"}';
    const sig = rsa2(odd, alipay.privateKey);
    const reserialised = JSON.stringify(JSON.parse(odd));
    expect(reserialised).not.toBe(odd);
    expect(verifyResponse(`{"alipay_trade_pay_response":${reserialised},"sign":"${sig}"}`, PAY, alipay.publicPem)).toBe(false);
    const changed = JSON.stringify({ ...JSON.parse(odd), code: '10000', total_amount: '0.01' });
    expect(verifyResponse(`{"alipay_trade_pay_response":${changed},"sign":"${sig}"}`, PAY, alipay.publicPem)).toBe(false);
    // The original framing of the same text still verifies.
    expect(verifyResponse(`{"alipay_trade_pay_response":${odd},"sign":"${sig}"}`, PAY, alipay.publicPem)).toBe(true);
  });

  it('a tampered body does not verify: one character of the node changed', () => {
    const { alipay } = keys();
    const body = alipayBody(PAY, NODE);
    for (const [from, to] of [
      ['"12.30"', '"12.31"'],
      ['"10000"', '"10003"'],
      ['box1-7', 'box1-8'],
      ['"Success"', '"Success "'],
    ] as const) {
      const tampered = body.replace(from, to);
      expect(tampered).not.toBe(body);
      expect(verifyResponse(tampered, PAY, alipay.publicPem), `${from} → ${to}`).toBe(false);
      expect(openResponse(tampered, PAY, alipay.publicPem)).toMatchObject({ ok: false, failure: 'BAD_SIGNATURE' });
    }
    // The signature itself altered.
    const sig = /"sign":"([^"]+)"/.exec(body)![1]!;
    const flipped = (sig[5] === 'A' ? 'B' : 'A');
    expect(verifyResponse(body.replace(sig, sig.slice(0, 5) + flipped + sig.slice(6)), PAY, alipay.publicPem)).toBe(false);
  });

  it('the wrong key does not verify: another public key, or a body signed by a stranger', () => {
    const { alipay, app, stranger } = keys();
    expect(verifyResponse(alipayBody(PAY, NODE), PAY, stranger.publicPem)).toBe(false);
    expect(verifyResponse(alipayBody(PAY, NODE), PAY, app.publicPem)).toBe(false);
    expect(verifyResponse(alipayBody(PAY, NODE, stranger.privateKey), PAY, alipay.publicPem)).toBe(false);
    // A key that is no key is a failed verification, not an exception.
    expect(openResponse(alipayBody(PAY, NODE), PAY, 'garbage!')).toMatchObject({ ok: false, failure: 'BAD_KEY' });
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    expect(openResponse(alipayBody(PAY, NODE), PAY, ec.publicKey)).toMatchObject({ ok: false, failure: 'BAD_KEY' });
  });

  it('a missing, empty or malformed sign does not verify', () => {
    const { alipay } = keys();
    const pub = alipay.publicPem;
    const cases: Record<string, string> = {
      missing: `{"alipay_trade_pay_response":${NODE}}`,
      empty: `{"alipay_trade_pay_response":${NODE},"sign":""}`,
      null: `{"alipay_trade_pay_response":${NODE},"sign":null}`,
      number: `{"alipay_trade_pay_response":${NODE},"sign":12345678}`,
      notBase64: `{"alipay_trade_pay_response":${NODE},"sign":"!!!!"}`,
      badLength: `{"alipay_trade_pay_response":${NODE},"sign":"QUJD="}`,
      insideNodeOnly: `{"alipay_trade_pay_response":${NODE.replace('}', `,"sign":"${rsa2(NODE, alipay.privateKey)}"}`)}}`,
    };
    for (const [name, body] of Object.entries(cases)) {
      expect(verifyResponse(body, PAY, pub), name).toBe(false);
      expect(openResponse(body, PAY, pub), name).toMatchObject({ ok: false, failure: 'NO_SIGN' });
    }
  });

  it('finds node and sign by walking the JSON: sign first, "sign" inside the node, nested objects', () => {
    const { alipay } = keys();
    const pub = alipay.publicPem;
    const tricky = '{"code":"10000","sub_msg":"a \\"sign\\":\\"x\\" } {","sign":"inner","detail":{"sign":"deeper","list":[{"}":"]"}]},"out_trade_no":"box1-7"}';
    const sig = rsa2(tricky, alipay.privateKey);
    expect(verifyResponse(`{"sign":"${sig}","alipay_trade_pay_response":${tricky}}`, PAY, pub)).toBe(true);
    expect(verifyResponse(`{"alipay_trade_pay_response":${tricky},"alipay_cert_sn":"abc","sign":"${sig}"}`, PAY, pub)).toBe(true);
    // An unsigned sibling changes nothing; it is simply not part of what is verified.
    expect(verifyResponse(`{"alipay_trade_pay_response":${tricky},"sign":"${sig}","extra":{"code":"40004"}}`, PAY, pub)).toBe(true);
  });

  it('a duplicated node or sign is refused: JSON.parse would read the last, the signature vouches for one', () => {
    const { alipay } = keys();
    const sig = rsa2(NODE, alipay.privateKey);
    const forged = NODE.replace('12.30', '0.01');
    expect(openResponse(`{"alipay_trade_pay_response":${NODE},"alipay_trade_pay_response":${forged},"sign":"${sig}"}`, PAY, alipay.publicPem)).toMatchObject({
      ok: false,
      failure: 'DUPLICATE_KEY',
    });
    expect(verifyResponse(`{"alipay_trade_pay_response":${NODE},"sign":"${sig}","sign":"${sig}"}`, PAY, alipay.publicPem)).toBe(false);
  });

  it('answers for another method, a node that is not an object, or no JSON at all do not verify', () => {
    const { alipay } = keys();
    const pub = alipay.publicPem;
    expect(openResponse(alipayBody(PAY, NODE), 'alipay.trade.query', pub)).toMatchObject({ ok: false, failure: 'NO_RESPONSE_NODE' });
    const text = '"10000"';
    expect(openResponse(`{"alipay_trade_pay_response":${text},"sign":"${rsa2(text, alipay.privateKey)}"}`, PAY, pub)).toMatchObject({ ok: false, failure: 'NODE_NOT_AN_OBJECT' });
    for (const body of ['', 'not json', '<html>502</html>', '[]', 'null', '"x"', `${alipayBody(PAY, NODE)}x`]) {
      expect(verifyResponse(body, PAY, pub), body).toBe(false);
    }
    expect(openResponse(Buffer.from([0x7b, 0xff, 0x7d]), PAY, pub)).toMatchObject({ ok: false, failure: 'NOT_TEXT' });
  });

  it('falls back to a signed error_response when the method node is absent', () => {
    const { alipay } = keys();
    const err = '{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}';
    const opened = openResponse(`{"error_response":${err},"sign":"${rsa2(err, alipay.privateKey)}"}`, PAY, alipay.publicPem);
    expect(opened).toMatchObject({ ok: true, nodeKey: 'error_response', signedText: err });
    // Unsigned, as the gateway sends its own rejections: not verified, but the claim is kept for the logs.
    const unsigned = openResponse(`{"alipay_trade_pay_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}`, PAY, alipay.publicPem);
    expect(unsigned).toEqual({ ok: false, failure: 'NO_SIGN', unverifiedHint: '40002 isv.invalid-app-id' });
  });
});
