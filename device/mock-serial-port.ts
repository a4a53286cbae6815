import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
// The class alone, as serial-port.ts does for the real one: the package index loads every parser.
import { SerialPortMock } from 'serialport/dist/serialport-mock.js';
import type { SerialFactory, SerialLike, SerialOpenOptions } from './serial-port.js';

/**
 * `scanbox-device start --serial mock`: the agent's scanner and cash-register ports on serialport's
 * mock binding, for a machine without pseudo-terminals (no socat) — the simulator's demo, never a
 * real box. The binding lives inside this process, so its far end is brought out over a Unix
 * socket at the port's path: the simulator's virtual scanner or cash register listens there, and
 * the agent "opens the port" by connecting. Everything above the factory — the mock port's stream,
 * ReopeningPort, the line splitter — is what runs on a real box.
 *
 * The line as a cable: the listener greets one connection with one ACK byte (0x06), so an open
 * succeeds only when the far end took it (a second box on the same line is turned away, as a
 * locked port is); the listener going away is an unplug (`close` with `disconnected`); nothing
 * listening is an absent device (the open fails and the agent retries with backoff).
 */
export const LINE_GREETING = 0x06;
const GREETING_TIMEOUT_MS = 5_000;
/** A far end that does not answer our end of the connection in this long is cut off. */
const HANG_UP_MS = 1_000;

type MockBindingPort = NonNullable<SerialPortMock['port']>;
const registered = new Set<string>();

class MockSocketSerial extends EventEmitter implements SerialLike {
  private mock: SerialPortMock | null = null;
  private socket: Socket | null = null;

  constructor(private readonly opts: SerialOpenOptions) {
    super();
  }

  get isOpen(): boolean {
    return this.mock?.isOpen === true && this.socket !== null;
  }

  open(cb: (err: Error | null) => void): void {
    if (this.mock) return process.nextTick(cb, new Error('Port is already open'));
    const { path, baudRate } = this.opts;
    if (!registered.has(path)) {
      SerialPortMock.binding.createPort(path, { echo: false, record: false });
      registered.add(path);
    }
    // The binding's own lock first: a second open in this process fails as a real port's flock does.
    const mock = new SerialPortMock({ path, baudRate, autoOpen: false });
    this.mock = mock;
    mock.open((err) => {
      if (err) {
        this.mock = null;
        return cb(err);
      }
      this.connectFarEnd(mock, cb);
    });
  }

  private connectFarEnd(mock: SerialPortMock, cb: (err: Error | null) => void): void {
    const socket = connect(this.opts.path);
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      this.mock = null;
      mock.close(() => cb(err));
    };
    const timer = setTimeout(() => fail(new Error(`${this.opts.path}: the line did not answer within ${GREETING_TIMEOUT_MS} ms`)), GREETING_TIMEOUT_MS);
    socket.once('error', (err) => fail(err));
    socket.once('close', () => fail(new Error(`${this.opts.path}: line busy (another box holds it)`)));
    socket.once('data', (first: Buffer) => {
      if (settled) return;
      if (first[0] !== LINE_GREETING) return fail(new Error(`${this.opts.path}: not a scanbox serial line (no greeting)`));
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners();
      this.attach(mock, socket);
      cb(null);
      if (first.length > 1) mock.port?.emitData(first.subarray(1));
    });
  }

  private attach(mock: SerialPortMock, socket: Socket): void {
    this.socket = socket;
    const port = mock.port as MockBindingPort;
    const write = port.write.bind(port);
    port.write = async (buffer: Buffer) => {
      await write(buffer);
      socket.write(Buffer.from(buffer));
    };
    mock.on('data', (chunk: Buffer) => this.emit('data', chunk));
    mock.on('error', (err: Error) => this.emit('error', err));
    socket.on('data', (chunk: Buffer) => {
      if (port.isOpen) port.emitData(chunk);
    });
    socket.on('error', () => undefined); // 'close' follows, and is the unplug
    socket.on('close', () => this.unplugged(mock, socket));
  }

  private unplugged(mock: SerialPortMock, socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.mock = null;
    mock.removeAllListeners('data');
    const done = () => this.emit('close', Object.assign(new Error(`${this.opts.path}: line unplugged`), { disconnected: true }));
    if (mock.isOpen) mock.close(done);
    else done();
  }

  write(data: string | Buffer, cb?: (err: Error | null | undefined) => void): boolean {
    if (!this.mock) {
      process.nextTick(() => cb?.(new Error('Port is not open')));
      return false;
    }
    return this.mock.write(data, cb);
  }

  close(cb?: (err: Error | null) => void): void {
    const mock = this.mock;
    const socket = this.socket;
    this.mock = null;
    this.socket = null;
    if (!mock) return process.nextTick(() => cb?.(new Error('Port is not open')));
    mock.removeAllListeners('data');
    const hungUp = socket ? hangUp(socket) : Promise.resolve();
    mock.close((err) => {
      void hungUp.then(() => {
        this.emit('close');
        cb?.(err ?? null);
      });
    });
  }
}

/**
 * Ends the connection and waits until the far end has let go, so that opening the port again at
 * once finds the line free, as closing and reopening a real port does.
 */
function hangUp(socket: Socket): Promise<void> {
  socket.removeAllListeners();
  socket.on('error', () => undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), HANG_UP_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
  });
}

export const openMockSerial: SerialFactory = (opts) => new MockSocketSerial(opts);
