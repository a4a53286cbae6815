import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ALIPAY_MAX_FEN, AlipayAmountError, fenToYuan, signedFenToYuan, signedYuanToFen, tryYuanToFen, yuanToFen } from '../../../cloud/gateway/alipay/amount.js';

describe('alipay amounts: fen ↔ total_amount', () => {
  it('formats every amount from 1 to 100000 fen with exactly two decimals and reads it back', () => {
    for (let fen = 1; fen <= 100_000; fen++) {
      const text = fenToYuan(fen);
      // Independent oracle: for these magnitudes toFixed(2) of fen/100 is the exact two-decimal string.
      if (text !== (fen / 100).toFixed(2)) throw new Error(`${fen} → ${text}`);
      if (yuanToFen(text) !== fen) throw new Error(`${text} → ${yuanToFen(text)}`);
    }
  });

  it('formats edge values', () => {
    expect(fenToYuan(1)).toBe('0.01');
    expect(fenToYuan(9)).toBe('0.09');
    expect(fenToYuan(10)).toBe('0.10');
    expect(fenToYuan(99)).toBe('0.99');
    expect(fenToYuan(100)).toBe('1.00');
    expect(fenToYuan(101)).toBe('1.01');
    expect(fenToYuan(1230)).toBe('12.30');
    expect(fenToYuan(10_000_000)).toBe('100000.00');
    expect(fenToYuan(9_999_999_999)).toBe('99999999.99');
    expect(fenToYuan(ALIPAY_MAX_FEN)).toBe('100000000.00');
  });

  it('round-trips the whole documented range [0.01, 100000000]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: ALIPAY_MAX_FEN }), (fen) => {
        const text = fenToYuan(fen);
        expect(text).toMatch(/^(0|[1-9]\d*)\.\d\d$/);
        expect(BigInt(text.replace('.', ''))).toBe(BigInt(fen));
        expect(yuanToFen(text)).toBe(fen);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses what Alipay does not take: 0, negative, fractional fen, non-numbers, above 100000000.00', () => {
    for (const bad of [0, -1, -100, 1.5, 0.1, Number.NaN, Number.POSITIVE_INFINITY, ALIPAY_MAX_FEN + 1, 2 ** 53]) {
      expect(() => fenToYuan(bad), String(bad)).toThrow(AlipayAmountError);
    }
    expect(() => fenToYuan('100' as unknown as number)).toThrow(AlipayAmountError);
  });

  it('reads answers with zero, one or two decimals exactly', () => {
    expect(yuanToFen('12.30')).toBe(1230);
    expect(yuanToFen('12.3')).toBe(1230);
    expect(yuanToFen('12')).toBe(1200);
    expect(yuanToFen('0.01')).toBe(1);
    expect(yuanToFen('0.00')).toBe(0);
    expect(yuanToFen('0')).toBe(0);
    expect(yuanToFen('88.88')).toBe(8888);
    expect(yuanToFen('100000000.00')).toBe(ALIPAY_MAX_FEN);
    // The classic float trap: 0.1 + 0.2 and 1.005 are never rounded through a double.
    expect(yuanToFen('0.30')).toBe(30);
    expect(yuanToFen('1.01')).toBe(101);
  });

  it('refuses floats, 3 decimals, signs, exponents, spaces and anything not a plain decimal', () => {
    const bad: unknown[] = [
      '1.234', '0.001', '12.300', '-1', '-0.01', '+1', '1e2', '1E2', '0x10', ' 1', '1 ', '1.', '.5', '', '01', '00.01',
      '1,00', '１２', 'NaN', 'Infinity', '100000000.01', '999999999.99', '1000000000', '12.3.4', '١٢',
      12.3, 1230, null, undefined, {}, ['12.30'],
    ];
    for (const b of bad) {
      expect(() => yuanToFen(b), JSON.stringify(b) ?? String(b)).toThrow(AlipayAmountError);
      expect(tryYuanToFen(b)).toBeUndefined();
    }
  });
});

describe('alipay amounts: signed yuan (answers with 0.00, bill rows with refunds)', () => {
  it('writes zero and negatives and reads them back exactly', () => {
    expect([0, 1, -1, 1230, -500, -1_000_000_000_000].map(signedFenToYuan)).toEqual(['0.00', '0.01', '-0.01', '12.30', '-5.00', '-10000000000.00']);
    fc.assert(
      fc.property(fc.integer({ min: -9_999_999_999_999, max: 9_999_999_999_999 }), (fen) => {
        expect(signedYuanToFen(signedFenToYuan(fen))).toBe(fen);
      }),
    );
    expect(signedYuanToFen('-0.00')).toBe(0);
    expect(signedYuanToFen('35.8')).toBe(3580);
  });

  it('refuses what is not exact', () => {
    for (const b of ['1.234', '+1', '--1', '-', '', ' 1', '01', '1e2', '12345678901234', 12, null]) {
      expect(() => signedYuanToFen(b), String(b)).toThrow(AlipayAmountError);
    }
    expect(() => signedFenToYuan(1.5)).toThrow(AlipayAmountError);
  });
});
