import { SerialPortMock } from 'serialport';
import { afterEach, describe, expect, it } from 'vitest';
import { EcrInbound } from '../../protocol/index.js';
import { LineReader } from '../../simulator/devices/line-reader.js';
import { MockSerialLine, resetMockSerial } from '../support/mock-serial.js';
import { TERMINATOR_NAMES, TERMINATORS } from '../../simulator/devices/terminator.js';
import { OVERLONG_BYTES, VirtualScanner } from '../../simulator/devices/virtual-scanner.js';
import { VirtualEcr } from '../../simulator/devices/virtual-ecr.js';
import { ByteSink } from './serial-fixtures.js';

/** The virtual scanner and ECR over serialport's mock binding: the "box" here is a plain SerialPortMock. */
const CODE = '134567890123456789';
const opened: SerialPortMock[] = [];

async function openBox(path: string): Promise<{ port: SerialPortMock; sink: ByteSink }> {
  const port = new SerialPortMock({ path, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  opened.push(port);
  const sink = new ByteSink();
  port.on('data', sink.push);
  return { port, sink };
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((p) => new Promise<void>((r) => (p.isOpen ? p.close(() => r()) : r()))));
  resetMockSerial();
});

describe('mock serial line', () => {
  it.each(TERMINATOR_NAMES)('scanner code with %s reaches the box, paced in chunks', async (terminator) => {
    const line = MockSerialLine.create('/dev/mock-scanner');
    const { sink } = await openBox('/dev/mock-scanner');
    const scanner = new VirtualScanner({ end: line, terminator, charsPerMs: 20, chunkBytes: 5 });
    await scanner.scan(CODE);
    expect(await sink.until((t) => t.length >= CODE.length + TERMINATORS[terminator].length)).toBe(`${CODE}${TERMINATORS[terminator]}`);
    expect(sink.chunks.length).toBeGreaterThan(1);
  });

  it('keeps bytes written before the box opened the port, and reports when it opens', async () => {
    const line = MockSerialLine.create('/dev/mock-early');
    await line.write('early\r');
    const waiting = line.waitOpen(2_000);
    const { sink } = await openBox('/dev/mock-early');
    await waiting;
    expect(await sink.until((t) => t.endsWith('\r'))).toBe('early\r');
  });

  it('follows the box when it closes and reopens the port', async () => {
    const line = MockSerialLine.create('/dev/mock-reopen');
    const first = await openBox('/dev/mock-reopen');
    await new Promise<void>((r) => first.port.close(() => r()));
    expect(line.isOpen).toBe(false);
    await line.write('while closed\r');
    const second = await openBox('/dev/mock-reopen');
    await line.write('after\r');
    expect(await second.sink.until((t) => t.endsWith('after\r'))).toBe('while closed\rafter\r');
    const heard = new ByteSink();
    line.onData(heard.push);
    second.port.write('ok\n');
    expect(await heard.until((t) => t === 'ok\n')).toBe('ok\n');
  });

  it('noise: garbage, a split line, a double scan and a 5 KB line without terminator', async () => {
    const line = MockSerialLine.create('/dev/mock-noise');
    const { sink } = await openBox('/dev/mock-noise');
    const scanner = new VirtualScanner({ end: line, terminator: 'CRLF' });
    const lines: string[] = [];
    let overflows = 0;
    const reader = new LineReader({ onLine: (l) => lines.push(l), onOverflow: () => overflows++, maxBytes: 1024 });
    await scanner.garbage(12);
    await scanner.splitLine(CODE, 3, 5);
    await scanner.doubleScan(CODE, 5);
    await scanner.overlong();
    await scanner.scan(CODE);
    const text = await sink.until((t) => t.length > OVERLONG_BYTES && t.endsWith(`${CODE}\r\n`));
    reader.push(Buffer.from(text, 'latin1'));
    // Garbage, then the split line and the double scan intact; the over-long line swallows the code
    // that follows it (no terminator in between), which is what a real reader sees too.
    expect(lines).toHaveLength(4);
    expect(lines.slice(1)).toEqual([CODE, CODE, CODE]);
    expect(overflows).toBe(1);
    expect(text).toContain('\r\n');
  });

  it('ECR: sales and cancels arrive as JSON lines; answers are parsed and awaited', async () => {
    const line = MockSerialLine.create('/dev/mock-ecr');
    const { port, sink } = await openBox('/dev/mock-ecr');
    const ecr = new VirtualEcr({ end: line });
    await ecr.sale('R-1', 1234);
    await ecr.cancel('R-1');
    const text = await sink.until((t) => t.split('\n').length >= 3);
    expect(text.trimEnd().split('\n').map((l) => EcrInbound.parse(JSON.parse(l)))).toEqual([
      { type: 'sale', ref: 'R-1', amount: 1234, currency: 'CNY' },
      { type: 'cancel', ref: 'R-1' },
    ]);
    const result = ecr.resultFor('R-1', 2_000);
    // The box answers in two writes that split a CRLF, plus one unreadable line.
    port.write('{"type":"progress","ref":"R-1","stage":"PAYING","message":"paying"}\r');
    port.write('\nnot json\n{"type":"result","ref":"R-1","outcome":"PAID","amount":1234,"currency":"CNY"}\n');
    expect(await result).toMatchObject({ outcome: 'PAID', amount: 1234 });
    expect(ecr.received.map((m) => m.type)).toEqual(['progress', 'result']);
    expect(ecr.unreadable).toEqual(['not json']);
    await expect(ecr.waitFor((m) => m.type === 'error', 50)).rejects.toThrow(/no matching answer/);
    ecr.close();
  });
});

describe('line reader', () => {
  it.each(TERMINATOR_NAMES)('splits %s lines even when the terminator straddles chunks', (terminator) => {
    const lines: string[] = [];
    const reader = new LineReader({ onLine: (l) => lines.push(l) });
    const stream = `a1${TERMINATORS[terminator]}b2${TERMINATORS[terminator]}`;
    for (const ch of stream) reader.push(ch);
    expect(lines).toEqual(['a1', 'b2']);
  });
});
