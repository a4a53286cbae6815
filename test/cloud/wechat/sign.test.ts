import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalString, signParams, verifySigned, withSign, type SignType } from '../../../cloud/gateway/wechat/sign.js';
import { PUBLISHED, refSign } from './reference.js';

const TYPES: SignType[] = ['MD5', 'HMAC-SHA256'];

describe('WeChat Pay v2 signature: the published example (签名算法)', () => {
  it('builds the published stringA', () => {
    expect(canonicalString(PUBLISHED.params)).toBe(PUBLISHED.stringA);
  });
  it('gives the published MD5 sign', () => {
    expect(signParams(PUBLISHED.params, PUBLISHED.key, 'MD5')).toBe(PUBLISHED.md5);
  });
  it('gives the published HMAC-SHA256 sign', () => {
    expect(signParams(PUBLISHED.params, PUBLISHED.key, 'HMAC-SHA256')).toBe(PUBLISHED.hmacSha256);
  });
  it('the reference implementation of the tests agrees with the published values', () => {
    expect(refSign({ ...PUBLISHED.params }, PUBLISHED.key, 'MD5')).toBe(PUBLISHED.md5);
    expect(refSign({ ...PUBLISHED.params }, PUBLISHED.key, 'HMAC-SHA256')).toBe(PUBLISHED.hmacSha256);
  });
  it('verifies the published final message (its sign field included)', () => {
    expect(verifySigned({ ...PUBLISHED.params, sign: PUBLISHED.md5 }, PUBLISHED.key)).toBe(true);
    expect(verifySigned({ ...PUBLISHED.params, sign: PUBLISHED.md5 }, PUBLISHED.key, 'MD5')).toBe(true);
    expect(verifySigned({ ...PUBLISHED.params, sign: PUBLISHED.hmacSha256 }, PUBLISHED.key, 'HMAC-SHA256')).toBe(true);
  });
});

describe('WeChat Pay v2 signature: rules', () => {
  it('sorts names in ASCII order (upper case before _ before lower case), not locale order', () => {
    expect(canonicalString({ a: '1', B: '2', _x: '3', Ab: '4' })).toBe('Ab=4&B=2&_x=3&a=1');
  });
  it('leaves out empty values and sign, keeps everything else (fields it does not know too)', () => {
    expect(canonicalString({ b: '', sign: 'X', a: '1', future_field: 'y', c: undefined })).toBe('a=1&future_field=y');
  });
  it('does not depend on the order the fields came in', () => {
    const one = signParams({ z: '1', a: '2', m: '3' }, 'k', 'MD5');
    expect(signParams({ m: '3', z: '1', a: '2' }, 'k', 'MD5')).toBe(one);
  });
  it('signs raw UTF-8 values (no URL encoding)', () => {
    const p = { body: '扫码墩-测试 & <x>=1', total_fee: '1' };
    expect(signParams(p, 'key1', 'MD5')).toBe(refSign(p, 'key1', 'MD5'));
    expect(canonicalString(p)).toBe('body=扫码墩-测试 & <x>=1&total_fee=1');
  });
  it('refuses an empty API key', () => {
    expect(() => signParams({ a: '1' }, '', 'MD5')).toThrow();
  });
  it('withSign drops empty values from the message and replaces a stale sign', () => {
    const m = withSign({ a: '1', b: '', sign: 'OLD' }, 'k', 'MD5');
    expect(m).toEqual({ a: '1', sign: refSign({ a: '1' }, 'k', 'MD5') });
  });
});

describe('WeChat Pay v2 signature: round trips against an independent implementation', () => {
  const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/);
  const params = fc.dictionary(name, fc.oneof(fc.string(), fc.constant('')), { maxKeys: 12 });
  const key = fc.string({ minLength: 1, maxLength: 40 });
  for (const type of TYPES) {
    it(`${type}: equals the reference and verifies`, () => {
      fc.assert(
        fc.property(params, key, (p, k) => {
          const sign = signParams(p, k, type);
          expect(sign).toBe(refSign(p, k, type));
          expect(sign).toMatch(type === 'MD5' ? /^[0-9A-F]{32}$/ : /^[0-9A-F]{64}$/);
          expect(verifySigned({ ...p, sign }, k, type)).toBe(true);
          expect(verifySigned({ ...p, sign }, k)).toBe(true);
        }),
        { numRuns: 300 },
      );
    });
  }
});

describe('WeChat Pay v2 signature: what must not verify', () => {
  const key = 'a'.repeat(32);
  const fields = { return_code: 'SUCCESS', result_code: 'SUCCESS', out_trade_no: 'sbABCDEFGHJK-1', transaction_id: '4200000001', total_fee: '100' };
  for (const type of TYPES) {
    const signed = { ...fields, sign: refSign(fields, key, type) };
    it(`${type}: a changed field`, () => {
      expect(verifySigned({ ...signed, total_fee: '1' }, key, type)).toBe(false);
    });
    it(`${type}: an added field`, () => {
      expect(verifySigned({ ...signed, trade_state: 'SUCCESS' }, key, type)).toBe(false);
    });
    it(`${type}: a removed field`, () => {
      const { transaction_id: _, ...rest } = signed;
      expect(verifySigned(rest, key, type)).toBe(false);
    });
    it(`${type}: the wrong key`, () => {
      expect(verifySigned(signed, 'b'.repeat(32), type)).toBe(false);
    });
    it(`${type}: no sign, an empty sign`, () => {
      expect(verifySigned(fields, key, type)).toBe(false);
      expect(verifySigned({ ...fields, sign: '' }, key, type)).toBe(false);
      expect(verifySigned({ ...fields, sign: '' }, key)).toBe(false);
    });
    it(`${type}: lower-case hex, a truncated sign, a sign of the other type`, () => {
      expect(verifySigned({ ...fields, sign: signed.sign.toLowerCase() }, key, type)).toBe(false);
      expect(verifySigned({ ...fields, sign: signed.sign.slice(0, -1) }, key, type)).toBe(false);
      const other: SignType = type === 'MD5' ? 'HMAC-SHA256' : 'MD5';
      expect(verifySigned({ ...fields, sign: refSign(fields, key, other) }, key, type)).toBe(false);
    });
  }
  it('a sign of neither length, or an empty key', () => {
    expect(verifySigned({ a: '1', sign: 'ABC' }, 'k')).toBe(false);
    expect(verifySigned({ a: '1', sign: refSign({ a: '1' }, 'k', 'MD5') }, '')).toBe(false);
  });
});
