import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LINE_GREETING, openMockSerial } from '../../device/mock-serial-port.js';
import { SOCKET_LINE_GREETING, SocketLine } from '../../simulator/devices/socket-line.js';
import { describeSerialPortConformance } from './serial-port.js';

/**
 * The box on serialport's mock binding with its far end on a Unix socket (`start --serial mock`,
 * the demo on a machine without socat) must behave as the real ports do, unplug included: the
 * same suite as the real serialport on a socat pty pair.
 */
describeSerialPortConformance(
  "serialport's mock binding bridged to a Unix socket (openMockSerial + SocketLine)",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scanbox-conformance-bridge-'));
    const line = await SocketLine.create({ dir, name: 'line' });
    return {
      factory: openMockSerial,
      path: line.a,
      missingPath: join(dir, 'missing.sock'),
      far: line,
      unplug: () => line.unplug(),
      replug: async () => {
        await line.replug();
        return line.openEnd();
      },
      dispose: async () => {
        await line.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { capabilities: ['unplug'] },
);

describe('the bridged line', () => {
  it('device and simulator greet with the same byte (the simulator imports nothing from device/)', () => {
    expect(SOCKET_LINE_GREETING).toBe(LINE_GREETING);
  });

  it('bytes the simulator writes before the box opens wait for it, as in a pseudo-terminal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scanbox-bridge-early-'));
    const line = await SocketLine.create({ dir, name: 'early' });
    await line.write('134567890123456789\r');
    const port = openMockSerial({ path: line.a, baudRate: 9600 });
    const got: Buffer[] = [];
    port.on('data', (c) => got.push(c));
    try {
      expect(await new Promise<Error | null>((resolve) => port.open(resolve))).toBeNull();
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`got ${JSON.stringify(Buffer.concat(got).toString())}`)), 3_000);
        port.on('data', () => {
          if (Buffer.concat(got).length < 19) return;
          clearTimeout(timer);
          resolve();
        });
      });
      expect(Buffer.concat(got).toString()).toBe('134567890123456789\r');
    } finally {
      await new Promise((resolve) => port.close(resolve));
      await line.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a second box on the same line is turned away while the first holds it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scanbox-bridge-busy-'));
    const line = await SocketLine.create({ dir, name: 'busy' });
    const first = openMockSerial({ path: line.a, baudRate: 9600 });
    try {
      expect(await new Promise<Error | null>((resolve) => first.open(resolve))).toBeNull();
      // Another process's box: this process's binding lock does not apply, the line's greeting does.
      const { connect } = await import('node:net');
      const other = connect(line.a);
      const greeted = await new Promise<boolean>((resolve) => {
        other.once('data', () => resolve(true));
        other.once('close', () => resolve(false));
      });
      expect(greeted).toBe(false);
    } finally {
      await new Promise((resolve) => first.close(resolve));
      await line.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
