import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPortMock } from 'serialport';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../protocol/clock.js';
import { createPairingCode } from '../../cloud/index.js';
import { ensureMerchant } from '../../cloud/merchants/merchant.js';
import { Journal } from '../../device/journal.js';
import { pairBox, type PostJson } from '../../device/pairing.js';
import { AgentHarness } from '../device/agent-harness.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';
import { startProbeCloud, type ProbeCloud } from './support.js';

/**
 * The box's side of the cloud's front door, against a real cloud serving HTTPS and mqtts with a
 * certificate from a private CA made for this run: the device secret only travels over TLS the box
 * verified, and re-pairing across merchants needs the old box's own credentials.
 */
let ca: TestCa;
let cloud: ProbeCloud;
const dirs: string[] = [];
let box: AgentHarness | undefined;

beforeAll(async () => {
  ca = makeTestCa();
  cloud = await startProbeCloud({ config: { tls: { certFile: ca.serverCertFile, keyFile: ca.serverKeyFile } } });
});
afterAll(async () => {
  await cloud?.close();
  ca.remove();
});
afterEach(async () => {
  await box?.stop();
  box = undefined;
  SerialPortMock.binding.reset();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'scanbox-box-'));
  dirs.push(d);
  return d;
}

async function code(merchant = 'M1'): Promise<string> {
  await ensureMerchant(cloud.store, merchant);
  return (await createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: 600 }, merchant, 'S1')).code;
}

function secretOf(dir: string): string | undefined {
  const j = Journal.open(dir);
  try {
    return j.credentials()?.secret;
  } finally {
    j.close();
  }
}

describe('pairing transport against a real cloud', () => {
  it('the cloud is on https:// and mqtts:// here', () => {
    expect(cloud.httpUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(cloud.mqttUrl).toMatch(/^mqtts:\/\//);
  });

  it('pairs over HTTPS trusting the private CA, then the agent reaches the mqtts broker with the same CA', async () => {
    const dir = dataDir();
    const out = await pairBox({ code: await code(), cloudUrl: cloud.httpUrl, dataDir: dir, ca: ca.caCert });
    expect(out.mqttUrl).toBe(cloud.mqttUrl);
    box = new AgentHarness(dir, { caFile: ca.caCertFile });
    await box.start();
    await box.logs.find((l) => l.msg === 'cloud link connected', 'mqtts link up');
    expect(JSON.stringify(box.logs.items)).not.toContain(secretOf(dir));
  });

  it('without the CA the certificate is refused: CLOUD_UNREACHABLE naming it, the code still unused, nothing saved', async () => {
    const dir = dataDir();
    const c = await code();
    const err = await pairBox({ code: c, cloudUrl: cloud.httpUrl, dataDir: dir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CLOUD_UNREACHABLE' });
    expect((err as Error).message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
    expect((err as Error).message).toContain('--ca');
    expect(secretOf(dir)).toBeUndefined();
    await expect(pairBox({ code: c, cloudUrl: cloud.httpUrl, dataDir: dir, ca: ca.caCert })).resolves.toMatchObject({ merchantId: 'M1' });
  });

  it('plain http:// to a non-loopback address is refused before anything is sent or written', async () => {
    const dir = dataDir();
    const post = vi.fn<PostJson>();
    await expect(pairBox({ code: await code(), cloudUrl: 'http://10.0.0.5:8080', dataDir: dir, post })).rejects.toMatchObject({ code: 'INSECURE_TRANSPORT' });
    expect(post).not.toHaveBeenCalled();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("another merchant's code for paired hardware is HARDWARE_ID_IN_USE; a --reset from the paired box proves it and moves it", async () => {
    const paired = dataDir();
    const first = await pairBox({ code: await code('M1'), cloudUrl: cloud.httpUrl, dataDir: paired, ca: ca.caCert, hardwareId: 'hw-moved' });
    const stranger = dataDir();
    const err = await pairBox({ code: await code('M2'), cloudUrl: cloud.httpUrl, dataDir: stranger, ca: ca.caCert, hardwareId: 'hw-moved' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'HARDWARE_ID_IN_USE', details: { status: 409 } });
    expect((err as Error).message).toContain('devices revoke');
    expect(secretOf(stranger)).toBeUndefined();
    const moved = await pairBox({ code: await code('M2'), cloudUrl: cloud.httpUrl, dataDir: paired, ca: ca.caCert, hardwareId: 'hw-moved', reset: true });
    expect(moved).toMatchObject({ merchantId: 'M2' });
    expect((await cloud.store.getDeviceAuth(first.deviceId))?.status).toBe('revoked');
  });
});
