import { describe, expect, it } from 'vitest';
import {
  ATTEMPT_STATES,
  DOWN_SCHEMAS,
  DOWN_SHAPES,
  EcrResult,
  ErrorCode,
  PAIRING_VERSION,
  PROTOCOL_VERSION,
  PairErrorBody,
  PairRequest,
  PairResponse,
  RESULT_REASONS,
  UP_KINDS,
  UP_SHAPES,
  V1_RESULT_REASONS,
  decodeDown,
  encodeDown,
  encodeUp,
  receiptOf,
  reencodeUp,
  resultForVersion,
  type DownToSend,
  type Receipt,
} from '../../protocol/index.js';
import { DOWN_EXAMPLES, ECR_EXAMPLES, PAIR_EXAMPLES, RESULT_EXAMPLES, UP_EXAMPLES } from '../../protocol/examples.js';

/**
 * Protocol v2: down/result carries the wallet's receipt and may say AMOUNT_MISMATCH. v1 is frozen
 * (no receipt, the v1 reasons), the cloud builds each result for the version the box reads, the box
 * reads a receipt tolerantly and never refuses a result because of it, and pairing stays v1.
 */

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  throw new Error('accepted');
}

const RECEIPT: Receipt = { walletTradeNo: '4200002946202611251234567890', paidAt: 1764086401000, total: 1234, buyerPaid: 1134, discount: 100 };
const v1 = DOWN_SHAPES[1]!;
/** The up/ kinds v1 (and v2) have: refund and totals came with v3. */
const V1_UP_KINDS = UP_KINDS.filter((k) => UP_SHAPES[1]![k] !== undefined);
const v2 = DOWN_SHAPES[2]!;

describe('the shapes', () => {
  it('this side speaks v3; v3 is the strict sending schema, v1 and v2 are kept beside it', () => {
    expect(PROTOCOL_VERSION).toBe(3);
    expect(DOWN_SHAPES[3]).toBe(DOWN_SCHEMAS);
    expect(Object.keys(DOWN_SHAPES).map(Number)).toEqual([1, 2, 3]);
    expect(Object.keys(UP_SHAPES).map(Number)).toEqual([1, 2, 3]);
    // v3 only added kinds: v2 has every shape of v3 but refund and totals, each with v: 2
    expect(Object.keys(v2).sort()).toEqual(['command', 'error', 'progress', 'result']);
    expect(Object.keys(UP_SHAPES[2]!).sort()).toEqual(['ack', 'cancel', 'heartbeat', 'pay', 'query']);
  });

  it('v1 refuses a receipt and AMOUNT_MISMATCH; v2 accepts both', () => {
    const v1Paid = { ...RESULT_EXAMPLES.paidV1 };
    expect(v1.result!.safeParse(v1Paid).success).toBe(true);
    expect(v1.result!.safeParse({ ...v1Paid, receipt: RECEIPT }).success).toBe(false);
    expect(v1.result!.safeParse({ ...v1Paid, state: 'FAILED', reason: 'AMOUNT_MISMATCH' }).success).toBe(false);
    expect(v2.result!.safeParse({ ...v1Paid, v: 2, receipt: RECEIPT }).success).toBe(true);
    expect(v2.result!.safeParse({ ...v1Paid, v: 2, state: 'FAILED', reason: 'AMOUNT_MISMATCH' }).success).toBe(true);
    expect(v2.result!.safeParse({ ...RESULT_EXAMPLES.amountMismatch, v: 2 }).success).toBe(true);
    // and each says its own v
    expect(v1.result!.safeParse({ ...v1Paid, v: 2 }).success).toBe(false);
    expect(v2.result!.safeParse(v1Paid).success).toBe(false);
  });

  it('v1 is frozen: its reasons are the v2 ones but AMOUNT_MISMATCH, its other shapes are the v2 ones but v', () => {
    expect(RESULT_REASONS.filter((r) => !(V1_RESULT_REASONS as readonly string[]).includes(r))).toEqual(['AMOUNT_MISMATCH']);
    for (const reason of V1_RESULT_REASONS) expect(v1.result!.safeParse({ ...RESULT_EXAMPLES.paidV1, reason }).success, reason).toBe(true);
    for (const kind of ['progress', 'error', 'command'] as const) {
      expect(v1[kind]!.safeParse({ ...DOWN_EXAMPLES[kind], v: 1 }).success, kind).toBe(true);
      expect(v1[kind]!.safeParse(DOWN_EXAMPLES[kind]).success, kind).toBe(false);
      expect(v2[kind]!.safeParse({ ...DOWN_EXAMPLES[kind], v: 2 }).success, kind).toBe(true);
    }
    for (const kind of V1_UP_KINDS) {
      expect(UP_SHAPES[1]![kind]!.safeParse({ ...UP_EXAMPLES[kind], v: 1 }).success, kind).toBe(true);
      expect(UP_SHAPES[1]![kind]!.safeParse(UP_EXAMPLES[kind]).success, kind).toBe(false);
      expect(UP_SHAPES[1]![kind]!.safeParse({ ...UP_EXAMPLES[kind], v: 1, extra: 1 }).success, kind).toBe(false);
    }
  });

  it('the receipt is strict on sending', () => {
    const off = (receipt: unknown) => refusal(() => encodeDown('result', { ...DOWN_EXAMPLES.result, receipt } as never, 2));
    expect(JSON.parse(encodeDown('result', { ...DOWN_EXAMPLES.result, receipt: RECEIPT }, 2)).receipt).toEqual(RECEIPT);
    expect(JSON.parse(encodeDown('result', { ...DOWN_EXAMPLES.result, receipt: { walletTradeNo: 'W', total: 1 } }, 2)).receipt).toEqual({ walletTradeNo: 'W', total: 1 });
    expect(off({ ...RECEIPT, coupon: 'C-1' })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ ...RECEIPT, walletTradeNo: '' })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ ...RECEIPT, walletTradeNo: 'x'.repeat(65) })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ ...RECEIPT, total: 0 })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ ...RECEIPT, total: 12.34 })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ ...RECEIPT, buyerPaid: -1 })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ ...RECEIPT, discount: 0.5 })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ ...RECEIPT, paidAt: -5 })).toBe(ErrorCode.SCHEMA_INVALID);
    const { total: _t, ...noTotal } = RECEIPT;
    expect(off(noTotal)).toBe(ErrorCode.SCHEMA_INVALID);
    // zero is a fine discount, and a fine share paid by the buyer
    expect(JSON.parse(encodeDown('result', { ...DOWN_EXAMPLES.result, receipt: { ...RECEIPT, buyerPaid: 0, discount: 0 } }, 2)).receipt.discount).toBe(0);
  });
});

describe('the cloud builds a result for the version the box reads', () => {
  it('v2: as it is; v1: no receipt, AMOUNT_MISMATCH left out (the examples of the README)', () => {
    expect(resultForVersion(RESULT_EXAMPLES.paid, 2)).toEqual({ ...RESULT_EXAMPLES.paid, v: 2 });
    expect(resultForVersion(RESULT_EXAMPLES.paid, 3)).toEqual(RESULT_EXAMPLES.paid);
    expect(resultForVersion(RESULT_EXAMPLES.paid, 4)).toEqual(RESULT_EXAMPLES.paid);
    expect(resultForVersion(RESULT_EXAMPLES.paid, 1)).toEqual(RESULT_EXAMPLES.paidV1);
    expect(resultForVersion(RESULT_EXAMPLES.amountMismatch, 1)).toEqual(RESULT_EXAMPLES.amountMismatchV1);
    expect(JSON.parse(encodeDown('result', resultForVersion(RESULT_EXAMPLES.amountMismatch, 1), 1))).toEqual(RESULT_EXAMPLES.amountMismatchV1);
  });

  it('encodeDown of any v2 result, adapted, never fails for a v1 box (every state × reason × receipt)', () => {
    let n = 0;
    const { reason: _paid, ...base } = DOWN_EXAMPLES.result;
    for (const state of ATTEMPT_STATES) {
      for (const reason of [undefined, ...RESULT_REASONS]) {
        for (const receipt of [undefined, RECEIPT, { walletTradeNo: 'W-1', total: 99 }]) {
          const msg: DownToSend<'result'> = { ...base, state, ...(reason ? { reason } : {}), ...(receipt ? { receipt } : {}) };
          for (const boxVersion of [1, 2, 3, 4]) {
            const sent = JSON.parse(encodeDown('result', resultForVersion(msg, boxVersion), boxVersion)) as Record<string, unknown>;
            expect(sent.v).toBe(Math.min(boxVersion, 3));
            if (boxVersion === 1) {
              expect(sent).not.toHaveProperty('receipt');
              expect(sent.reason === undefined || (V1_RESULT_REASONS as readonly string[]).includes(sent.reason as string)).toBe(true);
              expect(sent.state).toBe(state); // the state always goes: it alone decides the money
            } else {
              expect(sent.receipt).toEqual(receipt);
              expect(sent.reason).toEqual(reason);
            }
            n++;
          }
        }
      }
    }
    expect(n).toBe(ATTEMPT_STATES.length * (RESULT_REASONS.length + 1) * 3 * 4);
  });

  it('a receipt is made only of what it can send: none without a trade number and a total, an off-contract optional part left out', () => {
    expect(receiptOf({ walletTradeNo: RECEIPT.walletTradeNo, total: 1234, paidAt: RECEIPT.paidAt, buyerPaid: 1134, discount: 100 })).toEqual(RECEIPT);
    expect(receiptOf({ walletTradeNo: 'W-1', total: 1234 })).toEqual({ walletTradeNo: 'W-1', total: 1234 });
    expect(receiptOf({ walletTradeNo: 'W-1', total: 1234, paidAt: null, buyerPaid: null, discount: null })).toEqual({ walletTradeNo: 'W-1', total: 1234 });
    expect(receiptOf({ walletTradeNo: 'W-1', total: 1234, paidAt: -1, buyerPaid: 1.5, discount: -3 })).toEqual({ walletTradeNo: 'W-1', total: 1234 });
    expect(receiptOf({ walletTradeNo: null, total: 1234 })).toBeUndefined();
    expect(receiptOf({ walletTradeNo: 'W-1', total: null })).toBeUndefined();
    expect(receiptOf({ walletTradeNo: 'x'.repeat(65), total: 1234 })).toBeUndefined();
    expect(receiptOf({ walletTradeNo: 'W-1', total: 0 })).toBeUndefined();
  });
});

describe('the box reads a receipt tolerantly and never refuses a result because of it', () => {
  const read = (receipt: unknown) => decodeDown('result', JSON.stringify({ ...RESULT_EXAMPLES.paid, receipt }));
  const { receipt: _r, ...withoutReceipt } = RESULT_EXAMPLES.paid;

  it('a good receipt is read, unknown fields in it ignored', () => {
    expect(read(RECEIPT)).toEqual(RESULT_EXAMPLES.paid);
    expect(read({ ...RECEIPT, coupon: { id: 'C-1' }, currency: 'CNY' }).receipt).toEqual(RECEIPT);
  });

  it.each([
    ['a string', 'R-1'],
    ['null', null],
    ['an array', [RECEIPT]],
    ['no trade number', { total: 1234 }],
    ['no total', { walletTradeNo: 'W-1' }],
    ['an empty trade number', { ...RECEIPT, walletTradeNo: '' }],
    ['a trade number too long', { ...RECEIPT, walletTradeNo: 'x'.repeat(65) }],
    ['a decimal total', { ...RECEIPT, total: 12.34 }],
    ['a total of zero', { ...RECEIPT, total: 0 }],
    ['a total as text', { ...RECEIPT, total: '1234' }],
    ['a negative discount', { ...RECEIPT, discount: -100 }],
    ['a decimal buyerPaid', { ...RECEIPT, buyerPaid: 11.34 }],
    ['a paidAt that is no time', { ...RECEIPT, paidAt: 'yesterday' }],
  ])('a receipt with %s is dropped; the result is read and applies', (_what, receipt) => {
    const r = read(receipt);
    expect(r).toEqual(withoutReceipt);
    expect(r).not.toHaveProperty('receipt');
    expect(r.state).toBe('SUCCESS');
  });

  it('the receipt never loosens the money fields: an unreadable amount still refuses the result', () => {
    expect(refusal(() => decodeDown('result', JSON.stringify({ ...RESULT_EXAMPLES.paid, amount: 12.34 })))).toBe(ErrorCode.SCHEMA_INVALID);
  });

  it('a result without a receipt reads without one', () => {
    expect(decodeDown('result', JSON.stringify(DOWN_EXAMPLES.result))).not.toHaveProperty('receipt');
  });
});

describe('the box speaks v1 to a cloud that refuses v2', () => {
  it('every up/ message re-encodes in v1 with the same fields, and back', () => {
    for (const kind of V1_UP_KINDS) {
      const ownPayload = encodeUp(kind, UP_EXAMPLES[kind]);
      const v1Payload = reencodeUp(kind, ownPayload, 1);
      expect(JSON.parse(v1Payload)).toEqual({ ...UP_EXAMPLES[kind], v: 1 });
      expect(JSON.parse(reencodeUp(kind, v1Payload, PROTOCOL_VERSION))).toEqual(UP_EXAMPLES[kind]);
    }
  });

  it('re-encoding is strict too: an off-contract payload or an unknown version is refused', () => {
    expect(refusal(() => reencodeUp('cancel', JSON.stringify({ ...UP_EXAMPLES.cancel, extra: 1 }), 1))).toBe(ErrorCode.SCHEMA_INVALID);
    expect(refusal(() => reencodeUp('cancel', '{"v":2,', 1))).toBe(ErrorCode.BAD_JSON);
    expect(refusal(() => reencodeUp('cancel', encodeUp('cancel', UP_EXAMPLES.cancel), 9))).toBe(ErrorCode.UNSUPPORTED_VERSION);
  });
});

describe('pairing bodies stay v1', () => {
  it('PAIRING_VERSION is 1, and the bodies refuse the MQTT version', () => {
    expect(PAIRING_VERSION).toBe(1);
    expect(PAIR_EXAMPLES.request.v).toBe(1);
    for (const [schema, example] of [
      [PairRequest, PAIR_EXAMPLES.request],
      [PairResponse, PAIR_EXAMPLES.response],
      [PairErrorBody, PAIR_EXAMPLES.error],
    ] as const) {
      expect(schema.safeParse(example).success).toBe(true);
      expect(schema.safeParse({ ...example, v: PROTOCOL_VERSION }).success).toBe(false);
    }
  });
});

describe('the cash-register line', () => {
  it('a PAID line may carry the receipt; its parts are checked', () => {
    const paid = ECR_EXAMPLES.outbound.find((l) => l.type === 'result' && l.outcome === 'PAID')!;
    expect(EcrResult.safeParse(paid).success).toBe(true);
    expect(paid).toMatchObject({ walletTradeNo: RECEIPT.walletTradeNo, paidAt: RECEIPT.paidAt, buyerPaid: 1134, discount: 100 });
    expect(EcrResult.safeParse({ ...paid, buyerPaid: -1 }).success).toBe(false);
    expect(EcrResult.safeParse({ ...paid, walletTradeNo: '' }).success).toBe(false);
    expect(EcrResult.safeParse({ ...paid, total: 1234 }).success).toBe(false);
  });

  it('a NOT_PAID line may say AMOUNT_MISMATCH', () => {
    const notPaid = ECR_EXAMPLES.outbound.find((l) => l.type === 'result' && l.outcome === 'NOT_PAID')!;
    expect(notPaid).toMatchObject({ reason: 'AMOUNT_MISMATCH' });
    expect(EcrResult.safeParse(notPaid).success).toBe(true);
  });
});
