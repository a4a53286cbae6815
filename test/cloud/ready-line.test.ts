import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PartProcess } from '../../simulator/processes.js';

let dir = '';
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('scanbox-cloud start', () => {
  it('prints its ready line even when the log level hides info lines', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'cloud-ready-'));
    const env = { ...process.env, SCANBOX_CLOUD_LOG_LEVEL: 'warn' };
    const cloud = PartProcess.start('cloud', ['start', '--db', path.join(dir, 'cloud.db'), '--mqtt-port', '0', '--http-port', '0', '--metrics-port', '0', '--gateway', 'instant'], undefined, env);
    try {
      const ready = await cloud.waitForMsg('ready', 20_000);
      expect(ready.mqttUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
      expect(cloud.lines.filter((l) => (l.level as number) < 40 && l.msg !== 'ready')).toEqual([]);
    } finally {
      expect(await cloud.stop()).toBe(0);
    }
  });
});
