import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPortMock } from 'serialport';
import { openRealSerial, type SerialLike } from '../../device/serial-port.js';
import { createPtyPair } from '../../simulator/devices/pty.js';
import { MockSerialLine, resetMockSerial } from '../support/mock-serial.js';
import { describeSerialPortConformance } from './serial-port.js';

/** The agent's serial factory, real and mock, through the same suite. */
describeSerialPortConformance(
  'serialport on a socat pty pair (openRealSerial)',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'scanbox-conformance-pty-'));
    const pair = await createPtyPair({ dir });
    const far = await pair.openEnd('b');
    return {
      factory: openRealSerial,
      path: pair.a,
      missingPath: join(dir, 'missing'),
      far,
      unplug: () => pair.unplug(),
      replug: async () => {
        await pair.replug();
        return pair.openEnd('b');
      },
      dispose: async () => {
        await pair.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  { capabilities: ['unplug'] },
);

let seq = 0;
describeSerialPortConformance(
  "serialport's mock binding (SerialPortMock + MockSerialLine)",
  async () => {
    const path = `/dev/conformance-mock-${process.pid}-${++seq}`;
    const far = MockSerialLine.create(path);
    return {
      factory: (o) => new SerialPortMock({ path: o.path, baudRate: o.baudRate, autoOpen: false }) as unknown as SerialLike,
      path,
      missingPath: `${path}-missing`,
      far,
      dispose: async () => {
        await far.close();
        resetMockSerial();
      },
    };
  },
  { capabilities: [], why: "the mock binding's close() does not emit the stream's close (STACK-NOTES): unplug tests use socat" },
);
