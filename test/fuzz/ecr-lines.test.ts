import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_MINOR, ECR_CAPABILITIES, isEcrLineFor, ErrorCode, ERROR_CODES, MAX_ECR_LINE_BYTES, type EcrOutbound } from '../../protocol/index.js';
import { waitUntil } from '../device/wait-until.js';
import type { LogLine } from '../device/agent-harness.js';
import { CODES, cut, emitChunks, expectHealthy, moneyRows, ReferenceLines, show, startFuzzBox, tally, type FuzzBox, type RefItem } from './device-fuzz.js';
import { mutants, type Json } from './mutations.js';

/**
 * Fuzzing the box's cash-register (ECR) port: random bytes, truncated JSON, wrong types, float /
 * negative / zero / huge amounts, unknown types and fields, huge strings, deep nesting, binary, lines
 * over 1 KB, and the cashier-flow errors (a sale for a ref already in use, a cancel for an unknown
 * ref), written to a real agent with no sale open, with a sale waiting for a code, and with a
 * payment of that sale in flight. Every bad line must be answered on the ECR port with one `error`
 * line whose ErrorCode is the one an oracle written here from the documented line protocol (and an
 * independent model of the framing) gives, carrying the ref when the line had a readable one; no sale, attempt or outbox row may
 * appear or change; and afterwards a valid sale → scan → PAID still works.
 */
export const ECR_LINE_CASES = { noSale: 1_000, saleWaiting: 1_000, paymentInFlight: 500 } as const;
const SEED = 6_0021;

const SALE: Record<string, Json> = { type: 'sale', ref: 'F-1', amount: 1234, currency: 'CNY' };
const CANCEL: Record<string, Json> = { type: 'cancel', ref: 'F-1' };

interface EcrCase {
  kind: string;
  chunks: Uint8Array[];
}
type Reply = { code: string; ref?: string };

// ── generators ───────────────────────────────────────────────────────────────────────────────────

const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const json = (o: unknown) => JSON.stringify(o);
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 });
const refArb = fc.oneof(fc.constantFrom('F-1', 'FZ-1', 'x'), fc.stringMatching(/^[!-~]{1,64}$/));
const badAmount = fc.oneof(
  fc.double({ noNaN: true }).filter((x) => !Number.isInteger(x)),
  fc.integer({ min: -1e9, max: 0 }),
  fc.integer({ min: DEFAULT_MAX_MINOR + 1, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom<Json>(-0, 0.1, 12.34, 1e21, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, '1234', '', null, true, [], {}, [1234], { fen: 1234 }),
);

const lineText: fc.Arbitrary<[string, Uint8Array]> = fc.oneof(
  { weight: 6, arbitrary: mutants(SALE).map((m): [string, Uint8Array] => [`sale:${m.mutation}`, new Uint8Array(m.payload)]) },
  { weight: 3, arbitrary: mutants(CANCEL).map((m): [string, Uint8Array] => [`cancel:${m.mutation}`, new Uint8Array(m.payload)]) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 1_500 }).map((b): [string, Uint8Array] => ['random-bytes', b]) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }).map((s): [string, Uint8Array] => ['random-unicode', utf8(s)]) },
  { weight: 2, arbitrary: fc.tuple(refArb, badAmount).map(([ref, amount]): [string, Uint8Array] => ['bad-amount', utf8(json({ ...SALE, ref, amount }))]) },
  {
    // a bad line wrapped in whitespace JSON does not know (NBSP, BOM, LS, VT, FF) or that it does
    weight: 1,
    arbitrary: fc
      .tuple(refArb, badAmount, fc.constantFrom(' ', '\t', '\u00a0', '\ufeff', '\u2028', '\v', '\f'), fc.boolean())
      .map(([ref, amount, ws, both]): [string, Uint8Array] => ['whitespace-wrapped', utf8(`${ws}${json({ ...SALE, ref, amount })}${both ? ws : ''}`)]),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom<Json>('SALE', 'REFUND', 'refund_result', 'progress', 'result', 'error', ' sale', 'sale\u0000', 1, null, ['sale'])), refArb)
      .filter(([t]) => !(ECR_CAPABILITIES as readonly Json[]).includes(t))
      .map(([type, ref]): [string, Uint8Array] => ['unknown-type', utf8(json({ ...SALE, type, ref }))]),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 65, max: 3_000 }).map((n): [string, Uint8Array] => ['huge-ref', utf8(json({ ...SALE, ref: 'R'.repeat(n) }))]),
  },
  {
    // A valid sale or cancel padded past the line limit must still be refused.
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(SALE, CANCEL), fc.integer({ min: MAX_ECR_LINE_BYTES - 80, max: 4_000 }), fc.constantFrom(' ', '\t'))
      .map(([o, n, pad]): [string, Uint8Array] => ['valid-but-padded', utf8(`${json(o).slice(0, -1)}${pad.repeat(n)}}`)]),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('1234', '"sale"', 'null', 'true', '[]', '[{"type":"sale"}]', '{}', '{"type":"sale"}', '{"type":"cancel"}', '{"ref":"F-1"}', '{"type":"sale","ref":"F-1"', '{"type":"sale","ref":"F-1"}}', "{'type':'sale'}", '{"type":"sale","ref":"F-1","amount":1234,"currency":"CNY",}', '\u0000', '{"__proto__":{"type":"sale"},"ref":"F-1"}')
      .map((s): [string, Uint8Array] => ['odd-json', utf8(s)]),
  },
);
const TERMINATORS = ['\n', '\r', '\r\n', ''] as const;
const ecrCase: fc.Arbitrary<EcrCase> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(lineText, fc.constantFrom(...TERMINATORS), cuts).map(([[kind, b], t, c]) => ({ kind, chunks: cut(new Uint8Array([...b, ...utf8(t)]), c) })) },
  {
    // several bad lines in one write, mixed line ends; checked by count and code, line by line
    weight: 1,
    arbitrary: fc.array(fc.tuple(lineText, fc.constantFrom('\n', '\r', '\r\n')), { minLength: 2, maxLength: 4 }).map((ls) => ({
      kind: 'batch',
      chunks: [new Uint8Array(ls.flatMap(([[, b], t]) => [...b, ...utf8(t)]))],
    })),
  },
);

// ── the oracle ───────────────────────────────────────────────────────────────────────────────────

/** The protocol's answer to one framed line: an error, nothing (blank line), or "valid" (not noise). */
function replyFor(item: RefItem): Reply | 'blank' | 'valid' {
  if (item.kind === 'tooLong') return { code: ErrorCode.LINE_TOO_LONG };
  const text = item.text.trim();
  if (text === '') return 'blank';
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { code: ErrorCode.BAD_JSON };
  }
  if (isEcrInbound(value)) return 'valid';
  // The ref is echoed when the line, as sent, is a JSON object with a well-formed ref.
  const ref = refOf(item.text);
  return isRef(ref) ? { code: ErrorCode.SCHEMA_INVALID, ref } : { code: ErrorCode.SCHEMA_INVALID };
}

/**
 * The ECR → box lines as protocol/ECR.md documents them, written here rather than taken from the
 * schema under test (protocol/ecr.ts): an object whose `type` is a sale `{type:"sale", ref, amount,
 * currency}`, a cancel `{type:"cancel", ref}`, a lookup `{type:"lookup", ref}` or a hello
 * `{type:"hello"}` with an optional `name` (a string of at most 64 characters); any of them may
 * carry `v`, a whole number ≥ 1; every other field is ignored (ECR v2 reads tolerantly). `ref` 1–64
 * printable ASCII characters without spaces; `amount` whole fen from 1 to the configured maximum;
 * currency CNY.
 */
function isEcrInbound(v: unknown): boolean {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  if ('v' in o && !(typeof o.v === 'number' && Number.isSafeInteger(o.v) && o.v >= 1)) return false;
  if (o.type === 'hello') return !('name' in o) || (typeof o.name === 'string' && o.name.length <= 64);
  if (o.type === 'cancel' || o.type === 'lookup') return isRef(o.ref);
  if (o.type !== 'sale' || !isRef(o.ref) || o.currency !== 'CNY') return false;
  return typeof o.amount === 'number' && Number.isInteger(o.amount) && o.amount >= 1 && o.amount <= DEFAULT_MAX_MINOR;
}

function isRef(r: unknown): r is string {
  return typeof r === 'string' && r.length >= 1 && r.length <= 64 && [...r].every((ch) => ch >= '!' && ch <= '~');
}

function refOf(text: string): unknown {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as { ref?: unknown }).ref : undefined;
  } catch {
    return undefined;
  }
}

/** What the error's message must say for its code: the ECR programmer has to be able to fix their side. */
const MESSAGE: Record<string, RegExp> = {
  [ErrorCode.LINE_TOO_LONG]: new RegExp(`over ${MAX_ECR_LINE_BYTES} bytes`),
  [ErrorCode.BAD_JSON]: /JSON/,
  [ErrorCode.SCHEMA_INVALID]: /^line is invalid: \S/,
  [ErrorCode.SALE_UNKNOWN]: /ref|sale/,
  [ErrorCode.SALE_BUSY]: /sale/,
  [ErrorCode.SALE_ALREADY_PAID]: /paid/,
};

// ── the run ──────────────────────────────────────────────────────────────────────────────────────

let fz: FuzzBox;
const byKind = new Map<string, number>();
const byCode = new Map<string, number>();
let cases = 0;
let lines = 0;
let blank = 0;
let skippedValid = 0;
let splitReads = 0;
let flowCases = 0;

beforeAll(async () => {
  fz = await startFuzzBox();
});
afterAll(async () => {
  console.log(
    `fuzz ecr-lines: ${cases} cases (${ECR_LINE_CASES.noSale} no sale, ${ECR_LINE_CASES.saleWaiting} sale waiting, ${ECR_LINE_CASES.paymentInFlight} payment in flight) + ${flowCases} cashier-flow cases, ${lines} lines answered, ${blank} blank lines ignored, ${splitReads} written in several reads, ${skippedValid} valid mutants not sent; errors: ${show(byCode)}; kinds: ${show(byKind)}`,
  );
  await fz?.close();
});

const errorsOf = (ls: EcrOutbound[]) => ls.map((l) => (l.type === 'error' ? { code: l.code, ...(l.ref === undefined ? {} : { ref: l.ref }) } : { unexpected: l }));
const isBadLineLog = (l: LogLine) => l.msg === 'bad line from the cash register';

let sentinelSeq = 0;
/** A cancel for a ref nobody used: its SALE_UNKNOWN reply marks the end of what came before it. */
async function sentinel(what: string, from: number): Promise<EcrOutbound[]> {
  const { box } = fz;
  const ref = `ZS-${++sentinelSeq}`;
  await emitChunks(box, box.ecrPath, [utf8(`${json({ type: 'cancel', ref })}\n`)]);
  await box.ecrOut.find((l) => l.type === 'error' && l.ref === ref && l.code === ErrorCode.SALE_UNKNOWN, `${what}: the sentinel's SALE_UNKNOWN`, 5_000, from);
  return box.ecrOut.items.slice(from).filter((l) => l.ref !== ref);
}

async function runCase(c: EcrCase, n: number): Promise<boolean> {
  const { box, cloud, db } = fz;
  const model = new ReferenceLines(MAX_ECR_LINE_BYTES, 'utf8');
  const items = c.chunks.flatMap((ch) => model.feed(ch));
  const needEnd = !model.idle;
  if (needEnd) items.push(...model.feed(utf8('\n')));
  const replies = items.map(replyFor);
  if (replies.includes('valid')) {
    skippedValid++;
    return false;
  }
  const want = replies.filter((r): r is Reply => r !== 'blank');

  const mark = box.logs.mark();
  const ecrMark = box.ecrOut.mark();
  const rowsBefore = moneyRows(db);
  const bookBefore = box.agent.book();
  const paysBefore = cloud.up.filter((u) => u.kind === 'pay').length;
  await emitChunks(box, box.ecrPath, c.chunks);
  if (needEnd) await emitChunks(box, box.ecrPath, [utf8('\n')]);
  const got = await sentinel(`case ${n} (${c.kind})`, ecrMark).catch((e: Error) => {
    throw new Error(`case ${n} (${c.kind}) ${JSON.stringify(c.chunks.map((ch) => Buffer.from(ch).toString('latin1')).join('|')).slice(0, 300)}: ${e.message.slice(0, 600)}`);
  });
  expect(box.ecrOut.items.slice(ecrMark).length).toBe(got.length + 1);

  expect({ case: n, kind: c.kind, replies: errorsOf(got) }).toEqual({ case: n, kind: c.kind, replies: want });
  for (const l of got) {
    if (l.type !== 'error') continue;
    expect(ERROR_CODES).toContain(l.code);
    expect(l.message, `case ${n}: message of ${l.code}`).toMatch(MESSAGE[l.code]!);
  }
  const logged = box.logs.items.slice(mark).filter(isBadLineLog);
  expect(logged.map((l) => l.code)).toEqual(want.map((w) => w.code));
  // Money state: not one journal row, not one sale or attempt in memory, no pay.
  expect(moneyRows(db)).toEqual(rowsBefore);
  expect(box.agent.book().sales).toEqual(bookBefore.sales);
  expect(box.agent.book().attempts).toEqual(bookBefore.attempts);
  expect(cloud.up.filter((u) => u.kind === 'pay')).toHaveLength(paysBefore);
  expectHealthy(box, mark);

  cases++;
  lines += want.length;
  blank += replies.length - want.length;
  if (c.chunks.filter((ch) => ch.length > 0).length > 1) splitReads++;
  tally(byKind, c.kind.replace(/^(sale|cancel):/, 'mutated-$1:'));
  for (const w of want) tally(byCode, w.code);
  return true;
}

async function runPhase(want: number, seed: number): Promise<number> {
  let sent = 0;
  for (let batch = 0; sent < want; batch++) {
    if (batch > 20) throw new Error(`only ${sent} of ${want} usable cases generated`);
    for (const c of fc.sample(ecrCase, { seed: seed + batch, numRuns: want })) {
      if (sent === want) break;
      if (await runCase(c, sent)) sent++;
    }
  }
  return sent;
}

/** One well-formed line the cashier flow must refuse (or answer with progress): exactly that reply, no money change. */
async function flow(line: object | string, reply: Record<string, unknown>, messageHas?: string): Promise<void> {
  const { box, db } = fz;
  const rowsBefore = moneyRows(db);
  const bookBefore = box.agent.book();
  const mark = box.logs.mark();
  const ecrMark = box.ecrOut.mark();
  const text = typeof line === 'string' ? line : json(line);
  await emitChunks(box, box.ecrPath, [utf8(`${text}\n`)]);
  const got = await sentinel(`flow ${text.slice(0, 80)}`, ecrMark);
  expect(got).toHaveLength(1);
  expect(got[0]).toMatchObject(reply);
  const msg = (got[0] as { message: string }).message;
  if (got[0]!.type === 'error') expect(msg).toMatch(MESSAGE[got[0]!.code]!);
  if (messageHas) expect(msg).toContain(messageHas);
  expect(moneyRows(db)).toEqual(rowsBefore);
  expect(box.agent.book().sales).toEqual(bookBefore.sales);
  expect(box.agent.book().attempts).toEqual(bookBefore.attempts);
  expectHealthy(box, mark);
  flowCases++;
}

describe('random and mutated cash-register lines against a running agent', () => {
  it('named problems: each well-known bad line gets the error code and a message naming the field', async () => {
    const table: [string, Reply, string][] = [
      [json({ ...SALE, amount: 12.5 }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'amount'],
      [json({ ...SALE, amount: -1 }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'amount'],
      [json({ ...SALE, amount: 0 }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'amount'],
      [json({ ...SALE, amount: DEFAULT_MAX_MINOR + 1 }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'amount'],
      [json({ ...SALE, amount: '1234' }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'amount'],
      [json({ ...SALE, currency: 'USD' }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'currency'],
      [json({ ...SALE, type: 'void' }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'type'],
      [json({ ...SALE, tip: 100, amount: 1.5 }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'amount'],
      [json({ ...SALE, v: 0 }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'v must be'],
      [json({ ...SALE, v: '2' }), { code: ErrorCode.SCHEMA_INVALID, ref: 'F-1' }, 'v must be'],
      [json({ type: 'lookup' }), { code: ErrorCode.SCHEMA_INVALID }, 'ref'],
      [json({ type: 'lookup', ref: 'a b' }), { code: ErrorCode.SCHEMA_INVALID }, 'ref'],
      [json({ type: 'hello', name: 12 }), { code: ErrorCode.SCHEMA_INVALID }, 'name'],
      [json({ type: 'hello', name: 'n'.repeat(65) }), { code: ErrorCode.SCHEMA_INVALID }, 'name'],
      [json({ ...SALE, ref: '' }), { code: ErrorCode.SCHEMA_INVALID }, 'ref'],
      [json({ ...SALE, ref: 'a b' }), { code: ErrorCode.SCHEMA_INVALID }, 'ref'],
      [json({ ...SALE, ref: 'R'.repeat(65) }), { code: ErrorCode.SCHEMA_INVALID }, 'ref'],
      [json({ type: 'cancel' }), { code: ErrorCode.SCHEMA_INVALID }, 'ref'],
      ['{"type":"sale","ref":"F-1","amount":1234,', { code: ErrorCode.BAD_JSON }, 'JSON'],
      ['\u0001\u00ff binary', { code: ErrorCode.BAD_JSON }, 'JSON'],
      [`${'['.repeat(400)}${']'.repeat(400)}`, { code: ErrorCode.SCHEMA_INVALID }, 'line is invalid'],
      [json({ ...SALE, ref: 'x'.repeat(MAX_ECR_LINE_BYTES) }), { code: ErrorCode.LINE_TOO_LONG }, `${MAX_ECR_LINE_BYTES}`],
    ];
    for (const [line, reply, word] of table) {
      expect(replyFor({ kind: line.length > MAX_ECR_LINE_BYTES ? 'tooLong' : 'line', text: line })).toEqual(reply);
      await flow(line, { type: 'error', ...reply }, word).catch((e: Error) => {
        throw new Error(`${line.slice(0, 80)}: ${e.message}`);
      });
    }
  });

  it(`no sale open: ${ECR_LINE_CASES.noSale} fuzz cases, each answered with its error, nothing created`, async () => {
    expect(await runPhase(ECR_LINE_CASES.noSale, SEED)).toBe(ECR_LINE_CASES.noSale);
    await flow({ type: 'cancel', ref: 'NOPE-1' }, { type: 'error', code: ErrorCode.SALE_UNKNOWN, ref: 'NOPE-1' }, 'NOPE-1');
    expect(moneyRows(fz.db)).toEqual({ sales: [], attempts: [], outbox: [] });
  });

  it(`a sale waiting for a code: ${ECR_LINE_CASES.saleWaiting} fuzz cases and refs in use; the open sale stays exactly as it was`, async () => {
    const { box, db } = fz;
    box.sale('FZ-1', 1234);
    await box.ecrOut.find((l) => l.type === 'progress' && l.ref === 'FZ-1' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    const open = moneyRows(db);
    expect(open.sales).toMatchObject([{ ref: 'FZ-1', amount: 1234, state: 'OPEN' }]);

    await flow({ type: 'sale', ref: 'FZ-1', amount: 999, currency: 'CNY' }, { type: 'error', code: ErrorCode.SALE_BUSY, ref: 'FZ-1' }, 'FZ-1');
    await flow({ type: 'sale', ref: 'FZ-2', amount: 1234, currency: 'CNY' }, { type: 'error', code: ErrorCode.SALE_BUSY, ref: 'FZ-2' }, 'FZ-1');
    await flow({ type: 'sale', ref: 'FZ-1', amount: 1234, currency: 'CNY' }, { type: 'progress', ref: 'FZ-1', stage: 'WAITING_CODE' });
    await flow({ type: 'cancel', ref: 'FZ-9' }, { type: 'error', code: ErrorCode.SALE_UNKNOWN, ref: 'FZ-9' }, 'FZ-9');
    // ECR v2: hello and lookup change nothing; unknown fields are ignored.
    await flow({ type: 'hello', v: 2, name: 'fuzz', extra: [1, 2] }, { type: 'hello', v: 2, capabilities: [...ECR_CAPABILITIES] });
    await flow({ type: 'lookup', ref: 'FZ-1', extra: true }, { type: 'progress', ref: 'FZ-1', stage: 'WAITING_CODE', lookup: true });
    await flow({ type: 'lookup', ref: 'FZ-9' }, { type: 'error', code: ErrorCode.SALE_UNKNOWN, ref: 'FZ-9' }, 'FZ-9');
    await flow({ type: 'sale', v: 7, ref: 'FZ-1', amount: 1234, currency: 'CNY', tip: 1 }, { type: 'progress', ref: 'FZ-1', stage: 'WAITING_CODE' });
    expect(await runPhase(ECR_LINE_CASES.saleWaiting, SEED + 1_000)).toBe(ECR_LINE_CASES.saleWaiting);
    expect(moneyRows(db)).toEqual(open);
  });

  it(`a payment in flight: ${ECR_LINE_CASES.paymentInFlight} fuzz cases; the sale and its attempt stay as they were, then cancel → NOT_PAID`, async () => {
    const { box, cloud, db } = fz;
    box.scan(`${CODES.silence}\r\n`);
    await box.ecrOut.find((l) => l.type === 'progress' && l.ref === 'FZ-1' && l.stage === 'PAYING', 'PAYING');
    await cloud.up.find((u) => u.kind === 'pay', 'the silent pay');
    await waitUntil(() => box.agent.status().outboxDepth === 0, 'the pay delivered');
    const inFlight = moneyRows(db);
    expect(inFlight.attempts).toMatchObject([{ out_trade_no: 'fz1-1', state: 'PAYING' }]);

    await flow({ type: 'sale', ref: 'FZ-1', amount: 1234, currency: 'CNY' }, { type: 'progress', ref: 'FZ-1', stage: 'PAYING' });
    await flow({ type: 'sale', ref: 'FZ-3', amount: 50, currency: 'CNY' }, { type: 'error', code: ErrorCode.SALE_BUSY, ref: 'FZ-3' }, 'FZ-1');
    expect(await runPhase(ECR_LINE_CASES.paymentInFlight, SEED + 2_000)).toBe(ECR_LINE_CASES.paymentInFlight);
    expect(moneyRows(db)).toEqual(inFlight);
    expect(cloud.up.filter((u) => u.kind === 'pay')).toHaveLength(1);

    box.ecr({ type: 'cancel', ref: 'FZ-1' });
    const r = await box.ecrOut.find((l) => l.type === 'result' && l.ref === 'FZ-1', 'NOT_PAID after cancel');
    expect(r).toMatchObject({ outcome: 'NOT_PAID', reason: 'CASHIER_CANCEL' });
    await flow({ type: 'cancel', ref: 'FZ-1' }, { type: 'error', code: ErrorCode.SALE_UNKNOWN, ref: 'FZ-1' }, 'NOT_PAID');
    // The ref is used: a sale line for it again is answered with its outcome (same seq), never reopened.
    await flow({ type: 'sale', ref: 'FZ-1', amount: 1234, currency: 'CNY' }, { ...r, lookup: true });
    await flow({ type: 'lookup', ref: 'FZ-1' }, { ...r, lookup: true });
    expect(cloud.up.filter((u) => u.kind === 'pay')).toHaveLength(1);
  });

  it('afterwards a valid sale → scan → PAID works, and a paid ref is refused', async () => {
    const { box, cloud, db } = fz;
    box.sale('FZ-4', 4321);
    await box.ecrOut.find((l) => l.type === 'progress' && l.ref === 'FZ-4' && l.stage === 'WAITING_CODE', 'WAITING_CODE FZ-4');
    box.scan(`${CODES.success}\r\n`);
    const paid = await box.ecrOut.find((l) => l.type === 'result' && l.ref === 'FZ-4', 'PAID');
    expect(paid).toMatchObject({ outcome: 'PAID', amount: 4321, outTradeNo: 'fz1-2', wallet: 'wechat' });
    await flow({ type: 'sale', ref: 'FZ-4', amount: 4321, currency: 'CNY' }, { type: 'error', code: ErrorCode.SALE_ALREADY_PAID, ref: 'FZ-4' }, 'FZ-4');
    await flow({ type: 'cancel', ref: 'FZ-4' }, { type: 'error', code: ErrorCode.SALE_ALREADY_PAID, ref: 'FZ-4' }, 'FZ-4');
    expect(moneyRows(db).sales).toMatchObject([
      { ref: 'FZ-1', state: 'NOT_PAID' },
      { ref: 'FZ-4', state: 'PAID', amount: 4321 },
    ]);
    expect(cloud.up.filter((u) => u.kind === 'pay').map((u) => (u.msg as { outTradeNo: string }).outTradeNo)).toEqual(['fz1-1', 'fz1-2']);
    expect(cloud.charges).toEqual(['fz1-2']);
    expectHealthy(box);
    expect(cloud.invalid).toEqual([]);
    // Every line written is exactly a v1 line (before the register showed it reads v2: a hello, a
    // lookup, a line with v ≥ 2) or a v2 line; numbered lines are in order, never twice (a result
    // repeated as a lookup answer carries its original number).
    for (const l of box.ecrOut.items) expect(isEcrLineFor(l.v ?? 1, l), JSON.stringify(l)).toBe(true);
    const seqs = box.ecrOut.items.filter((l) => l.seq !== undefined && !(l.type === 'result' && l.lookup === true)).map((l) => l.seq!);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
  });
});
