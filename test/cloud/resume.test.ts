import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttemptsService } from '../../cloud/payments/attempts-service.js';
import type { Attempt, AttemptEvent } from '../../cloud/payments/transaction.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import type { Wallet } from '../../protocol/index.js';
import { createRandom } from '../../simulator/random.js';
import { FakeClock } from '../support/fake-clock.js';
import { RecordingGateway, shellFor, type Sent, type ShellOptions } from './shell-kit.js';

/**
 * A restart without a stampede: resumed gateway calls are spread with jitter, and every gateway call
 * the shell makes is bounded per channel (today: per wallet) — without dropping, reordering or
 * holding up the money steps of any attempt.
 */
let clock: FakeClock;
let store: SqliteStore;
let gw: RecordingGateway;
let sent: Sent[];
let service: AttemptsService | undefined;

beforeEach(() => {
  clock = new FakeClock();
  store = new SqliteStore(':memory:');
  gw = new RecordingGateway(clock);
  sent = [];
});
afterEach(async () => {
  await service?.close();
  service = undefined;
  await store.close();
});

function start(o: Partial<ShellOptions> = {}): AttemptsService {
  service = shellFor({ store, gateway: gw, clock, sent, ...o });
  return service;
}

const N = 200;
const DEADLINE_MS: Record<Wallet, number> = { wechat: 45_000, alipay: 60_000, unionpay: 45_000 };

/**
 * What a crash left in the store: `n` attempts in PAYING with the pay in flight, half WeChat, half
 * Alipay. Four in five had been charged (a query finds the success); the fifth never reached the
 * wallet, and its poll deadline passed while the cloud was down (query: not found → reverse).
 */
async function crashedWithPaysInFlight(n: number): Promise<Attempt[]> {
  const now = clock.now();
  const attempts = Array.from({ length: n }, (_, k) => {
    const i = k + 1;
    const wallet: Wallet = i % 2 ? 'wechat' : 'alipay';
    const charged = i % 5 !== 0;
    const payAt = charged ? now - 1_000 : now - 120_000;
    const deviceId = `sbRESUME${String(i % 10).padStart(4, '0')}`;
    const a: Attempt = {
      outTradeNo: `${deviceId}-${i}`, deviceId, saleId: `${deviceId}-s${i}`, saleRef: `R${i}`, amount: 1_000 + i, currency: 'CNY', wallet,
      state: 'PAYING', reason: null, createdAt: payAt, updatedAt: payAt, payAt, deadlineAt: payAt + DEADLINE_MS[wallet], nextAt: null,
      step: 'pay', inFlight: 'pay', callSeq: 1, tries: 0, cancelReason: null, gatewayTradeNo: null, ackedState: null, version: 0,
        merchantId: 'M1', channel: null, charged: null, walletPaidAt: null, buyerPaid: null, discount: null, flag: null,
    };
    if (charged) gw.charged(a.outTradeNo, a.amount);
    return a;
  });
  await store.writeAttempts(attempts.map((attempt) => ({ attempt, expectedVersion: 0, event: 'pay', fromState: null, note: 'seeded: pay in flight at the crash', claimSale: false })));
  return attempts;
}

/** Move time until no attempt has work left (the late checks after REVERSED included). */
async function untilAllDone(maxMs = 600_000): Promise<void> {
  for (let t = 0; t < maxMs && (await store.listActiveAttempts()).length > 0; t += 1_000) await clock.advance(1_000);
  expect(await store.listActiveAttempts()).toEqual([]);
}

/** Charged ones SUCCESS and still charged, the others REVERSED and not charged; never a second pay. */
async function expectMoneyRight(seeded: Attempt[]): Promise<void> {
  for (const s of seeded) {
    const a = (await store.getAttempt(s.outTradeNo))!;
    const charged = gw.net(s.outTradeNo);
    if (a.state === 'SUCCESS') expect(charged, s.outTradeNo).toBe(s.amount);
    else expect([a.state, charged], s.outTradeNo).toEqual(['REVERSED', 0]);
  }
  const states = (await store.listAttempts({})).map((a) => a.state);
  expect(states.filter((s) => s === 'SUCCESS')).toHaveLength((N * 4) / 5);
  expect(gw.count('pay')).toBe(0);
}

/** When each attempt's first call after the resume started, ms after `t0`, per wallet. */
function firstStarts(t0: number): Record<Wallet, number[]> {
  const seen = new Set<string>();
  const out: Record<Wallet, number[]> = { wechat: [], alipay: [], unionpay: [] };
  for (const s of gw.starts) {
    if (seen.has(s.outTradeNo)) continue;
    seen.add(s.outTradeNo);
    out[s.wallet].push(s.at - t0);
  }
  return out;
}

describe('restart without a stampede', () => {
  it(`${N} attempts resumed at once: never more than the limit in flight per wallet, every one final, the money right`, async () => {
    const seeded = await crashedWithPaysInFlight(N);
    gw.latencyMs = 1_000;
    const shell = start({ gatewayConcurrency: 4, resumeSpreadMs: 0 });
    expect(await shell.resumeAll()).toBe(N);
    await untilAllDone();
    // The bound was reached (so it was tested), never passed, on each wallet on its own.
    expect(Object.fromEntries(gw.maxInFlight)).toEqual({ wechat: 4, alipay: 4 });
    await expectMoneyRight(seeded);
  });

  it(`${N} attempts: the first calls start spread over the window at random, not in one burst`, async () => {
    const seeded = await crashedWithPaysInFlight(N);
    gw.latencyMs = 50;
    const random = createRandom('resume-spread');
    // 100 attempts per wallet at 10/s: the whole 10-second window.
    const shell = start({ resumeSpreadMs: 10_000, resumeRatePerS: 10, random: () => random.next() });
    const t0 = clock.now();
    await shell.resumeAll();
    await clock.advance(0);
    expect(gw.starts).toEqual([]); // the resumes are written; no call has gone out yet
    await untilAllDone();
    for (const [wallet, starts] of Object.entries(firstStarts(t0)).filter(([, s]) => s.length > 0)) {
      expect(starts, wallet).toHaveLength(N / 2);
      expect(Math.min(...starts), wallet).toBeGreaterThanOrEqual(0);
      expect(Math.max(...starts), wallet).toBeLessThanOrEqual(10_000);
      expect(Math.max(...starts), wallet).toBeGreaterThan(9_000);
      // Ten one-second buckets of about ten each; a burst would put them all in the first.
      const perSecond = Array.from({ length: 10 }, (_, s) => starts.filter((x) => x >= s * 1_000 && x < (s + 1) * 1_000).length);
      for (const n of perSecond) expect(n, `${wallet}: ${perSecond.join(' ')}`).toBeLessThanOrEqual(25);
    }
    await expectMoneyRight(seeded);
  });

  it('a few resumed attempts are not kept waiting: the window shrinks to the count at resumeRatePerS', async () => {
    await crashedWithPaysInFlight(3);
    const shell = start({ random: () => 0.999 }); // defaults: 10 s at most, 500/s: 3 attempts → 6 ms
    const t0 = clock.now();
    await shell.resumeAll();
    await clock.advance(6);
    expect(gw.starts.map((s) => s.at - t0).every((at) => at <= 6)).toBe(true);
    expect(gw.count('query')).toBe(3);
  });

  it('close() drops the resumed calls still waiting for their moment: the next start resumes them', async () => {
    await crashedWithPaysInFlight(10);
    const shell = start({ resumeSpreadMs: 10_000, resumeRatePerS: 1 });
    await shell.resumeAll();
    await shell.close();
    await clock.advance(20_000);
    expect(gw.starts).toEqual([]);
    expect(await store.listActiveAttempts()).toHaveLength(10);
  });
});

describe('the per-channel limit on every gateway call', () => {
  const CODE = { wechat: '134567890123456789', alipay: '284567890123456789' } as const;
  const pay = (i: number, wallet: 'wechat' | 'alipay'): AttemptEvent => ({
    type: 'pay', outTradeNo: `sbLIMIT00001-${i}`, deviceId: 'sbLIMIT00001', merchantId: 'M1', channel: wallet, saleId: `s${i}`, saleRef: `R${i}`, amount: 100 + i, currency: 'CNY', wallet, code: CODE[wallet],
  });
  const results = (outTradeNo: string) => sent.filter((s) => s.kind === 'result' && s.msg.outTradeNo === outTradeNo).map((s) => s.msg.state);

  it('a call waiting for a slot holds no lane: its box is answered, other wallets go on, and it starts when a slot frees', async () => {
    gw.latencyMs = 5_000;
    const shell = start({ gatewayConcurrency: 1 });
    const t0 = clock.now();
    await shell.dispatch('sbLIMIT00001-1', pay(1, 'wechat'));
    await shell.dispatch('sbLIMIT00001-2', pay(2, 'wechat')); // recorded; its pay waits for the slot
    await shell.dispatch('sbLIMIT00001-3', pay(3, 'alipay'));
    await clock.advance(0);
    expect(gw.starts.map((s) => s.outTradeNo)).toEqual(['sbLIMIT00001-1', 'sbLIMIT00001-3']);
    // The waiting attempt's lane is free: the box's query is answered from the store at once.
    const { saleId, amount } = pay(2, 'wechat') as Extract<AttemptEvent, { type: 'pay' }>;
    await shell.dispatch('sbLIMIT00001-2', { type: 'query', outTradeNo: 'sbLIMIT00001-2', deviceId: 'sbLIMIT00001', saleId, amount, currency: 'CNY' });
    expect(results('sbLIMIT00001-2')).toEqual(['PAYING']);
    await clock.advance(5_000);
    expect(gw.starts.find((s) => s.outTradeNo === 'sbLIMIT00001-2')?.at).toBe(t0 + 5_000);
    await clock.advance(5_000);
    expect(['sbLIMIT00001-1', 'sbLIMIT00001-2', 'sbLIMIT00001-3'].map((o) => results(o).at(-1))).toEqual(['SUCCESS', 'SUCCESS', 'SUCCESS']);
  });

  it('the call timeout counts from when the call starts, not while it waits for a slot', async () => {
    // callGateway's timeout runs on real time: 200 ms, and the first call never answers.
    gw.hang.add('sbLIMIT00001-1');
    const shell = start({ gatewayConcurrency: 1, gatewayCallTimeoutMs: 200 });
    await shell.dispatch('sbLIMIT00001-1', pay(1, 'wechat'));
    await shell.dispatch('sbLIMIT00001-2', pay(2, 'wechat'));
    const deadline = Date.now() + 5_000;
    while (results('sbLIMIT00001-2').length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      await clock.advance(0); // the wallet's answer to a started call is on the fake clock
    }
    // The second pay waited 200 ms for the slot, then got the wallet's real answer, not a timeout.
    expect(results('sbLIMIT00001-2')).toEqual(['SUCCESS']);
    expect(gw.count('pay', 'sbLIMIT00001-2')).toBe(1);
    expect(await store.getAttempt('sbLIMIT00001-1')).toMatchObject({ state: 'PAYING', inFlight: null, step: 'poll' });
  });
});
