/**
 * Splits a serial byte stream into lines. Scanners end a code with CR, LF or CRLF depending on
 * their setup, and a terminator may arrive split across two reads, so CR and LF both end a line and
 * an LF right after a CR (even in the next chunk) is swallowed. A line that grows past `maxBytes`
 * without a terminator is reported once as too long and the rest of it is discarded up to the next
 * terminator, so a babbling port can never grow memory. (`@serialport/parser-readline` fits neither
 * rule: it takes one delimiter string and buffers an unterminated line without bound, so it is not a
 * dependency.)
 */
export type SplitItem = { kind: 'line'; text: string } | { kind: 'tooLong'; bytes: number };

const CR = 0x0d;
const LF = 0x0a;

export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private discarding = false;
  private afterCr = false;

  constructor(
    private readonly maxBytes: number,
    private readonly encoding: BufferEncoding = 'latin1',
  ) {}

  /** Feed one chunk; returns the complete lines (and overflow reports) it finished. */
  push(chunk: Buffer): SplitItem[] {
    const out: SplitItem[] = [];
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte !== CR && byte !== LF) continue;
      const swallow = byte === LF && this.afterCr && i === start && this.size === 0 && !this.discarding;
      this.afterCr = byte === CR;
      if (swallow) {
        start = i + 1;
        continue;
      }
      this.append(chunk.subarray(start, i), out);
      this.finishLine(out);
      start = i + 1;
    }
    if (start < chunk.length) {
      this.afterCr = false;
      this.append(chunk.subarray(start), out);
    }
    return out;
  }

  private append(bytes: Buffer, out: SplitItem[]): void {
    if (this.discarding || bytes.length === 0) return;
    if (this.size + bytes.length > this.maxBytes) {
      out.push({ kind: 'tooLong', bytes: this.size + bytes.length });
      this.reset();
      this.discarding = true;
      return;
    }
    this.parts.push(bytes);
    this.size += bytes.length;
  }

  private finishLine(out: SplitItem[]): void {
    if (!this.discarding) out.push({ kind: 'line', text: Buffer.concat(this.parts, this.size).toString(this.encoding) });
    this.reset();
  }

  private reset(): void {
    this.parts = [];
    this.size = 0;
    this.discarding = false;
  }
}
