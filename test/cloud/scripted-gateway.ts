import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GATEWAY_CALLS, type CallOptions, type Gateway, type GatewayCall, type PayOutcome, type PayRequest, type QueryOutcome, type QueryRequest, type RefundOutcome, type RefundRequest, type ReverseOutcome, type ReverseRequest } from '../../cloud/gateway/gateway.js';

/**
 * A small scripted payment gateway for the cloud's tests (the simulator's full one lives in
 * simulator/). It keeps a model of each order and a ledger of every money movement, so a test can
 * check the one thing that matters: charged exactly once, or not at all.
 */
export type PayScript = 'success' | 'userpaying' | 'declined' | 'unknown' | 'hold' | 'charge-and-hold';
export type QueryScript = 'truth' | 'unknown';
/** 'lands-late': answers reversed but the order stays open, as when a reverse races the customer. */
export type ReverseScript = 'truth' | 'retry_later' | 'unknown' | 'lands-late';

export interface LedgerEntry {
  seq: number;
  at: number;
  outTradeNo: string;
  kind: 'charge' | 'reverse' | 'refund';
  amount: number;
  currency: string;
}

type Status = 'paying' | 'paid' | 'closed' | 'refunded';
interface Order {
  amount: number;
  currency: string;
  status: Status;
}

export class ScriptedGateway implements Gateway {
  readonly ledger: LedgerEntry[] = [];
  readonly calls: { call: GatewayCall; outTradeNo: string }[] = [];
  readonly orders = new Map<string, Order>();
  pays: PayScript[] = [];
  queries: QueryScript[] = [];
  reverses: ReverseScript[] = [];
  private waiters: (() => void)[] = [];

  private record(call: GatewayCall, outTradeNo: string): void {
    this.calls.push({ call, outTradeNo });
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }

  private move(outTradeNo: string, kind: LedgerEntry['kind'], amount: number, currency: string): void {
    this.ledger.push({ seq: this.ledger.length + 1, at: Date.now(), outTradeNo, kind, amount, currency });
  }

  /** The customer confirms on the phone (after USERPAYING). */
  confirm(outTradeNo: string): void {
    const o = this.orders.get(outTradeNo);
    if (o?.status !== 'paying') return;
    o.status = 'paid';
    this.move(outTradeNo, 'charge', o.amount, o.currency);
  }

  /** Net amount still charged for an order according to the ledger. */
  net(outTradeNo: string): number {
    return this.ledger.filter((e) => e.outTradeNo === outTradeNo).reduce((s, e) => s + (e.kind === 'charge' ? e.amount : -e.amount), 0);
  }

  count(call: GatewayCall, outTradeNo?: string): number {
    return this.calls.filter((c) => c.call === call && (outTradeNo === undefined || c.outTradeNo === outTradeNo)).length;
  }

  /** Resolves once `call` has been received `n` times (bounded by the caller's test timeout). */
  async waitFor(call: GatewayCall, n = 1, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.count(call) < n) {
      if (Date.now() > deadline) throw new Error(`gateway did not receive ${n} × ${call} within ${timeoutMs} ms (got ${this.count(call)})`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async pay(req: PayRequest, opts: CallOptions): Promise<PayOutcome> {
    this.record('pay', req.outTradeNo);
    const existing = this.orders.get(req.outTradeNo);
    if (existing) return existing.status === 'paid' ? { kind: 'success', gatewayTradeNo: `gw-${req.outTradeNo}`, amount: existing.amount } : { kind: 'in_progress' };
    const script = this.pays.shift() ?? 'success';
    const order: Order = { amount: req.amount, currency: req.currency, status: 'paying' };
    if (script !== 'declined') this.orders.set(req.outTradeNo, order);
    switch (script) {
      case 'success':
        this.confirm(req.outTradeNo);
        return { kind: 'success', gatewayTradeNo: `gw-${req.outTradeNo}`, amount: req.amount };
      case 'userpaying':
        return { kind: 'in_progress', message: 'USERPAYING' };
      case 'declined':
        return { kind: 'failed', reason: 'INSUFFICIENT_FUNDS', message: 'not enough money' };
      case 'unknown':
        return { kind: 'unknown', code: 'SYSTEMERROR', message: 'try query' };
      case 'charge-and-hold':
        this.confirm(req.outTradeNo);
        return hang(opts.signal);
      case 'hold':
        return hang(opts.signal);
    }
  }

  async query(req: QueryRequest): Promise<QueryOutcome> {
    this.record('query', req.outTradeNo);
    if ((this.queries.shift() ?? 'truth') === 'unknown') return { kind: 'unknown', code: 'SYSTEMERROR', message: 'busy' };
    const o = this.orders.get(req.outTradeNo);
    if (!o) return { kind: 'not_found' };
    const map: Record<Status, QueryOutcome> = {
      paying: { kind: 'in_progress' },
      paid: { kind: 'success', gatewayTradeNo: `gw-${req.outTradeNo}`, amount: o.amount },
      closed: { kind: 'closed' },
      refunded: { kind: 'refunded' },
    };
    return map[o.status];
  }

  async reverse(req: ReverseRequest): Promise<ReverseOutcome> {
    this.record('reverse', req.outTradeNo);
    const script = this.reverses.shift() ?? 'truth';
    if (script === 'retry_later') return { kind: 'retry_later', message: 'recall=Y' };
    if (script === 'unknown') return { kind: 'unknown', code: 'TIMEOUT', message: 'no answer' };
    if (script === 'lands-late') return { kind: 'reversed' };
    const o = this.orders.get(req.outTradeNo);
    if (o?.status === 'refunded' || o?.status === 'closed') return { kind: 'reversed' };
    this.move(req.outTradeNo, 'reverse', o?.status === 'paid' ? o.amount : 0, o?.currency ?? 'CNY');
    this.orders.set(req.outTradeNo, { amount: o?.amount ?? 0, currency: o?.currency ?? 'CNY', status: 'closed' });
    return { kind: 'reversed' };
  }

  async refund(req: RefundRequest): Promise<RefundOutcome> {
    this.record('refund', req.outTradeNo);
    const o = this.orders.get(req.outTradeNo);
    if (o?.status === 'refunded') return { kind: 'refunded', refundNo: req.refundNo };
    if (o?.status !== 'paid') return { kind: 'failed', reason: 'DECLINED', message: 'nothing to refund' };
    o.status = 'refunded';
    this.move(req.outTradeNo, 'refund', req.amount, req.currency);
    return { kind: 'refunded', refundNo: req.refundNo };
  }

  /** The HTTP wire format of cloud/gateway.ts, for a cloud in another process. */
  async serve(): Promise<{ url: string; close: () => Promise<void> }> {
    const server: Server = createServer((req, res) => {
      const name = (req.url ?? '').replace(/^\/v1\//, '') as GatewayCall;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const ac = new AbortController();
        res.on('close', () => ac.abort());
        const parsed = GATEWAY_CALLS[name]?.request.safeParse(JSON.parse(Buffer.concat(chunks).toString() || 'null'));
        if (!parsed?.success) return void res.writeHead(400).end();
        const fn = this[name] as (r: unknown, o: CallOptions) => Promise<unknown>;
        fn.call(this, parsed.data, { signal: ac.signal }).then(
          (out) => !res.destroyed && res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out)),
          () => !res.destroyed && res.writeHead(500).end(),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      url,
      close: () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    };
  }
}

/** Never answers; rejects when the caller gives up (its timeout or its process dying). */
function hang<T>(signal: AbortSignal): Promise<T> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(new Error('aborted'));
    signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
  });
}
