import { PROTOCOL_VERSION, type AttemptState, type PaymentCode, type ResultMessage, type ResultReason } from '../../protocol/index.js';
import { emptyBook, step, type Attempt, type Book, type Effect, type PaymentEvent, type PaymentRules } from '../../device/payment.js';

/** Builders for the payment state machine tests: a fake clock is just a number passed to `step`. */
export const RULES: PaymentRules = { paymentDeadlineMs: 60_000, saleDeadlineMs: 300_000, recheckMs: 15_000 };
export const T0 = 1_700_000_000_000;
export const DEVICE = 'box1';
export const WECHAT: PaymentCode = { wallet: 'wechat', code: '134567890123456789' };
export const ALIPAY: PaymentCode = { wallet: 'alipay', code: '281234567890123456' };

export function onlineBook(): Book {
  return { ...emptyBook(DEVICE, RULES), online: true };
}

/** Runs events in order, each at its own time; returns the final book and every effect, in order. */
export function run(book: Book, events: [PaymentEvent, number][]): { book: Book; effects: Effect[] } {
  let b = book;
  const effects: Effect[] = [];
  for (const [e, now] of events) {
    const r = step(b, e, now);
    b = r.book;
    effects.push(...r.effects);
  }
  return { book: b, effects };
}

export const sale = (ref = 'R1', amount = 1234): PaymentEvent => ({ type: 'ecrSale', ref, amount, currency: 'CNY' });
export const scan = (code = WECHAT): PaymentEvent => ({ type: 'scan', code });

export function result(a: Pick<Attempt, 'outTradeNo' | 'saleId' | 'amount'>, state: AttemptState, reason?: ResultReason, ts = T0): PaymentEvent {
  const message: ResultMessage = { v: PROTOCOL_VERSION, id: `r-${a.outTradeNo}-${state}-${ts}`, ts, outTradeNo: a.outTradeNo, saleId: a.saleId, amount: a.amount, currency: 'CNY', state, ...(reason ? { reason } : {}) };
  return { type: 'result', message };
}

/** A book with one open sale R1 and one attempt box1-1 created at T0 (pay in the outbox). */
export function bookWithAttempt(): Book {
  return run(onlineBook(), [
    [sale(), T0],
    [scan(), T0 + 1],
  ]).book;
}

export function only<K extends Effect['kind']>(effects: Effect[], kind: K): Extract<Effect, { kind: K }>[] {
  return effects.filter((e): e is Extract<Effect, { kind: K }> => e.kind === kind);
}

export function sends(effects: Effect[], up?: string) {
  return only(effects, 'send').filter((e) => up === undefined || e.up === up);
}

export function ecrLines(effects: Effect[]) {
  return only(effects, 'ecr').map((e) => e.line);
}

export function attempt(book: Book, outTradeNo = 'box1-1'): Attempt {
  const a = book.attempts[outTradeNo];
  if (!a) throw new Error(`no attempt ${outTradeNo}`);
  return a;
}
