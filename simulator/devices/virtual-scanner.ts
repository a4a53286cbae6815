import type { Clock } from '../../protocol/clock.js';
import { backgroundClock, sleep } from '../clock.js';
import { createRandom, type Random } from '../random.js';
import type { SerialEnd } from './serial-end.js';
import { TERMINATORS, type Terminator } from './terminator.js';

/**
 * The barcode scanner module: it types what it reads into the serial line, a few characters at a
 * time, and sometimes reads badly. Every noise kind is one the box's reader must survive.
 */
export interface VirtualScannerDeps {
  end: SerialEnd;
  terminator?: Terminator;
  /** Line speed; omitted: every line in one write. */
  charsPerMs?: number;
  /** Bytes per write when pacing; default 8 (a UART FIFO's worth). */
  chunkBytes?: number;
  timers?: Clock;
  random?: Random;
}

export interface ScanOptions {
  terminator?: Terminator;
}

/** Over the box's line limit, with no terminator: a scanner stuck in a loop, or a wrong device. */
export const OVERLONG_BYTES = 5 * 1024;

export class VirtualScanner {
  private readonly terminator: Terminator;
  private readonly timers: Clock;
  private readonly random: Random;

  constructor(private readonly deps: VirtualScannerDeps) {
    this.terminator = deps.terminator ?? 'CR';
    this.timers = deps.timers ?? backgroundClock;
    this.random = deps.random ?? createRandom('scanner');
  }

  /** One clean scan: the code and the terminator, at the configured speed. */
  scan(code: string, opts: ScanOptions = {}): Promise<void> {
    return this.send(this.line(code, opts.terminator));
  }

  /** The same code read twice in quick succession (the customer held the phone still). */
  async doubleScan(code: string, gapMs = 50, opts: ScanOptions = {}): Promise<void> {
    await this.scan(code, opts);
    await sleep(this.timers, gapMs);
    await this.scan(code, opts);
  }

  /** A line delivered in `parts` writes with pauses between them, as a slow UART does. */
  async splitLine(code: string, parts = 2, gapMs = 20, opts: ScanOptions = {}): Promise<void> {
    const line = this.line(code, opts.terminator);
    const size = Math.ceil(line.length / parts);
    for (let i = 0; i < line.length; i += size) {
      if (i > 0) await sleep(this.timers, gapMs);
      await this.deps.end.write(line.slice(i, i + size));
    }
  }

  /** Random bytes (electrical noise, a misread), ended by a terminator unless `terminated` is false. */
  garbage(bytes = 16, terminated = true): Promise<void> {
    const noise = Buffer.from(Array.from({ length: bytes }, () => this.random.int(0, 255)).filter((b) => b !== 0x0d && b !== 0x0a));
    const end = terminated ? Buffer.from(TERMINATORS[this.terminator]) : Buffer.alloc(0);
    return this.send(Buffer.concat([noise, end]));
  }

  /** 5 KB of digits and no terminator. */
  overlong(bytes = OVERLONG_BYTES): Promise<void> {
    return this.send(this.random.digits(bytes));
  }

  writeRaw(data: Buffer | string): Promise<void> {
    return this.send(data);
  }

  private line(code: string, terminator = this.terminator): string {
    return `${code}${TERMINATORS[terminator]}`;
  }

  private async send(data: Buffer | string): Promise<void> {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1');
    const rate = this.deps.charsPerMs;
    if (!rate) return this.deps.end.write(buf);
    const chunk = this.deps.chunkBytes ?? 8;
    for (let i = 0; i < buf.length; i += chunk) {
      if (i > 0) await sleep(this.timers, chunk / rate);
      await this.deps.end.write(buf.subarray(i, i + chunk));
    }
  }
}
