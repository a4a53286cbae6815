import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../cloud/config.js';
import type { CallOptions, Gateway, GatewayCall, PayOutcome, PayRequest, QueryOutcome, QueryRequest, RefundOutcome, ReverseOutcome, ReverseRequest } from '../../cloud/gateway/gateway.js';
import { machineConfig } from '../../cloud/index.js';
import { pino } from 'pino';
import { Metrics } from '../../cloud/metrics.js';
import { AttemptsService } from '../../cloud/payments/attempts-service.js';
import { LeaseKeeper } from '../../cloud/payments/lease-keeper.js';
import type { Attempt, AttemptEvent } from '../../cloud/payments/transaction.js';
import { PgConnection } from '../../cloud/store/pg-connection.js';
import { migratePostgres } from '../../cloud/store/pg-migrate.js';
import { PgStore } from '../../cloud/store/pg-store.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import type { CloudStore } from '../../cloud/store/store.js';
import { systemClock } from '../../protocol/clock.js';
import { usePostgres } from '../support/postgres.js';
import { tempDir } from './harness.js';
import { ChannelLimits } from '../../cloud/payments/channel-limits.js';

/**
 * Several workers on one store (issue #16): two AttemptsServices, each on its own store handle as two
 * cloud processes would be, are forced to race for the same attempts — the same box messages handed
 * to both at the same moment, both starting over a dead worker's attempts at once, one dying with a
 * call out — and the shared wallet checks that no two calls of one attempt are ever out at once
 * (two workers calling for the same step would be) and who made each call.
 */

/** A wallet both workers call, through `as(worker)`: it knows who called, and sees overlapping calls of one attempt. */
class SharedWallet {
  readonly calls: { worker: string; call: GatewayCall; outTradeNo: string }[] = [];
  readonly overlaps: string[] = [];
  /** Pays answered "the customer is typing a password": typing for this long (ms) from the pay, then charged. */
  readonly userpaying = new Map<string, number>();
  private readonly typingUntil = new Map<string, number>();
  /** What each pay asked for, charged once the password is typed. */
  private readonly asked = new Map<string, number>();
  /** Calls of these outTradeNos hang until released (a worker frozen with its call out). */
  readonly hung = new Map<string, () => void>();
  hangNext = new Set<string>();
  private readonly out = new Set<string>();
  private readonly charged = new Map<string, number>();

  as(worker: string): Gateway {
    return {
      pay: (req, o) => {
        // The wallet has the order as soon as the request arrives, whenever its answer gets back.
        this.asked.set(req.outTradeNo, req.amount);
        const typing = this.userpaying.get(req.outTradeNo);
        if (typing !== undefined && !this.typingUntil.has(req.outTradeNo)) this.typingUntil.set(req.outTradeNo, Date.now() + typing);
        return this.call(worker, 'pay', req, o, () => this.pay(req));
      },
      query: (req, o) => this.call(worker, 'query', req, o, () => this.query(req)),
      reverse: (req, o) => this.call(worker, 'reverse', req, o, () => this.reverse(req)),
      refund: (req, o) => this.call(worker, 'refund', req, o, (): RefundOutcome => ({ kind: 'refunded', refundNo: req.refundNo })),
    };
  }

  net(outTradeNo: string): number {
    return this.charged.get(outTradeNo) ?? 0;
  }

  /** Who made the calls of this attempt. */
  workersOf(outTradeNo: string): string[] {
    return [...new Set(this.calls.filter((c) => c.outTradeNo === outTradeNo).map((c) => c.worker))];
  }

  count(call: GatewayCall, outTradeNo: string): number {
    return this.calls.filter((c) => c.call === call && c.outTradeNo === outTradeNo).length;
  }

  /** A charge that landed before the test began (its answer lost with a dead worker). */
  charge(outTradeNo: string, amount: number): void {
    this.charged.set(outTradeNo, amount);
  }

  private pay(req: PayRequest): PayOutcome {
    if (this.userpaying.has(req.outTradeNo)) return { kind: 'in_progress' };
    this.charged.set(req.outTradeNo, req.amount);
    return { kind: 'success', gatewayTradeNo: `gw-${req.outTradeNo}`, amount: req.amount };
  }

  private query(req: QueryRequest): QueryOutcome {
    const until = this.typingUntil.get(req.outTradeNo);
    if (this.userpaying.has(req.outTradeNo) && until !== undefined) {
      if (Date.now() < until) return { kind: 'in_progress' };
      this.userpaying.delete(req.outTradeNo);
      this.charged.set(req.outTradeNo, this.asked.get(req.outTradeNo)!);
    }
    const amount = this.charged.get(req.outTradeNo);
    return amount === undefined ? { kind: 'not_found' } : { kind: 'success', gatewayTradeNo: `gw-${req.outTradeNo}`, amount };
  }

  private reverse(req: ReverseRequest): ReverseOutcome {
    this.userpaying.delete(req.outTradeNo);
    this.charged.delete(req.outTradeNo);
    return { kind: 'reversed' };
  }

  private async call<T>(worker: string, call: GatewayCall, req: { outTradeNo: string }, opts: CallOptions, answer: () => T): Promise<T> {
    const id = req.outTradeNo;
    this.calls.push({ worker, call, outTradeNo: id });
    if (this.out.has(id)) this.overlaps.push(`${id}: ${worker}'s ${call} while another call was out`);
    this.out.add(id);
    try {
      if (this.hangNext.delete(id)) await new Promise<void>((resolve) => this.hung.set(id, resolve));
      else await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, 5 + Math.random() * 15);
        opts.signal.addEventListener('abort', () => (clearTimeout(t), reject(new Error('aborted'))), { once: true });
      });
      return answer();
    } finally {
      this.out.delete(id);
    }
  }
}

/** Short for a test, yet several renewals long: two workers and a database share two loaded cores here. */
const LEASE_MS = 2_000;
const FAST = parseConfig({
  gatewayCallTimeoutMs: 60_000,
  queryFirstDelayMs: 20,
  // Longer than a lease: between two polls only the keeper's renewal keeps the attempt its driver's.
  queryIntervalMs: 1.5 * LEASE_MS,
  pollDeadlineMs: { wechat: 20_000, alipay: 20_000, unionpay: 20_000 },
  reverseMinDelayMs: 50,
  reverseRetryMs: 20,
  reverseRetryMaxMs: 100,
  lateCheckDelayMs: 30,
});

interface Worker {
  name: string;
  store: CloudStore;
  service: AttemptsService;
  keeper: LeaseKeeper;
  metrics: Metrics;
  /** What it logged (info and above). */
  logged: { msg: string }[];
}

/** Two handles on one fresh store, and what is left to close. */
interface Data {
  open(): Promise<CloudStore>;
}

const postgres = usePostgres();
const STORES: Record<string, () => Promise<Data>> = {
  PostgreSQL: async () => {
    const url = await postgres().createSchema('race');
    const admin = new PgConnection(url, { max: 1 });
    await migratePostgres(admin).finally(() => admin.close());
    return { open: () => PgStore.open(url) };
  },
  // Two handles on one SQLite file: what the lease contract means there too (store conformance runs both).
  SQLite: async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const path = join(dir, 'race.db');
    return {
      open: async () => {
        const s = new SqliteStore(path);
        await s.whenReady();
        return s;
      },
    };
  },
};

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function workerOn(data: Data, wallet: SharedWallet, name: string): Promise<Worker> {
  const store = await data.open();
  const metrics = new Metrics();
  const logged: { msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as { msg: string }) });
  const worker = { owner: name, ttlMs: LEASE_MS };
  const service = new AttemptsService({
    store,
    gateway: wallet.as(name),
    logger,
    metrics,
    clock: systemClock,
    timers: systemClock,
    random: Math.random,
    machine: machineConfig(FAST),
    gatewayCallTimeoutMs: FAST.gatewayCallTimeoutMs,
    channelLimits: new ChannelLimits(50),
    resumeSpreadMs: 0,
    resumeRatePerS: 1_000,
    publish: async () => undefined,
    worker,
  });
  const keeper = new LeaseKeeper({ store, clock: systemClock, timers: systemClock, logger, metrics, worker, attempts: service, refunds: { resume: async () => 0 }, batch: 7 });
  const w = { name, store, service, keeper, metrics, logged };
  cleanups.push(async () => {
    await keeper.stop();
    await service.close();
    await store.close();
  });
  return w;
}

const DEVICE = 'sbRACE000001';
const pay = (i: number): AttemptEvent => ({
  type: 'pay', outTradeNo: `${DEVICE}-${i}`, deviceId: DEVICE, merchantId: 'M1', channel: 'wechat', saleId: `s${i}`, saleRef: `R${i}`, amount: 100 + i, currency: 'CNY', wallet: 'wechat', code: '134567890123456789',
});
const cancel = (i: number): AttemptEvent => ({ type: 'cancel', outTradeNo: `${DEVICE}-${i}`, deviceId: DEVICE, saleId: `s${i}`, amount: 100 + i, currency: 'CNY', reason: 'CASHIER_CANCEL' });
const query = (i: number): AttemptEvent => ({ type: 'query', outTradeNo: `${DEVICE}-${i}`, deviceId: DEVICE, saleId: `s${i}`, amount: 100 + i, currency: 'CNY' });

async function until(what: string, done: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const allSettled = (s: CloudStore) => async () => (await s.listActiveAttempts()).length === 0;

describe.each(Object.keys(STORES))('two workers racing for the same attempts (%s)', (kind) => {
  const data = () => STORES[kind]!();

  it('the same box messages handed to both at once: every attempt has one call out at a time, one pay, and the money right', async () => {
    const wallet = new SharedWallet();
    const d = await data();
    const [a, b] = [await workerOn(d, wallet, 'A'), await workerOn(d, wallet, 'B')];
    const N = 24;
    const ids = Array.from({ length: N }, (_, k) => k + 1);
    // Both run their lease keepers, as workers do: a live worker's attempts are never taken over.
    await Promise.all([a.keeper.start(), b.keeper.start()]);
    // Every other customer types a password, for longer than two leases; the cashier cancels every other one of those.
    for (const i of ids) if (i % 2 === 0) wallet.userpaying.set(`${DEVICE}-${i}`, i % 4 === 0 ? 60_000 : 2.5 * LEASE_MS);
    // Who is handed the message first alternates, the other a turn later: its read races the first one's write.
    const both = (i: number, e: AttemptEvent) => {
      const [first, second] = i % 2 ? [a, b] : [b, a];
      const one = first.service.dispatch(`${DEVICE}-${i}`, e, { sender: DEVICE });
      const other = new Promise<void>((r) => setImmediate(r)).then(() => second.service.dispatch(`${DEVICE}-${i}`, e, { sender: DEVICE }));
      return Promise.all([one, other]);
    };
    // The pays: a third reach both workers at once as they create the attempt; the others reach one
    // worker (alternately, so both drive some), then both at once (a duplicate delivery).
    await Promise.all(ids.filter((i) => i % 3).map((i) => (i % 2 ? a : b).service.dispatch(`${DEVICE}-${i}`, pay(i), { sender: DEVICE })));
    await Promise.all(ids.map((i) => both(i, pay(i))));
    await Promise.all(ids.filter((i) => i % 2 === 0).map((i) => both(i, query(i))));
    await Promise.all(ids.filter((i) => i % 4 === 0).map((i) => both(i, cancel(i))));
    await until('every attempt final', allSettled(a.store));

    expect(wallet.overlaps).toEqual([]);
    for (const i of ids) {
      const id = `${DEVICE}-${i}`;
      const at = (await a.store.getAttempt(id))!;
      expect(wallet.count('pay', id), id).toBe(1);
      if (i % 4 === 0) {
        expect([at.state, wallet.net(id)], id).toEqual(['REVERSED', 0]);
        expect(wallet.count('reverse', id), id).toBe(1);
      } else expect([at.state, wallet.net(id)], id).toEqual(['SUCCESS', at.amount]);
    }
    // Both drove some (the race was real), and neither took over what the other, alive, drove.
    const drivers = new Set(wallet.calls.map((c) => c.worker));
    expect([...drivers].sort()).toEqual(['A', 'B']);
    expect([a.metrics.get('leases_claimed_total'), b.metrics.get('leases_claimed_total')]).toEqual([0, 0]);
  });

  it("both starting at once over a dead worker's attempts: each attempt is resumed and driven by exactly one of them", async () => {
    const wallet = new SharedWallet();
    const d = await data();
    const seedStore = await d.open();
    cleanups.push(() => seedStore.close());
    const now = Date.now();
    const N = 40;
    // Odd ones were charged (a query finds it); the even ones never reached the wallet and their poll deadline has passed (reversed).
    const seeded: Attempt[] = Array.from({ length: N }, (_, k) => {
      const i = k + 1;
      if (i % 2) wallet.charge(`${DEVICE}-${i}`, 100 + i);
      return {
        outTradeNo: `${DEVICE}-${i}`, deviceId: DEVICE, saleId: `s${i}`, saleRef: `R${i}`, amount: 100 + i, currency: 'CNY', wallet: 'wechat',
        state: 'PAYING', reason: null, createdAt: now - 1_000, updatedAt: now - 1_000, payAt: now - 1_000, deadlineAt: i % 2 ? now + 20_000 : now - 1, nextAt: null,
        step: 'pay', inFlight: 'pay', callSeq: 1, tries: 0, cancelReason: null, gatewayTradeNo: null, ackedState: null, version: 0,
        merchantId: 'M1', channel: 'wechat', charged: null, walletPaidAt: null, buyerPaid: null, discount: null, flag: null,
      };
    });
    // The dead worker Z held them all, and its leases ran out a moment ago.
    const z = { owner: 'Z', now: now - 10_000, until: now - 1 };
    await seedStore.writeAttempts(seeded.map((attempt) => ({ attempt, expectedVersion: 0, event: 'pay', fromState: null, note: 'seeded: Z died with the pay out', claimSale: false, lease: z })));
    const [a, b] = [await workerOn(d, wallet, 'A'), await workerOn(d, wallet, 'B')];
    await Promise.all([a.keeper.start(), b.keeper.start()]);
    await until('every attempt final', allSettled(a.store));

    expect(wallet.overlaps).toEqual([]);
    for (const s of seeded) {
      expect(wallet.workersOf(s.outTradeNo), s.outTradeNo).toHaveLength(1);
      expect(wallet.count('pay', s.outTradeNo)).toBe(0);
      expect((await a.store.getAttempt(s.outTradeNo))!.state).toBe(wallet.net(s.outTradeNo) ? 'SUCCESS' : 'REVERSED');
    }
    const byA = seeded.filter((s) => wallet.workersOf(s.outTradeNo)[0] === 'A').length;
    expect(a.metrics.get('leases_claimed_total', 'attempt') + b.metrics.get('leases_claimed_total', 'attempt')).toBe(N);
    expect(a.metrics.get('leases_claimed_total', 'attempt')).toBe(byA);
  });

  it('a worker frozen with its call out: the other takes the attempt over once its lease runs out, and the late answer changes nothing', async () => {
    const wallet = new SharedWallet();
    const d = await data();
    const [a, b] = [await workerOn(d, wallet, 'A'), await workerOn(d, wallet, 'B')];
    await Promise.all([a.keeper.start(), b.keeper.start()]);
    const id = `${DEVICE}-1`;
    wallet.hangNext.add(id);
    wallet.userpaying.set(id, 0);
    await a.service.dispatch(id, pay(1), { sender: DEVICE });
    await until("A's pay is out", async () => wallet.hung.has(id));
    // A freezes: its keeper renews nothing any more (its process is stopped, not dead: no release).
    await a.keeper.stop();
    const frozenAt = Date.now();
    await until('B took the attempt over and finished it', allSettled(b.store), 10 * LEASE_MS);
    expect(Date.now() - frozenAt).toBeGreaterThanOrEqual(LEASE_MS - 100);
    const after = (await b.store.getAttempt(id))!;
    expect(after.state).toBe('SUCCESS');
    expect(wallet.workersOf(id)).toEqual(['A', 'B']);
    expect(b.metrics.get('leases_claimed_total', 'attempt')).toBe(1);
    // A wakes up and its pay's answer arrives: B drives the attempt, A's write is refused and nothing changes.
    const events = (await b.store.attemptEvents(id)).length;
    wallet.hung.get(id)!();
    await until("A's pay answered", async () => a.logged.some((l) => l.msg === 'gateway answered' && (l as { call?: string }).call === 'pay'));
    // Queued in A's lane behind the answer: once it is through, so is the answer.
    await a.service.dispatch(id, { type: 'tick' });
    expect((await b.store.getAttempt(id))!).toEqual(after);
    expect(await b.store.attemptEvents(id)).toHaveLength(events);
  });
});
