import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  DOWN_SCHEMAS,
  DOWN_SHAPES,
  EcrInbound,
  EcrOutbound,
  ErrorCode,
  MAX_PAYLOAD_BYTES,
  PairErrorBody,
  PairRequest,
  PairResponse,
  UP_SCHEMAS,
  decodeDown,
  decodeJson,
  decodeUp,
  salvageMessageId,
} from '../../protocol/index.js';
import { DOWN_EXAMPLES, ECR_EXAMPLES, PAIR_EXAMPLES, RESULT_EXAMPLES, UP_EXAMPLES } from '../../protocol/examples.js';
import type { z } from 'zod';

type Case = [name: string, schema: z.ZodType, example: Record<string, unknown>];
const cases: Case[] = [
  ...Object.entries(UP_EXAMPLES).map(([k, e]): Case => [`up/${k}`, UP_SCHEMAS[k as keyof typeof UP_SCHEMAS], e]),
  ...Object.entries(DOWN_EXAMPLES).map(([k, e]): Case => [`down/${k}`, DOWN_SCHEMAS[k as keyof typeof DOWN_SCHEMAS], e]),
  ['down/result with a receipt', DOWN_SCHEMAS.result, RESULT_EXAMPLES.paid],
  ['down/result AMOUNT_MISMATCH', DOWN_SCHEMAS.result, RESULT_EXAMPLES.amountMismatch],
  ['down/result v1 (paid)', DOWN_SHAPES[1]!.result!, RESULT_EXAMPLES.paidV1],
  ['down/result v1 (amount mismatch)', DOWN_SHAPES[1]!.result!, RESULT_EXAMPLES.amountMismatchV1],
  ['pair request', PairRequest, PAIR_EXAMPLES.request],
  ['pair response', PairResponse, PAIR_EXAMPLES.response],
  ['pair error', PairErrorBody, PAIR_EXAMPLES.error],
  ...ECR_EXAMPLES.inbound.map((e): Case => [`ecr in ${e.type}`, EcrInbound, e]),
  ...ECR_EXAMPLES.outbound.map((e): Case => [`ecr out ${e.type}`, EcrOutbound, e]),
];

function rejection(schema: z.ZodType, value: unknown): { code: string; message: string } {
  try {
    decodeJson(schema, JSON.stringify(value), 'test message');
  } catch (err) {
    const e = err as { code: string; message: string };
    return { code: e.code, message: e.message };
  }
  throw new Error(`accepted ${JSON.stringify(value).slice(0, 200)}`);
}

/** The first required field of an example: removing it must be refused. */
function requiredKey(schema: z.ZodType, example: Record<string, unknown>): string {
  const key = Object.keys(example).find((k) => {
    const { [k]: _dropped, ...rest } = example;
    return !schema.safeParse(rest).success;
  });
  if (!key) throw new Error('example has no required field');
  return key;
}

describe.each(cases)('%s', (_name, schema, example) => {
  it('round-trips a valid example through JSON', () => {
    expect(decodeJson(schema, JSON.stringify(example), 'test message')).toEqual(example);
  });

  it('rejects a missing required field, naming it', () => {
    const key = requiredKey(schema, example);
    const { [key]: _gone, ...rest } = example;
    const r = rejection(schema, rest);
    expect([ErrorCode.SCHEMA_INVALID, ErrorCode.UNSUPPORTED_VERSION]).toContain(r.code);
    if (key !== 'v') expect(r.message).toContain(key);
  });

  it('rejects a wrong type for every field', () => {
    for (const key of Object.keys(example)) {
      const wrong = typeof example[key] === 'string' ? 12 : typeof example[key] === 'number' ? 'twelve' : 'not-an-object';
      const r = rejection(schema, { ...example, [key]: wrong });
      expect(r.message.length).toBeGreaterThan(10);
    }
  });

  it('rejects a huge string and unknown fields', () => {
    const key = Object.keys(example).find((k) => typeof example[k] === 'string' && k !== 'type' && k !== 'currency');
    if (key) expect(rejection(schema, { ...example, [key]: 'x'.repeat(3000) }).message).toContain(key);
    // The box reads the cash register's lines tolerantly (ECR v2): an unknown field is dropped, not refused.
    if (schema === EcrInbound) expect(decodeJson(schema, JSON.stringify({ ...example, extra: 1 }), 'test message')).toEqual(example);
    else expect(rejection(schema, { ...example, extra: 1 }).code).toBe(ErrorCode.SCHEMA_INVALID);
  });
});

const withAmount = cases.filter(([, , e]) => 'amount' in e);
const withVersion = cases.filter(([, , e]) => 'v' in e);

describe.each(withAmount)('%s amount', (_name, schema, example) => {
  it('rejects float, negative, zero and too large amounts', () => {
    for (const amount of [12.5, -1, 0, 1e12]) {
      const r = rejection(schema, { ...example, amount });
      expect(r.code).toBe(ErrorCode.SCHEMA_INVALID);
      expect(r.message).toContain('amount');
    }
  });
});

describe.each(withVersion)('%s version', (_name, schema, example) => {
  it('rejects another protocol version than its own', () => {
    const own = example.v as number;
    for (const v of [own + 1, own - 1, 0, String(own), null]) {
      const r = rejection(schema, { ...example, v });
      expect(r.code).toBe(ErrorCode.UNSUPPORTED_VERSION);
      expect(r.message).toContain(`v must be ${own}`);
    }
  });
});

describe('payload decoding', () => {
  it('refuses oversize payloads before parsing', () => {
    const big = Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 0x20);
    expect(() => decodeUp('pay', big)).toThrow(expect.objectContaining({ code: ErrorCode.PAYLOAD_TOO_LARGE }));
  });

  it('refuses bad JSON and binary', () => {
    expect(() => decodeUp('pay', '{"v":1,')).toThrow(expect.objectContaining({ code: ErrorCode.BAD_JSON }));
    expect(() => decodeDown('result', Buffer.from([0xff, 0x00, 0x9c]))).toThrow(expect.objectContaining({ code: ErrorCode.BAD_JSON }));
    expect(() => decodeUp('heartbeat', 'null')).toThrow(expect.objectContaining({ code: ErrorCode.SCHEMA_INVALID }));
  });

  it('refuses deep nesting without crashing', () => {
    const deep = `${'['.repeat(1000)}${']'.repeat(1000)}`;
    expect(() => decodeUp('query', deep)).toThrow(expect.objectContaining({ code: ErrorCode.SCHEMA_INVALID }));
  });

  it('salvages the message id of an invalid message for the error reply', () => {
    expect(salvageMessageId(JSON.stringify({ ...UP_EXAMPLES.pay, amount: 1.5 }))).toBe('m-1001');
    expect(salvageMessageId('{"id":"bad id with spaces"}')).toBeUndefined();
    expect(salvageMessageId('not json')).toBeUndefined();
  });

  it('rejects an outTradeNo longer than WeChat allows', () => {
    const r = rejection(UP_SCHEMAS.query, { ...UP_EXAMPLES.query, outTradeNo: `${'a'.repeat(25)}-12345678` });
    expect(r.message).toContain('32');
  });
});

describe('protocol/README.md', () => {
  const readme = readFileSync(new URL('../../protocol/README.md', import.meta.url), 'utf8');
  it.each(cases)('shows the %s example exactly', (_name, _schema, example) => {
    expect(readme).toContain(JSON.stringify(example));
  });
});
