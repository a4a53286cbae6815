import mqtt from 'mqtt';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCloud, type RunningCloud } from '../../cloud/index.js';
import { createLogger } from '../../cloud/log.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { FAST, pairBox, payMsg, tempDir, TestBox } from '../cloud/harness.js';
import { startMosquitto, type ConfigPaths, type MosquittoBroker } from '../support/mosquitto.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';

/**
 * deploy/mosquitto/scanbox.conf is a config Mosquitto runs: here with only its paths and port
 * replaced (a throwaway dynamic-security file, a test certificate, a loopback port), a cloud on it
 * over TLS pairs a box, and the box pays through it. A change to the file that Mosquitto refuses, or
 * that stops boxes or workers from working, fails here.
 */
const EXAMPLE = readFileSync(new URL('../../deploy/mosquitto/scanbox.conf', import.meta.url), 'utf8');

/** The example with what belongs to a real host replaced; each replaced line must be there. */
function exampleAt(at: ConfigPaths): string {
  const swaps: [RegExp, string][] = [
    [/^plugin .*$/m, `plugin ${at.plugin}`],
    [/^plugin_opt_config_file .*$/m, `plugin_opt_config_file ${at.dynsecFile}`],
    [/^listener 8883$/m, `listener ${at.port} 127.0.0.1`],
    [/^certfile .*$/m, `certfile ${at.certFile}`],
    [/^keyfile .*$/m, `keyfile ${at.keyFile}`],
  ];
  return swaps.reduce((text, [re, line]) => {
    if (!re.test(text)) throw new Error(`deploy/mosquitto/scanbox.conf has no line matching ${re}`);
    return text.replace(re, line);
  }, EXAMPLE);
}

let ca: TestCa;
let broker: MosquittoBroker;
let cloud: RunningCloud;
let remove: () => void;

beforeAll(async () => {
  ca = makeTestCa();
  broker = await startMosquitto({ tls: { certFile: ca.serverCertFile, keyFile: ca.serverKeyFile }, config: exampleAt });
  const t = tempDir();
  remove = t.remove;
  cloud = await startCloud({
    gateway: new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }),
    dbPath: join(t.dir, 'cloud.db'),
    httpPort: 0,
    metricsPort: 0,
    config: { ...FAST, broker: { url: broker.adminUrl, caFile: ca.caCertFile } },
    logger: createLogger('silent'),
  });
}, 40_000);
afterAll(async () => {
  await cloud?.close();
  await broker?.stop();
  remove?.();
  ca?.remove();
});

describe('deploy/mosquitto/scanbox.conf', () => {
  it('runs: a cloud on it over TLS pairs a box, and the box pays through it', async () => {
    const creds = await pairBox(cloud, 'hw-deploy-example');
    expect(creds.mqttUrl).toBe(broker.url);
    expect(broker.url).toMatch(/^mqtts:/);
    const box = await TestBox.connect(creds.mqttUrl, creds.deviceId, creds.secret, { ca: ca.caCert });
    try {
      await box.send('pay', payMsg(creds.deviceId, 1));
      expect(await box.next('result')).toMatchObject({ outTradeNo: `${creds.deviceId}-1`, state: 'SUCCESS' });
    } finally {
      await box.close();
    }
  });

  it('has no plain listener and no anonymous login', async () => {
    const plain = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { reconnectPeriod: 0, connectTimeout: 2_000 }).then(
      async (c) => (await c.endAsync(true), 'accepted'),
      () => 'refused',
    );
    expect(plain).toBe('refused');
    const anonymous = await mqtt.connectAsync(broker.url, { ca: ca.caCert, reconnectPeriod: 0, connectTimeout: 2_000 }).then(
      async (c) => (await c.endAsync(true), 'accepted'),
      (e: Error & { code?: number }) => e.code,
    );
    expect(anonymous).toBe(5);
  });
});
