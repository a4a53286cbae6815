import { describe, expect, it } from 'vitest';
import { ErrorCode, backoffDelay, makeOutTradeNo, normalisePairingCode, pairingQrText, parsePairingQr } from '../../protocol/index.js';

describe('pairing codes', () => {
  it('accepts what an engineer types', () => {
    expect(normalisePairingCode('7k2m9-qx4ta')).toBe('7K2M9QX4TA');
    expect(normalisePairingCode(' 7K2M 9QX4 TA ')).toBe('7K2M9QX4TA');
  });

  it.each(['', '7K2M9QX4T', '7K2M9QX4TAB', '7K2M9QX4TI', 'OOOOOOOOOO', '7K2M9QX4T!'])('rejects %j', (code) => {
    expect(() => normalisePairingCode(code)).toThrow(expect.objectContaining({ code: ErrorCode.PAIRING_CODE_INVALID }));
  });

  it('round-trips the pairing QR text', () => {
    const qr = { code: '7K2M9QX4TA', cloudUrl: 'http://127.0.0.1:8080' };
    const text = pairingQrText(qr);
    expect(text).toBe('scanbox:pair?code=7K2M9QX4TA&cloud=http%3A%2F%2F127.0.0.1%3A8080');
    expect(parsePairingQr(`${text}\r\n`)).toEqual(qr);
  });

  it.each(['134567890123456789', 'scanbox:pair?code=7K2M9QX4TA', 'scanbox:pair?code=BAD&cloud=http://x', 'scanbox:pair?code=7K2M9QX4TA&cloud=ftp://x'])(
    'rejects pairing QR %j',
    (text) => {
      expect(() => parsePairingQr(text)).toThrow(expect.objectContaining({ code: ErrorCode.PAIRING_CODE_INVALID }));
    },
  );
});

describe('outTradeNo', () => {
  it('is <deviceId>-<seq> within 32 characters', () => {
    expect(makeOutTradeNo('sb7K2M9QX4TA', 42)).toBe('sb7K2M9QX4TA-42');
    expect(() => makeOutTradeNo('a'.repeat(30), 12)).toThrow(/32/);
  });
});

describe('backoff', () => {
  it('grows exponentially within [base/2, ceiling) and caps', () => {
    const policy = { baseMs: 100, maxMs: 1000 };
    expect(backoffDelay(0, () => 0, policy)).toBe(50);
    expect(backoffDelay(0, () => 0.999999, policy)).toBe(99);
    expect(backoffDelay(3, () => 0.999999, policy)).toBe(799);
    expect(backoffDelay(40, () => 0.999999, policy)).toBe(999);
  });

  it('spreads a fleet: different random draws give different delays', () => {
    const delays = new Set([0.1, 0.3, 0.5, 0.7, 0.9].map((r) => backoffDelay(5, () => r)));
    expect(delays.size).toBe(5);
  });
});
