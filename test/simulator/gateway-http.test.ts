import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { httpGateway } from '../../cloud/gateway/http-gateway.js';
import type { PayRequest } from '../../cloud/gateway/gateway.js';
import { bindScenario, bindScenarios, fetchLedger } from '../../simulator/gateway/gateway-control.js';
import { ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { startGatewayServer, type GatewayServer } from '../../simulator/gateway/gateway-server.js';

/** The HTTP service, exercised through the cloud's own HTTP gateway client (the fixed wire contract). */
const CODE_OK = '104567890123456789';
const CODE_HANG = '114567890123456789';
const CODE_USERPAYING = '284567890123456789';
const pay = (outTradeNo: string, code: string, wallet: PayRequest['wallet'] = 'wechat'): PayRequest => ({ outTradeNo, amount: 500, currency: 'CNY', code, wallet, merchant: 'M1', channel: wallet });
const within = (ms: number) => ({ signal: AbortSignal.timeout(ms) });

let gateway: ScriptedGateway;
let server: GatewayServer;

beforeEach(async () => {
  gateway = new ScriptedGateway({ seed: 5, mix: { scenarios: [{ weight: 1, scenario: { name: 'success' } }] } });
  server = await startGatewayServer({ gateway });
});
afterEach(async () => {
  gateway.stop();
  await server.close();
});

describe('gateway HTTP service', () => {
  it('health, pay, query, reverse, refund and ledger round-trip through httpGateway', async () => {
    expect(await (await fetch(`${server.url}/v1/health`)).json()).toEqual({ ok: true });
    const client = httpGateway(server.url);
    expect(await client.pay(pay('b1-1', CODE_OK), within(5_000))).toMatchObject({ kind: 'success', amount: 500 });
    expect(await client.query({ outTradeNo: 'b1-1', wallet: 'wechat', merchant: 'M1', channel: 'wechat' }, within(5_000))).toMatchObject({ kind: 'success' });
    expect(await client.refund({ outTradeNo: 'b1-1', refundNo: 'b1-1-r', amount: 500, total: 500, currency: 'CNY', wallet: 'wechat', merchant: 'M1', channel: 'wechat' }, within(5_000))).toEqual({ kind: 'refunded', refundNo: 'b1-1-r' });
    expect(await client.query({ outTradeNo: 'b1-2', wallet: 'wechat', merchant: 'M1', channel: 'wechat' }, within(5_000))).toEqual({ kind: 'not_found' });
    expect(await client.reverse({ outTradeNo: 'b1-2', wallet: 'wechat', merchant: 'M1', channel: 'wechat' }, within(5_000))).toEqual({ kind: 'reversed', action: 'close' });
    const ledger = await fetchLedger(server.url);
    expect(ledger.map((e) => [e.outTradeNo, e.kind, e.amount])).toEqual([
      ['b1-1', 'charge', 500],
      ['b1-1', 'refund', 500],
      ['b1-2', 'reverse', 0],
    ]);
  });

  it('binds scenarios from another process over POST /v1/scenarios', async () => {
    await bindScenario(server.url, CODE_USERPAYING, { name: 'user_paying', confirmAfterMs: 60_000 });
    await bindScenarios(server.url, { bindings: [{ code: CODE_OK, scenario: { name: 'failure', reason: 'CODE_EXPIRED' } }] });
    const client = httpGateway(server.url);
    expect(await client.pay(pay('b1-3', CODE_USERPAYING, 'alipay'), within(5_000))).toMatchObject({ kind: 'in_progress' });
    expect(await client.pay(pay('b1-4', CODE_OK), within(5_000))).toMatchObject({ kind: 'failed', reason: 'CODE_EXPIRED' });
    expect(gateway.scenarioFor(CODE_USERPAYING)).toEqual({ name: 'user_paying', confirmAfterMs: 60_000 });
  });

  it('a hanging pay ends in unknown TIMEOUT when the caller aborts; the charge is on the ledger', async () => {
    await bindScenario(server.url, CODE_HANG, { name: 'hang', charged: true });
    // The server's own call must end with the caller's abort, not after the 10-minute hang.
    const original = gateway.pay.bind(gateway);
    const serverSide = new Promise<unknown>((resolve) => {
      gateway.pay = async (req, opts) => {
        const outcome = await original(req, opts);
        resolve(outcome);
        return outcome;
      };
    });
    const client = httpGateway(server.url);
    const started = Date.now();
    expect(await client.pay(pay('b1-5', CODE_HANG), within(300))).toMatchObject({ kind: 'unknown', code: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await Promise.race([serverSide, new Promise((r) => setTimeout(() => r('still hanging'), 3_000))])).toMatchObject({ kind: 'unknown', code: 'TIMEOUT' });
    expect(await client.query({ outTradeNo: 'b1-5', wallet: 'wechat', merchant: 'M1', channel: 'wechat' }, within(5_000))).toMatchObject({ kind: 'success' });
    expect((await fetchLedger(server.url)).map((e) => e.kind)).toEqual(['charge']);
  });

  it('refuses bad requests with 400 and unknown routes with 404', async () => {
    const bad = await fetch(`${server.url}/v1/pay`, { method: 'POST', body: JSON.stringify({ outTradeNo: 'x', amount: 1.5 }) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/pay request is invalid/);
    expect((await fetch(`${server.url}/v1/scenarios`, { method: 'POST', body: '{"code":"1","scenario":{"name":"bogus"}}' })).status).toBe(400);
    expect((await fetch(`${server.url}/v1/nothing`)).status).toBe(404);
    expect((await fetch(`${server.url}/v1/pay`, { method: 'POST', body: 'not json' })).status).toBe(400);
    expect(gateway.ledger.entries()).toEqual([]);
  });
});
