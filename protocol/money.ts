import { ErrorCode, ProtocolError } from './errors.js';

/**
 * Money is an integer count of minor units (fen) plus an ISO 4217 currency. Parsing and formatting
 * work on the decimal string, never through a float, so 0.1 + 0.2 can never become a price.
 */
export const CURRENCIES = ['CNY'] as const;
export type Currency = (typeof CURRENCIES)[number];

const SYMBOL: Record<Currency, string> = { CNY: '¥' };

/** 100,000.00 CNY: above any single counter sale, below Number.MAX_SAFE_INTEGER by far. */
export const DEFAULT_MAX_MINOR = 10_000_000;

export interface AmountLimits {
  /** Largest accepted amount in minor units (inclusive). */
  max?: number;
}

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/** Parse "12.34", "12" or "0.01" into minor units. */
export function parseAmount(text: string, limits: AmountLimits = {}): number {
  const max = limits.max ?? DEFAULT_MAX_MINOR;
  const s = text.trim();
  if (s.startsWith('-')) throw new ProtocolError(ErrorCode.AMOUNT_NEGATIVE, `amount "${clip(text)}" is negative`);
  const m = DECIMAL.exec(s);
  if (!m) throw new ProtocolError(ErrorCode.AMOUNT_INVALID, `amount "${clip(text)}" is not a decimal number like 12.34`);
  const [, whole, frac = ''] = m;
  if (frac.length > 2) {
    throw new ProtocolError(ErrorCode.AMOUNT_PRECISION, `amount "${clip(text)}" has more than 2 decimals`);
  }
  // Compare by string length first so a 400-digit input never becomes an imprecise number.
  const wholeDigits = whole!.replace(/^0+(?=\d)/, '');
  if (wholeDigits.length > String(Math.floor(max / 100)).length + 1) {
    throw new ProtocolError(ErrorCode.AMOUNT_TOO_LARGE, `amount "${clip(text)}" is over the maximum ${formatAmount(max)}`);
  }
  const minor = Number(wholeDigits) * 100 + Number(frac.padEnd(2, '0'));
  return checkMinor(minor, limits);
}

/** Check an amount already in minor units (from a message or an ECR line). */
export function checkMinor(minor: number, limits: AmountLimits = {}): number {
  const max = limits.max ?? DEFAULT_MAX_MINOR;
  if (!Number.isSafeInteger(minor)) throw new ProtocolError(ErrorCode.AMOUNT_INVALID, `amount ${minor} is not a whole number of minor units`);
  if (minor < 0) throw new ProtocolError(ErrorCode.AMOUNT_NEGATIVE, `amount ${minor} is negative`);
  if (minor > max) throw new ProtocolError(ErrorCode.AMOUNT_TOO_LARGE, `amount ${formatAmount(minor)} is over the maximum ${formatAmount(max)}`);
  return minor;
}

/** 1234 → "12.34" */
export function formatDecimal(minor: number): string {
  const s = String(Math.abs(minor)).padStart(3, '0');
  return `${minor < 0 ? '-' : ''}${s.slice(0, -2)}.${s.slice(-2)}`;
}

/** 1234 → "¥12.34" */
export function formatAmount(minor: number, currency: Currency = 'CNY'): string {
  return `${SYMBOL[currency]}${formatDecimal(minor)}`;
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
