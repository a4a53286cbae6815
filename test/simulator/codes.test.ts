import { describe, expect, it } from 'vitest';
import { classifyPaymentCode, isProtocolError, WALLETS } from '../../protocol/index.js';
import { INVALID_KINDS, invalidCode, invalidCodes, validCode } from '../../simulator/devices/codes.js';
import { createRandom } from '../../simulator/random.js';

describe('payment code generator', () => {
  it.each(WALLETS)('every generated %s code classifies to its wallet', (wallet) => {
    const random = createRandom(`valid-${wallet}`);
    for (let i = 0; i < 500; i++) {
      const code = validCode(random, wallet);
      expect(classifyPaymentCode(code), code).toEqual({ wallet, code });
    }
  });

  it('covers every wallet prefix and the whole Alipay length range', () => {
    const random = createRandom(3);
    const codes = Array.from({ length: 3000 }, () => validCode(random));
    expect(new Set(codes.map((c) => c.slice(0, 2)))).toEqual(new Set(['10', '11', '12', '13', '14', '15', '25', '26', '27', '28', '29', '30', '62']));
    const alipayLengths = new Set(codes.filter((c) => classifyPaymentCode(c).wallet === 'alipay').map((c) => c.length));
    expect([...alipayLengths].sort((a, b) => a - b)).toEqual([16, 17, 18, 19, 20, 21, 22, 23, 24]);
  });

  it('is reproducible from its seed', () => {
    const a = Array.from({ length: 20 }, ((r) => () => validCode(r))(createRandom(42)));
    const b = Array.from({ length: 20 }, ((r) => () => validCode(r))(createRandom(42)));
    const c = Array.from({ length: 20 }, ((r) => () => validCode(r))(createRandom(43)));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it.each(INVALID_KINDS)('every %s code is rejected with its labelled ErrorCode', (kind) => {
    const random = createRandom(`invalid-${kind}`);
    for (let i = 0; i < 300; i++) {
      const bad = invalidCode(random, kind);
      expect(bad.kind).toBe(kind);
      let thrown: unknown;
      try {
        classifyPaymentCode(bad.code);
      } catch (err) {
        thrown = err;
      }
      expect(isProtocolError(thrown), JSON.stringify(bad.code)).toBe(true);
      expect((thrown as { code: string }).code, JSON.stringify(bad.code)).toBe(bad.error);
    }
  });

  it('invalidCodes gives every kind', () => {
    const list = invalidCodes(createRandom(1), 2);
    expect(list).toHaveLength(INVALID_KINDS.length * 2);
    expect(new Set(list.map((c) => c.kind))).toEqual(new Set(INVALID_KINDS));
  });
});
