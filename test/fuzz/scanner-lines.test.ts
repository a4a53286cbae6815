import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, pairingQrText } from '../../protocol/index.js';
import { MAX_SCAN_LINE_BYTES } from '../../device/scanner.js';
import type { LogLine } from '../device/agent-harness.js';
import { CODES, cut, emitChunks, expectHealthy, moneyRows, nthLog, ReferenceLines, show, startFuzzBox, tally, type FuzzBox, type RefItem } from './device-fuzz.js';

/**
 * Fuzzing the box's scanner port: random bytes and mutated payment codes (a digit changed, inserted
 * or deleted, letters, spaces, full-width digits, other unicode, NUL, lines up to and past 5 KB with
 * and without a line end, mixed CR / LF / CRLF, line ends split across reads, pairing QR texts),
 * written to a real agent while no sale is waiting and while one is. For every line an oracle
 * written here from the wallets' published rules (not protocol/payment-code.ts, the code under test)
 * and an independent model of the framing say what must happen; the agent must log each rejected
 * line with exactly that ErrorCode, tell the
 * cashier on the screen while a sale is waiting, create no attempt, send no pay, write nothing to the
 * cash register, change no journal row — and afterwards still take a valid code to PAID.
 */
export const SCANNER_LINE_CASES = { noSaleWaiting: 1_000, saleWaiting: 1_000 } as const;
const SEED = 6_0011;

const BAD_SCAN_SCREEN = '无法识别，请重新扫码';
const NO_SALE_SCREEN = '请先在收银机上输入金额';
const PAIRING_LOG = 'pairing QR scanned but the box is already paired; use `scanbox-device pair --reset`';
const NOT_SHOWN = new Set<string>([ErrorCode.CODE_EMPTY, ErrorCode.DUPLICATE_SCAN]);
const DEBOUNCE_MS = 3_600_000; // the oracle models "same code as the last accepted one" without a clock
const QR = pairingQrText({ code: 'ABCDEFGHJK', cloudUrl: 'http://127.0.0.1:8080' });
const SENTINEL = Buffer.from(`${pairingQrText({ code: 'ZZZZZZZZZZ', cloudUrl: 'http://sentinel.invalid' })}\n`);

interface ScanCase {
  kind: string;
  chunks: Uint8Array[];
}
type Outcome = { kind: 'reject'; code: string } | { kind: 'pairing' } | { kind: 'code'; code: string };

/** Known answers of the published rules: the oracle is checked against them (last test), and they are sent to the agent too. */
const KNOWN_ANSWERS: readonly [string, string | null][] = [
  ['134567890123456789', null],
  ['101234567890123456', null],
  ['151234567890123456', null],
  ['161234567890123456', ErrorCode.CODE_UNKNOWN_PREFIX],
  ['091234567890123456', ErrorCode.CODE_UNKNOWN_PREFIX],
  ['13456789012345678', ErrorCode.CODE_WRONG_LENGTH],
  ['1345678901234567890', ErrorCode.CODE_WRONG_LENGTH],
  ['2512345678901234', null],
  ['251234567890123', ErrorCode.CODE_WRONG_LENGTH],
  ['301234567890123456789012', null],
  ['3012345678901234567890123', ErrorCode.CODE_WRONG_LENGTH],
  ['241234567890123456', ErrorCode.CODE_UNKNOWN_PREFIX],
  ['311234567890123456', ErrorCode.CODE_UNKNOWN_PREFIX],
  ['6212345678901234567', null],
  ['621234567890123456', ErrorCode.CODE_WRONG_LENGTH],
  ['6312345678901234567', ErrorCode.CODE_UNKNOWN_PREFIX],
  ['5', ErrorCode.CODE_UNKNOWN_PREFIX],
  ['', ErrorCode.CODE_EMPTY],
  ['1'.repeat(33), ErrorCode.CODE_TOO_LONG],
  ['x'.repeat(40), ErrorCode.CODE_TOO_LONG],
  ['13456789012345678a', ErrorCode.CODE_NOT_DIGITS],
  [' 134567890123456789', ErrorCode.CODE_NOT_DIGITS],
  ['\uff1134567890123456789', ErrorCode.CODE_NOT_DIGITS],
  ['-134567890123456789', ErrorCode.CODE_NOT_DIGITS],
];

// ── generators ───────────────────────────────────────────────────────────────────────────────────

const VALID = ['134567890123456789', '2812345678901234', '281234567890123456789012', '6212345678901234567', '101234567890123456'];
const digit = fc.integer({ min: 0, max: 9 }).map(String);
const pos = (s: string) => fc.nat({ max: s.length });
const splice = (s: string, at: number, del: number, ins: string) => s.slice(0, at) + ins + s.slice(at + del);
const oddChar = fc.oneof(
  fc.constantFrom('a', 'Z', 'O', 'l', ' ', '\t', '\0', '-', '+', '.', 'é', '€', '\u00a0', '\u200b', '\ufeff', '\u{1F4B0}', '付', '\x7f', '\xff'),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }),
);
const fullWidth = (d: string) => String.fromCharCode(0xff10 + Number(d));

const mutatedCode: fc.Arbitrary<[string, string]> = fc.constantFrom(...VALID).chain((v) =>
  fc.oneof(
    fc.tuple(pos(v), digit).map(([i, d]): [string, string] => ['digit-changed', splice(v, Math.min(i, v.length - 1), 1, d)]),
    fc.tuple(pos(v), digit).map(([i, d]): [string, string] => ['digit-inserted', splice(v, i, 0, d)]),
    pos(v).map((i): [string, string] => ['digit-deleted', splice(v, Math.min(i, v.length - 1), 1, '')]),
    fc.tuple(pos(v), oddChar, fc.boolean()).map(([i, c, replace]): [string, string] => ['odd-char', splice(v, i, replace ? 1 : 0, c)]),
    fc.tuple(fc.constantFrom(' ', '  ', '\t'), fc.boolean()).map(([sp, lead]): [string, string] => ['spaces', lead ? sp + v : v + sp]),
    fc.array(pos(v), { minLength: 1, maxLength: 4 }).map((is): [string, string] => ['full-width', [...v].map((ch, i) => (is.includes(i) ? fullWidth(ch) : ch)).join('')]),
    fc.tuple(digit, digit).map(([a, b]): [string, string] => ['prefix-changed', a + b + v.slice(2)]),
    fc.constantFrom(VALID[0]! + VALID[1]!, v + v, v.slice(0, 8)).map((s): [string, string] => ['joined-or-cut', s]),
  ),
);
/** A valid code twice: with no sale waiting, NO_SALE_WAITING and then DUPLICATE_SCAN (the debounce window spans the run). */
const repeatedCode: fc.Arbitrary<ScanCase> = fc
  .tuple(fc.constantFrom(...VALID), fc.constantFrom('\r', '\n', '\r\n'))
  .map(([v, t]) => ({ kind: 'repeated-valid-code', chunks: [new Uint8Array(Buffer.from(`${v}${t}${v}${t}`))] }));
const randomText: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 60 }).map((s): [string, string] => ['random-unicode', s]),
  fc.stringMatching(/^[0-9]{0,40}$/).map((s): [string, string] => ['random-digits', s]),
  fc.constantFrom('', ' ', '\0', '\0'.repeat(18), 'null', 'undefined', '-134567890123456789', '1.34567890123456789e17', '0x1345678901234567').map((s): [string, string] => ['odd-literal', s]),
);
const pairingText: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.constant<[string, string]>(['pairing-qr', QR]),
  fc.nat({ max: QR.length - 1 }).map((n): [string, string] => ['pairing-qr-truncated', QR.slice(0, n)]),
  fc.tuple(fc.string({ maxLength: 14 }), fc.constantFrom('http://h', 'ftp://h', '', 'http://a b', 'javascript:x')).map(([code, cloud]): [string, string] => [
    'pairing-qr-mutated',
    `scanbox:pair?code=${encodeURIComponent(code)}&cloud=${encodeURIComponent(cloud)}`,
  ]),
  fc.integer({ min: 500, max: 1100 }).map((n): [string, string] => ['pairing-qr-long', `${QR}&pad=${'x'.repeat(n)}`]),
  fc.constantFrom('scanbox:pair?', 'scanbox:pair?%', 'scanbox:pair?code=%E0%A4%A&cloud=%', 'scanbox:pair', 'SCANBOX:PAIR?code=ABCDEFGHJK').map((s): [string, string] => ['pairing-qr-odd', s]),
);
/** The boundaries of the published rules, verbatim (random mutants seldom hit e.g. a 24 prefix at 16 digits). */
const knownAnswer = fc.constantFrom(...KNOWN_ANSWERS.map(([t]) => t)).map((t): [string, string] => ['known-answer', t]);
const lineText = fc.oneof({ weight: 5, arbitrary: mutatedCode }, { weight: 2, arbitrary: randomText }, { weight: 2, arbitrary: pairingText }, { weight: 1, arbitrary: knownAnswer });

const TERMINATORS = ['', '\r', '\n', '\r\n', '\n\r', '\r\r\n', '\n\n'] as const;
const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 });

const scanCase: fc.Arbitrary<ScanCase> = fc.oneof(
  { weight: 1, arbitrary: repeatedCode },
  // one line, any terminator (or none), cut into reads anywhere
  { weight: 6, arbitrary: fc.tuple(lineText, fc.constantFrom(...TERMINATORS), cuts).map(([[kind, t], term, c]) => ({ kind, chunks: cut(utf8(t + term), c) })) },
  // random bytes, CR and LF included
  { weight: 3, arbitrary: fc.tuple(fc.uint8Array({ maxLength: 400 }), cuts).map(([b, c]) => ({ kind: 'random-bytes', chunks: cut(b, c) })) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.constantFrom(13, 10)).map(([b, t]) => ({ kind: 'random-bytes-lines', chunks: [Uint8Array.from([...b, t, ...b, t])] })),
  },
  // several lines with mixed line ends, some cut between the CR and the LF of a CRLF
  {
    weight: 3,
    arbitrary: fc.tuple(fc.array(fc.tuple(lineText, fc.constantFrom(...TERMINATORS.slice(1))), { minLength: 2, maxLength: 5 }), fc.boolean()).map(([lines, splitCrlf]) => {
      const text = lines.map(([[, t], term]) => t + term).join('');
      if (!splitCrlf) return { kind: 'mixed-line-ends', chunks: [utf8(text)] };
      const parts = text.split(/(?<=\r)(?=\n)/);
      return { kind: parts.length > 1 ? 'crlf-split-across-reads' : 'mixed-line-ends', chunks: parts.map(utf8) };
    }),
  },
  // long lines: up to and past 5 KB, with and without a line end, around the 1024-byte limit
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.integer({ min: 900, max: 6_000 }), fc.constantFrom('9', 'x', '\0', 'é'), fc.constantFrom('', '\r', '\n', '\r\n'), cuts)
      .map(([n, ch, term, c]) => ({ kind: term ? 'long-line' : 'long-line-no-end', chunks: cut(utf8(ch.repeat(n) + term), c) })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: MAX_SCAN_LINE_BYTES - 2, max: MAX_SCAN_LINE_BYTES + 2 }), fc.constantFrom('\r', '\n', '\r\n'), fc.boolean())
      .map(([n, term, split]) => {
        const b = utf8(`${'1'.repeat(n)}${term}`);
        return { kind: 'limit-boundary', chunks: split ? [b.subarray(0, n), b.subarray(n)] : [b] };
      }),
  },
);

// ── the oracle ───────────────────────────────────────────────────────────────────────────────────

/**
 * The customer payment codes the box accepts, from the wallets' published rules (see the references
 * in protocol/payment-code.ts; the predicate below is written from them, not from that code):
 * WeChat Pay auth_code 18 digits starting 10–15; Alipay auth_code 16–24 digits starting 25–30;
 * UnionPay QR 19 digits starting 62. 32 characters is the field size the wallet APIs allow.
 */
const WALLET_RULES: readonly { prefixes: readonly string[]; lengths: readonly number[] }[] = [
  { prefixes: ['10', '11', '12', '13', '14', '15'], lengths: [18] },
  { prefixes: ['25', '26', '27', '28', '29', '30'], lengths: [16, 17, 18, 19, 20, 21, 22, 23, 24] },
  { prefixes: ['62'], lengths: [19] },
];
const ASCII_DIGITS = '0123456789';

/** Which rule a line breaks first, in the order protocol/README.md ("Payment codes") lists the ErrorCodes. */
function judgeCode(text: string): string | null {
  if (text.length === 0) return ErrorCode.CODE_EMPTY;
  if (text.length > 32) return ErrorCode.CODE_TOO_LONG;
  if ([...text].some((ch) => !ASCII_DIGITS.includes(ch))) return ErrorCode.CODE_NOT_DIGITS;
  const rule = WALLET_RULES.find((r) => r.prefixes.includes(text.slice(0, 2)));
  if (!rule) return ErrorCode.CODE_UNKNOWN_PREFIX;
  if (!rule.lengths.includes(text.length)) return ErrorCode.CODE_WRONG_LENGTH;
  return null;
}

/**
 * The pairing QR as the protocol documents it: `scanbox:pair?code=…&cloud=…`, at most 512
 * characters, `cloud` an http(s) address without spaces, `code` 10 characters of Crockford base32
 * (no I, L, O, U) that may be typed in lower case with dashes or spaces.
 */
function judgePairing(text: string): string | null {
  if (text.length > 512) return ErrorCode.PAIRING_CODE_INVALID;
  const params = new URLSearchParams(text.slice('scanbox:pair?'.length));
  if (!/^https?:\/\/\S+$/.test(params.get('cloud') ?? '')) return ErrorCode.PAIRING_CODE_INVALID;
  const code = (params.get('code') ?? '').toUpperCase().replace(/[\s-]/g, '');
  if (code.length !== 10 || [...code].some((ch) => !'0123456789ABCDEFGHJKMNPQRSTVWXYZ'.includes(ch))) return ErrorCode.PAIRING_CODE_INVALID;
  return null;
}

/** What one framed line must become. `last` is the last accepted code (debounce). */
function expectFor(item: RefItem, last: { code: string | null }): Outcome {
  if (item.kind === 'tooLong') return { kind: 'reject', code: ErrorCode.LINE_TOO_LONG };
  if (item.text.startsWith('scanbox:pair?')) {
    const bad = judgePairing(item.text);
    return bad ? { kind: 'reject', code: bad } : { kind: 'pairing' };
  }
  const bad = judgeCode(item.text);
  if (bad) return { kind: 'reject', code: bad };
  if (item.text === last.code) return { kind: 'reject', code: ErrorCode.DUPLICATE_SCAN };
  last.code = item.text;
  return { kind: 'code', code: item.text };
}



// ── the run ──────────────────────────────────────────────────────────────────────────────────────

let fz: FuzzBox;
const byKind = new Map<string, number>();
const byCode = new Map<string, number>();
let cases = 0;
let lines = 0;
let skippedValid = 0;
let splitReads = 0;
const lastAccepted: { code: string | null } = { code: null };

beforeAll(async () => {
  fz = await startFuzzBox({ scanDebounceMs: DEBOUNCE_MS });
});
afterAll(async () => {
  console.log(
    `fuzz scanner-lines: ${cases} cases (${SCANNER_LINE_CASES.noSaleWaiting} with no sale waiting, ${SCANNER_LINE_CASES.saleWaiting} with a sale waiting), ${lines} lines, ${splitReads} written in several reads, ${skippedValid} valid-code mutants not sent while a sale waited; outcomes: ${show(byCode)}; kinds: ${show(byKind)}`,
  );
  await fz?.close();
});

const isRejected = (l: LogLine) => l.msg === 'scan rejected';
const isPairing = (l: LogLine) => l.msg === PAIRING_LOG;
const isNoSale = (l: LogLine) => l.msg === 'code scanned but no sale is waiting';

async function runCase(c: ScanCase, n: number, saleWaiting: boolean): Promise<boolean> {
  const { box, cloud, db } = fz;
  // Decide what must happen before writing anything.
  const model = new ReferenceLines(MAX_SCAN_LINE_BYTES, 'latin1');
  const last = { ...lastAccepted };
  const perChunk = c.chunks.map((ch) => model.feed(ch));
  const pendingOverflow = model.discarding;
  const needEnd = !model.idle; // a partial line is left: end it so the next case starts clean
  const end = needEnd ? model.feed(Buffer.from('\r\n')) : [];
  const outcomes = [...perChunk.flat(), ...end].map((it) => expectFor(it, last));
  if (saleWaiting && outcomes.some((o) => o.kind === 'code')) {
    skippedValid++; // would (rightly) create an attempt: not noise
    return false;
  }
  lastAccepted.code = last.code;

  const mark = box.logs.mark();
  const ecrBefore = box.ecrOut.mark();
  const rowsBefore = moneyRows(db);
  await emitChunks(box, box.scannerPath, c.chunks);
  if (pendingOverflow) {
    // An overlong line is reported as soon as it overflows, without waiting for its line end.
    const tooLong = outcomes.filter((o) => o.kind === 'reject' && o.code === ErrorCode.LINE_TOO_LONG).length;
    await nthLog(box, (l) => isRejected(l) && l.code === ErrorCode.LINE_TOO_LONG, tooLong, `case ${n}: LINE_TOO_LONG before any line end`, mark);
  }
  if (needEnd) await emitChunks(box, box.scannerPath, [Buffer.from('\r\n')]);
  await emitChunks(box, box.scannerPath, [SENTINEL]);
  const pairingWant = outcomes.filter((o) => o.kind === 'pairing').length + 1;
  await nthLog(box, isPairing, pairingWant, `case ${n} (${c.kind}): the sentinel line`, mark).catch((e: Error) => {
    throw new Error(`case ${n} (${c.kind}) ${JSON.stringify(c.chunks.map((ch) => Buffer.from(ch).toString('latin1')).join('|')).slice(0, 300)}: ${e.message.slice(0, 600)}`);
  });

  const got = box.logs.items.slice(mark);
  const rejects = outcomes.flatMap((o) => (o.kind === 'reject' ? [o.code] : []));
  const codes = outcomes.filter((o) => o.kind === 'code').length;
  const shownRejects = saleWaiting ? rejects.filter((r) => !NOT_SHOWN.has(r)).length : 0;
  const want = {
    case: n,
    kind: c.kind,
    rejected: rejects,
    pairing: pairingWant,
    noSaleWaiting: codes,
    screens: [...Array<string>(shownRejects).fill(BAD_SCAN_SCREEN), ...Array<string>(codes).fill(NO_SALE_SCREEN)],
  };
  expect({
    case: n,
    kind: c.kind,
    rejected: got.filter(isRejected).map((l) => l.code),
    pairing: got.filter(isPairing).length,
    noSaleWaiting: got.filter((l) => isNoSale(l) && l.code === ErrorCode.NO_SALE_WAITING).length,
    screens: got.filter((l) => l.msg === 'display').map((l) => l.screen),
  }).toEqual(want);
  for (const l of got.filter(isRejected)) expect(typeof l.reason === 'string' && l.reason.length > 0, `case ${n}: reason in ${JSON.stringify(l)}`).toBe(true);
  // No money state: nothing to the cash register, no pay, no journal row touched.
  expect(box.ecrOut.items.slice(ecrBefore)).toEqual([]);
  expect(moneyRows(db)).toEqual(rowsBefore);
  expect(cloud.up.filter((u) => u.kind === 'pay')).toEqual([]);
  expectHealthy(box, mark);

  cases++;
  lines += outcomes.length;
  if (c.chunks.filter((ch) => ch.length > 0).length > 1) splitReads++;
  tally(byKind, c.kind);
  for (const o of outcomes) tally(byCode, o.kind === 'reject' ? o.code : o.kind === 'code' ? ErrorCode.NO_SALE_WAITING : 'pairing-ignored');
  return true;
}

/** Run generated cases until `want` of them were sent. */
async function runPhase(want: number, seed: number, saleWaiting: boolean): Promise<number> {
  let sent = 0;
  for (let batch = 0; sent < want; batch++) {
    if (batch > 20) throw new Error(`only ${sent} of ${want} usable cases generated`);
    for (const c of fc.sample(scanCase, { seed: seed + batch, numRuns: want })) {
      if (sent === want) break;
      if (await runCase(c, sent, saleWaiting)) sent++;
    }
  }
  return sent;
}

describe('random and mutated scanner lines against a running agent', () => {
  it(`no sale waiting: ${SCANNER_LINE_CASES.noSaleWaiting} cases, each logged with its ErrorCode, nothing created`, async () => {
    expect(await runPhase(SCANNER_LINE_CASES.noSaleWaiting, SEED, false)).toBe(SCANNER_LINE_CASES.noSaleWaiting);
    expect(fz.box.agent.book().attempts).toEqual({});
    expect(fz.box.agent.book().sales).toEqual({});
    expect(moneyRows(fz.db)).toEqual({ sales: [], attempts: [], outbox: [] });
  });

  it('a babbling scanner: 256 KB without a line end, in 64 reads, is one LINE_TOO_LONG and nothing else', async () => {
    const { box, db } = fz;
    const mark = box.logs.mark();
    const rows = moneyRows(db);
    const chunk = new Uint8Array(Buffer.alloc(4_096, '7'));
    await emitChunks(box, box.scannerPath, Array.from({ length: 64 }, () => chunk));
    await emitChunks(box, box.scannerPath, [Buffer.from('\r\n'), SENTINEL]);
    await nthLog(box, isPairing, 1, 'the sentinel after 256 KB', mark);
    expect(box.logs.items.slice(mark).filter(isRejected).map((l) => l.code)).toEqual([ErrorCode.LINE_TOO_LONG]);
    expect(moneyRows(db)).toEqual(rows);
    expectHealthy(box, mark);
  });

  it(`a sale waiting: ${SCANNER_LINE_CASES.saleWaiting} cases, each logged and shown to the cashier, no attempt; then a valid code still pays`, async () => {
    const { box, cloud, db } = fz;
    box.sale('FZ-1', 1234);
    await box.ecrOut.find((l) => l.type === 'progress' && l.ref === 'FZ-1' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    const sale = moneyRows(db).sales;
    expect(sale).toMatchObject([{ ref: 'FZ-1', amount: 1234, state: 'OPEN' }]);

    expect(await runPhase(SCANNER_LINE_CASES.saleWaiting, SEED + 1_000, true)).toBe(SCANNER_LINE_CASES.saleWaiting);
    expect(moneyRows(db)).toEqual({ sales: sale, attempts: [], outbox: [] });
    expect(box.agent.book().attempts).toEqual({});

    const code = [CODES.success, CODES.success2].find((c) => c !== lastAccepted.code)!;
    box.scan(`${code}\r\n`);
    const paid = await box.ecrOut.find((l) => l.type === 'result', 'PAID after the noise', 10_000);
    expect(paid).toMatchObject({ type: 'result', ref: 'FZ-1', outcome: 'PAID', amount: 1234, outTradeNo: 'fz1-1' });
    expect(cloud.up.filter((u) => u.kind === 'pay')).toHaveLength(1);
    expect(moneyRows(db).attempts).toMatchObject([{ out_trade_no: 'fz1-1', state: 'SUCCESS' }]);
    expectHealthy(box);
    expect(cloud.invalid).toEqual([]);
  });
});

describe('the scanner oracle (independent of protocol/payment-code.ts)', () => {
  it('gives the known answers of the published rules', () => {
    expect(KNOWN_ANSWERS.map(([t]) => [t, judgeCode(t)])).toEqual(KNOWN_ANSWERS);
    expect(judgePairing(QR)).toBeNull();
    expect(judgePairing(pairingQrText({ code: 'abcde-fghjk', cloudUrl: 'https://h' }))).toBeNull();
    for (const bad of ['scanbox:pair?', `${QR}&pad=${'x'.repeat(600)}`, 'scanbox:pair?code=ABCDEFGHJI&cloud=http%3A%2F%2Fh', 'scanbox:pair?code=ABCDEFGHJK&cloud=ftp%3A%2F%2Fh']) {
      expect(judgePairing(bad), bad).toBe(ErrorCode.PAIRING_CODE_INVALID);
    }
  });
});
