import { ErrorCode, MAX_CODE_CHARS, WALLETS, type Wallet } from '../../protocol/index.js';
import type { Random } from '../random.js';

/**
 * Payment codes a customer's phone would show, and codes a scanner could misread. The prefixes and
 * lengths mirror protocol/payment-code.ts's rules; the digits after the prefix are random.
 */
const SHAPES: Record<Wallet, { prefixes: readonly number[]; lengths: readonly [number, number] }> = {
  wechat: { prefixes: [10, 11, 12, 13, 14, 15], lengths: [18, 18] },
  alipay: { prefixes: [25, 26, 27, 28, 29, 30], lengths: [16, 24] },
  unionpay: { prefixes: [62], lengths: [19, 19] },
};

export function validCode(random: Random, wallet: Wallet = random.pick(WALLETS)): string {
  const shape = SHAPES[wallet];
  const length = random.int(shape.lengths[0], shape.lengths[1]);
  return `${random.pick(shape.prefixes)}${random.digits(length - 2)}`;
}

export const INVALID_KINDS = ['empty', 'not_digits', 'too_long', 'wrong_length', 'unknown_prefix'] as const;
export type InvalidKind = (typeof INVALID_KINDS)[number];

export interface InvalidCode {
  kind: InvalidKind;
  code: string;
  /** What classifyPaymentCode must throw for it. */
  error: ErrorCode;
}

const KNOWN_PREFIXES = new Set(Object.values(SHAPES).flatMap((s) => s.prefixes));

/** Two-digit prefixes no wallet uses (00–09, 16–24, 31–61, 63–99). */
const UNKNOWN_PREFIXES = Array.from({ length: 100 }, (_, i) => i).filter((p) => !KNOWN_PREFIXES.has(p));

function wrongLength(random: Random): string {
  const wallet = random.pick(WALLETS);
  const [min, max] = SHAPES[wallet].lengths;
  // One digit short or one long, at the edge where a scanner that drops or repeats a digit lands.
  const length = random.next() < 0.5 ? min - 1 : max + 1;
  return `${random.pick(SHAPES[wallet].prefixes)}${random.digits(length - 2)}`;
}

function notDigits(random: Random): string {
  const code = validCode(random).split('');
  code[random.int(0, code.length - 1)] = random.pick(['A', 'x', ' ', '-', '#', 'é']);
  return code.join('');
}

const MAKERS: Record<InvalidKind, { error: ErrorCode; make: (random: Random) => string }> = {
  empty: { error: ErrorCode.CODE_EMPTY, make: (r) => r.pick(['', '\r', '\n', '\r\n']) },
  not_digits: { error: ErrorCode.CODE_NOT_DIGITS, make: notDigits },
  too_long: { error: ErrorCode.CODE_TOO_LONG, make: (r) => `${validCode(r)}${r.digits(MAX_CODE_CHARS)}`.slice(0, r.int(MAX_CODE_CHARS + 1, 48)) },
  wrong_length: { error: ErrorCode.CODE_WRONG_LENGTH, make: wrongLength },
  unknown_prefix: {
    error: ErrorCode.CODE_UNKNOWN_PREFIX,
    make: (r) => `${String(r.pick(UNKNOWN_PREFIXES)).padStart(2, '0')}${r.digits(r.int(14, 22))}`,
  },
};

export function invalidCode(random: Random, kind: InvalidKind = random.pick(INVALID_KINDS)): InvalidCode {
  const maker = MAKERS[kind];
  return { kind, code: maker.make(random), error: maker.error };
}

/** `perKind` invalid codes of every kind the classifier rejects. */
export function invalidCodes(random: Random, perKind = 1): InvalidCode[] {
  return INVALID_KINDS.flatMap((kind) => Array.from({ length: perKind }, () => invalidCode(random, kind)));
}
