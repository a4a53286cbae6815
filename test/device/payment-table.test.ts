import { describe, expect, it } from 'vitest';
import { ATTEMPT_STATES, ECR_VERSION, EcrOutboundV2, PROTOCOL_VERSION, UP_SCHEMAS, isFinal, type AttemptState } from '../../protocol/index.js';
import { SALE_STATES, step, type Book, type PaymentEvent, type PaymentEventType, type SaleState } from '../../device/payment.js';
import { ALIPAY, T0, attempt, bookWithAttempt, result } from './payment-fixtures.js';

/**
 * Every (attempt state × sale state × event) combination: the step is defined (no throw), and the
 * money invariants hold whatever arrives in whatever order.
 */
const EVENT_TYPES: readonly PaymentEventType[] = [
  'ecrSale',
  'ecrCancel',
  'ecrHello',
  'ecrLookup',
  'ecrBadLine',
  'ecrDelivered',
  'ecrReady',
  'scan',
  'scanRejected',
  'paySent',
  'result',
  'progress',
  'cloudError',
  'linkUp',
  'linkDown',
  'resync',
  'restart',
  'tick',
  'ecrRefund',
  'ecrTotals',
  'ecrRefundDelivered',
  'refundResult',
  'totals',
];

/** One representative event per type, plus every result state for `result`. */
function eventsOf(type: PaymentEventType, book: Book): PaymentEvent[] {
  const a = attempt(book);
  const m = { v: PROTOCOL_VERSION, ts: T0 } as const;
  switch (type) {
    case 'ecrSale':
      return [
        { type, ref: 'R1', amount: a.amount, currency: 'CNY' },
        { type, ref: 'R2', amount: 500, currency: 'CNY' },
      ];
    case 'ecrCancel':
      return [{ type, ref: 'R1' }];
    case 'ecrHello':
      return [{ type, firmware: 'scanbox-device/test' }];
    case 'ecrLookup':
      return [
        { type, ref: 'R1' },
        { type, ref: 'NOPE' },
      ];
    case 'ecrBadLine':
      return [{ type, code: 'BAD_JSON', message: 'line is not valid JSON' }];
    case 'ecrDelivered':
      return [{ type, saleId: a.saleId }];
    case 'scan':
      return [{ type, code: ALIPAY }];
    case 'scanRejected':
      return [{ type, code: 'CODE_NOT_DIGITS', message: 'letters' }];
    case 'paySent':
      return [{ type, outTradeNo: a.outTradeNo }];
    case 'result':
      return ATTEMPT_STATES.map((s) => result(a, s));
    case 'progress':
      return (['USERPAYING', 'QUERYING', 'REVERSING', 'REFUNDING'] as const).map((stage) => ({ type, message: { ...m, id: 'p', outTradeNo: a.outTradeNo, stage } }));
    case 'cloudError':
      return (['ATTEMPT_UNKNOWN', 'ATTEMPT_TOMBSTONED', 'SCHEMA_INVALID'] as const).map((code) => ({ type, message: { ...m, id: 'e', code, message: 'x', outTradeNo: a.outTradeNo } }));
    case 'tick':
      return [{ type }];
    case 'ecrRefund':
      return [
        { type, ref: 'R1', refundRef: 'RF1', amount: a.amount, currency: 'CNY' },
        { type, outTradeNo: 'box9-1', refundRef: 'RF2', amount: 1, currency: 'CNY' },
      ];
    case 'ecrTotals':
      return [{ type, date: '2023-11-15', local: [] }];
    case 'ecrRefundDelivered':
      return [{ type, refundId: 'box1-r1' }];
    case 'refundResult':
      return (['PENDING', 'REFUNDED', 'FAILED', 'REFUSED'] as const).map((state) => ({ type, message: { ...m, id: 'f', refundId: 'box1-r1', outTradeNo: a.outTradeNo, amount: a.amount, currency: 'CNY' as const, state } }));
    case 'totals':
      return [{ type, message: { ...m, id: 't', refId: 'totals-1', date: '2023-11-15', currency: 'CNY', wallets: [], asOf: T0 } }];
    default:
      return [{ type } as PaymentEvent];
  }
}

function bookIn(attemptState: AttemptState, saleState: SaleState, online: boolean): Book {
  const b = bookWithAttempt();
  const a = attempt(b);
  const s = b.sales[a.saleId]!;
  const paidBy = saleState === 'PAID' ? a.outTradeNo : null;
  return {
    ...b,
    online,
    attempts: { [a.outTradeNo]: { ...a, state: attemptState } },
    sales: { [s.saleId]: { ...s, state: saleState, paidBy, endReason: saleState === 'OPEN' ? null : 'CASHIER_CANCEL' } },
  };
}

const CHARGED_OR_REFUNDED: readonly AttemptState[] = ['SUCCESS', 'REFUNDED'];

describe('payment state machine: every (state, event) pair is defined and keeps money invariants', () => {
  const cases: [AttemptState, SaleState, boolean, PaymentEventType][] = [];
  for (const as of ATTEMPT_STATES) for (const ss of SALE_STATES) for (const online of [true, false]) for (const e of EVENT_TYPES) cases.push([as, ss, online, e]);

  it(`covers ${ATTEMPT_STATES.length} attempt states × ${SALE_STATES.length} sale states × online/offline × ${EVENT_TYPES.length} event types`, () => {
    expect(cases.length).toBe(ATTEMPT_STATES.length * SALE_STATES.length * 2 * EVENT_TYPES.length);
    for (const [as, ss, online, type] of cases) {
      const book = bookIn(as, ss, online);
      for (const event of eventsOf(type, book)) {
        const label = `${as}/${ss}/${online ? 'online' : 'offline'}/${type}${event.type === 'result' ? `:${event.message.state}` : ''}`;
        let res: ReturnType<typeof step>;
        try {
          res = step(book, event, T0 + 120_000);
        } catch (err) {
          throw new Error(`${label} threw: ${(err as Error).message}`);
        }
        checkInvariants(label, book, event, res);
      }
    }
  });
});

function checkInvariants(label: string, before: Book, event: PaymentEvent, res: ReturnType<typeof step>): void {
  const a0 = attempt(before);
  const a1 = attempt(res.book);
  // A pay is only ever created by a scan, and only while online.
  for (const s of res.effects) {
    if (s.kind !== 'send') continue;
    expect(UP_SCHEMAS[s.up].safeParse(s.message).success, `${label}: ${s.up} message valid`).toBe(true);
    if (s.up === 'pay') expect(event.type === 'scan' && before.online, `${label}: pay only from an online scan`).toBe(true);
  }
  for (const e of res.effects) if (e.kind === 'ecr') expect(EcrOutboundV2.safeParse(e.line).success, `${label}: ecr line valid`).toBe(true);
  checkSeq(label, before, res);
  // Final states only move charged → refunded or between not-charged states.
  if (isFinal(a0.state)) {
    expect(isFinal(a1.state), `${label}: final stays final`).toBe(true);
    if (a0.state !== a1.state) {
      const ok = (a0.state === 'SUCCESS' && a1.state === 'REFUNDED') || (a0.state !== 'SUCCESS' && a1.state !== 'SUCCESS');
      expect(ok, `${label}: ${a0.state} → ${a1.state} allowed`).toBe(true);
    }
  }
  if (!CHARGED_OR_REFUNDED.includes(a0.state) && isFinal(a0.state)) expect(a1.state, `${label}: not-charged never becomes charged`).not.toBe('SUCCESS');
  // One result line per sale, and never a second one for a sale already final.
  const resultLines = res.effects.filter((e) => e.kind === 'ecr' && e.line.type === 'result' && e.line.lookup !== true);
  const saleBefore = before.sales[a0.saleId]!;
  const wasFinal = saleBefore.state === 'PAID' || saleBefore.state === 'NOT_PAID';
  if (event.type !== 'ecrReady') expect(resultLines.length, `${label}: result lines`).toBeLessThanOrEqual(wasFinal ? 0 : 1);
  // A PAID sale stays PAID.
  if (saleBefore.state === 'PAID') expect(res.book.sales[a0.saleId]!.state, `${label}: paid stays paid`).toBe('PAID');
  // Every attempt change is journaled with the step.
  if (a1 !== a0 && a1.state !== a0.state) {
    expect(res.effects.some((e) => e.kind === 'saveAttempt' && e.attempt.outTradeNo === a1.outTradeNo), `${label}: change journaled`).toBe(true);
  }
}

/**
 * ECR v2 numbering: every new line takes the next number, in order, each below a reservation
 * journaled in the same step; a result line and its repeats (lookup answers) carry the sale's resultSeq.
 */
function checkSeq(label: string, before: Book, res: ReturnType<typeof step>): void {
  let next = before.nextEcrSeq;
  const finalSeqs = new Set(Object.values(res.book.sales).flatMap((s) => (s.resultSeq === undefined ? [] : [s.resultSeq])));
  let reserved = before.ecrSeqReservedTo;
  for (const e of res.effects) {
    if (e.kind === 'saveEcrSeq') reserved = Math.max(reserved, e.reservedTo);
    if (e.kind !== 'ecr') continue;
    expect(e.line.v, `${label}: v`).toBe(ECR_VERSION);
    if (e.line.type === 'result') {
      expect(finalSeqs.has(e.line.seq), `${label}: a result line carries its sale's resultSeq`).toBe(true);
      if (e.line.seq < before.nextEcrSeq) continue; // a repeat of a line numbered earlier
    }
    expect(e.line.seq, `${label}: next number in order`).toBeGreaterThanOrEqual(next);
    next = e.line.seq + 1;
  }
  expect(res.book.nextEcrSeq, `${label}: counter`).toBeGreaterThanOrEqual(next);
  expect(res.book.ecrSeqReservedTo, `${label}: every number used is reserved in the journal`).toBe(reserved);
  expect(res.book.nextEcrSeq, `${label}: reserved`).toBeLessThanOrEqual(reserved);
}
