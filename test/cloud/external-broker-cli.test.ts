import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PartProcess, runPart } from '../../simulator/processes.js';
import { useMosquitto } from '../support/mosquitto.js';

/**
 * `scanbox-cloud start --broker mqtt://user:password@host:port`: the cloud runs on the external
 * broker and starts no embedded one; the address it gives boxes is the broker's without the
 * credentials, which appear in no log line; a URL it cannot log in with is refused at once.
 */
const mosquitto = useMosquitto();
let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const args = (db: string, broker: string) => ['start', '--db', db, '--http-port', '0', '--metrics-port', '0', '--gateway', 'instant', '--broker', broker];

describe('scanbox-cloud start --broker', () => {
  it('runs on the external broker: ready with its address (no credentials), never logs the password, stops cleanly', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cloud-broker-'));
    const cloud = PartProcess.start('cloud', args(path.join(dir, 'cloud.db'), mosquitto().adminUrl), undefined, { ...process.env, SCANBOX_CLOUD_LOG_LEVEL: 'info' });
    try {
      const ready = await cloud.waitForMsg('ready', 30_000);
      expect(ready).toMatchObject({ mqttUrl: mosquitto().url, mqttPort: mosquitto().port });
      expect(await cloud.waitForMsg('on the external broker', 1_000)).toMatchObject({ broker: mosquitto().url, user: mosquitto().admin.username });
    } finally {
      expect(await cloud.stop()).toBe(0);
    }
    const output = [...cloud.lines.map((l) => JSON.stringify(l)), ...cloud.stderr].join('\n');
    expect(output).not.toContain(mosquitto().admin.password);
    expect(output).not.toContain(encodeURIComponent(mosquitto().admin.password));
  }, 60_000);

  it.each([
    ['without credentials', () => `mqtt://127.0.0.1:${mosquitto().port}`, /CONFIG_INVALID.*must carry the cloud's user and password/],
    ['with a wrong password', () => `mqtt://${mosquitto().admin.username}:not-the-password@127.0.0.1:${mosquitto().port}`, /CONFIG_INVALID.*refused the cloud's login as scanbox-cloud/],
    ['of another scheme', () => `http://u:p@127.0.0.1:${mosquitto().port}`, /CONFIG_INVALID.*mqtt:\/\/ or mqtts:\/\//],
  ])('refuses a broker URL %s, with a clear error and exit 1', async (_name, url, error) => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cloud-broker-'));
    const r = await runPart('cloud', args(path.join(dir, 'cloud.db'), url()), 30_000, { ...process.env, SCANBOX_CLOUD_LOG_LEVEL: 'silent' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(error);
    expect(r.stderr).not.toContain('not-the-password');
  }, 40_000);
});
