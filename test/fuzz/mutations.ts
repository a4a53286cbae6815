import fc from 'fast-check';
import { ATTEMPT_STATES, CancelReason, Command, ERROR_CODES, FINAL_STATES, PortState, ProgressStage, REFUND_REASONS, REFUND_STATES, RESULT_REASONS, WALLETS, type DownKind, type UpKind } from '../../protocol/index.js';

/**
 * Mutations of a valid protocol message: wrong types, huge strings, deep nesting, unknown fields,
 * wrong version, missing fields, binary garbage, truncated JSON, numbers as strings, NaN/Infinity
 * text, negative/float/zero/oversize numbers, values outside an enum.
 *
 * Each mutant carries what a reader must answer (`expect`), worked out from the mutation alone and
 * the reading rules restated below from protocol/README.md — never by asking the decoder. Under
 * STRICT rules (pairing bodies, ECR lines) every mutation is refused. Under an MQTT reader's rules
 * (protocol/README.md "Evolution rules") unknown fields, a newer `v`, an absent optional field and
 * an unknown value of an open enum are read; everything else is refused with the code below.
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
/** 'read': decoded, by the fields the reader knows; otherwise the ErrorCode of the refusal. */
export type Expect = 'read' | 'PAYLOAD_TOO_LARGE' | 'BAD_JSON' | 'UNSUPPORTED_VERSION' | 'SCHEMA_INVALID';
export interface Mutant {
  mutation: string;
  payload: Buffer;
  expect: Expect;
}

export interface ReadRules {
  /** Unknown fields are dropped and any whole `v` ≥ 1 is read; false: both refused. */
  tolerant: boolean;
  /** Dotted paths of the fields that may be absent. */
  optional: readonly string[];
  /** Dotted paths of the enums read tolerantly (an unknown 1–64 character string is UNKNOWN), with their known values. */
  openEnums: Readonly<Record<string, readonly string[]>>;
}
export const STRICT: ReadRules = { tolerant: false, optional: [], openEnums: {} };

/** The MQTT readers' rules, as protocol/README.md states them ("Evolution rules"). A pay's wallet and every money field stay closed. */
export const UP_READ_RULES: Record<UpKind, ReadRules> = {
  pay: { tolerant: true, optional: [], openEnums: {} },
  cancel: { tolerant: true, optional: [], openEnums: { reason: CancelReason.options } },
  query: { tolerant: true, optional: [], openEnums: {} },
  ack: { tolerant: true, optional: [], openEnums: { state: FINAL_STATES } },
  heartbeat: { tolerant: true, optional: [], openEnums: { 'status.scanner': PortState.options, 'status.ecr': PortState.options } },
  refund: { tolerant: true, optional: [], openEnums: {} },
  totals: { tolerant: true, optional: [], openEnums: {} },
  doctor: { tolerant: true, optional: [], openEnums: {} },
};
export const DOWN_READ_RULES: Record<DownKind, ReadRules> = {
  result: { tolerant: true, optional: ['reason', 'wallet', 'message'], openEnums: { state: ATTEMPT_STATES, reason: RESULT_REASONS, wallet: WALLETS } },
  progress: { tolerant: true, optional: ['message'], openEnums: { stage: ProgressStage.options } },
  error: { tolerant: true, optional: ['refId', 'outTradeNo'], openEnums: { code: ERROR_CODES } },
  command: { tolerant: true, optional: [], openEnums: { command: Command.options } },
  refund: { tolerant: true, optional: ['reason', 'refundedTotal', 'remaining', 'message'], openEnums: { state: REFUND_STATES, reason: REFUND_REASONS } },
  totals: { tolerant: true, optional: [], openEnums: {} },
};

/**
 * What a reader under `rules` must return for `input`: the fields of `shape` (the strict sending
 * schema's keys), nothing else, with an open enum's unknown value as UNKNOWN.
 */
export function expectedRead(input: Record<string, Json>, shape: Record<string, unknown>, rules: ReadRules, at: Path = []): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const key of Object.keys(shape)) {
    if (!Object.hasOwn(input, key)) continue;
    const path = [...at, key];
    const value = input[key]!;
    const nested = (shape[key] as { shape?: Record<string, unknown> }).shape;
    const known = rules.openEnums[path.join('.')];
    if (nested) out[key] = expectedRead(value as Record<string, Json>, nested, rules, path);
    else if (known && !known.includes(value as string)) out[key] = 'UNKNOWN';
    else out[key] = value;
  }
  return out;
}
/** protocol's MAX_PAYLOAD_BYTES: checked before anything else. */
const MAX_PAYLOAD_BYTES = 4096;

type Path = string[];

function paths(obj: Record<string, Json>, prefix: Path = []): Path[] {
  return Object.entries(obj).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? [[...prefix, k], ...paths(v, [...prefix, k])] : [[...prefix, k]],
  );
}

function getAt(obj: Json, path: Path): Json {
  return path.reduce<Json>((o, k) => (o as Record<string, Json>)[k]!, obj);
}

/** A deep copy with `path` set to `value` (or deleted when value is undefined). */
function setAt(obj: Record<string, Json>, path: Path, value: Json | undefined): Record<string, Json> {
  const copy = structuredClone(obj);
  const parent = getAt(copy, path.slice(0, -1)) as Record<string, Json>;
  const key = path[path.length - 1]!;
  if (value === undefined) delete parent[key];
  else parent[key] = value;
  return copy;
}

/** JSON text with the value at `path` replaced by raw text (not necessarily JSON). */
function withRawValue(obj: Record<string, Json>, path: Path, raw: string): string {
  const marker = '\u0000RAW\u0000';
  return JSON.stringify(setAt(obj, path, marker)).replace(JSON.stringify(marker), raw);
}

const jsonType = (v: Json | undefined) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

const anyJson: fc.Arbitrary<Json> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 20 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }),
);

function nested(depth: number, kind: 'array' | 'object', leaf: Json): Json {
  let v: Json = leaf;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
}

/** Keys that hold an enum value in some up/ or down/ message. */
const ENUM_KEYS = new Set(['wallet', 'currency', 'reason', 'state', 'scanner', 'ecr', 'stage', 'command', 'code']);

const isVersion = (p: Path) => p.length === 1 && p[0] === 'v';
/** A field this reader cannot read: a bad `v` is an unsupported version, anything else an invalid message. */
const badField = (p: Path): Expect => (isVersion(p) ? 'UNSUPPORTED_VERSION' : 'SCHEMA_INVALID');

function versionExpect(v: Json | undefined, rules: ReadRules): Expect {
  if (v === undefined) return 'SCHEMA_INVALID';
  if (v === 1) return 'read';
  return rules.tolerant && typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 ? 'read' : 'UNSUPPORTED_VERSION';
}

export function mutants(base: Record<string, Json>, rules: ReadRules = STRICT): fc.Arbitrary<Mutant> {
  const all = paths(base);
  const leaves = all.filter((p) => jsonType(getAt(base, p)) !== 'object');
  const numeric = leaves.filter((p) => typeof getAt(base, p) === 'number');
  const enums = leaves.filter((p) => ENUM_KEYS.has(p[p.length - 1]!) && typeof getAt(base, p) === 'string' && !/^\d+$/.test(getAt(base, p) as string));
  const objects = [[], ...all.filter((p) => jsonType(getAt(base, p)) === 'object')];
  const sized = (payload: Buffer, expect: Expect): Expect => (payload.length > MAX_PAYLOAD_BYTES ? 'PAYLOAD_TOO_LARGE' : expect);
  const text = (mutation: string, expect: Expect) => (s: string): Mutant => {
    const payload = Buffer.from(s);
    return { mutation, payload, expect: sized(payload, expect) };
  };
  const obj = (mutation: string, expect: Expect) => (o: Json): Mutant => text(mutation, expect)(JSON.stringify(o));
  const pick = <T>(xs: T[]) => fc.constantFrom(...xs);
  const known = (p: Path, k: string) => Object.hasOwn(getAt(base, p) as Record<string, Json>, k) || rules.optional.includes([...p, k].join('.'));
  const openEnum = (p: Path, v: string) => rules.openEnums[p.join('.')] !== undefined && v.length >= 1 && v.length <= 64;

  const arbs: fc.Arbitrary<Mutant>[] = [
    // wrong JSON type at any field (including the nested status object itself)
    fc
      .tuple(pick(all), anyJson)
      .filter(([p, v]) => jsonType(v) !== jsonType(getAt(base, p)))
      .map(([p, v]) => obj('wrong-type', badField(p))(setAt(base, p, v))),
    // huge strings: longer than any string field allows (200: the longest, a down/ message text), sometimes longer than a whole message may be
    fc
      .tuple(pick(all), fc.integer({ min: 201, max: 20_000 }), fc.constantFrom('x', '9', 'é', '\u{1F4B0}', '"', '\\'))
      .map(([p, n, ch]) => obj('huge-string', badField(p))(setAt(base, p, ch.repeat(n)))),
    // deep nesting, inside a field or around the whole message
    fc
      .tuple(pick(all), fc.integer({ min: 1, max: 3_000 }), fc.constantFrom<'array' | 'object'>('array', 'object'))
      .map(([p, d, k]) => obj('deep-nesting', badField(p))(setAt(base, p, nested(d, k, getAt(base, p))))),
    fc.tuple(fc.integer({ min: 1, max: 500 }), fc.constantFrom<'array' | 'object'>('array', 'object')).map(([d, k]) => obj('deep-nesting', 'SCHEMA_INVALID')(nested(d, k, base))),
    // unknown fields, added as text so "__proto__" really is a key
    fc
      .tuple(pick(objects), fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'V', 'amount ', 'id\u0000')), anyJson)
      .filter(([p, k]) => !known(p, k))
      .map(([p, k, v]) => {
        const target = JSON.stringify(getAt(base, p));
        const grown = `${target.slice(0, -1)}${target.length > 2 ? ',' : ''}${JSON.stringify(k)}:${JSON.stringify(v)}}`;
        return text('unknown-field', rules.tolerant ? 'read' : 'SCHEMA_INVALID')(p.length === 0 ? grown : withRawValue(base, p, grown));
      }),
    // another version (or none)
    fc
      .oneof(fc.constantFrom<Json | undefined>(0, 2, -1, 1.5, '1', 'v1', null, true, [], {}, 1e308, undefined), fc.integer().filter((n) => n !== 1))
      .map((v) => obj('wrong-version', versionExpect(v, rules))(setAt(base, ['v'], v))),
    // a field missing
    pick(all).map((p) => obj('missing-field', rules.optional.includes(p.join('.')) ? 'read' : 'SCHEMA_INVALID')(setAt(base, p, undefined))),
    // binary garbage (which may by chance be some JSON value, never a message), and garbage spliced into the valid text
    fc.uint8Array({ maxLength: 600 }).map((b) => {
      const payload = Buffer.from(b);
      return { mutation: 'binary-garbage', payload, expect: isJson(payload) ? 'SCHEMA_INVALID' : 'BAD_JSON' } as const;
    }),
    fc
      .tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 }))
      .map(([at, junk]) => {
        const s = Buffer.from(JSON.stringify(base));
        const i = 1 + (at % (s.length - 1));
        return { mutation: 'binary-garbage', payload: Buffer.concat([s.subarray(0, i), Buffer.from(junk), s.subarray(i)]), expect: 'BAD_JSON' } as const;
      })
      .filter((m) => !isJson(m.payload)),
    // truncated JSON (every proper prefix of an object is invalid JSON)
    fc.nat().map((n) => {
      const s = JSON.stringify(base);
      return text('truncated-json', 'BAD_JSON')(s.slice(0, n % s.length));
    }),
  ];
  if (numeric.length) {
    arbs.push(
      pick(numeric).map((p) => obj('number-as-string', badField(p))(setAt(base, p, String(getAt(base, p))))),
      fc
        .tuple(pick(numeric), fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e400', '-1e400', '0x10', '+1', '.5', '1.', '01', "'1'", 'undefined'))
        .map(([p, raw]) => {
          // 1e400 is JSON (it reads as Infinity, a bad number); the rest is not JSON at all.
          const payload = Buffer.from(withRawValue(base, p, raw));
          return text('nan-infinity-text', isJson(payload) ? badField(p) : 'BAD_JSON')(payload.toString());
        }),
      fc
        .tuple(
          pick(numeric),
          fc.oneof(
            fc.integer({ min: -1e9, max: -1 }),
            fc.double({ min: -1e9, max: 1e9, noNaN: true }).filter((x) => !Number.isInteger(x)),
            fc.constantFrom(0, -0, 0.5, 12.34, 1e21, Number.MAX_SAFE_INTEGER + 2, -Number.MAX_VALUE),
          ),
        )
        .filter(([p, v]) => !(v === 0 || Object.is(v, -0)) || ['amount', 'ts', 'v'].includes(p[p.length - 1]!))
        .map(([p, v]) => obj('negative-float-amount', badField(p))(setAt(base, p, v))),
    );
  }
  if (base.amount !== undefined) {
    arbs.push(fc.integer({ min: 10_000_001, max: Number.MAX_SAFE_INTEGER }).map((v) => obj('amount-over-max', 'SCHEMA_INVALID')(setAt(base, ['amount'], v))));
  }
  if (enums.length) {
    arbs.push(
      fc
        .tuple(pick(enums), fc.oneof(fc.constantFrom('', 'WECHAT', 'USD', 'cny', 'paid', ' wechat'), fc.string({ maxLength: 10 }).map((s) => `X${s}`)))
        .map(([p, v]) => obj('outside-enum', openEnum(p, v) ? 'read' : 'SCHEMA_INVALID')(setAt(base, p, v))),
    );
  }
  return fc.oneof(...arbs);
}

function isJson(b: Buffer): boolean {
  try {
    JSON.parse(b.toString());
    return true;
  } catch {
    return false;
  }
}
