import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SerialFactory, SerialLike } from '../../device/serial-port.js';
import type { SerialEnd } from '../../simulator/devices/serial-end.js';

/**
 * The serial port factory (device/serial-port.ts `SerialFactory` → `SerialLike`) as the agent's
 * ReopeningPort relies on it, written once and run against the real serialport on a socat pty pair
 * and against serialport's mock binding. The subject gives the factory the agent would get, the
 * path the agent opens, and the far end of the line (the scanner's or cash register's side).
 *
 * Unplugging differs by design (the mock binding cannot unplug: STACK-NOTES), so it is a
 * capability: for a subject that does not claim it those clauses are left out, and named in its suite's title.
 */
export type SerialCapability = 'unplug';
const ALL_CAPS: readonly SerialCapability[] = ['unplug'];

export interface SerialSubject {
  factory: SerialFactory;
  /** The path the agent opens. */
  path: string;
  /** A path nothing is attached to. */
  missingPath: string;
  /** The other end of the line. */
  far: SerialEnd;
  /** Pull the cable; `replug` puts it back at the same path (and gives a fresh far end). */
  unplug?(): Promise<void>;
  replug?(): Promise<SerialEnd>;
  dispose(): Promise<void>;
}

export interface SerialConformanceOptions {
  capabilities: readonly SerialCapability[];
  why?: string;
}

const WAIT_MS = 3_000;
const UNPLUG_MS = 15_000;

export function describeSerialPortConformance(name: string, makeSubject: () => Promise<SerialSubject>, options: SerialConformanceOptions): void {
  const has = (c: SerialCapability) => options.capabilities.includes(c);
  // A clause needing a capability the subject does not claim is not run for it at all (never
  // weakened, never counted as skipped); what is left out is named in the suite's title instead.
  const needs = (c: SerialCapability) => (title: string, fn: () => Promise<void>, timeoutMs?: number) => (has(c) ? it(title, fn, timeoutMs) : undefined);
  const missing = ALL_CAPS.filter((c) => !has(c));
  const title = missing.length ? ` (without ${missing.join(', ')}${options.why ? `: ${options.why}` : ''})` : '';

  describe(`Serial port conformance: ${name}${title}`, () => {
    let subject: SerialSubject;
    let opened: SerialLike[] = [];

    const make = (path = subject.path) => {
      const port = subject.factory({ path, baudRate: 9600 });
      opened.push(port);
      // As the agent does: an 'error' never goes unheard.
      port.on('error', () => undefined);
      return port;
    };
    const open = (port: SerialLike) => new Promise<Error | null>((resolve) => port.open((err) => resolve(err)));
    const close = (port: SerialLike) => new Promise<Error | null>((resolve) => port.close((err) => resolve(err ?? null)));
    const openPort = async (path = subject.path) => {
      const port = make(path);
      expect(await open(port)).toBeNull();
      return port;
    };

    beforeEach(async () => {
      subject = await makeSubject();
      opened = [];
    });
    afterEach(async () => {
      await Promise.all(opened.map((p) => (p.isOpen ? close(p) : undefined)));
      await subject.dispose();
    });

    it('opens through the callback and says so in isOpen; a new port is not open', async () => {
      const port = make();
      expect(port.isOpen).toBe(false);
      expect(await open(port)).toBeNull();
      expect(port.isOpen).toBe(true);
    });

    it('bytes written arrive at the other end unchanged and in order (every byte value, several writes)', async () => {
      const port = await openPort();
      const got = collect(subject.far);
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const writes = [Buffer.from('first\r\n'), all, Buffer.from('{"type":"result"}\n'), Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x1b])];
      for (const w of writes) port.write(w);
      // A string is written as UTF-8.
      port.write('末尾\n');
      const want = Buffer.concat([...writes, Buffer.from('末尾\n', 'utf8')]);
      expect((await got.until(want.length)).equals(want)).toBe(true);
    });

    it('a write calls back once it is handed over', async () => {
      const port = await openPort();
      const got = collect(subject.far);
      const err = await new Promise<Error | null | undefined>((resolve) => port.write(Buffer.from('ack\n'), resolve));
      expect(err ?? null).toBeNull();
      expect((await got.until(4)).toString()).toBe('ack\n');
    });

    it('bytes from the other end arrive as data, unchanged and in order', async () => {
      const port = await openPort();
      const got = collect(port);
      const all = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
      await subject.far.write('134567890123456789\r');
      await subject.far.write(all);
      await subject.far.write('\n{"type":"sale"}\r\n');
      const want = Buffer.concat([Buffer.from('134567890123456789\r'), all, Buffer.from('\n{"type":"sale"}\r\n')]);
      expect((await got.until(want.length)).equals(want)).toBe(true);
    });

    it('close calls back and the port is closed; the path opens again afterwards', async () => {
      const port = await openPort();
      expect(await close(port)).toBeNull();
      expect(port.isOpen).toBe(false);
      const again = await openPort();
      const got = collect(subject.far);
      again.write('again\n');
      expect((await got.until(6)).toString()).toBe('again\n');
    });

    it('closing twice is harmless: the second close calls back, throws nothing, and the port stays closed', async () => {
      const port = await openPort();
      expect(await close(port)).toBeNull();
      await expect(close(port)).resolves.toSatisfy((e: Error | null) => e === null || e instanceof Error);
      expect(port.isOpen).toBe(false);
    });

    it('a second open of the same path fails through the callback while the first is open; the first keeps working', async () => {
      const first = await openPort();
      const second = make();
      const err = await open(second);
      expect(err).toBeInstanceOf(Error);
      expect(second.isOpen).toBe(false);
      const got = collect(subject.far);
      first.write('still mine\n');
      expect((await got.until(11)).toString()).toBe('still mine\n');
    });

    it('opening a path with nothing behind it fails through the callback (the agent then says "absent")', async () => {
      const port = make(subject.missingPath);
      expect(await open(port)).toBeInstanceOf(Error);
      expect(port.isOpen).toBe(false);
    });

    needs('unplug')(`an unplug closes the open port with err.disconnected; the path fails to open until replugged`, async () => {
      const port = await openPort();
      // The agent is always reading: prove the read loop runs (a byte arrives) before pulling the cable.
      const reading = collect(port);
      await subject.far.write('x');
      await reading.until(1);
      const closed = new Promise<(Error & { disconnected?: boolean }) | undefined>((resolve) => port.on('close', resolve));
      await subject.unplug!();
      // An event, not a sleep: the bound only keeps a missing close from hanging the suite (a loaded core is slow to notice).
      const err = await within(closed, UNPLUG_MS, 'close after unplug');
      expect(err?.disconnected).toBe(true);
      expect(port.isOpen).toBe(false);
      expect(await open(make())).toBeInstanceOf(Error);
      const far = await subject.replug!();
      const back = await openPort();
      const got = collect(far);
      back.write('replugged\n');
      expect((await got.until(10)).toString()).toBe('replugged\n');
    });
  });
}

interface Collected {
  until(bytes: number): Promise<Buffer>;
}

/** Bytes arriving at a far end (SerialEnd) or at a port ('data'). */
function collect(source: SerialEnd | SerialLike): Collected {
  const chunks: Buffer[] = [];
  let wake: (() => void) | undefined;
  const push = (c: Buffer) => {
    chunks.push(Buffer.from(c));
    wake?.();
  };
  if ('onData' in source) source.onData(push);
  else source.on('data', push);
  return {
    async until(bytes) {
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const all = Buffer.concat(chunks);
        if (all.length >= bytes) return all;
        if (Date.now() > deadline) throw new Error(`only ${all.length} of ${bytes} bytes arrived within ${WAIT_MS} ms: ${JSON.stringify(all.toString('latin1'))}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 20);
        });
      }
    },
  };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
