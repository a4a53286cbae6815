import { SerialPortMock } from 'serialport';
import type { SerialEnd } from '../../simulator/devices/serial-end.js';

// Taken from SerialPortMock itself: the binding packages' own typings do not resolve under NodeNext.
type MockBindingApi = typeof SerialPortMock.binding;
type MockPortBinding = Awaited<ReturnType<MockBindingApi['open']>>;
type OpenOptions = Parameters<MockBindingApi['open']>[0];

/**
 * The in-memory serial line for fast unit tests: the box's agent opens `path` with serialport's
 * SerialPortMock (any way it likes), and this object is the far end — what it writes arrives as the
 * agent's received data, what the agent writes is delivered to `onData` listeners.
 *
 * It must use `SerialPortMock.binding` (never a separately imported MockBinding: in ESM that is a
 * different module copy with its own port table). The agent's port is found by wrapping the
 * binding's `open`, so the agent needs no test hook of its own.
 */
const lines = new Map<string, MockSerialLine>();
let openWrapped = false;

function wrapOpen(): void {
  if (openWrapped) return;
  openWrapped = true;
  const binding = SerialPortMock.binding;
  const open = binding.open.bind(binding);
  binding.open = async (options: OpenOptions) => {
    const port = await open(options);
    lines.get(options.path)?.attach(port);
    return port;
  };
}

export class MockSerialLine implements SerialEnd {
  private port: MockPortBinding | undefined;
  /** Bytes written before the agent opened the port, as a pty's buffer would keep them. */
  private pending: Buffer[] = [];
  private readonly listeners = new Set<(chunk: Buffer) => void>();
  private readonly openWaiters = new Set<() => void>();

  private constructor(readonly path: string) {}

  /** Registers `path` with the mock binding (echo off, writes recorded). */
  static create(path: string): MockSerialLine {
    wrapOpen();
    SerialPortMock.binding.createPort(path, { echo: false, record: true });
    const line = new MockSerialLine(path);
    lines.set(path, line);
    return line;
  }

  get isOpen(): boolean {
    return this.port?.isOpen === true;
  }

  /** Everything the agent wrote on its current port. */
  get recording(): Buffer {
    return this.port?.recording ?? Buffer.alloc(0);
  }

  async write(data: Buffer | string): Promise<void> {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (this.port?.isOpen) this.port.emitData(buf);
    else this.pending.push(buf);
  }

  onData(listener: (chunk: Buffer) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once the agent has the port open. */
  waitOpen(timeoutMs = 5_000): Promise<void> {
    if (this.isOpen) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.openWaiters.delete(done);
        reject(new Error(`mock serial ${this.path} not opened within ${timeoutMs} ms`));
      }, timeoutMs);
      this.openWaiters.add(done);
    });
  }

  async close(): Promise<void> {
    this.listeners.clear();
    lines.delete(this.path);
  }

  /** Called from the wrapped `open` with the agent's fresh port (also after the agent reopens it). */
  attach(port: MockPortBinding): void {
    this.port = port;
    const write = port.write.bind(port);
    port.write = async (buffer: Buffer) => {
      await write(buffer);
      const copy = Buffer.from(buffer);
      for (const l of this.listeners) l(copy);
    };
    const queued = Buffer.concat(this.pending);
    this.pending = [];
    // The binding's port is open as soon as it exists; the bytes wait in it until the stream reads.
    if (queued.length) port.emitData(queued);
    for (const w of this.openWaiters) w();
    this.openWaiters.clear();
  }
}

/** After each test: forget every mock port and line. */
export function resetMockSerial(): void {
  SerialPortMock.binding.reset();
  lines.clear();
}
