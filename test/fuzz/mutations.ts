import fc from 'fast-check';

/**
 * Mutations of a valid protocol message that must each make it invalid: wrong types, huge strings,
 * deep nesting, unknown fields, wrong version, missing fields, binary garbage, truncated JSON,
 * numbers as strings, NaN/Infinity text, negative/float/zero/oversize numbers, values outside an enum.
 * Every schema in protocol/ is strict and bounds every string at ≤ 64 characters, which is what
 * makes "always invalid" hold; the fuzz tests still check each case against decodeUp/decodeDown.
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export interface Mutant {
  mutation: string;
  payload: Buffer;
}

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

export function mutants(base: Record<string, Json>): fc.Arbitrary<Mutant> {
  const all = paths(base);
  const leaves = all.filter((p) => jsonType(getAt(base, p)) !== 'object');
  const numeric = leaves.filter((p) => typeof getAt(base, p) === 'number');
  const enums = leaves.filter((p) => ENUM_KEYS.has(p[p.length - 1]!) && typeof getAt(base, p) === 'string' && !/^\d+$/.test(getAt(base, p) as string));
  const objects = [[], ...all.filter((p) => jsonType(getAt(base, p)) === 'object')];
  const text = (mutation: string) => (s: string): Mutant => ({ mutation, payload: Buffer.from(s) });
  const obj = (mutation: string) => (o: Json): Mutant => ({ mutation, payload: Buffer.from(JSON.stringify(o)) });
  const pick = <T>(xs: T[]) => fc.constantFrom(...xs);

  const arbs: fc.Arbitrary<Mutant>[] = [
    // wrong JSON type at any field (including the nested status object itself)
    fc
      .tuple(pick(all), anyJson)
      .filter(([p, v]) => jsonType(v) !== jsonType(getAt(base, p)))
      .map(([p, v]) => obj('wrong-type')(setAt(base, p, v))),
    // huge strings: longer than any string field allows (200: the longest, a down/ message text), sometimes longer than a whole message may be
    fc
      .tuple(pick(all), fc.integer({ min: 201, max: 20_000 }), fc.constantFrom('x', '9', 'é', '\u{1F4B0}', '"', '\\'))
      .map(([p, n, ch]) => obj('huge-string')(setAt(base, p, ch.repeat(n)))),
    // deep nesting, inside a field or around the whole message
    fc
      .tuple(pick(all), fc.integer({ min: 1, max: 3_000 }), fc.constantFrom<'array' | 'object'>('array', 'object'))
      .map(([p, d, k]) => obj('deep-nesting')(setAt(base, p, nested(d, k, getAt(base, p))))),
    fc.tuple(fc.integer({ min: 1, max: 500 }), fc.constantFrom<'array' | 'object'>('array', 'object')).map(([d, k]) => obj('deep-nesting')(nested(d, k, base))),
    // unknown fields (strict schemas), added as text so "__proto__" really is a key
    fc
      .tuple(pick(objects), fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'V', 'amount ', 'id\u0000')), anyJson)
      .filter(([p, k]) => !Object.hasOwn(getAt(base, p) as Record<string, Json>, k))
      .map(([p, k, v]) => {
        const target = JSON.stringify(getAt(base, p));
        const grown = `${target.slice(0, -1)}${target.length > 2 ? ',' : ''}${JSON.stringify(k)}:${JSON.stringify(v)}}`;
        return text('unknown-field')(p.length === 0 ? grown : withRawValue(base, p, grown));
      }),
    // wrong version (or none)
    fc
      .oneof(fc.constantFrom<Json | undefined>(0, 2, -1, 1.5, '1', 'v1', null, true, [], {}, 1e308, undefined), fc.integer().filter((n) => n !== 1))
      .map((v) => obj('wrong-version')(setAt(base, ['v'], v))),
    // a required field missing
    pick(all).map((p) => obj('missing-field')(setAt(base, p, undefined))),
    // binary garbage, and garbage spliced into the valid text
    fc.uint8Array({ maxLength: 600 }).map((b) => ({ mutation: 'binary-garbage', payload: Buffer.from(b) })),
    fc
      .tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 }))
      .map(([at, junk]) => {
        const s = Buffer.from(JSON.stringify(base));
        const i = 1 + (at % (s.length - 1));
        return { mutation: 'binary-garbage', payload: Buffer.concat([s.subarray(0, i), Buffer.from(junk), s.subarray(i)]) };
      })
      .filter((m) => !isJson(m.payload)),
    // truncated JSON (every proper prefix of an object is invalid JSON)
    fc.nat().map((n) => {
      const s = JSON.stringify(base);
      return text('truncated-json')(s.slice(0, n % s.length));
    }),
  ];
  if (numeric.length) {
    arbs.push(
      pick(numeric).map((p) => obj('number-as-string')(setAt(base, p, String(getAt(base, p))))),
      fc
        .tuple(pick(numeric), fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e400', '-1e400', '0x10', '+1', '.5', '1.', '01', "'1'", 'undefined'))
        .map(([p, raw]) => text('nan-infinity-text')(withRawValue(base, p, raw))),
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
        .map(([p, v]) => obj('negative-float-amount')(setAt(base, p, v))),
    );
  }
  if (base.amount !== undefined) {
    arbs.push(fc.integer({ min: 10_000_001, max: Number.MAX_SAFE_INTEGER }).map((v) => obj('amount-over-max')(setAt(base, ['amount'], v))));
  }
  if (enums.length) {
    arbs.push(
      fc
        .tuple(pick(enums), fc.oneof(fc.constantFrom('', 'WECHAT', 'USD', 'cny', 'paid', ' wechat'), fc.string({ maxLength: 10 }).map((s) => `X${s}`)))
        .map(([p, v]) => obj('outside-enum')(setAt(base, p, v))),
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
