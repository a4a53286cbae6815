/**
 * Splits a byte stream into lines ended by CR, LF or CRLF — including a CRLF whose two bytes arrive
 * in different chunks, which must not produce an empty extra line.
 */
export interface LineReaderOptions {
  onLine: (line: string) => void;
  /** Called once per line that grew past maxBytes; the rest of that line is dropped. */
  onOverflow?: (bytes: number) => void;
  maxBytes?: number;
}

export class LineReader {
  private buf = '';
  private afterCr = false;
  private overflowing = false;
  private readonly maxBytes: number;

  constructor(private readonly opts: LineReaderOptions) {
    this.maxBytes = opts.maxBytes ?? 64 * 1024;
  }

  push(chunk: Buffer | string): void {
    for (const ch of typeof chunk === 'string' ? chunk : chunk.toString('latin1')) this.char(ch);
  }

  private char(ch: string): void {
    const skipLf = this.afterCr && ch === '\n';
    this.afterCr = ch === '\r';
    if (skipLf) return;
    if (ch === '\r' || ch === '\n') return this.endLine();
    if (this.overflowing) return;
    this.buf += ch;
    if (this.buf.length > this.maxBytes) {
      this.opts.onOverflow?.(this.buf.length);
      this.overflowing = true;
      this.buf = '';
    }
  }

  private endLine(): void {
    const line = this.buf;
    const dropped = this.overflowing;
    this.buf = '';
    this.overflowing = false;
    if (!dropped) this.opts.onLine(Buffer.from(line, 'latin1').toString('utf8'));
  }
}
