import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_MINOR, ErrorCode, checkMinor, formatAmount, formatDecimal, parseAmount } from '../../protocol/index.js';

describe('money', () => {
  it.each([
    ['12.34', 1234],
    ['12', 1200],
    ['0.01', 1],
    ['0.1', 10],
    ['0', 0],
    ['007.50', 750],
    ['100000.00', 10_000_000],
    [' 3.20 ', 320],
  ])('parses %j as %i fen', (text, minor) => {
    expect(parseAmount(text)).toBe(minor);
  });

  it.each([
    ['-1', ErrorCode.AMOUNT_NEGATIVE],
    ['-0.01', ErrorCode.AMOUNT_NEGATIVE],
    ['1.234', ErrorCode.AMOUNT_PRECISION],
    ['0.001', ErrorCode.AMOUNT_PRECISION],
    ['100000.01', ErrorCode.AMOUNT_TOO_LARGE],
    ['9'.repeat(400), ErrorCode.AMOUNT_TOO_LARGE],
    ['', ErrorCode.AMOUNT_INVALID],
    ['1e3', ErrorCode.AMOUNT_INVALID],
    ['12.', ErrorCode.AMOUNT_INVALID],
    ['.5', ErrorCode.AMOUNT_INVALID],
    ['1,5', ErrorCode.AMOUNT_INVALID],
    ['0x10', ErrorCode.AMOUNT_INVALID],
    ['NaN', ErrorCode.AMOUNT_INVALID],
    ['¥12', ErrorCode.AMOUNT_INVALID],
  ])('rejects %j with %s', (text, code) => {
    expect(() => parseAmount(text)).toThrow(expect.objectContaining({ code }));
  });

  it('honours a configured maximum', () => {
    expect(parseAmount('500.00', { max: 50_000 })).toBe(50_000);
    expect(() => parseAmount('500.01', { max: 50_000 })).toThrow(expect.objectContaining({ code: ErrorCode.AMOUNT_TOO_LARGE }));
  });

  it('checks minor units from messages', () => {
    expect(checkMinor(1)).toBe(1);
    expect(() => checkMinor(1.5)).toThrow(expect.objectContaining({ code: ErrorCode.AMOUNT_INVALID }));
    expect(() => checkMinor(-1)).toThrow(expect.objectContaining({ code: ErrorCode.AMOUNT_NEGATIVE }));
    expect(() => checkMinor(DEFAULT_MAX_MINOR + 1)).toThrow(expect.objectContaining({ code: ErrorCode.AMOUNT_TOO_LARGE }));
  });

  it('formats with the currency symbol', () => {
    expect(formatAmount(1234)).toBe('¥12.34');
    expect(formatAmount(1)).toBe('¥0.01');
    expect(formatAmount(0)).toBe('¥0.00');
    expect(formatAmount(10_000_000)).toBe('¥100000.00');
    expect(formatDecimal(-250)).toBe('-2.50');
  });

  it('round-trips every amount up to the maximum (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: DEFAULT_MAX_MINOR }), (minor) => {
        expect(parseAmount(formatDecimal(minor))).toBe(minor);
        expect(formatAmount(parseAmount(formatDecimal(minor)))).toBe(`¥${formatDecimal(minor)}`);
      }),
      { numRuns: 20_000 },
    );
  });

  it('parses any 0–2 decimal text exactly (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99_999 }), fc.integer({ min: 0, max: 99 }), fc.boolean(), (whole, frac, twoDigits) => {
        const text = twoDigits ? `${whole}.${String(frac).padStart(2, '0')}` : `${whole}.${frac % 10}`;
        const expected = whole * 100 + (twoDigits ? frac : (frac % 10) * 10);
        expect(parseAmount(text)).toBe(expected);
      }),
    );
  });
});
