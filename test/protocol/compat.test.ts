import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  DOWN_KINDS,
  DOWN_SCHEMAS,
  DOWN_SHAPES,
  ErrorCode,
  PROTOCOL_VERSION,
  ProgressMessage,
  ResultMessage,
  UNKNOWN,
  UP_KINDS,
  decodeDown,
  decodeUp,
  downShapeVersion,
  encodeDown,
  encodeUp,
  isFinal,
  type DownShapes,
} from '../../protocol/index.js';
import { DOWN_EXAMPLES, UP_EXAMPLES } from '../../protocol/examples.js';

/**
 * Boundaries that can evolve: a newer peer's message (a higher `v`, fields this side does not know,
 * enum values it does not know) is read by the fields this side knows, unknown values become UNKNOWN
 * and never a success or a final state; what this side sends is strict.
 */

const NEWER = PROTOCOL_VERSION + 1;

/** What a newer peer might add: fields at the top and inside nested objects, and a higher version. */
function fromNewerPeer(msg: Record<string, unknown>): string {
  const grown: Record<string, unknown> = { ...msg, v: NEWER, loyalty: { no: 'L-1', lines: [1, 2] }, channel: 'c-7', refundable: true };
  const grow = (o: unknown) => (o && typeof o === 'object' ? { ...o, battery: 87 } : o);
  for (const [k, val] of Object.entries(msg)) if (val && typeof val === 'object') grown[k] = Array.isArray(val) ? val.map(grow) : grow(val);
  return JSON.stringify(grown);
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  throw new Error('accepted');
}

describe('(a) a newer cloud: every down/ example with extra fields and a newer v reads as the same known fields', () => {
  it.each(DOWN_KINDS)('down/%s', (kind) => {
    expect(decodeDown(kind, fromNewerPeer(DOWN_EXAMPLES[kind]))).toEqual({ ...DOWN_EXAMPLES[kind], v: NEWER });
  });
});

describe('(c) a newer box: every up/ example with extra fields and a newer v reads as the same known fields', () => {
  it.each(UP_KINDS)('up/%s', (kind) => {
    expect(decodeUp(kind, fromNewerPeer(UP_EXAMPLES[kind]))).toEqual({ ...UP_EXAMPLES[kind], v: NEWER });
  });
});

describe('(b) unknown enum values from a newer cloud read as UNKNOWN, never as success or final', () => {
  const result = (patch: object) => decodeDown('result', JSON.stringify({ ...DOWN_EXAMPLES.result, ...patch }));

  it('an unknown state is UNKNOWN: not SUCCESS, not final', () => {
    for (const state of ['PARTIALLY_CAPTURED', 'SUCCESS_PENDING_RECEIPT', 'success', 'UNKNOWN']) {
      const r = result({ state });
      expect(r.state).toBe(UNKNOWN);
      expect(r.state).not.toBe('SUCCESS');
      expect(isFinal(r.state)).toBe(false);
    }
  });

  it('an unknown reason or wallet on a known state is UNKNOWN; the state is kept', () => {
    expect(result({ reason: 'PAID_WITH_COUPON', wallet: 'dcep' })).toMatchObject({ state: 'SUCCESS', reason: UNKNOWN, wallet: UNKNOWN });
  });

  it('unknown stage, error code and command are UNKNOWN', () => {
    expect(decodeDown('progress', JSON.stringify({ ...DOWN_EXAMPLES.progress, stage: 'CAPTURING' })).stage).toBe(UNKNOWN);
    expect(decodeDown('error', JSON.stringify({ ...DOWN_EXAMPLES.error, code: 'QUOTA_EXCEEDED' })).code).toBe(UNKNOWN);
    expect(decodeDown('command', JSON.stringify({ ...DOWN_EXAMPLES.command, command: 'selfTest' })).command).toBe(UNKNOWN);
  });

  it('money fields stay strict: an unreadable amount or currency refuses the message', () => {
    expect(refusal(() => result({ currency: 'HKD' }))).toBe(ErrorCode.SCHEMA_INVALID);
    expect(refusal(() => result({ amount: 12.34 }))).toBe(ErrorCode.SCHEMA_INVALID);
    expect(refusal(() => result({ amount: '1234' }))).toBe(ErrorCode.SCHEMA_INVALID);
    expect(refusal(() => result({ outTradeNo: 'not a key' }))).toBe(ErrorCode.SCHEMA_INVALID);
  });

  it('a value that is no enum value at all (empty, a number, too long) is refused, not UNKNOWN', () => {
    for (const state of ['', 7, null, 'X'.repeat(65)]) expect(refusal(() => result({ state }))).toBe(ErrorCode.SCHEMA_INVALID);
  });

  it('a version that is no version is refused', () => {
    for (const v of [0, -1, 1.5, '2', null]) expect(refusal(() => result({ v }))).toBe(ErrorCode.UNSUPPORTED_VERSION);
  });
});

describe('(c) unknown enum values from a newer box', () => {
  it('an unknown cancel reason is UNKNOWN (the cloud still cancels)', () => {
    expect(decodeUp('cancel', JSON.stringify({ ...UP_EXAMPLES.cancel, reason: 'POWER_LOSS' })).reason).toBe(UNKNOWN);
  });

  it('an unknown acked state is UNKNOWN and not final', () => {
    const ack = decodeUp('ack', JSON.stringify({ ...UP_EXAMPLES.ack, state: 'PARTIALLY_REFUNDED' }));
    expect(ack.state).toBe(UNKNOWN);
    expect(isFinal(ack.state)).toBe(false);
  });

  it('an unknown port state in a heartbeat is UNKNOWN, the heartbeat is read', () => {
    const hb = decodeUp('heartbeat', JSON.stringify({ ...UP_EXAMPLES.heartbeat, status: { ...UP_EXAMPLES.heartbeat.status, scanner: 'sleeping' } }));
    expect(hb.status).toEqual({ ...UP_EXAMPLES.heartbeat.status, scanner: UNKNOWN });
  });

  it('a pay with a wallet the cloud does not know is refused: it cannot be routed', () => {
    expect(refusal(() => decodeUp('pay', JSON.stringify({ ...UP_EXAMPLES.pay, wallet: 'dcep' })))).toBe(ErrorCode.SCHEMA_INVALID);
  });
});

describe('(d) encoders are strict', () => {
  it('every example round-trips: encode, then decode, gives it back (in this version, and in v1 with v: 1)', () => {
    for (const kind of UP_KINDS) expect(decodeUp(kind, encodeUp(kind, UP_EXAMPLES[kind]))).toEqual(UP_EXAMPLES[kind]);
    for (const kind of DOWN_KINDS) expect(decodeDown(kind, encodeDown(kind, DOWN_EXAMPLES[kind], PROTOCOL_VERSION))).toEqual(DOWN_EXAMPLES[kind]);
    const inV1 = DOWN_KINDS.filter((k) => DOWN_SHAPES[1]![k] !== undefined);
    expect(inV1).toEqual(['result', 'progress', 'error', 'command']);
    for (const kind of inV1) expect(decodeDown(kind, encodeDown(kind, DOWN_EXAMPLES[kind], 1))).toEqual({ ...DOWN_EXAMPLES[kind], v: 1 });
  });

  it('refund and totals (v3) are never sent to a box that announced v1 or v2, nor asked of a cloud spoken to in v1', () => {
    for (const kind of ['refund', 'totals'] as const) {
      for (const v of [1, 2]) expect(refusal(() => encodeDown(kind, DOWN_EXAMPLES[kind], v))).toBe(ErrorCode.UNSUPPORTED_VERSION);
      expect(JSON.parse(encodeDown(kind, DOWN_EXAMPLES[kind], 3)).v).toBe(3);
      expect(refusal(() => encodeUp(kind, { ...UP_EXAMPLES[kind], v: 1 } as never, 1))).toBe(ErrorCode.UNSUPPORTED_VERSION);
    }
  });

  it('encodeUp refuses an extra field, an UNKNOWN or unlisted value, and another version', () => {
    const off = (patch: object) => refusal(() => encodeUp('cancel', { ...UP_EXAMPLES.cancel, ...patch } as never));
    expect(off({ channel: 'c-7' })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ reason: UNKNOWN })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ reason: 'POWER_LOSS' })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ v: PROTOCOL_VERSION + 1 })).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(off({ v: 1 })).toBe(ErrorCode.UNSUPPORTED_VERSION); // the box says its own version unless told to speak v1
    expect(refusal(() => encodeUp('cancel', UP_EXAMPLES.cancel, 1))).toBe(ErrorCode.UNSUPPORTED_VERSION);
    expect(refusal(() => encodeUp('cancel', UP_EXAMPLES.cancel, 7))).toBe(ErrorCode.UNSUPPORTED_VERSION);
    const status = { ...UP_EXAMPLES.heartbeat.status, battery: 87 };
    expect(refusal(() => encodeUp('heartbeat', { ...UP_EXAMPLES.heartbeat, status } as never))).toBe(ErrorCode.SCHEMA_INVALID);
  });

  it('encodeDown refuses an extra field and an UNKNOWN or unlisted value', () => {
    const off = (patch: object) => refusal(() => encodeDown('result', { ...DOWN_EXAMPLES.result, ...patch } as never, PROTOCOL_VERSION));
    expect(off({ receiptNo: 'R-1' })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ receipt: 'R-1' })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ receipt: { walletTradeNo: 'W-1', total: 1234, coupon: 'C-9' } })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ state: UNKNOWN })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off({ reason: 'PAID_WITH_COUPON' })).toBe(ErrorCode.SCHEMA_INVALID);
    expect(refusal(() => encodeDown('command', { ...DOWN_EXAMPLES.command, command: 'selfTest' } as never))).toBe(ErrorCode.SCHEMA_INVALID);
  });

  it('encoders refuse what a receiver would refuse for size', () => {
    // Today's shapes bound every field well below the limit; a looser shape must still not get out.
    const loose = { 3: { ...DOWN_SCHEMAS, progress: ProgressMessage.extend({ message: z.string() }) } };
    expect(encodeDown('progress', { ...DOWN_EXAMPLES.progress, message: 'x'.repeat(3_991) }, 3, loose)).toHaveLength(4_096);
    expect(refusal(() => encodeDown('progress', { ...DOWN_EXAMPLES.progress, message: 'x'.repeat(3_992) }, 3, loose))).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
  });
});

describe('the cloud never sends a shape newer than the box announced', () => {
  // A test-only v4: results may carry a receipt number. No such shape exists in the product.
  const V4: DownShapes = { ...DOWN_SCHEMAS, result: ResultMessage.extend({ v: z.literal(4), receiptNo: z.string().max(32).optional() }) };
  const SHAPES = { ...DOWN_SHAPES, 4: V4 };
  const withReceiptNo = { ...DOWN_EXAMPLES.result, receiptNo: 'R-1' } as never;

  it('picks the newest shape not newer than the announcement', () => {
    expect([1, 2, 3, 4, 40].map((v) => downShapeVersion(v, SHAPES))).toEqual([1, 2, 3, 4, 4]);
    expect([1, 2, 3, 4, 40].map((v) => downShapeVersion(v))).toEqual([1, 2, 3, 3, 3]);
    expect(refusal(() => downShapeVersion(0, SHAPES))).toBe(ErrorCode.UNSUPPORTED_VERSION);
  });

  it('a v4 field goes to a v4 box with v: 4, and is refused for a v3, v2 or v1 box', () => {
    expect(JSON.parse(encodeDown('result', withReceiptNo, 4, SHAPES))).toEqual({ ...DOWN_EXAMPLES.result, v: 4, receiptNo: 'R-1' });
    for (const v of [3, 2, 1]) expect(refusal(() => encodeDown('result', withReceiptNo, v, SHAPES))).toBe(ErrorCode.SCHEMA_INVALID);
    expect(JSON.parse(encodeDown('result', DOWN_EXAMPLES.result, 3, SHAPES))).toEqual(DOWN_EXAMPLES.result);
  });

  it("today's box reads the v4 message by the fields it knows", () => {
    expect(decodeDown('result', encodeDown('result', withReceiptNo, 4, SHAPES))).toEqual({ ...DOWN_EXAMPLES.result, v: 4 });
  });

  it('a box that announced nothing is sent v1', () => {
    expect(JSON.parse(encodeDown('result', DOWN_EXAMPLES.result, undefined, SHAPES)).v).toBe(1);
    expect(JSON.parse(encodeDown('result', DOWN_EXAMPLES.result)).v).toBe(1);
  });
});
