import {
  ErrorCode,
  ProtocolError,
  classifyPaymentCode,
  isProtocolError,
  maskPaymentCode,
  parsePairingQr,
  type PairingQr,
  type PaymentCode,
  type PortState,
} from '../protocol/index.js';
import { LineSplitter } from './line-splitter.js';
import { ReopeningPort, type ReopeningPortOptions } from './serial-port.js';

/** Payment codes are ≤ 32 characters and a pairing QR ≤ 512; anything longer is noise. */
export const MAX_SCAN_LINE_BYTES = 1024;
const PAIRING_PREFIX = 'scanbox:pair?';

/**
 * A scanner held over a phone sends the same code again and again; one physical scan must become
 * one payment attempt. A code is dropped while it was last seen less than `windowMs` ago.
 */
export class Debouncer {
  private lastCode: string | null = null;
  private lastAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly windowMs: number) {}

  accept(code: string, now: number): boolean {
    const repeat = code === this.lastCode && now - this.lastAt < this.windowMs;
    this.lastCode = code;
    this.lastAt = now;
    return !repeat;
  }
}

export interface ScannerHandlers {
  onScan(code: PaymentCode): void;
  /** Noise: every rejected line comes here with a specific error; none touches money state. */
  onReject(err: ProtocolError): void;
  onPairing(qr: PairingQr): void;
  onState(state: PortState): void;
}

/** What one scanned line means. Pure, so noise handling is tested without a port. */
export type ScanOutcome =
  | { kind: 'code'; code: PaymentCode }
  | { kind: 'pairing'; qr: PairingQr }
  | { kind: 'rejected'; error: ProtocolError };

export function interpretScanLine(text: string, debouncer: Debouncer, now: number): ScanOutcome {
  try {
    if (text.startsWith(PAIRING_PREFIX)) return { kind: 'pairing', qr: parsePairingQr(text) };
    const code = classifyPaymentCode(text);
    if (!debouncer.accept(code.code, now)) {
      const msg = `same code ${maskPaymentCode(code.code)} scanned again within the debounce window; ignored`;
      return { kind: 'rejected', error: new ProtocolError(ErrorCode.DUPLICATE_SCAN, msg) };
    }
    return { kind: 'code', code };
  } catch (err) {
    if (isProtocolError(err)) return { kind: 'rejected', error: err };
    throw err;
  }
}

export interface ScannerOptions extends Omit<ReopeningPortOptions, 'name'> {
  debounceMs: number;
  handlers: ScannerHandlers;
}

/** The payment-code scanner on its serial port: lines in, classified and debounced codes out. */
export class ScannerReader {
  readonly port: ReopeningPort;
  private readonly splitter = new LineSplitter(MAX_SCAN_LINE_BYTES);
  private readonly debouncer: Debouncer;

  constructor(private readonly opts: ScannerOptions) {
    this.debouncer = new Debouncer(opts.debounceMs);
    this.port = new ReopeningPort({ ...opts, name: 'scanner' });
    this.port.on('data', (chunk: Buffer) => this.onData(chunk));
    this.port.on('state', (s: PortState) => opts.handlers.onState(s));
  }

  start(): void {
    this.port.start();
  }

  stop(): Promise<void> {
    return this.port.stop();
  }

  private onData(chunk: Buffer): void {
    for (const item of this.splitter.push(chunk)) {
      if (item.kind === 'tooLong') {
        const msg = `scanner sent ${item.bytes}+ bytes without a line end; discarded up to the next line end`;
        this.opts.handlers.onReject(new ProtocolError(ErrorCode.LINE_TOO_LONG, msg));
        continue;
      }
      this.dispatch(interpretScanLine(item.text, this.debouncer, this.opts.clock.now()));
    }
  }

  private dispatch(outcome: ScanOutcome): void {
    const h = this.opts.handlers;
    if (outcome.kind === 'code') h.onScan(outcome.code);
    else if (outcome.kind === 'pairing') h.onPairing(outcome.qr);
    else h.onReject(outcome.error);
  }
}
