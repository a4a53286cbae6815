import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { alipayGatewayFromConfig, createAlipayGateway, type AlipayGateway } from '../../../cloud/gateway/alipay/adapter.js';
import { METHODS } from '../../../cloud/gateway/alipay/requests.js';
import { AlipayChannelConfig } from '../../../cloud/gateway/channel-config.js';
import { PayOutcome, QueryOutcome, RefundOutcome, ReverseOutcome, type PayRequest } from '../../../cloud/gateway/gateway.js';
import type { Merchant } from '../../../cloud/merchants/merchant.js';
import { ErrorCode, ProtocolError } from '../../../protocol/index.js';
import { startAlipaySimulator, type AlipaySimulator } from '../../../simulator/gateway/alipay-server.js';
import type { ScenarioInput } from '../../../simulator/gateway/scenario.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../../simulator/gateway/scripted-gateway.js';
import { FakeClock } from '../../support/fake-clock.js';
import { makeTestCa, type TestCa } from '../../support/test-ca.js';
import { keys } from './support.js';

/**
 * The Alipay adapter against the Alipay simulator over HTTPS: every scripted wallet story goes through the real
 * wire protocol (RSA2 both ways, app_auth_token, the published codes), and the scripted wallet's ledger is the truth
 * each outcome is checked against.
 */
const APP_ID = '2021000000000001';
const TOKEN = '202403BBe1c2d3e4f5a6b7c8d9e0f1a2b3c4X01';
const CHANNEL = 'alipay-isv';
/** 2024-03-01 10:20:30.456 Beijing time: the receipts' times are whole seconds of it. */
const START = Date.UTC(2024, 2, 1, 2, 20, 30, 456);
const PAID_AT = Date.UTC(2024, 2, 1, 2, 20, 30);

const MERCHANTS: Record<string, Merchant> = {
  M1: merchant('M1', TOKEN),
  M2: merchant('M2', 'token-of-another-merchant'),
  NOTOKEN: merchant('NOTOKEN', null),
  STRANGER: merchant('STRANGER', 'a-token-alipay-never-issued'),
};
function merchant(merchantId: string, alipayAppAuthToken: string | null): Merchant {
  return { merchantId, name: null, wechatSubMchId: null, alipayAppAuthToken, createdAt: 0, updatedAt: 0 };
}
const merchants = async (id: string) => MERCHANTS[id];

let ca: TestCa;
let clock: FakeClock;
let wallet: ScriptedGateway;
let sim: AlipaySimulator;
let gw: AlipayGateway;
/** Every adapter a test opened: closed after it. */
let opened: AlipayGateway[] = [];
let seq = 0;

beforeAll(() => {
  ca = makeTestCa();
  keys();
});
afterAll(() => ca.remove());

beforeEach(async () => {
  clock = new FakeClock(START);
  wallet = new ScriptedGateway({ clock, mix: EVERY_CODE_SUCCEEDS });
  sim = await startAlipaySimulator({
    gateway: wallet,
    channel: CHANNEL,
    appId: APP_ID,
    appPublicKey: keys().app.publicPem,
    alipayPrivateKey: keys().alipay.privatePem,
    tls: { cert: ca.serverCert, key: ca.serverKey },
    appAuthTokens: [TOKEN, 'token-of-another-merchant'],
    clock,
  });
  gw = adapter();
});

afterEach(async () => {
  for (const g of opened) await g.close();
  opened = [];
  wallet.stop();
  await sim.close();
});

function adapter(over: { privateKey?: string; keepAlive?: boolean; logger?: pino.Logger } = {}): AlipayGateway {
  const g = createAlipayGateway({
    channel: CHANNEL,
    endpoint: sim.url,
    app: { appId: APP_ID, privateKey: over.privateKey ?? keys().app.privatePem },
    alipayPublicKey: keys().alipay.publicPem,
    ca: ca.caCert,
    keepAlive: over.keepAlive ?? true,
    merchants,
    clock,
    ...(over.logger ? { logger: over.logger } : {}),
  });
  opened.push(g);
  return g;
}

/** A fresh Alipay payment code (28…, 18 digits) bound to a scenario, and an out_trade_no for it. */
function story(scenario: ScenarioInput): { code: string; otn: string } {
  seq += 1;
  const code = `28${String(seq).padStart(16, '0')}`;
  wallet.bind(code, scenario);
  return { code, otn: `box7-${seq}` };
}

const open = () => ({ signal: AbortSignal.timeout(5_000) });
const route = (otn: string, m = 'M1') => ({ outTradeNo: otn, wallet: 'alipay', merchant: m, channel: CHANNEL }) as const;
const payReq = (otn: string, code: string, amount = 1234, m = 'M1', description?: string): PayRequest => ({
  ...route(otn, m),
  amount,
  currency: 'CNY',
  code,
  ...(description ? { description } : {}),
});
const pay = async (r: PayRequest, g = gw) => PayOutcome.parse(await g.pay(r, open()));
const query = async (otn: string, g = gw) => QueryOutcome.parse(await g.query(route(otn), open()));
const reverse = async (otn: string, g = gw) => ReverseOutcome.parse(await g.reverse(route(otn), open()));
const refund = async (otn: string, refundNo: string, amount: number, total = 1234) =>
  RefundOutcome.parse(await gw.refund({ ...route(otn), refundNo, amount, total, currency: 'CNY' }, open()));

describe('Alipay adapter ↔ simulator: the payment stories', () => {
  it('WAIT_BUYER_PAY (10003), the buyer confirms, and the query finds the success with its receipt', async () => {
    const { code, otn } = story({ name: 'user_paying', confirmAfterMs: 600_000 });
    expect(await pay(payReq(otn, code))).toEqual({ kind: 'in_progress', message: expect.stringContaining('10003') });
    expect(await query(otn)).toMatchObject({ kind: 'in_progress' });
    wallet.confirm(otn);
    const found = await query(otn);
    expect(found).toEqual({ kind: 'success', gatewayTradeNo: expect.any(String), amount: 1234, paidAt: PAID_AT, buyerPaid: 1234, discount: 0 });
    expect(wallet.net(otn)).toBe(1234);
  });

  it('a success with coupons carries the receipt: when paid, what the buyer paid, the discount', async () => {
    const { code, otn } = story({ name: 'success', discount: 200 });
    const paid = await pay(payReq(otn, code));
    expect(paid).toEqual({ kind: 'success', gatewayTradeNo: expect.stringMatching(/^sim/), amount: 1234, paidAt: PAID_AT, buyerPaid: 1034, discount: 200 });
    expect(await query(otn)).toEqual(paid);
  });

  it('a pay the wallet never answers ends as unknown TIMEOUT when the caller aborts; the query finds the charge', async () => {
    const { code, otn } = story({ name: 'hang', charged: true });
    const ac = new AbortController();
    const call = gw.pay(payReq(otn, code), { signal: ac.signal });
    await wallet.waitFor('pay');
    ac.abort();
    expect(await call).toMatchObject({ kind: 'unknown', code: 'TIMEOUT' });
    expect(await query(otn)).toMatchObject({ kind: 'success', amount: 1234 });
  });

  it('a cancel answered retry_flag=Y is retry_later, naming retry_flag, until it is done', async () => {
    const { code, otn } = story({ name: 'reverse_retry', times: 2 });
    expect((await pay(payReq(otn, code))).kind).toBe('in_progress');
    for (let i = 0; i < 2; i++) {
      const r = await reverse(otn);
      expect(r.kind).toBe('retry_later');
      expect(r.kind === 'retry_later' && r.message).toContain('retry_flag=Y');
    }
    expect(await reverse(otn)).toEqual({ kind: 'reversed', action: 'close' });
    expect(wallet.count('reverse', otn)).toBe(3);
    expect(await query(otn)).toEqual({ kind: 'closed' });
  });

  it('a cancel of a paid trade refunds it (action=refund); of an unpaid one closes it (action=close)', async () => {
    const paid = story({ name: 'success' });
    await pay(payReq(paid.otn, paid.code));
    expect(await reverse(paid.otn)).toEqual({ kind: 'reversed', action: 'refund' });
    expect(wallet.net(paid.otn)).toBe(0);
    // TRADE_CLOSED with a payment time: charged, then given back in full.
    expect(await query(paid.otn)).toEqual({ kind: 'refunded' });

    const waiting = story({ name: 'user_paying', confirmAfterMs: 600_000 });
    await pay(payReq(waiting.otn, waiting.code));
    expect(await reverse(waiting.otn)).toEqual({ kind: 'reversed', action: 'close' });
    expect(await query(waiting.otn)).toEqual({ kind: 'closed' });
  });

  it('a charge that lands after the cancel is found by the next query (the cloud must then refund it)', async () => {
    const { code, otn } = story({ name: 'late_success', landAfterMs: 1_000 });
    await pay(payReq(otn, code));
    expect(await reverse(otn)).toEqual({ kind: 'reversed', action: 'close' });
    await clock.advance(1_000);
    expect(await query(otn)).toMatchObject({ kind: 'success', amount: 1234 });
    expect(wallet.net(otn)).toBe(1234);
  });

  it('the day after, a cancel of a paid trade is past its window: window_passed, and a refund does it', async () => {
    const { code, otn } = story({ name: 'success' });
    await pay(payReq(otn, code));
    clock.advanceSync(14 * 3_600_000); // 2024-03-02 00:20 Beijing
    expect(await reverse(otn)).toEqual({ kind: 'window_passed' });
    expect(await refund(otn, `${otn}-r`, 1234)).toEqual({ kind: 'refunded', refundNo: `${otn}-r` });
    expect(wallet.net(otn)).toBe(0);
  });

  it('refunds: two refund ids on one trade both land, a repeat refunds once (via the refund query), a third finds nothing left', async () => {
    const { code, otn } = story({ name: 'success' });
    await pay(payReq(otn, code));
    expect(await refund(otn, `${otn}-r1`, 500)).toEqual({ kind: 'refunded', refundNo: `${otn}-r1` });
    expect(await refund(otn, `${otn}-r2`, 734)).toEqual({ kind: 'refunded', refundNo: `${otn}-r2` });
    const before = sim.requests();
    // Repeated: fund_change N, confirmed by alipay.trade.fastpay.refund.query — two requests, no money.
    expect(await refund(otn, `${otn}-r1`, 500)).toEqual({ kind: 'refunded', refundNo: `${otn}-r1` });
    expect(sim.requests() - before).toBe(2);
    expect(await refund(otn, `${otn}-r3`, 1)).toMatchObject({ kind: 'failed', reason: 'DECLINED' });
    expect(wallet.net(otn)).toBe(0);
    expect(await query(otn)).toEqual({ kind: 'refunded' });
  });

  it('reports the amount the wallet charged, never the one asked for (a 13-fen short charge stays 1221)', async () => {
    const { code, otn } = story({ name: 'success', chargeDelta: -13 });
    expect(await pay(payReq(otn, code, 1234))).toMatchObject({ kind: 'success', amount: 1221 });
    expect(await query(otn)).toMatchObject({ kind: 'success', amount: 1221 });
    expect(wallet.net(otn)).toBe(1221);
  });

  it('a repeated pay of a paid trade (ACQ.TRADE_HAS_SUCCESS) is the trade’s success, found by a query; charged once', async () => {
    const { code, otn } = story({ name: 'success' });
    const first = await pay(payReq(otn, code));
    expect(await pay(payReq(otn, code))).toEqual(first);
    expect(wallet.count('query', otn)).toBe(1);
    expect(wallet.net(otn)).toBe(1234);
  });

  it('failures carry the reason Alipay gives (an expired code is an invalid one: Alipay does not tell them apart)', async () => {
    const cases = [
      ['INSUFFICIENT_FUNDS', 'INSUFFICIENT_FUNDS'],
      ['CODE_INVALID', 'CODE_INVALID'],
      ['CODE_EXPIRED', 'CODE_INVALID'],
      ['DECLINED', 'DECLINED'],
    ] as const;
    for (const [scripted, seen] of cases) {
      const { code, otn } = story({ name: 'failure', reason: scripted });
      expect(await pay(payReq(otn, code)), scripted).toMatchObject({ kind: 'failed', reason: seen });
    }
  });

  it('a system error is unknown SYSTEMERROR, and the query tells the truth', async () => {
    const { code, otn } = story({ name: 'gateway_error', code: 'SYSTEMERROR', then: 'success' });
    expect(await pay(payReq(otn, code))).toMatchObject({ kind: 'unknown', code: 'SYSTEMERROR' });
    expect(await query(otn)).toMatchObject({ kind: 'success', amount: 1234 });
  });
});

describe('Alipay adapter ↔ simulator: answers that are not answers', () => {
  it('a tampered or missing answer signature is unknown BAD_SIGNATURE, never success; the money is found by a query', async () => {
    const a = story({ name: 'success' });
    sim.faults.next(METHODS.pay, 'bad_signature');
    expect(await pay(payReq(a.otn, a.code))).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    sim.faults.next(METHODS.query, 'no_signature');
    expect(await query(a.otn)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    expect(await query(a.otn)).toMatchObject({ kind: 'success', amount: 1234 });
    sim.faults.next(METHODS.cancel, 'bad_signature');
    expect(await reverse(a.otn)).toMatchObject({ kind: 'unknown', code: 'BAD_SIGNATURE' });
    expect(wallet.net(a.otn)).toBe(0);
  });

  it('an HTTP 500 is unknown HTTP_5XX, and nothing reached the wallet', async () => {
    const { code, otn } = story({ name: 'success' });
    sim.faults.next(METHODS.pay, 'http_500');
    expect(await pay(payReq(otn, code))).toMatchObject({ kind: 'unknown', code: 'HTTP_5XX' });
    expect(wallet.count('pay')).toBe(0);
    expect(await query(otn)).toEqual({ kind: 'not_found' });
  });

  it('a request signed with a key that is not the app’s is refused by the gateway, and is never a success', async () => {
    const { code, otn } = story({ name: 'success' });
    const wrong = adapter({ privateKey: keys().stranger.privatePem });
    const outcome = await pay(payReq(otn, code), wrong);
    expect(outcome).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(outcome.kind === 'unknown' && outcome.message).toContain('isv.invalid-signature');
    expect(wallet.calls).toEqual([]);
    expect((await query(otn, wrong)).kind).toBe('unknown');
  });

  it('a token Alipay does not know (20001 aop.invalid-app-auth-token) is unknown, and nothing is charged', async () => {
    const { code, otn } = story({ name: 'success' });
    const outcome = await pay(payReq(otn, code, 1234, 'STRANGER'));
    expect(outcome).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(outcome.kind === 'unknown' && outcome.message).toContain('aop.invalid-app-auth-token');
    expect(wallet.calls).toEqual([]);
  });

  it('a merchant without app_auth_token: pay fails and no byte is sent; the other calls are unknown', async () => {
    const { code, otn } = story({ name: 'success' });
    const outcome = await pay(payReq(otn, code, 1234, 'NOTOKEN'));
    expect(outcome).toMatchObject({ kind: 'failed', reason: 'DECLINED' });
    expect(outcome.kind === 'failed' && outcome.message).toContain('app_auth_token');
    expect(await pay(payReq(`${otn}x`, code, 1234, 'NOBODY'))).toMatchObject({ kind: 'failed', reason: 'DECLINED', message: expect.stringContaining('not known') });
    expect(await gw.query(route(otn, 'NOTOKEN'), open())).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(await gw.reverse(route(otn, 'NOTOKEN'), open())).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(await gw.refund({ ...route(otn, 'NOTOKEN'), refundNo: 'r', amount: 1, total: 1, currency: 'CNY' }, open())).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect([sim.requests(), sim.connections(), wallet.calls.length]).toEqual([0, 0, 0]);
  });

  it('a pay the codec cannot put on the wire (an out_trade_no Alipay does not take) fails without a request', async () => {
    const { code } = story({ name: 'success' });
    expect(await pay(payReq('box.1', code))).toMatchObject({ kind: 'failed', reason: 'DECLINED', message: expect.stringContaining('out_trade_no') });
    expect(await gw.query(route('box.1'), open())).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(sim.requests()).toBe(0);
  });
});

describe('Alipay adapter: connections, configuration, logs', () => {
  it('keep-alive: 20 sequential pays over one TLS connection; without keep-alive, one connection per call', async () => {
    for (let i = 0; i < 20; i++) {
      const { code, otn } = story({ name: 'success' });
      expect((await pay(payReq(otn, code))).kind).toBe('success');
    }
    expect(sim.connections()).toBe(1);
    const cold = adapter({ keepAlive: false });
    for (let i = 0; i < 5; i++) {
      const { code, otn } = story({ name: 'success' });
      expect((await pay(payReq(otn, code), cold)).kind).toBe('success');
    }
    expect(sim.connections()).toBe(6);
  });

  it('from config: key files must be 0600 (CONFIG_INVALID otherwise, naming the file, never its content); 0600 works end to end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alipay-keys-'));
    try {
      const file = (name: string, text: string, mode: number) => {
        const path = join(dir, name);
        writeFileSync(path, text);
        chmodSync(path, mode);
        return path;
      };
      const cfg = (privateKeyFile: string) =>
        AlipayChannelConfig.parse({ kind: 'alipay', endpoint: sim.url, appId: APP_ID, privateKeyFile, alipayPublicKeyFile: file('alipay.pub', keys().alipay.publicPem, 0o600), caFile: ca.caCertFile });
      const loose = file('app-loose.key', keys().app.privatePem, 0o644);
      let thrown: unknown;
      try {
        alipayGatewayFromConfig(CHANNEL, cfg(loose), { merchants, clock });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ProtocolError);
      expect((thrown as ProtocolError).code).toBe(ErrorCode.CONFIG_INVALID);
      expect((thrown as Error).message).toContain('app-loose.key');
      expect((thrown as Error).message).not.toContain('PRIVATE KEY');
      expect(() => alipayGatewayFromConfig(CHANNEL, cfg(file('garbage.key', 'not a key', 0o600)), { merchants, clock })).toThrow(/not a usable RSA key/);

      const g = alipayGatewayFromConfig(CHANNEL, cfg(file('app.key', keys().app.privatePem, 0o600)), { merchants, clock });
      opened.push(g);
      const { code, otn } = story({ name: 'success' });
      expect(await pay(payReq(otn, code), g)).toMatchObject({ kind: 'success', amount: 1234 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('logs the Alipay facts of each answer (action, retry_flag, fund_change, sub_code) and never a key, token or signature', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const g = adapter({ logger: pino({ level: 'info' }, sink) });
    const a = story({ name: 'success' });
    await pay(payReq(a.otn, a.code), g);
    await g.refund({ ...route(a.otn), refundNo: `${a.otn}-r`, amount: 100, total: 1234, currency: 'CNY' }, open());
    await reverse(a.otn, g);
    const b = story({ name: 'failure', reason: 'INSUFFICIENT_FUNDS' });
    await pay(payReq(b.otn, b.code), g);
    const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged.find((l) => l.method === METHODS.cancel)).toMatchObject({ outTradeNo: a.otn, merchant: 'M1', action: 'refund', retry_flag: 'N', code: '10000', outcome: 'reversed', channel: CHANNEL });
    expect(logged.find((l) => l.method === METHODS.refund)).toMatchObject({ fund_change: 'Y', outcome: 'refunded' });
    expect(logged.find((l) => l.outTradeNo === b.otn)).toMatchObject({ sub_code: 'ACQ.BUYER_BALANCE_NOT_ENOUGH', outcome: 'failed' });
    const all = lines.join('\n');
    const keyBody = (pem: string) => pem.split('\n')[1]!;
    for (const secret of [TOKEN, a.code, keyBody(keys().app.privatePem), keyBody(keys().alipay.publicPem), '"sign"', 'app_auth_token']) expect(all).not.toContain(secret);
  });

  it('close() ends a call the wallet left hanging', async () => {
    const { code, otn } = story({ name: 'hang', charged: false });
    const g = adapter();
    const call = g.pay(payReq(otn, code), { signal: new AbortController().signal });
    await wallet.waitFor('pay');
    await g.close();
    expect(await call).toMatchObject({ kind: 'unknown' });
  });
});

describe('Alipay adapter: the trade bill', () => {
  it('downloads the simulator’s bill of the day and it matches the ledger, Chinese text intact', async () => {
    const plain = story({ name: 'success' });
    // Alipay refuses / = & in a subject; GBK has no ☕ (the bill shows '?').
    await pay(payReq(plain.otn, plain.code, 1234, 'M1', '咖啡/大杯 ☕'));
    const refunded = story({ name: 'success', discount: 100 });
    await pay(payReq(refunded.otn, refunded.code, 5000));
    await refund(refunded.otn, `${refunded.otn}-r1`, 1500, 5000);
    const cancelled = story({ name: 'success' });
    await pay(payReq(cancelled.otn, cancelled.code, 800));
    await reverse(cancelled.otn);
    const unpaid = story({ name: 'failure', reason: 'DECLINED' });
    await pay(payReq(unpaid.otn, unpaid.code, 99));
    const other = story({ name: 'success' });
    await pay(payReq(other.otn, other.code, 777, 'M2'));

    const got = await gw.downloadBill('2024-03-01', { merchant: 'M1' });
    expect(got.kind).toBe('bill');
    if (got.kind !== 'bill') return;
    const { bill } = got;
    expect(bill.date).toBe('2024-03-01');
    const net = new Map<string, number>();
    for (const r of bill.rows) net.set(r.outTradeNo, (net.get(r.outTradeNo) ?? 0) + r.merchantReceived);
    expect([...net.keys()].sort()).toEqual([plain.otn, refunded.otn, cancelled.otn].sort());
    for (const otn of [plain.otn, refunded.otn, cancelled.otn, unpaid.otn]) expect(net.get(otn) ?? 0, otn).toBe(wallet.net(otn));
    expect(bill.rows.find((r) => r.outTradeNo === plain.otn)).toMatchObject({ kind: 'trade', subject: '咖啡 大杯 ?', orderAmount: 1234, completedAt: PAID_AT });
    expect(bill.rows.find((r) => r.outTradeNo === refunded.otn && r.kind === 'trade')).toMatchObject({ subject: '当面付收款', alipayDiscount: 100 });
    expect(bill.rows.find((r) => r.outTradeNo === refunded.otn && r.kind === 'refund')).toMatchObject({ refundNo: `${refunded.otn}-r1`, orderAmount: -1500 });
    expect(bill.rows.filter((r) => r.outTradeNo === cancelled.otn).map((r) => [r.kind, r.orderAmount])).toEqual([
      ['trade', 800],
      ['refund', -800],
    ]);
  });

  it('a day without trades has no bill', async () => {
    expect(await gw.downloadBill('2024-02-29', { merchant: 'M1' })).toEqual({ kind: 'no_bill' });
  });
});
