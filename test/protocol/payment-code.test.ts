import { describe, expect, it } from 'vitest';
import { ErrorCode, classifyPaymentCode, isProtocolError, maskPaymentCode, type ErrorCode as Code } from '../../protocol/index.js';

function errorOf(code: string): Code {
  try {
    classifyPaymentCode(code);
  } catch (err) {
    if (isProtocolError(err)) return err.code;
    throw err;
  }
  throw new Error(`"${code}" was accepted`);
}

describe('classifyPaymentCode', () => {
  it.each([
    ['134567890123456789', 'wechat'],
    ['100000000000000000', 'wechat'],
    ['159999999999999999', 'wechat'],
    ['134567890123456789\r\n', 'wechat'],
    ['134567890123456789\r', 'wechat'],
    ['134567890123456789\n', 'wechat'],
    ['2876344382566439', 'alipay'],
    ['287634438256643912', 'alipay'],
    ['300000000000000000000000', 'alipay'],
    ['250000000000000000000', 'alipay'],
    ['6212345678901234567', 'unionpay'],
  ])('%j is %s', (code, wallet) => {
    expect(classifyPaymentCode(code)).toEqual({ wallet, code: code.replace(/[\r\n]+$/, '') });
  });

  it.each([
    ['', ErrorCode.CODE_EMPTY],
    ['\r\n', ErrorCode.CODE_EMPTY],
    ['12345', ErrorCode.CODE_WRONG_LENGTH],
    ['13456789012345678', ErrorCode.CODE_WRONG_LENGTH], // WeChat 17 digits
    ['1345678901234567890', ErrorCode.CODE_WRONG_LENGTH], // WeChat 19 digits
    ['287634438256643', ErrorCode.CODE_WRONG_LENGTH], // Alipay 15
    ['2876344382566439123456789', ErrorCode.CODE_WRONG_LENGTH], // Alipay 25
    ['621234567890123456', ErrorCode.CODE_WRONG_LENGTH], // UnionPay 18
    ['164567890123456789', ErrorCode.CODE_UNKNOWN_PREFIX],
    ['094567890123456789', ErrorCode.CODE_UNKNOWN_PREFIX],
    ['314567890123456789', ErrorCode.CODE_UNKNOWN_PREFIX],
    ['6312345678901234567', ErrorCode.CODE_UNKNOWN_PREFIX],
    ['13456789012345678a', ErrorCode.CODE_NOT_DIGITS],
    ['1345678901 23456789', ErrorCode.CODE_NOT_DIGITS],
    [' 134567890123456789', ErrorCode.CODE_NOT_DIGITS],
    ['-34567890123456789', ErrorCode.CODE_NOT_DIGITS],
    ['１３４５６７８９０１２３４５６７８９', ErrorCode.CODE_NOT_DIGITS], // full-width digits
    ['134567890123456789\r\nx', ErrorCode.CODE_NOT_DIGITS],
    ['\x00\x01\x02', ErrorCode.CODE_NOT_DIGITS],
    ['1'.repeat(33), ErrorCode.CODE_TOO_LONG],
    ['9'.repeat(5000), ErrorCode.CODE_TOO_LONG],
  ])('rejects %j with %s', (code, expected) => {
    expect(errorOf(code)).toBe(expected);
  });

  it('says what is wrong in words', () => {
    expect(() => classifyPaymentCode('13456789012345678')).toThrow(/wechat payment code must have 18 digits, got 17/);
    expect(() => classifyPaymentCode('9912345')).toThrow(/prefix 99/);
  });

  it('masks all but the last four digits for logs', () => {
    expect(maskPaymentCode('134567890123456789')).toBe('**************6789');
    expect(maskPaymentCode('123')).toBe('****');
  });
});
