import type { Gateway, QueryOutcome } from '../../cloud/gateway/gateway.js';
import type { CloudAttemptRecord, FinalState, Wallet } from '../../protocol/index.js';
import type { FakeClock } from '../support/fake-clock.js';

/**
 * A deliberately small version of the cloud's gateway conversation (DESIGN.md, "Cloud, per
 * attempt"), only to prove that the scripted gateway's scenarios and ledger lead to a reconcilable
 * end state. Time moves only when this conversation waits.
 */
export interface Timings {
  callTimeoutMs: number;
  queryIntervalMs: number;
  pollDeadlineMs: number;
  lateCheckDelayMs: number;
}

export const TIMINGS: Timings = { callTimeoutMs: 10_000, queryIntervalMs: 5_000, pollDeadlineMs: 45_000, lateCheckDelayMs: 5_000 };

interface Attempt {
  outTradeNo: string;
  saleId: string;
  amount: number;
  code: string;
  wallet: Wallet;
}

export async function converse(gateway: Gateway, clock: FakeClock, a: Attempt, t: Timings = TIMINGS): Promise<CloudAttemptRecord> {
  const call = <T>(fn: (signal: AbortSignal) => Promise<T>) => withTimeout(clock, t.callTimeoutMs, fn);
  const ref = { outTradeNo: a.outTradeNo, wallet: a.wallet, merchant: 'M1', channel: a.wallet };
  const createdAt = clock.now();
  let answer: { kind: string } = await call((signal) => gateway.pay({ ...ref, amount: a.amount, currency: 'CNY', code: a.code }, { signal }));
  while (!isFinalAnswer(answer) && clock.now() - createdAt < t.pollDeadlineMs) {
    await clock.advance(t.queryIntervalMs);
    answer = await call((signal) => gateway.query(ref, { signal }));
  }
  let state: FinalState = answer.kind === 'success' ? 'SUCCESS' : 'FAILED';
  if (!isFinalAnswer(answer)) state = await reverseThenCheck(gateway, clock, a, call, t);
  return { outTradeNo: a.outTradeNo, deviceId: a.outTradeNo.replace(/-\d+$/, ''), saleId: a.saleId, amount: a.amount, currency: 'CNY', wallet: a.wallet, state, reason: null, createdAt, updatedAt: clock.now() };
}

async function reverseThenCheck(
  gateway: Gateway,
  clock: FakeClock,
  a: Attempt,
  call: <T>(fn: (signal: AbortSignal) => Promise<T>) => Promise<T>,
  t: Timings,
): Promise<FinalState> {
  const ref = { outTradeNo: a.outTradeNo, wallet: a.wallet, merchant: 'M1', channel: a.wallet };
  for (let i = 0; (await call((signal) => gateway.reverse(ref, { signal }))).kind !== 'reversed'; i++) {
    if (i > 20) throw new Error(`${a.outTradeNo}: reverse never succeeded`);
    await clock.advance(1_000);
  }
  await clock.advance(t.lateCheckDelayMs);
  const late: QueryOutcome = await call((signal) => gateway.query(ref, { signal }));
  if (late.kind !== 'success') return 'REVERSED';
  const refund = await call((signal) => gateway.refund({ ...ref, refundNo: `${a.outTradeNo}-r`, amount: a.amount, total: a.amount, currency: 'CNY' }, { signal }));
  if (refund.kind !== 'refunded') throw new Error(`${a.outTradeNo}: refund answered ${refund.kind}`);
  return 'REFUNDED';
}

function isFinalAnswer(o: { kind: string }): boolean {
  return o.kind === 'success' || o.kind === 'failed';
}

/** Time runs until the call answers; if the caller's timeout passes first, the call is aborted. */
async function withTimeout<T>(clock: FakeClock, ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  let done = false;
  const p = fn(abort.signal).finally(() => (done = true));
  await clock.advanceUntil(() => done, ms);
  if (!done) abort.abort();
  return p;
}
