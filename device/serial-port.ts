import { EventEmitter } from 'node:events';
// The class alone: the package's index also loads every parser and the mock binding (~3 MB of RSS).
import { SerialPort } from 'serialport/dist/serialport.js';
import { backoffDelay, type BackoffPolicy, type PortState } from '../protocol/index.js';
import type { Clock } from '../protocol/clock.js';

/** The part of serialport's SerialPort the agent uses; tests may hand in anything shaped like it. */
export interface SerialLike {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  close(cb?: (err: Error | null) => void): void;
  write(data: string | Buffer, cb?: (err: Error | null | undefined) => void): boolean;
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'close', fn: (err?: Error & { disconnected?: boolean }) => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  removeAllListeners(): unknown;
}

export interface SerialOpenOptions {
  path: string;
  baudRate: number;
}
export type SerialFactory = (opts: SerialOpenOptions) => SerialLike;

export const openRealSerial: SerialFactory = ({ path, baudRate }) => new SerialPort({ path, baudRate, autoOpen: false });

export interface ReopeningPortOptions extends SerialOpenOptions {
  name: string;
  factory: SerialFactory;
  clock: Clock;
  random: () => number;
  backoff: BackoffPolicy;
  log: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

/**
 * A serial port that stays wanted: when the device vanishes (USB unplugged, socat gone) it is
 * reopened with backoff, forever, instead of taking the agent down. Emits 'data' (Buffer) and
 * 'state' (PortState).
 */
export class ReopeningPort extends EventEmitter {
  state: PortState = 'closed';
  private port: SerialLike | null = null;
  private failures = 0;
  private timer: ReturnType<Clock['setTimeout']> | null = null;
  private stopped = false;

  constructor(private readonly opts: ReopeningPortOptions) {
    super();
  }

  start(): void {
    this.stopped = false;
    this.openOnce();
  }

  /** Writes only while open; a closed cash-register port drops the line (the caller is told). */
  write(data: string): boolean {
    if (!this.port || this.state !== 'open') return false;
    this.port.write(data);
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.opts.clock.clearTimeout(this.timer);
    const port = this.port;
    this.port = null;
    this.setState('closed');
    if (port) detach(port);
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private openOnce(): void {
    const { factory, path, baudRate } = this.opts;
    const port = factory({ path, baudRate });
    this.port = port;
    port.on('data', (chunk) => this.emit('data', chunk));
    port.on('error', (err) => this.opts.log.warn({ port: this.opts.name, err: err.message }, 'serial port error'));
    port.on('close', (err) => this.onClose(port, err));
    port.open((err) => {
      if (this.stopped || this.port !== port) return;
      if (err) return this.retry(port, 'absent', err.message);
      this.failures = 0;
      this.setState('open');
      this.opts.log.info({ port: this.opts.name, path }, 'serial port open');
    });
  }

  private onClose(port: SerialLike, err?: Error & { disconnected?: boolean }): void {
    if (this.stopped || this.port !== port) return;
    this.retry(port, 'reopening', err?.message ?? 'closed');
  }

  private retry(port: SerialLike, state: PortState, why: string): void {
    detach(port);
    this.port = null;
    this.setState(state);
    const delay = backoffDelay(this.failures++, this.opts.random, this.opts.backoff);
    this.opts.log.warn({ port: this.opts.name, path: this.opts.path, why, retryInMs: delay }, 'serial port unavailable; reopening');
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.openOnce();
    }, delay);
  }

  private setState(state: PortState): void {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
  }
}

/** Forget a port we are done with; a write it cancels while closing must not become an uncaught 'error'. */
function detach(port: SerialLike): void {
  port.removeAllListeners();
  port.on('error', () => undefined);
}
