import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { envName, loadConfig } from '../../device/config.js';
import { useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();
const flags = { scannerPath: '/dev/a', ecrPath: '/dev/b', dataDir: '/tmp/x' };

describe('device config', () => {
  it('defaults, then file, then env, then flags', () => {
    const file = join(tempDir(), 'c.json');
    writeFileSync(file, JSON.stringify({ paymentDeadlineMs: 30_000, heartbeatIntervalS: 10, baudRate: 115200 }));
    const c = loadConfig({ file, env: { SCANBOX_DEVICE_HEARTBEAT_INTERVAL_S: '5' }, flags: { ...flags, baudRate: undefined } });
    expect(c).toMatchObject({ paymentDeadlineMs: 30_000, heartbeatIntervalS: 5, baudRate: 115200, scanDebounceMs: 1000, saleDeadlineMs: 300_000 });
    expect(envName('reconnect')).toBe('SCANBOX_DEVICE_RECONNECT');
  });

  it.each([
    [{ paymentDeadlineMs: -1 }, 'paymentDeadlineMs'],
    [{ reconnect: { baseMs: 'x', maxMs: 1 } }, 'reconnect.baseMs'],
    [{ mqttUrl: 'http://nope' }, 'mqttUrl'],
    [{ unknownKey: 1 }, 'unknownKey'],
  ])('%j is refused naming %s', (bad, field) => {
    const file = join(tempDir(), 'c.json');
    writeFileSync(file, JSON.stringify(bad));
    expect(() => loadConfig({ file, flags })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(field) }));
  });

  it('a missing or non-JSON file is a clear error', () => {
    expect(() => loadConfig({ file: '/nonexistent/c.json', flags })).toThrow(/cannot be read/);
    const file = join(tempDir(), 'c.json');
    writeFileSync(file, '{nope');
    expect(() => loadConfig({ file, flags })).toThrow(/not valid JSON/);
  });
});
