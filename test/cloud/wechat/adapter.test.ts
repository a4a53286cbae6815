import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome, type PayRequest, type RefundRequest } from '../../../cloud/gateway/gateway.js';
import { WechatChannelConfig } from '../../../cloud/gateway/channel-config.js';
import { createWechatGateway, wechatGatewayFromConfig, type WechatGateway } from '../../../cloud/gateway/wechat/adapter.js';
import { BILL_HEADER, BILL_SUMMARY_HEADER, formatWechatBill, parseWechatBill, WechatBillError, type WechatBillRow } from '../../../cloud/gateway/wechat/bill.js';
import type { SignType } from '../../../cloud/gateway/wechat/sign.js';
import type { Merchant } from '../../../cloud/merchants/merchant.js';
import { ErrorCode, isProtocolError } from '../../../protocol/index.js';
import { netCharged } from '../../../simulator/gateway/ledger.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../../simulator/gateway/scripted-gateway.js';
import { startWechatSimulator, type WechatSimulator } from '../../../simulator/gateway/wechat-server.js';
import { FakeClock, FAKE_CLOCK_START } from '../../support/fake-clock.js';
import { issueClientCert, makeTestCa, type TestCa, type TestClientCert } from '../../support/test-ca.js';

/**
 * The WeChat adapter against the WeChat simulator over real HTTPS with mutual TLS: every scripted
 * story of the wallet, the wire faults, the transport (keep-alive pools), the configuration and the
 * bill. The oracle is the scripted wallet's own ledger, never what the adapter says about itself.
 */
const ACCOUNT = { appId: 'wx8888888888888888', mchId: '1900000109', apiKey: randomBytes(16).toString('hex') };
const SUB_MCH = '1900000110';
const MERCHANTS: Record<string, Merchant> = {
  M1: { merchantId: 'M1', name: '测试店', wechatSubMchId: SUB_MCH, alipayAppAuthToken: null, createdAt: 0, updatedAt: 0 },
  M2: { merchantId: 'M2', name: '无微信', wechatSubMchId: null, alipayAppAuthToken: 'tok', createdAt: 0, updatedAt: 0 },
};
type Route = Pick<PayRequest, 'wallet' | 'merchant' | 'channel'>;
const ROUTE: Route = { wallet: 'wechat', merchant: 'M1', channel: 'wx1' };
const CALL = () => ({ signal: AbortSignal.timeout(10_000) });

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

interface Rig {
  clock: FakeClock;
  gateway: ScriptedGateway;
  sim: WechatSimulator;
  adapter: WechatGateway;
  /** Everything the adapter logged. */
  logged: string[];
}
const open: Rig[] = [];
afterEach(async () => {
  for (const r of open.splice(0)) {
    await r.adapter.close();
    r.gateway.stop();
    await r.sim.close();
  }
});

async function rig(opts: { signType?: SignType; keepAlive?: boolean; clientCert?: TestClientCert } = {}): Promise<Rig> {
  const clock = new FakeClock();
  const gateway = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS, clock });
  const signType = opts.signType ?? 'HMAC-SHA256';
  const sim = await startWechatSimulator({ gateway, channel: 'wx1', credentials: { ...ACCOUNT, signType }, tls: { cert: ca.serverCert, key: ca.serverKey, ca: ca.caCert } });
  const logged: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (logged.push(chunk.toString('utf8')), done()) });
  const cert = opts.clientCert ?? client;
  const adapter = createWechatGateway({
    channel: 'wx1',
    endpoint: sim.url,
    credentials: { appid: ACCOUNT.appId, mchId: ACCOUNT.mchId, apiKey: ACCOUNT.apiKey, signType },
    clientCert: { cert: cert.cert, key: cert.key },
    ca: ca.caCert,
    keepAlive: opts.keepAlive ?? true,
    merchants: async (id) => MERCHANTS[id],
    logger: pino({ level: 'debug' }, sink),
    spbillCreateIp: '10.0.0.5',
  });
  const r = { clock, gateway, sim, adapter, logged };
  open.push(r);
  return r;
}

let seq = 0;
const otn = () => `wxad${process.pid % 1000}-${++seq}`;
let codeSeq = 0;
/** A fresh payment code per test: scenarios are bound per code. */
const code = () => `13${String(4_567_890_123_456_000 + ++codeSeq).padStart(16, '0')}`;
const payReq = (outTradeNo: string, c: string, amount = 1234, route: Partial<Route> = {}): PayRequest => ({ outTradeNo, amount, currency: 'CNY', code: c, ...ROUTE, ...route });
const q = (outTradeNo: string, route: Partial<Route> = {}) => ({ outTradeNo, ...ROUTE, ...route });
const refundReq = (outTradeNo: string, refundNo: string, amount: number, total = 1234): RefundRequest => ({ outTradeNo, refundNo, amount, total, currency: 'CNY', ...ROUTE });

async function pay(r: Rig, req: PayRequest) {
  return PayOutcome.parse(await r.adapter.pay(req, CALL()));
}
async function query(r: Rig, t: string) {
  return QueryOutcome.parse(await r.adapter.query(q(t), CALL()));
}
async function reverse(r: Rig, t: string) {
  return ReverseOutcome.parse(await r.adapter.reverse(q(t), CALL()));
}
async function refund(r: Rig, req: RefundRequest) {
  return RefundOutcome.parse(await r.adapter.refund(req, CALL()));
}

describe('WeChat adapter ↔ simulator: the wallet stories', () => {
  for (const signType of ['MD5', 'HMAC-SHA256'] as const) {
    it(`USERPAYING, then the customer confirms: query says success with the receipt (${signType})`, async () => {
      const r = await rig({ signType });
      const c = code();
      r.gateway.bind(c, { name: 'user_paying', confirmAfterMs: 60_000 });
      const t = otn();
      expect(await pay(r, payReq(t, c))).toMatchObject({ kind: 'in_progress' });
      expect(await query(r, t)).toMatchObject({ kind: 'in_progress' });
      r.clock.advanceSync(2_500); // the customer types for 2.5 s, then confirms
      r.gateway.confirm(t);
      const paid = await query(r, t);
      // time_end has whole seconds in Beijing time; 00:00:02.5 UTC is 08:00:02 there.
      expect(paid).toEqual({ kind: 'success', gatewayTradeNo: expect.any(String), amount: 1234, paidAt: FAKE_CLOCK_START + 2_000, buyerPaid: 1234, discount: 0 });
      expect(r.gateway.net(t)).toBe(1234);
    });
  }

  it('a coupon: the buyer paid less, the amount stays the order total', async () => {
    const r = await rig();
    const c = code();
    r.gateway.bind(c, { name: 'success', discount: 200 });
    expect(await pay(r, payReq(otn(), c))).toMatchObject({ kind: 'success', amount: 1234, buyerPaid: 1034, discount: 200 });
  });

  it('the wallet charges 13 fen less: success with the wallet amount 1221, never corrected to 1234', async () => {
    const r = await rig();
    const c = code();
    r.gateway.bind(c, { name: 'success', chargeDelta: -13 });
    const t = otn();
    expect(await pay(r, payReq(t, c))).toMatchObject({ kind: 'success', amount: 1221 });
    expect(await query(r, t)).toMatchObject({ kind: 'success', amount: 1221 });
    expect(r.gateway.net(t)).toBe(1221);
  });

  it('a pay that hangs: the caller aborts (unknown TIMEOUT, never failed), the query finds the charge', async () => {
    const r = await rig();
    const c = code();
    r.gateway.bind(c, { name: 'hang', charged: true });
    const t = otn();
    const ac = new AbortController();
    const pending = r.adapter.pay(payReq(t, c), { signal: ac.signal });
    await r.gateway.waitFor('pay');
    ac.abort();
    expect(PayOutcome.parse(await pending)).toMatchObject({ kind: 'unknown', code: 'TIMEOUT' });
    expect(await query(r, t)).toMatchObject({ kind: 'success', amount: 1234 });
  });

  it('a pay that hangs without charging: the query says not_found', async () => {
    const r = await rig();
    const c = code();
    r.gateway.bind(c, { name: 'hang', charged: false });
    const t = otn();
    const ac = new AbortController();
    const pending = r.adapter.pay(payReq(t, c), { signal: ac.signal });
    await r.gateway.waitFor('pay');
    ac.abort();
    expect((await pending).kind).toBe('unknown');
    expect(await query(r, t)).toEqual({ kind: 'not_found' });
  });

  it('reverse answered recall=Y three times: retry_later until reversed; nothing stays charged', async () => {
    const r = await rig();
    const c = code();
    r.gateway.bind(c, { name: 'reverse_retry', times: 3 });
    const t = otn();
    expect(await pay(r, payReq(t, c))).toMatchObject({ kind: 'in_progress' });
    const answers = [];
    for (let n = 0; n < 4; n++) answers.push((await reverse(r, t)).kind);
    expect(answers).toEqual(['retry_later', 'retry_later', 'retry_later', 'reversed']);
    expect(await query(r, t)).toEqual({ kind: 'closed' });
    expect(r.gateway.net(t)).toBe(0);
  });

  it('the charge lands after the reverse (the wallet race): a later query reports it, for the cloud to refund', async () => {
    const r = await rig();
    const c = code();
    r.gateway.bind(c, { name: 'late_success', landAfterMs: 1_000 });
    const t = otn();
    expect(await pay(r, payReq(t, c))).toMatchObject({ kind: 'in_progress' });
    expect(await reverse(r, t)).toEqual({ kind: 'reversed' });
    r.clock.advanceSync(1_000);
    expect(await query(r, t)).toMatchObject({ kind: 'success', amount: 1234 });
    expect(await refund(r, refundReq(t, `${t}-r`, 1234))).toEqual({ kind: 'refunded', refundNo: `${t}-r` });
    expect(r.gateway.net(t)).toBe(0);
  });

  it('refunds: two refund ids on one order, each once; a partial refund is not yet "refunded"; more than was paid is refused', async () => {
    const r = await rig();
    const t = otn();
    await pay(r, payReq(t, code()));
    expect(await refund(r, refundReq(t, `${t}-a`, 500))).toEqual({ kind: 'refunded', refundNo: `${t}-a` });
    // trade_state REFUND after a partial refund: the refund list says 500 of 1234, never "refunded".
    expect((await query(r, t)).kind).toBe('unknown');
    expect(await refund(r, refundReq(t, `${t}-a`, 500))).toEqual({ kind: 'refunded', refundNo: `${t}-a` });
    expect(r.gateway.net(t)).toBe(734);
    expect(await refund(r, refundReq(t, `${t}-x`, 735))).toMatchObject({ kind: 'failed' });
    expect(await refund(r, refundReq(t, `${t}-b`, 734))).toEqual({ kind: 'refunded', refundNo: `${t}-b` });
    expect(await query(r, t)).toEqual({ kind: 'refunded' });
    expect(r.gateway.net(t)).toBe(0);
  });

  it('a refund naming another order total is refused by the wallet (total_fee must be the order\'s)', async () => {
    const r = await rig();
    const t = otn();
    await pay(r, payReq(t, code()));
    expect(await refund(r, refundReq(t, `${t}-a`, 500, 1300))).toMatchObject({ kind: 'failed', reason: 'DECLINED' });
    expect(r.gateway.net(t)).toBe(1234);
  });

  it('declines map to their reasons: NOTENOUGH, AUTHCODEEXPIRE; a reversed order cannot be paid later', async () => {
    const r = await rig();
    const [poor, expired] = [code(), code()];
    r.gateway.bind(poor, { name: 'failure', reason: 'INSUFFICIENT_FUNDS' });
    r.gateway.bind(expired, { name: 'failure', reason: 'CODE_EXPIRED' });
    expect(await pay(r, payReq(otn(), poor))).toMatchObject({ kind: 'failed', reason: 'INSUFFICIENT_FUNDS' });
    expect(await pay(r, payReq(otn(), expired))).toMatchObject({ kind: 'failed', reason: 'CODE_EXPIRED' });
    const t = otn();
    expect(await reverse(r, t)).toEqual({ kind: 'reversed' });
    expect(await pay(r, payReq(t, code()))).toMatchObject({ kind: 'failed' });
    expect(r.gateway.net(t)).toBe(0);
  });

  it('SYSTEMERROR and BANKERROR on pay are unknown with their codes; the query tells the truth', async () => {
    const r = await rig();
    const [sys, bank] = [code(), code()];
    r.gateway.bind(sys, { name: 'gateway_error', code: 'SYSTEMERROR', then: 'success' });
    r.gateway.bind(bank, { name: 'gateway_error', code: 'BANKERROR', then: 'failure' });
    const [a, b] = [otn(), otn()];
    expect(await pay(r, payReq(a, sys))).toMatchObject({ kind: 'unknown', code: 'SYSTEMERROR' });
    expect(await pay(r, payReq(b, bank))).toMatchObject({ kind: 'unknown', code: 'BANKERROR' });
    expect(await query(r, a)).toMatchObject({ kind: 'success', amount: 1234 });
    // PAYERROR "支付失败，请撤销订单": not final until reversed.
    expect(await query(r, b)).toMatchObject({ kind: 'unknown' });
    expect(await reverse(r, b)).toEqual({ kind: 'reversed' });
  });

  it('past the 7-day reverse window: REVERSE_EXPIRE is window_passed (refund instead)', async () => {
    const r = await rig();
    const t = otn();
    await pay(r, payReq(t, code()));
    r.clock.advanceSync(8 * 86_400_000);
    expect(await reverse(r, t)).toEqual({ kind: 'window_passed' });
    expect(r.gateway.net(t)).toBe(1234);
  });
});

describe('WeChat adapter: wire faults are unknown, never success', () => {
  it('a tampered sign on a success, a missing sign on a query, HTTP 500 on a reverse', async () => {
    const r = await rig();
    const t = otn();
    r.sim.faults.next('micropay', 'bad_signature');
    expect(await pay(r, payReq(t, code()))).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    r.sim.faults.next('orderquery', 'no_signature');
    expect(await query(r, t)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    // The wallet did charge: only the answer was spoilt.
    expect(await query(r, t)).toMatchObject({ kind: 'success', amount: 1234 });
    r.sim.faults.next('reverse', 'http_500');
    expect(await reverse(r, t)).toMatchObject({ kind: 'unknown', code: 'HTTP_5XX' });
    // The wallet did reverse: only its answer was lost.
    expect(await query(r, t)).toEqual({ kind: 'closed' });
    expect(r.gateway.net(t)).toBe(0);
  });

  it('a refund whose confirmation is tampered is unknown; asking again finds it refunded, once', async () => {
    const r = await rig();
    const t = otn();
    await pay(r, payReq(t, code()));
    r.sim.faults.next('refundquery', 'bad_signature');
    expect(await refund(r, refundReq(t, `${t}-r`, 1234))).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    expect(await refund(r, refundReq(t, `${t}-r`, 1234))).toEqual({ kind: 'refunded', refundNo: `${t}-r` });
    r.sim.faults.next('refund', 'no_signature');
    expect(await refund(r, refundReq(t, `${t}-r`, 1234))).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    expect(r.gateway.net(t)).toBe(0);
  });

  it('a client certificate the wallet does not trust: reverse and refund are unknown, the wallet never acted', async () => {
    const r = await rig({ clientCert: stranger });
    const t = otn();
    expect(await pay(r, payReq(t, code()))).toMatchObject({ kind: 'success' });
    expect(await reverse(r, t)).toMatchObject({ kind: 'unknown', code: 'OTHER', message: expect.stringContaining('HTTP 400') });
    expect(await refund(r, refundReq(t, `${t}-r`, 1234))).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(r.gateway.count('reverse') + r.gateway.count('refund')).toBe(0);
    expect(r.gateway.net(t)).toBe(1234);
  });

  it('a wallet that cannot be reached is unknown OTHER, an aborted signal unknown TIMEOUT', async () => {
    const r = await rig();
    const ac = new AbortController();
    ac.abort();
    expect(PayOutcome.parse(await r.adapter.pay(payReq(otn(), code()), { signal: ac.signal }))).toMatchObject({ kind: 'unknown', code: 'TIMEOUT' });
    await r.sim.close();
    expect(await pay(r, payReq(otn(), code()))).toMatchObject({ kind: 'unknown', code: 'OTHER' });
  });
});

describe('WeChat adapter: merchants and channels', () => {
  it('a merchant without a sub_mch_id, or unknown: pay failed DECLINED, nothing reaches the wallet', async () => {
    const r = await rig();
    for (const merchant of ['M2', 'M9']) {
      const o = await pay(r, payReq(otn(), code(), 1234, { merchant }));
      expect(o).toMatchObject({ kind: 'failed', reason: 'DECLINED', message: expect.stringContaining(merchant) });
    }
    expect(QueryOutcome.parse(await r.adapter.query(q(otn(), { merchant: 'M2' }), CALL()))).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(ReverseOutcome.parse(await r.adapter.reverse(q(otn(), { merchant: 'M2' }), CALL()))).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(RefundOutcome.parse(await r.adapter.refund({ ...refundReq(otn(), 'r1', 1), merchant: 'M2' }, CALL()))).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(r.gateway.calls).toEqual([]);
  });

  it('nothing at all is sent for a merchant without a sub_mch_id (no connection is even opened)', async () => {
    const r = await rig();
    expect(await pay(r, payReq(otn(), code(), 1234, { merchant: 'M2' }))).toMatchObject({ kind: 'failed', reason: 'DECLINED' });
    expect(r.sim.connections()).toBe(0);
    expect(r.gateway.calls).toEqual([]);
  });

  it('a request for another channel or wallet is refused unsent', async () => {
    const r = await rig();
    expect(await pay(r, payReq(otn(), code(), 1234, { channel: 'wx2' }))).toMatchObject({ kind: 'failed', reason: 'DECLINED' });
    expect(await pay(r, { ...payReq(otn(), code()), wallet: 'alipay' })).toMatchObject({ kind: 'failed', reason: 'DECLINED' });
    expect(r.sim.connections()).toBe(0);
  });
});

describe('WeChat adapter: transport', () => {
  it('keep-alive: 20 sequential pays use one TLS connection, the secapi calls one more (one per pool)', async () => {
    const r = await rig({ keepAlive: true });
    const ids = Array.from({ length: 20 }, otn);
    for (const t of ids) expect((await pay(r, payReq(t, code()))).kind).toBe('success');
    expect(r.sim.connections()).toBe(1);
    for (const t of ids.slice(0, 5)) expect(await reverse(r, t)).toEqual({ kind: 'reversed' });
    expect(r.sim.connections()).toBe(2);
    for (const t of ids.slice(5, 10)) expect((await query(r, t)).kind).toBe('success');
    expect(r.sim.connections()).toBe(2);
  });

  it('an answer over the size cap is unknown, read no further', async () => {
    const server = createHttpsServer({ cert: ca.serverCert, key: ca.serverKey }, (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/xml' });
      // 1 MiB, far over any XML answer (MAX_XML_BYTES); more than the adapter may buffer.
      res.end(`<xml><return_code>SUCCESS</return_code><x>${'x'.repeat(1 << 20)}</x></xml>`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const adapter = createWechatGateway({
      channel: 'wx1',
      endpoint: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials: { appid: ACCOUNT.appId, mchId: ACCOUNT.mchId, apiKey: ACCOUNT.apiKey, signType: 'MD5' },
      clientCert: { cert: client.cert, key: client.key },
      ca: ca.caCert,
      keepAlive: true,
      merchants: async (id) => MERCHANTS[id],
    });
    try {
      expect(PayOutcome.parse(await adapter.pay(payReq(otn(), code()), CALL()))).toMatchObject({ kind: 'unknown', code: 'OTHER', message: expect.stringContaining('over') });
    } finally {
      await adapter.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('keep-alive off: a new TLS connection per call', async () => {
    const r = await rig({ keepAlive: false });
    for (let n = 0; n < 5; n++) expect((await pay(r, payReq(otn(), code()))).kind).toBe('success');
    expect(r.sim.connections()).toBe(5);
  });

  it('no secret and no payment code in any log line', async () => {
    const r = await rig();
    const c = code();
    const t = otn();
    r.gateway.bind(c, { name: 'user_paying', confirmAfterMs: 60_000 });
    await pay(r, payReq(t, c));
    await reverse(r, t);
    r.sim.faults.next('micropay', 'bad_signature');
    await pay(r, payReq(otn(), c));
    const text = r.logged.join('');
    expect(text).toContain(t); // it does log, with the order's id
    for (const secret of [ACCOUNT.apiKey, c, client.key.split('\n')[1]!]) expect(text).not.toContain(secret);
  });
});

describe('WeChat adapter from the cloud config: credential files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'scanbox-wx-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function files(keyMode: number, cert: TestClientCert = client) {
    const put = (name: string, body: string, mode = 0o600) => {
      const path = join(dir, name);
      writeFileSync(path, body);
      chmodSync(path, mode);
      return path;
    };
    return { apiKeyFile: put('api.key', `${ACCOUNT.apiKey}\n`, keyMode), clientCertFile: put('cert.pem', cert.cert), clientKeyFile: put('key.pem', client.key) };
  }
  const config = (paths: ReturnType<typeof files>, endpoint = 'https://127.0.0.1:1') =>
    WechatChannelConfig.parse({ kind: 'wechat', endpoint, appId: ACCOUNT.appId, mchId: ACCOUNT.mchId, ...paths, caFile: ca.caCertFile });
  const merchants = async (id: string) => MERCHANTS[id];

  it('an API key file readable by others (0644) is refused with CONFIG_INVALID, naming the file, never the key', () => {
    const paths = files(0o644);
    let error: unknown;
    try {
      wechatGatewayFromConfig('wx1', config(paths), { merchants });
    } catch (err) {
      error = err;
    }
    expect(isProtocolError(error, ErrorCode.CONFIG_INVALID)).toBe(true);
    expect((error as Error).message).toContain(paths.apiKeyFile);
    expect((error as Error).message).not.toContain(ACCOUNT.apiKey);
  });

  it('a certificate that is not the key\'s pair is refused at start', () => {
    expect(() => wechatGatewayFromConfig('wx1', config(files(0o600, stranger)), { merchants })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });

  it('0600 files: the gateway pays and reverses through the simulator', async () => {
    const r = await rig();
    const gw = wechatGatewayFromConfig('wx1', config(files(0o600), r.sim.url), { merchants });
    try {
      const t = otn();
      expect((await gw.pay(payReq(t, code()), CALL())).kind).toBe('success');
      expect(await gw.reverse(q(t), CALL())).toEqual({ kind: 'reversed' });
      expect(r.gateway.net(t)).toBe(0);
    } finally {
      await gw.close();
    }
  });
});

describe('WeChat adapter: downloadbill', () => {
  it('the bill of the day matches the wallet ledger: payments, refunds, a reversal after payment', async () => {
    const r = await rig();
    const [paid, refunded, reversed, unpaid] = [otn(), otn(), otn(), otn()];
    const coupon = code();
    r.gateway.bind(coupon, { name: 'success', discount: 100 });
    await pay(r, payReq(paid, coupon, 600));
    await pay(r, payReq(refunded, code(), 2000));
    await refund(r, refundReq(refunded, `${refunded}-a`, 500, 2000));
    await pay(r, payReq(reversed, code(), 1234));
    await reverse(r, reversed);
    const userPaying = code();
    r.gateway.bind(userPaying, { name: 'user_paying', confirmAfterMs: 60_000 });
    await pay(r, payReq(unpaid, userPaying, 999));
    await reverse(r, unpaid);

    const bill = await r.adapter.downloadBill('20260101');
    if (bill.kind !== 'bill') throw new Error(`no bill: ${JSON.stringify(bill)}`);
    const rows = bill.bill.rows.map((x) => [x.outTradeNo, x.tradeState, x.orderFee, x.couponFee, x.refundFee, x.outRefundNo]);
    expect(rows).toEqual([
      [paid, 'SUCCESS', 600, 100, 0, null],
      [refunded, 'SUCCESS', 2000, 0, 0, null],
      [refunded, 'REFUND', 0, 0, 500, `${refunded}-a`],
      [reversed, 'SUCCESS', 1234, 0, 0, null],
      [reversed, 'REVOKED', 0, 0, 1234, null],
    ]);
    // The bill and the ledger agree, order by order: settled minus given back is what stays charged.
    const ledger = netCharged(r.gateway.ledger.entries());
    const fromBill = new Map<string, number>();
    for (const x of bill.bill.rows) fromBill.set(x.outTradeNo, (fromBill.get(x.outTradeNo) ?? 0) + x.settlementFee - x.refundFee);
    for (const [t, net] of fromBill) expect(net).toBe(ledger.get(t));
    expect(bill.bill.rows.every((x) => x.subMchId === SUB_MCH && x.mchId === ACCOUNT.mchId && x.tradeType === 'MICROPAY')).toBe(true);
    expect(bill.bill.summary).toMatchObject({ count: 5, orderTotal: 3834, refundTotal: 1734, feeMilliFen: 4000 + 12000 - 3000 + 7000 - 7000 });
    expect(await r.adapter.downloadBill('20260101', { merchant: 'M1' })).toEqual(bill);
  });

  it('a day without records is no_bill; a malformed date is never sent', async () => {
    const r = await rig();
    await pay(r, payReq(otn(), code()));
    expect(await r.adapter.downloadBill('20251231')).toEqual({ kind: 'no_bill' });
    expect(await r.adapter.downloadBill('2026-01-01')).toMatchObject({ kind: 'unknown' });
    expect(await r.adapter.downloadBill('20260101', { merchant: 'M2' })).toMatchObject({ kind: 'unknown' });
  });
});

describe('downloadbill text (bill.ts)', () => {
  // A payment row and a refund row as WeChat writes them (SOURCES.downloadbillCopy, ids shortened).
  const PAYMENT = '`2019-07-25 08:35:41,`wx2421b1c4370ec43b,`10000100,`1900000110,`,`4200000001,`ord-1,`oUser,`MICROPAY,`SUCCESS,`PSBC_DEBIT,`CNY,`6.00,`0.00,`0,`0,`0.00,`0.00,`,`,`咖啡, 大杯,`attach,`0.04000,`0.60%,`6.00,`0.00,`';
  const REFUND = '`2024-07-09 16:47:58,`wx2421b1c4370ec43b,`10000100,`1900000110,`,`4200000002,`ord-2,`oUser,`MICROPAY,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50302709992024070991956632208,`ord-2-r1,`50.00,`0.00,`ORIGINAL,`SUCCESS,`商品,`,`-0.27000,`0.54%,`0.00,`50.00,`';
  const TOTALS = '`2,`6.00,`50.00,`0.00,`-0.23000,`6.00,`50.00';
  const bill = (...lines: string[]) => [BILL_HEADER, ...lines, BILL_SUMMARY_HEADER, TOTALS].join('\r\n');

  it('reads WeChat\'s rows exactly: Beijing times, fen, the fee in 1/1000 fen, "0" ids as none, commas inside a value', () => {
    const { rows, summary } = parseWechatBill(`${bill(PAYMENT, REFUND)}\r\n`);
    expect(rows[0]).toMatchObject({ tradeTime: Date.UTC(2019, 6, 25, 0, 35, 41), transactionId: '4200000001', tradeState: 'SUCCESS', settlementFee: 600, orderFee: 600, feeMilliFen: 4000, refundId: null, outRefundNo: null, body: '咖啡, 大杯', rateNote: '' });
    expect(rows[1]).toMatchObject({ tradeState: 'REFUND', refundId: '50302709992024070991956632208', outRefundNo: 'ord-2-r1', refundFee: 5000, refundRequestFee: 5000, feeMilliFen: -27000, rate: '0.54%' });
    expect(summary).toEqual({ count: 2, settlementTotal: 600, refundTotal: 5000, rechargeCouponRefundTotal: 0, feeMilliFen: -23000, orderTotal: 600, refundRequestTotal: 5000 });
  });

  it('format → parse is the identity, and the text is what WeChat sends byte for byte', () => {
    const text = `${bill(PAYMENT, REFUND)}\r\n`;
    const parsed = parseWechatBill(text);
    expect(formatWechatBill(parsed.rows)).toBe(text);
    expect(parseWechatBill(formatWechatBill(parsed.rows))).toEqual(parsed);
  });

  const broken: [string, string, number][] = [
    ['another header (another bill_type)', [BILL_HEADER.replace(',费率备注', ''), PAYMENT, BILL_SUMMARY_HEADER, TOTALS].join('\n'), 1],
    ['a value without its backtick', bill(PAYMENT.slice(1), REFUND), 2],
    ['a missing value', bill(PAYMENT.replace(',`0.60%', ''), REFUND), 2],
    ['an amount with 3 decimals', bill(PAYMENT.replace('`6.00,`0.00,`0,', '`6.001,`0.00,`0,'), REFUND), 2],
    ['a negative amount', bill(PAYMENT, REFUND.replace('`50.00,`0.00,`ORIGINAL', '`-50.00,`0.00,`ORIGINAL')), 3],
    ['an amount written as a float', bill(PAYMENT.replace('`6.00,`0.00,`0,', '`6e0,`0.00,`0,'), REFUND), 2],
    ['an unknown trade state', bill(PAYMENT.replace('`SUCCESS,', '`PAID,'), REFUND), 2],
    ['a time that does not exist', bill(PAYMENT.replace('2019-07-25', '2019-02-30'), REFUND), 2],
    ['totals that are not the rows (a row lost)', bill(PAYMENT), 4],
    ['no summary (cut short)', [BILL_HEADER, PAYMENT, REFUND].join('\n'), 3],
    ['something after the totals', `${bill(PAYMENT, REFUND)}\n\`1`, 4],
  ];
  for (const [what, text, line] of broken) {
    it(`refuses ${what}, naming line ${line}`, () => {
      let error: unknown;
      try {
        parseWechatBill(text);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(WechatBillError);
      expect((error as WechatBillError).line).toBe(line);
    });
  }

  it('refuses to write what the format cannot carry', () => {
    const row = parseWechatBill(bill(PAYMENT, REFUND)).rows[0]!;
    const bad: Partial<WechatBillRow>[] = [{ body: 'a\nb' }, { body: 'x,`y' }, { orderFee: -1 }, { orderFee: 1.5 }];
    for (const over of bad) expect(() => formatWechatBill([{ ...row, ...over }])).toThrow(RangeError);
  });
});
