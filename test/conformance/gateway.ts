import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  PayOutcome,
  QueryOutcome,
  RefundOutcome,
  ReverseOutcome,
  type Gateway,
  type PayRequest,
  type QueryRequest,
  type RefundRequest,
  type ReverseRequest,
} from '../../cloud/gateway/gateway.js';
import type { Wallet } from '../../protocol/index.js';

/**
 * The Gateway contract (cloud/gateway/gateway.ts) as the cloud's transaction service relies on it,
 * written once and run against every implementation and every test double (the mqtt.js
 * "abstract store" idea). The oracle is the interface itself: what a later query and a later
 * refund say; a subject that keeps a ledger also exposes it, and the suite reads it too.
 *
 * A subject declares what it is. A clause that needs a capability the subject does not claim is
 * left out for it (and named in its suite's title), never weakened for the others.
 */
export type GatewayCapability =
  /** It remembers trades: idempotent pay, query/reverse/refund answer from the order's real state. */
  | 'ledger'
  /** It can be told to leave a pay unanswered (`codes.hang`), so an abort mid-call can be proved. */
  | 'hang';
const ALL_CAPS: readonly GatewayCapability[] = ['ledger', 'hang'];

export interface GatewaySubject {
  gateway: Gateway;
  /** Payment codes the subject has scripted: `charges` is charged at once; `hang` never answers. */
  codes: { charges: string; hang?: string };
  /** Which wallet, merchant and channel its requests name (default: wechat, M1, wechat). */
  route?: { wallet: Wallet; merchant: string; channel: string };
  /** Money that stays charged for one outTradeNo, read from the subject's own ledger. */
  netCharged?(outTradeNo: string): Promise<number>;
  close?(): Promise<void>;
}

export interface GatewayConformanceOptions {
  capabilities: readonly GatewayCapability[];
  /** Why a capability is missing, shown in the suite's title. */
  why?: string;
}

/** Long enough for a loopback HTTP round trip on a busy machine; the suite never waits this long when things work. */
const CALL_MS = 5_000;
/** How long an aborted call may take to settle. */
const SETTLE_MS = 1_000;

const DEFAULT_ROUTE = { wallet: 'wechat', merchant: 'M1', channel: 'wechat' } as const;

const open = () => ({ signal: AbortSignal.timeout(CALL_MS) });

export function describeGatewayConformance(name: string, makeSubject: () => Promise<GatewaySubject>, options: GatewayConformanceOptions): void {
  const has = (c: GatewayCapability) => options.capabilities.includes(c);
  // A clause needing a capability the subject does not claim is not run for it at all (never
  // weakened, never counted as skipped); what is left out is named in the suite's title instead.
  const needs = (c: GatewayCapability) => (title: string, fn: () => Promise<void>, timeoutMs?: number) => (has(c) ? it(title, fn, timeoutMs) : undefined);
  const missing = ALL_CAPS.filter((c) => !has(c));
  const title = missing.length ? ` (without ${missing.join(', ')}${options.why ? `: ${options.why}` : ''})` : '';

  describe(`Gateway conformance: ${name}${title}`, () => {
    let subject: GatewaySubject;
    let gw: Gateway;
    let seq = 0;
    /** A fresh outTradeNo per call site: subjects may be shared state (one HTTP server). */
    const otn = () => `conf${process.pid % 10_000}-${Date.now() % 1_000_000}${++seq}`;
    const route = () => subject.route ?? DEFAULT_ROUTE;
    const payReq = (outTradeNo: string, amount = 1234, code = subject.codes.charges): PayRequest => ({ outTradeNo, amount, currency: 'CNY', code, ...route() });
    const q = (outTradeNo: string): QueryRequest & ReverseRequest => ({ outTradeNo, ...route() });
    const refundReq = (outTradeNo: string, refundNo: string, amount = 1234, total = 1234): RefundRequest => ({ outTradeNo, refundNo, amount, total, currency: 'CNY', ...route() });
    const pay = async (r: PayRequest) => PayOutcome.parse(await gw.pay(r, open()));
    const query = async (outTradeNo: string) => QueryOutcome.parse(await gw.query(q(outTradeNo), open()));
    const reverse = async (outTradeNo: string) => ReverseOutcome.parse(await gw.reverse(q(outTradeNo), open()));
    const refund = async (r: RefundRequest) => RefundOutcome.parse(await gw.refund(r, open()));
    /** The subject's ledger when it has one; the interface alone otherwise. */
    const net = async (outTradeNo: string) => (subject.netCharged ? subject.netCharged(outTradeNo) : undefined);

    beforeEach(async () => {
      subject = await makeSubject();
      gw = subject.gateway;
    });
    afterEach(async () => {
      await subject.close?.();
    });

    // ── shapes: every answer is one the cloud's state machine accepts (the zod schemas are strict) ──

    it('answers every call with an outcome of the declared shape, never by throwing', async () => {
      const t = otn();
      expect((await pay(payReq(t))).kind).toBe('success');
      expect(await query(t)).toBeDefined();
      expect(await refund(refundReq(t, `${t}-r`))).toBeDefined();
      expect(await reverse(otn())).toBeDefined();
      expect(await query(otn())).toBeDefined();
    });

    it('echoes the amount of a success as the same integer of minor units', async () => {
      for (const amount of [1, 1234, 9_999_999]) {
        const outcome = await pay(payReq(otn(), amount));
        expect(outcome).toMatchObject({ kind: 'success', amount });
        if (outcome.kind === 'success') expect(Number.isInteger(outcome.amount)).toBe(true);
      }
    });

    it('never calls an unknown trade a success: query answers not_found (or unknown)', async () => {
      const outcome = await query(otn());
      expect(['not_found', 'unknown']).toContain(outcome.kind);
    });

    // ── idempotency by outTradeNo ──

    needs('ledger')(`a second pay of the same outTradeNo never charges twice`, async () => {
      const t = otn();
      const first = await pay(payReq(t));
      const second = await pay(payReq(t));
      expect(first).toMatchObject({ kind: 'success', amount: 1234 });
      expect(second).toMatchObject({ kind: 'success', amount: 1234 });
      if (first.kind === 'success' && second.kind === 'success') expect(second.gatewayTradeNo).toBe(first.gatewayTradeNo);
      expect(await query(t)).toMatchObject({ kind: 'success', amount: 1234 });
      // Charged once: one full refund empties the order, a second refund finds nothing left.
      expect(await refund(refundReq(t, `${t}-a`))).toEqual({ kind: 'refunded', refundNo: `${t}-a` });
      expect((await refund(refundReq(t, `${t}-b`))).kind).not.toBe('refunded');
      if (subject.netCharged) expect(await net(t)).toBe(0);
    });

    needs('ledger')(`a pay reusing an outTradeNo with another amount does not charge the new amount`, async () => {
      const t = otn();
      await pay(payReq(t, 1234));
      const again = await pay(payReq(t, 999));
      expect(again).not.toMatchObject({ kind: 'success', amount: 999 });
      expect(await query(t)).toMatchObject({ kind: 'success', amount: 1234 });
      if (subject.netCharged) expect(await net(t)).toBe(1234);
    });

    // ── the order's real state ──

    needs('ledger')(`a query after a successful pay says success with the same amount`, async () => {
      const t = otn();
      await pay(payReq(t, 4321));
      expect(await query(t)).toMatchObject({ kind: 'success', amount: 4321 });
      if (subject.netCharged) expect(await net(t)).toBe(4321);
    });

    needs('ledger')(`a reverse after success undoes it: reversed, and a later query is no longer success`, async () => {
      const t = otn();
      await pay(payReq(t));
      const undone = await reverse(t);
      expect(undone.kind).toBe('reversed');
      // `action`, where a wallet reports it, must say the paid order was refunded (Alipay's cancel).
      if (undone.kind === 'reversed' && undone.action !== undefined) expect(undone.action).toBe('refund');
      expect((await query(t)).kind).not.toBe('success');
      expect((await reverse(t)).kind).toBe('reversed');
      if (subject.netCharged) expect(await net(t)).toBe(0);
      // Nothing stays charged: a refund of the reversed order refunds nothing.
      expect((await refund(refundReq(t, `${t}-r`))).kind).not.toBe('refunded');
    });

    it('a reverse of a trade the gateway never saw answers reversed (nothing is charged)', async () => {
      const t = otn();
      const undone = await reverse(t);
      expect(undone.kind).toBe('reversed');
      if (undone.kind === 'reversed' && undone.action !== undefined) expect(undone.action).toBe('close');
      expect((await query(t)).kind).not.toBe('success');
    });

    needs('ledger')(`a reversed outTradeNo cannot be charged by a late pay`, async () => {
      const t = otn();
      await reverse(t);
      expect((await pay(payReq(t))).kind).not.toBe('success');
      expect((await query(t)).kind).not.toBe('success');
      if (subject.netCharged) expect(await net(t)).toBe(0);
    });

    needs('ledger')(`a refund of a paid trade refunds once, even when repeated with the same refundNo`, async () => {
      const t = otn();
      await pay(payReq(t));
      const r = refundReq(t, `${t}-r1`);
      expect(await refund(r)).toEqual({ kind: 'refunded', refundNo: r.refundNo });
      expect(await refund(r)).toEqual({ kind: 'refunded', refundNo: r.refundNo });
      expect(await query(t)).toEqual({ kind: 'refunded' });
      if (subject.netCharged) expect(await net(t)).toBe(0);
      // Refunded once, not twice: another refundNo finds nothing left to refund.
      expect((await refund(refundReq(t, `${t}-r2`))).kind).not.toBe('refunded');
      if (subject.netCharged) expect(await net(t)).toBe(0);
    });

    needs('ledger')(`a refund of a trade that was never paid refunds nothing`, async () => {
      const t = otn();
      expect((await refund(refundReq(t, `${t}-r`))).kind).not.toBe('refunded');
      if (subject.netCharged) expect(await net(t)).toBe(0);
    });

    // ── the AbortSignal ──

    it('a call made with an aborted signal settles at once, and never as a success of a hidden charge', async () => {
      const ac = new AbortController();
      ac.abort();
      const t = otn();
      const settled = await settlesWithin(gw.pay(payReq(t), { signal: ac.signal }), SETTLE_MS);
      expect(settled.state).not.toBe('pending');
      if (settled.state === 'resolved') {
        const outcome = PayOutcome.parse(settled.value);
        // Answering success is only allowed if the money really moved (queries must then agree).
        if (outcome.kind === 'success' && has('ledger')) expect(await query(t)).toMatchObject({ kind: 'success' });
      }
    });

    needs('hang')(`an unanswered pay ends when its signal aborts, as unknown (never failed)`, async () => {
      const ac = new AbortController();
      const t = otn();
      const call = gw.pay(payReq(t, 1234, subject.codes.hang), { signal: ac.signal });
      expect((await settlesWithin(call, 100)).state).toBe('pending');
      ac.abort();
      const settled = await settlesWithin(call, SETTLE_MS);
      expect(settled.state).not.toBe('pending');
      // Rejecting is tolerated (the cloud maps it to unknown); an answer must say unknown.
      if (settled.state === 'resolved') expect(PayOutcome.parse(settled.value)).toMatchObject({ kind: 'unknown' });
    });
  });
}

type Settled<T> = { state: 'resolved'; value: T } | { state: 'rejected'; error: unknown } | { state: 'pending' };

async function settlesWithin<T>(p: Promise<T>, ms: number): Promise<Settled<T>> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<Settled<T>>((resolve) => {
    timer = setTimeout(() => resolve({ state: 'pending' }), ms);
  });
  try {
    return await Promise.race([p.then((value) => ({ state: 'resolved', value }) as const, (error: unknown) => ({ state: 'rejected', error }) as const), pending]);
  } finally {
    clearTimeout(timer);
  }
}
