import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { DOWN_EXAMPLES, UP_EXAMPLES } from '../../protocol/examples.js';
import {
  classifyPaymentCode,
  decodeDown,
  decodeUp,
  DEFAULT_MAX_MINOR,
  DOWN_KINDS,
  DOWN_SCHEMAS,
  downTopic,
  ErrorCode,
  ERROR_CODES,
  parseAmount,
  parseTopic,
  ProtocolError,
  UP_KINDS,
  UP_SCHEMAS,
  upTopic,
  type DownKind,
  type UpKind,
} from '../../protocol/index.js';
import { DOWN_READ_RULES, expectedRead, mutants, UP_READ_RULES, type Json, type Mutant, type ReadRules } from './mutations.js';

/**
 * Pure fuzzing of the protocol's parsers (no network): each either returns a valid value or throws a
 * ProtocolError with a known ErrorCode from its own family — never a TypeError, a RangeError
 * (stack overflow), a zod error, or a wrong value. The MQTT decoders read tolerantly: a mutant's
 * expected answer (read, or refused with which code) comes from the mutation itself (mutations.ts).
 */
export const PROTOCOL_FUZZ = {
  decodeUp: 20_000,
  decodeDown: 20_000,
  parseTopic: 20_000,
  classifyPaymentCode: 20_000,
  parseAmount: 20_000,
} as const;
const SEED = 20261125;

const DECODE_CODES = new Set<string>([ErrorCode.PAYLOAD_TOO_LARGE, ErrorCode.BAD_JSON, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.SCHEMA_INVALID]);
const CODE_CODES = new Set<string>([ErrorCode.CODE_EMPTY, ErrorCode.CODE_NOT_DIGITS, ErrorCode.CODE_TOO_LONG, ErrorCode.CODE_WRONG_LENGTH, ErrorCode.CODE_UNKNOWN_PREFIX]);
const AMOUNT_CODES = new Set<string>([ErrorCode.AMOUNT_INVALID, ErrorCode.AMOUNT_NEGATIVE, ErrorCode.AMOUNT_PRECISION, ErrorCode.AMOUNT_TOO_LARGE, ErrorCode.AMOUNT_ZERO]);

const tally: Record<string, { ok: number; refused: number }> = {};

/** Runs `fn`; a returned value goes to `valid`, a throw must be a ProtocolError with a code in `allowed`. */
function outcome<T>(target: string, allowed: Set<string>, fn: () => T, valid: (v: T) => void): void {
  const t = (tally[target] ??= { ok: 0, refused: 0 });
  let value: T;
  try {
    value = fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw new Error(`${target} threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    if (!(ERROR_CODES as readonly string[]).includes(err.code) || !allowed.has(err.code)) throw new Error(`${target} threw ProtocolError with unexpected code ${err.code}`);
    if (typeof err.message !== 'string' || err.message.length === 0) throw new Error(`${target} threw a ProtocolError without a message`);
    t.refused++;
    return;
  }
  valid(value);
  t.ok++;
}

/** A mutant is answered exactly as its mutation says; what is read is the known fields of the input. */
function exactly(target: string, m: Mutant, decode: () => unknown, shape: Record<string, unknown>, rules: ReadRules): void {
  const t = (tally[target] ??= { ok: 0, refused: 0 });
  const what = `${target} ${m.mutation} ${m.payload.toString().slice(0, 200)}`;
  let value: unknown;
  try {
    value = decode();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw new Error(`${what}: threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    if (err.code !== m.expect) throw new Error(`${what}: refused with ${err.code}, expected ${m.expect}`);
    t.refused++;
    return;
  }
  if (m.expect !== 'read') throw new Error(`${what}: read, expected ${m.expect}`);
  expect(value, what).toEqual(expectedRead(JSON.parse(m.payload.toString()) as Record<string, Json>, shape, rules));
  t.ok++;
}

/** Garbage: any decode refusal, or, if by chance read, exactly the known fields. */
function anyRefusal(target: string, payload: string | Buffer, decode: () => unknown, shape: Record<string, unknown>, rules: ReadRules): void {
  outcome(target, DECODE_CODES, decode, (v) => expect(v).toEqual(expectedRead(JSON.parse(payload.toString()) as Record<string, Json>, shape, rules)));
}

const bytes = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));
const garbage = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 100 }),
  bytes,
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.object({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ''),
);

/**
 * One direction's decoder under fuzzing: mutants of each kind's example (answered exactly as their
 * mutation says), garbage (any decode refusal), and the valid example itself (read).
 */
function fuzzDecoder<K extends string>(
  target: string,
  kinds: readonly K[],
  examples: Record<K, unknown>,
  schemas: Record<K, { shape: Record<string, unknown> }>,
  rules: Record<K, ReadRules>,
  decode: (kind: K, payload: string | Buffer) => unknown,
  run: { seed: number; numRuns: number },
): void {
  const valid = (kind: K): Mutant => ({ mutation: 'valid', payload: Buffer.from(JSON.stringify(examples[kind])), expect: 'read' });
  const arb = fc.constantFrom(...kinds).chain((kind) =>
    fc.record({
      kind: fc.constant(kind),
      input: fc.oneof(
        { weight: 6, arbitrary: mutants(examples[kind] as Record<string, Json>, rules[kind]) },
        { weight: 3, arbitrary: garbage },
        { weight: 1, arbitrary: fc.constant(valid(kind)) },
      ),
    }),
  );
  fc.assert(
    fc.property(arb, ({ kind, input }) => {
      const shape = schemas[kind].shape;
      if (typeof input === 'object' && 'expect' in input) return exactly(target, input, () => decode(kind, input.payload), shape, rules[kind]);
      anyRefusal(target, input, () => decode(kind, input), shape, rules[kind]);
    }),
    run,
  );
}

afterAll(() => {
  for (const [target, t] of Object.entries(tally)) console.log(`fuzz protocol ${target}: ${t.ok + t.refused} cases, ${t.refused} refused with a ProtocolError, ${t.ok} valid`);
});

describe('protocol parsers under fuzzing (seeded, no network)', () => {
  it(`decodeUp: ${PROTOCOL_FUZZ.decodeUp} mutated, garbage and valid payloads`, () => {
    fuzzDecoder('decodeUp', UP_KINDS, UP_EXAMPLES, UP_SCHEMAS, UP_READ_RULES, decodeUp, { seed: SEED, numRuns: PROTOCOL_FUZZ.decodeUp });
    expect(tally.decodeUp!.ok + tally.decodeUp!.refused).toBe(PROTOCOL_FUZZ.decodeUp);
    expect(tally.decodeUp!.ok).toBeGreaterThan(0);
  });

  it(`decodeDown: ${PROTOCOL_FUZZ.decodeDown} mutated, garbage and valid payloads`, () => {
    fuzzDecoder('decodeDown', DOWN_KINDS, DOWN_EXAMPLES, DOWN_SCHEMAS, DOWN_READ_RULES, decodeDown, { seed: SEED + 1, numRuns: PROTOCOL_FUZZ.decodeDown });
    expect(tally.decodeDown!.ok).toBeGreaterThan(0);
  });

  it(`parseTopic: ${PROTOCOL_FUZZ.parseTopic} random and near-valid topics; a parsed topic rebuilds to itself`, () => {
    const level = fc.oneof(
      fc.constantFrom('scanbox', 'v1', 'v2', 'd', 'up', 'down', 'UP', 'Pay', ...UP_KINDS, ...DOWN_KINDS, '+', '#', '$SYS', '', ' ', 'sb7K2M9QX4TA', 'a'.repeat(65), '..', '\u0000'),
      fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/),
      fc.string({ maxLength: 8, unit: 'grapheme' }),
    );
    const shaped = fc
      .tuple(
        fc.oneof(fc.constant('scanbox'), level),
        fc.oneof(fc.constant('v1'), level),
        fc.oneof(fc.constant('d'), level),
        fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), level),
        fc.oneof(fc.constantFrom('up', 'down'), level),
        fc.oneof(fc.constantFrom(...UP_KINDS, ...DOWN_KINDS), level),
      )
      .map((parts) => parts.join('/'));
    const arb = fc.oneof(shaped, fc.array(level, { maxLength: 10 }).map((l) => l.join('/')), fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 80 }), shaped.map((t) => `${t}/`), shaped.map((t) => `/${t}`));
    fc.assert(
      fc.property(arb, (topic) =>
        outcome('parseTopic', new Set([ErrorCode.TOPIC_INVALID]), () => parseTopic(topic), (t) => {
          const rebuilt = t.direction === 'up' ? upTopic(t.deviceId, t.kind) : downTopic(t.deviceId, t.kind);
          if (rebuilt !== topic) throw new Error(`parseTopic(${JSON.stringify(topic)}) does not rebuild to itself`);
        }),
      ),
      { seed: SEED + 2, numRuns: PROTOCOL_FUZZ.parseTopic },
    );
    expect(tally.parseTopic!.ok).toBeGreaterThan(0);
  });

  it(`classifyPaymentCode: ${PROTOCOL_FUZZ.classifyPaymentCode} codes; an accepted one follows its wallet's published rule`, () => {
    const prefixed = fc.tuple(fc.integer({ min: 0, max: 99 }), fc.stringMatching(/^\d{0,30}$/)).map(([p, rest]) => `${String(p).padStart(2, '0')}${rest}`);
    // Wallet-shaped: a published prefix and a length at, or one off, the published bounds.
    const shaped = fc
      .constantFrom([10, 15, 18, 18], [25, 30, 16, 24], [62, 62, 19, 19])
      .chain(([pMin, pMax, lMin, lMax]) => fc.tuple(fc.integer({ min: pMin!, max: pMax! }), fc.integer({ min: lMin! - 1, max: lMax! + 1 }), fc.stringMatching(/^\d{30}$/)))
      .map(([p, len, digits]) => `${p}${digits}`.slice(0, len));
    const arb = fc.tuple(fc.oneof(shaped, prefixed, fc.stringMatching(/^\d{0,40}$/), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 })), fc.constantFrom('', '', '\r', '\n', '\r\n', '\n\r\n', ' ')).map(([c, end]) => c + end);
    fc.assert(
      fc.property(arb, (raw) =>
        outcome('classifyPaymentCode', CODE_CODES, () => classifyPaymentCode(raw), (pc) => {
          const code = raw.replace(/[\r\n]+$/, '');
          const p = Number(code.slice(0, 2));
          const ok =
            pc.code === code &&
            /^\d+$/.test(code) &&
            ((pc.wallet === 'wechat' && p >= 10 && p <= 15 && code.length === 18) ||
              (pc.wallet === 'alipay' && p >= 25 && p <= 30 && code.length >= 16 && code.length <= 24) ||
              (pc.wallet === 'unionpay' && p === 62 && code.length === 19));
          if (!ok) throw new Error(`classifyPaymentCode(${JSON.stringify(raw)}) accepted it as ${pc.wallet}`);
        }),
      ),
      { seed: SEED + 3, numRuns: PROTOCOL_FUZZ.classifyPaymentCode },
    );
    expect(tally.classifyPaymentCode!.ok).toBeGreaterThan(0);
  });

  it(`parseAmount: ${PROTOCOL_FUZZ.parseAmount} amounts; an accepted one is the exact decimal in fen, never via a float`, () => {
    const decimal = fc.tuple(fc.constantFrom('', '', '-', '+', ' ', '0'), fc.stringMatching(/^\d{0,12}$/), fc.option(fc.stringMatching(/^\d{0,4}$/)), fc.constantFrom('', '', ' ', '\n', 'e3', '.')).map(([s, w, f, e]) => `${s}${w}${f === null ? '' : `.${f}`}${e}`);
    const arb = fc.oneof(decimal, fc.double().map(String), fc.bigInt().map(String), fc.string({ maxLength: 30 }), fc.constantFrom('NaN', 'Infinity', '1e5', '0x10', '١٢', '１２', '12,34', '0.1+0.2', '', ' ', '.5', '5.'));
    fc.assert(
      fc.property(arb, (text) =>
        outcome('parseAmount', AMOUNT_CODES, () => parseAmount(text), (minor) => {
          const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
          const exact = m ? BigInt(m[1]!) * 100n + BigInt((m[2] ?? '').padEnd(2, '0')) : undefined;
          if (!Number.isSafeInteger(minor) || minor < 0 || minor > DEFAULT_MAX_MINOR || exact === undefined || BigInt(minor) !== exact) {
            throw new Error(`parseAmount(${JSON.stringify(text)}) = ${minor}`);
          }
        }),
      ),
      { seed: SEED + 4, numRuns: PROTOCOL_FUZZ.parseAmount },
    );
    expect(tally.parseAmount!.ok).toBeGreaterThan(0);
  });
});
