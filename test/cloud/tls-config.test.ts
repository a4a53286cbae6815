import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFromEnv, loadConfig } from '../../cloud/config.js';
import { isProtocolError } from '../../protocol/index.js';
import { pairBox, payMsg, postPair, startTestCloud, tempDir, TestBox } from './harness.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';

describe('TLS', () => {
  it('with a cert and key the broker speaks mqtts only and pairing https only, and a box pays over it', async () => {
    const { dir, remove } = tempDir();
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const cloud = await startTestCloud(new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }), { tls: { certFile, keyFile } });
    try {
      expect(cloud.mqttUrl).toMatch(/^mqtts:\/\//);
      expect(cloud.httpUrl).toMatch(/^https:\/\//);
      await expect(postPair(cloud.httpUrl.replace('https', 'http'), {})).rejects.toThrow();
      await expect(postPair(cloud.httpUrl, {})).rejects.toThrow(/self-signed/);
      const creds = await pairBox(cloud, undefined, { ca: readFileSync(certFile) });
      expect(creds.mqttUrl).toBe(cloud.mqttUrl);
      await expect(TestBox.connect(cloud.mqttUrl.replace('mqtts', 'mqtt'), creds.deviceId, creds.secret, { connectTimeout: 1_000 })).rejects.toThrow();
      const box = await TestBox.connect(cloud.mqttUrl, creds.deviceId, creds.secret, { ca: readFileSync(certFile) });
      await box.send('pay', payMsg(creds.deviceId, 1));
      expect(await box.next('result')).toMatchObject({ state: 'SUCCESS' });
      await box.close();
    } finally {
      await cloud.close();
      remove();
    }
  });
});

describe('config', () => {
  it('reads SCANBOX_CLOUD_* (JSON values) over the file, flags over both', () => {
    expect(configFromEnv({ SCANBOX_CLOUD_QUERY_FIRST_DELAY_MS: '100', SCANBOX_CLOUD_POLL_DEADLINE_MS: '{"wechat":1}', OTHER: 'x' })).toEqual({ queryFirstDelayMs: 100, pollDeadlineMs: { wechat: 1 } });
    const c = loadConfig({ env: { SCANBOX_CLOUD_MQTT_PORT: '1999', SCANBOX_CLOUD_HTTP_PORT: '2999' }, overrides: { httpPort: 0, dbPath: undefined } });
    expect([c.mqttPort, c.httpPort, c.pollDeadlineMs.alipay, c.dbPath]).toEqual([1999, 0, 60_000, 'scanbox-cloud.db']);
  });

  it('refuses an invalid value with CONFIG_INVALID naming the field', () => {
    let err: unknown;
    try {
      loadConfig({ env: { SCANBOX_CLOUD_REVOCATION_POLL_MS: '5000' } });
    } catch (e) {
      err = e;
    }
    expect(isProtocolError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/revocationPollMs/);
  });
});
