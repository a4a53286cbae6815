import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { startAgent } from '../../device/agent.js';
import { systemClock } from '../../protocol/clock.js';
import { envName, loadConfig, readCaFile } from '../../device/config.js';
import { writeCredentials } from './agent-harness.js';
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

describe('private CA and insecure pairing settings', () => {
  it('default to no CA and no plain-HTTP pairing; env vars set them', () => {
    expect(loadConfig({ flags })).toMatchObject({ insecurePairing: false });
    expect(loadConfig({ flags }).caFile).toBeUndefined();
    const c = loadConfig({ env: { SCANBOX_DEVICE_CA_FILE: '/etc/scanbox/ca.pem', SCANBOX_DEVICE_INSECURE_PAIRING: 'true' }, flags });
    expect(c).toMatchObject({ caFile: '/etc/scanbox/ca.pem', insecurePairing: true });
    expect(() => loadConfig({ env: { SCANBOX_DEVICE_INSECURE_PAIRING: 'yes' }, flags })).toThrow(/insecurePairing/);
  });

  it('a missing or non-PEM CA file is CONFIG_INVALID naming caFile and the path', () => {
    const dir = tempDir();
    const notPem = join(dir, 'ca.txt');
    writeFileSync(notPem, 'hello');
    expect(() => readCaFile(join(dir, 'missing.pem'))).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/caFile.*missing\.pem/) }));
    expect(() => readCaFile(notPem)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/caFile.*ca\.txt.*PEM/) }));
  });

  it('the agent reads the CA at start: a missing file stops it before any port or connection opens', async () => {
    const dir = tempDir();
    writeCredentials(dir, 'box1', 'mqtts://127.0.0.1:9');
    const config = loadConfig({ flags: { ...flags, dataDir: dir, caFile: join(dir, 'missing.pem') } });
    const opened: string[] = [];
    const deps = {
      clock: systemClock,
      random: Math.random,
      openSerial: (o: { path: string }) => {
        opened.push(o.path);
        throw new Error('no port in this test');
      },
      connectMqtt: (u: string) => {
        opened.push(u);
        return mqtt.connect(u, { manualConnect: true });
      },
      logger: pino({ level: 'silent' }),
    };
    await expect(startAgent(config, deps as never)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('missing.pem') });
    expect(opened).toEqual([]);
  });
});
