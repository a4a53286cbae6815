import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../device/line-splitter.js';
import { Debouncer, MAX_SCAN_LINE_BYTES, interpretScanLine } from '../../device/scanner.js';

const lines = (s: LineSplitter, ...chunks: (string | Buffer)[]) => chunks.flatMap((c) => s.push(Buffer.isBuffer(c) ? c : Buffer.from(c, 'latin1')));

describe('line splitting of scanner input', () => {
  it.each([
    ['CR', '134567890123456789\r'],
    ['LF', '134567890123456789\n'],
    ['CRLF', '134567890123456789\r\n'],
  ])('%s ends a line, and nothing more', (_name, text) => {
    const s = new LineSplitter(64);
    expect(lines(s, text, '281234567890123456\r\n')).toEqual([
      { kind: 'line', text: '134567890123456789' },
      { kind: 'line', text: '281234567890123456' },
    ]);
  });

  it('a CRLF split across two chunks is one terminator; a code split across chunks is one code', () => {
    const s = new LineSplitter(64);
    expect(lines(s, '1345678901', '23456789\r', '\n6212345678901234567\r', '\n')).toEqual([
      { kind: 'line', text: '134567890123456789' },
      { kind: 'line', text: '6212345678901234567' },
    ]);
  });

  it('an empty line between terminators is reported as an empty line', () => {
    expect(lines(new LineSplitter(64), '\n\n')).toEqual([
      { kind: 'line', text: '' },
      { kind: 'line', text: '' },
    ]);
  });

  it('a 5 KB line without a terminator is cut once and discarded up to the next line end', () => {
    const s = new LineSplitter(MAX_SCAN_LINE_BYTES);
    const out = lines(s, 'x'.repeat(2000), 'y'.repeat(3000), 'z'.repeat(100), '\r134567890123456789\r');
    expect(out).toEqual([
      { kind: 'tooLong', bytes: 2000 },
      { kind: 'line', text: '134567890123456789' },
    ]);
  });

  it('binary garbage becomes a line that fails classification, not an exception', () => {
    const out = lines(new LineSplitter(64), Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x0d]));
    expect(out).toHaveLength(1);
    const r = interpretScanLine((out[0] as { text: string }).text, new Debouncer(1000), 1);
    expect(r).toMatchObject({ kind: 'rejected', error: { code: 'CODE_NOT_DIGITS' } });
  });
});

describe('scan interpretation and debounce', () => {
  it('the same code within the window is one attempt; after the window it counts again', () => {
    const d = new Debouncer(1000);
    expect(interpretScanLine('134567890123456789', d, 10_000)).toMatchObject({ kind: 'code', code: { wallet: 'wechat' } });
    expect(interpretScanLine('134567890123456789', d, 10_400)).toMatchObject({ kind: 'rejected', error: { code: 'DUPLICATE_SCAN' } });
    // A held phone keeps re-arming the window.
    expect(interpretScanLine('134567890123456789', d, 11_300)).toMatchObject({ kind: 'rejected' });
    expect(interpretScanLine('134567890123456789', d, 12_400)).toMatchObject({ kind: 'code' });
    // A different code is never debounced.
    expect(interpretScanLine('281234567890123456', d, 12_401)).toMatchObject({ kind: 'code', code: { wallet: 'alipay' } });
  });

  it.each([
    ['', 'CODE_EMPTY'],
    ['12345', 'CODE_WRONG_LENGTH'],
    ['99123456789012345678', 'CODE_UNKNOWN_PREFIX'],
    ['1345678901234567ab', 'CODE_NOT_DIGITS'],
    ['1'.repeat(40), 'CODE_TOO_LONG'],
  ])('%j is rejected with %s', (text, code) => {
    expect(interpretScanLine(text, new Debouncer(1000), 1)).toMatchObject({ kind: 'rejected', error: { code } });
  });

  it('a pairing QR is recognised; a broken one is rejected with a reason', () => {
    expect(interpretScanLine('scanbox:pair?code=ABCDEFGH12&cloud=http%3A%2F%2F127.0.0.1%3A8080', new Debouncer(1000), 1)).toMatchObject({
      kind: 'pairing',
      qr: { code: 'ABCDEFGH12', cloudUrl: 'http://127.0.0.1:8080' },
    });
    expect(interpretScanLine('scanbox:pair?code=nope', new Debouncer(1000), 1)).toMatchObject({ kind: 'rejected', error: { code: 'PAIRING_CODE_INVALID' } });
  });
});
