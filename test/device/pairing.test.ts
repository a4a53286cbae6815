import { Aedes } from 'aedes';
import { readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { SerialPortMock } from 'serialport';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Journal } from '../../device/journal.js';
import { pino } from 'pino';
import { pairingQrText } from '../../protocol/index.js';
import { systemClock } from '../../protocol/clock.js';
import { loadConfig } from '../../device/config.js';
import { ConsoleDisplay } from '../../device/display.js';
import { checkTransport, MAX_PAIR_RESPONSE_BYTES, pairBox, type PostJson } from '../../device/pairing.js';
import { awaitPairingScan } from '../../device/pairing-scan.js';
import type { SerialLike } from '../../device/serial-port.js';
import { Collector } from './collector.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';
import { AgentHarness, writeCredentials, type LogLine } from './agent-harness.js';
import { runCli } from './child-box.js';
import { FakePairingServer } from './fake-pairing-server.js';
import { useTempDirs } from './temp-dir.js';

const tempDir = useTempDirs();
const GOOD = 'ABCDE12345';
const USED = 'WWWWW00000';
const SECRET = 'paired-secret-0123456789abcdefghijklmnopqrstuvwxyz';
let cloud: FakePairingServer;
let url: string;
let requests: unknown[];

beforeEach(async () => {
  cloud = await new FakePairingServer(GOOD, USED, SECRET, 'mqtt://127.0.0.1:1883').start();
  url = cloud.url;
  requests = cloud.requests;
});

afterEach(() => cloud.close());

function credsOf(dir: string) {
  const j = Journal.open(dir);
  const c = j.credentials();
  j.close();
  return c;
}

describe('pairing client', () => {
  it('stores the issued id and secret in a 0600 journal, with a stable hardware id', async () => {
    const dir = tempDir();
    const out = await pairBox({ code: 'abcde-12345', cloudUrl: url, dataDir: dir });
    expect(out).toEqual({ deviceId: 'dev1', merchantId: 'm1', storeId: 's1', mqttUrl: 'mqtt://127.0.0.1:1883' });
    expect(JSON.stringify(out)).not.toContain(SECRET);
    expect(credsOf(dir)).toMatchObject({ deviceId: 'dev1', secret: SECRET, cloudUrl: url });
    expect(statSync(join(dir, 'journal.db')).mode & 0o777).toBe(0o600);
    expect(requests.at(-1)).toMatchObject({ v: 1, code: GOOD, hardwareId: expect.stringMatching(/^hw-/) });
  });

  it('refuses to pair over a paired box without reset; with reset it re-pairs', async () => {
    const dir = tempDir();
    await pairBox({ code: GOOD, cloudUrl: url, dataDir: dir });
    await expect(pairBox({ code: GOOD, cloudUrl: url, dataDir: dir })).rejects.toMatchObject({ code: 'ALREADY_PAIRED', message: expect.stringContaining('--reset') });
    const hw = (requests.at(-1) as { hardwareId: string }).hardwareId;
    const again = await pairBox({ code: GOOD, cloudUrl: url, dataDir: dir, reset: true });
    expect(again.deviceId).not.toBe('dev1');
    expect((requests.at(-1) as { hardwareId: string }).hardwareId).toBe(hw);
  });

  it.each([
    ['a wrong code', 'ZZZZZ99999', 'PAIRING_CODE_INVALID', 'unknown pairing code'],
    ['a used code', USED, 'PAIRING_CODE_USED', 'already used'],
    ['a malformed code', 'short', 'PAIRING_CODE_INVALID', 'pairing code must be'],
  ])('%s gives a clear error and leaves the box as it was', async (_what, code, errCode, text) => {
    const dir = tempDir();
    await pairBox({ code: GOOD, cloudUrl: url, dataDir: dir });
    const before = credsOf(dir);
    await expect(pairBox({ code, cloudUrl: url, dataDir: dir, reset: true })).rejects.toMatchObject({ code: errCode, message: expect.stringContaining(text) });
    expect(credsOf(dir)).toEqual(before);
  });

  it('an unreachable cloud is CLOUD_UNREACHABLE; the CLI prints it on stderr and exits 1, and never prints the secret', async () => {
    const dir = tempDir();
    await expect(pairBox({ code: GOOD, cloudUrl: 'http://127.0.0.1:9', dataDir: dir })).rejects.toMatchObject({ code: 'CLOUD_UNREACHABLE' });
    expect(credsOf(dir)).toBeNull();
    const cli = await runCli(['pair', '--code', GOOD, '--cloud', 'http://127.0.0.1:9', '--data', dir]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('CLOUD_UNREACHABLE');
    const ok = await runCli(['pair', '--code', GOOD, '--cloud', url, '--data', dir, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ deviceId: expect.any(String) });
    expect(ok.stdout + ok.stderr).not.toContain(SECRET);
  });
});

const ISSUED = { v: 1, deviceId: 'dev9', secret: SECRET, mqttUrl: 'mqtt://10.0.0.5:1883', merchantId: 'm1', storeId: 's1' };

describe('where pairing may send the secret', () => {
  it.each([
    ['http://localhost:8080', 'loopback'],
    ['http://127.0.0.1:8080', 'loopback'],
    ['http://127.0.0.2', 'loopback'],
    ['http://127.255.255.254:1', 'loopback'],
    ['http://127.1:8080', 'loopback'],
    ['http://[::1]:8080', 'loopback'],
    ['https://example.com', 'tls'],
    ['https://10.0.0.5:8443', 'tls'],
  ])('%s is %s', (url, kind) => {
    expect(checkTransport(new URL(url), false)).toBe(kind);
  });

  it.each([
    'http://10.0.0.5:8080',
    'http://example.com',
    'http://localhost.example.com',
    'http://127.0.0.1.nip.io',
    'http://128.0.0.1',
    'http://[::ffff:127.0.0.1]:8080',
    'http://0.0.0.0:8080',
  ])('plain %s is refused, and allowed only with insecure', (url) => {
    expect(() => checkTransport(new URL(url), false)).toThrow(expect.objectContaining({ code: 'INSECURE_TRANSPORT' }));
    expect(checkTransport(new URL(url), true)).toBe('insecure');
  });

  it('http:// to a non-loopback host is refused before any I/O: nothing sent, nothing written', async () => {
    const dir = tempDir();
    const post = vi.fn<PostJson>();
    const err = await pairBox({ code: GOOD, cloudUrl: 'http://10.0.0.5:8080', dataDir: dir, post }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INSECURE_TRANSPORT' });
    expect((err as Error).message).toContain('--insecure');
    expect((err as Error).message).toContain('https://');
    expect(post).not.toHaveBeenCalled();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('with insecure it goes through, with a warning and never the secret in it', async () => {
    const dir = tempDir();
    const post = vi.fn<PostJson>(async () => ({ status: 200, text: JSON.stringify(ISSUED) }));
    const warn = vi.fn<(m: string) => void>();
    await pairBox({ code: GOOD, cloudUrl: 'http://10.0.0.5:8080', dataDir: dir, insecure: true, warn, post });
    expect(post.mock.calls[0]![0].href).toBe('http://10.0.0.5:8080/v1/pair');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![0]).toMatch(/plain HTTP/);
    expect(warn.mock.calls[0]![0]).not.toContain(SECRET);
    expect(credsOf(dir)).toMatchObject({ deviceId: 'dev9' });
  });

  it('loopback over plain HTTP needs no flag and gives no warning; the body is sent as application/json', async () => {
    const warn = vi.fn<(m: string) => void>();
    await pairBox({ code: GOOD, cloudUrl: url, dataDir: tempDir(), warn });
    expect(warn).not.toHaveBeenCalled();
    expect(cloud.contentTypes).toEqual(['application/json']);
  });
});

describe('re-pairing proves the old credentials', () => {
  it('a reset sends the old device id and secret as `previous`; a first pairing sends none', async () => {
    const dir = tempDir();
    await pairBox({ code: GOOD, cloudUrl: url, dataDir: dir });
    expect(requests.at(-1)).not.toHaveProperty('previous');
    await pairBox({ code: GOOD, cloudUrl: url, dataDir: dir, reset: true });
    expect(requests.at(-1)).toMatchObject({ previous: { deviceId: 'dev1', secret: SECRET } });
    expect(credsOf(dir)).toMatchObject({ deviceId: 'dev2' });
  });

  it('409 HARDWARE_ID_IN_USE says how to free the hardware id, and leaves the box as it was', async () => {
    const dir = tempDir();
    cloud.hardwareInUse = 'hw-taken';
    const err = await pairBox({ code: GOOD, cloudUrl: url, dataDir: dir, hardwareId: 'hw-taken' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'HARDWARE_ID_IN_USE', details: { status: 409 } });
    expect((err as Error).message).toContain('another merchant');
    expect((err as Error).message).toContain('scanbox-cloud devices revoke');
    expect((err as Error).message).toContain('--reset');
    expect(credsOf(dir)).toBeNull();
    const cli = await runCli(['pair', '--code', GOOD, '--cloud', url, '--data', dir, '--hardware-id', 'hw-taken']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('HARDWARE_ID_IN_USE');
    expect(cli.stderr).toContain('scanbox-cloud devices revoke');
  });
});

describe('the pairing request itself', () => {
  let raw: Server;
  let rawUrl: string;
  let answer: (res: import('node:http').ServerResponse) => void;

  beforeEach(async () => {
    raw = createServer((req, res) => {
      req.resume();
      req.on('end', () => answer(res));
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    rawUrl = `http://127.0.0.1:${(raw.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    raw.closeAllConnections();
    await new Promise((resolve) => raw.close(resolve));
  });

  it(`an answer over ${MAX_PAIR_RESPONSE_BYTES} bytes is cut off and nothing is saved`, async () => {
    answer = (res) => res.end(JSON.stringify({ ...ISSUED, pad: 'x'.repeat(MAX_PAIR_RESPONSE_BYTES) }));
    const dir = tempDir();
    await expect(pairBox({ code: GOOD, cloudUrl: rawUrl, dataDir: dir })).rejects.toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(credsOf(dir)).toBeNull();
  });

  it('a cloud that never answers is CLOUD_UNREACHABLE after the timeout', async () => {
    answer = () => undefined;
    const started = Date.now();
    await expect(pairBox({ code: GOOD, cloudUrl: rawUrl, dataDir: tempDir(), timeoutMs: 300 })).rejects.toMatchObject({ code: 'CLOUD_UNREACHABLE', message: expect.stringContaining('ETIMEDOUT') });
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe('pairing over HTTPS with a private CA', () => {
  let ca: TestCa;
  let tlsCloud: FakePairingServer;

  beforeAll(() => {
    ca = makeTestCa();
  });
  afterAll(() => ca.remove());
  beforeEach(async () => {
    tlsCloud = await new FakePairingServer(GOOD, USED, SECRET, 'mqtts://127.0.0.1:8883').start({ key: ca.serverKey, cert: ca.serverCert });
  });
  afterEach(() => tlsCloud.close());

  it('succeeds with the CA', async () => {
    const dir = tempDir();
    expect(tlsCloud.url).toMatch(/^https:/);
    await pairBox({ code: GOOD, cloudUrl: tlsCloud.url, dataDir: dir, ca: ca.caCert });
    expect(credsOf(dir)).toMatchObject({ deviceId: 'dev1', cloudUrl: tlsCloud.url });
  });

  it('without it is CLOUD_UNREACHABLE naming the certificate problem and --ca; nothing sent, nothing saved', async () => {
    const dir = tempDir();
    const err = await pairBox({ code: GOOD, cloudUrl: tlsCloud.url, dataDir: dir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CLOUD_UNREACHABLE' });
    expect((err as Error).message).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
    expect((err as Error).message).toContain('--ca');
    expect(tlsCloud.requests).toEqual([]);
    expect(credsOf(dir)).toBeNull();
  });

  it('the CLI takes --ca FILE; an unreadable CA file is a config error naming it', async () => {
    const dir = tempDir();
    const without = await runCli(['pair', '--code', GOOD, '--cloud', tlsCloud.url, '--data', dir]);
    expect(without.code).toBe(1);
    expect(without.stderr).toMatch(/CLOUD_UNREACHABLE.*--ca/);
    const missing = await runCli(['pair', '--code', GOOD, '--cloud', tlsCloud.url, '--data', dir, '--ca', join(dir, 'nope.pem')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/CONFIG_INVALID.*caFile.*nope\.pem/);
    const ok = await runCli(['pair', '--code', GOOD, '--cloud', tlsCloud.url, '--data', dir, '--ca', ca.caCertFile, '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ deviceId: 'dev1' });
    expect(ok.stdout + ok.stderr).not.toContain(SECRET);
  });
});

describe('the CLI transport flags', () => {
  it('refuses http:// to a non-loopback host and names --insecure; with --insecure it pairs and warns', async () => {
    const dir = tempDir();
    // An IPv4-mapped address is not on the loopback list, yet it reaches the fake cloud on 127.0.0.1:
    // so the refusal is seen to send nothing, and --insecure to get through, without traffic leaving
    // this machine even if the rule were broken.
    const mapped = url.replace('127.0.0.1', '[::ffff:127.0.0.1]');
    const refused = await runCli(['pair', '--code', GOOD, '--cloud', mapped, '--data', dir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/INSECURE_TRANSPORT.*--insecure/);
    expect(requests).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
    const ok = await runCli(['pair', '--code', GOOD, '--cloud', mapped, '--data', dir, '--insecure', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/warning: .*plain HTTP/);
    expect(JSON.parse(ok.stdout)).toMatchObject({ deviceId: 'dev1' });
    expect(ok.stdout + ok.stderr).not.toContain(SECRET);
  });

  it('`start --ca FILE` is the config caFile: an unreadable one stops the box with exit 2', async () => {
    const dir = tempDir();
    const cli = await runCli(['start', '--scanner', '/dev/null-scanner', '--ecr', '/dev/null-ecr', '--data', dir, '--ca', join(dir, 'missing-ca.pem')]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/CONFIG_INVALID.*caFile.*missing-ca\.pem/);
  });
});

describe('the MQTT link with a private CA', () => {
  let ca: TestCa;
  let aedes: Aedes;
  let broker: TlsServer;
  let mqttsUrl: string;
  let box: AgentHarness | undefined;

  beforeAll(async () => {
    ca = makeTestCa();
    aedes = await Aedes.createBroker({ drainTimeout: 2000 } as never);
    broker = createTlsServer({ key: ca.serverKey, cert: ca.serverCert }, (s) => aedes.handle(s));
    await new Promise<void>((resolve) => broker.listen(0, '127.0.0.1', resolve));
    mqttsUrl = `mqtts://127.0.0.1:${(broker.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => broker.close(resolve));
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    ca.remove();
  });
  afterEach(async () => {
    await box?.stop();
    box = undefined;
    SerialPortMock.binding.reset();
  });

  async function startBox(config: Record<string, unknown>): Promise<AgentHarness> {
    const dir = tempDir();
    writeCredentials(dir, 'tlsbox', mqttsUrl);
    box = new AgentHarness(dir, config);
    await box.start();
    return box;
  }

  it('with caFile the box connects to an mqtts:// broker whose certificate that CA signed', async () => {
    const b = await startBox({ caFile: ca.caCertFile });
    await b.logs.find((l) => l.msg === 'cloud link connected', 'TLS link up');
  });

  it('without it the broker certificate is refused', async () => {
    const b = await startBox({});
    const err = await b.logs.find((l) => l.msg === 'mqtt error', 'TLS refusal');
    expect(String(err.err)).toMatch(/certificate|issuer/i);
    expect(b.logs.items.some((l) => l.msg === 'cloud link connected')).toBe(false);
  });
});

describe('pairing by scanned QR', () => {
  let ca: TestCa;
  let seq = 0;

  beforeAll(() => {
    ca = makeTestCa();
  });
  afterAll(() => ca.remove());
  afterEach(() => SerialPortMock.binding.reset());

  /** An unpaired box waiting for a QR on a mock scanner; `scan` types a line into it. */
  async function waitingBox(config: Record<string, unknown>) {
    const scannerPath = `/dev/mock-pair-scanner-${process.pid}-${++seq}`;
    SerialPortMock.binding.createPort(scannerPath, { echo: false, record: true });
    const logs = new Collector<LogLine>();
    const logger = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
    let port: SerialPortMock | null = null;
    const cfg = loadConfig({ flags: { scannerPath, ecrPath: '/dev/unused', dataDir: tempDir(), ...config } as never });
    const paired = awaitPairingScan(cfg, {
      clock: systemClock,
      random: Math.random,
      logger,
      display: new ConsoleDisplay(logger),
      openSerial: (o) => (port = new SerialPortMock({ path: o.path, baudRate: o.baudRate, autoOpen: false })) as unknown as SerialLike,
    });
    await logs.find((l) => l.msg === 'port state' && l.state === 'open', 'scanner open');
    const scan = (cloudUrl: string) => port!.port!.emitData(Buffer.from(`${pairingQrText({ code: GOOD, cloudUrl })}\r\n`));
    /** Paired, or the failure the box logged for this scan (rather than waiting for the test timeout). */
    const outcome = () => {
      const failed = logs.find((l) => l.msg === 'pairing by scan failed', 'pairing outcome', 10_000, logs.mark());
      return Promise.race([paired, failed.then((l) => Promise.reject(new Error(`pairing by scan failed: ${String(l.code)}: ${String(l.reason)}`)))]);
    };
    return { logs, outcome, scan, dataDir: cfg.dataDir };
  }

  it('a QR naming a plain-HTTP cloud beyond loopback is refused unless the box config says insecurePairing', async () => {
    // The mapped address is judged non-loopback yet reaches the fake cloud on 127.0.0.1 (see above).
    const mapped = url.replace('127.0.0.1', '[::ffff:127.0.0.1]');
    const strict = await waitingBox({});
    let result = strict.outcome();
    strict.scan(mapped);
    await expect(result).rejects.toThrow(/INSECURE_TRANSPORT/);
    expect(requests).toEqual([]);
    result = strict.outcome();
    strict.scan(url);
    await expect(result).resolves.toMatchObject({ deviceId: 'dev1' });
    const lax = await waitingBox({ insecurePairing: true });
    result = lax.outcome();
    lax.scan(mapped);
    await expect(result).resolves.toMatchObject({ deviceId: 'dev2' });
    expect(lax.logs.items.some((l) => l.level === 40 && /plain HTTP/.test(l.msg))).toBe(true);
  });

  it('pairs with an HTTPS cloud signed by the CA in caFile', async () => {
    const tlsCloud = await new FakePairingServer(GOOD, USED, SECRET, 'mqtts://127.0.0.1:8883').start({ key: ca.serverKey, cert: ca.serverCert });
    try {
      const box = await waitingBox({ caFile: ca.caCertFile });
      const result = box.outcome();
      box.scan(tlsCloud.url);
      await expect(result).resolves.toMatchObject({ deviceId: 'dev1' });
      expect(credsOf(box.dataDir)).toMatchObject({ cloudUrl: tlsCloud.url });
    } finally {
      await tlsCloud.close();
    }
  });
});
