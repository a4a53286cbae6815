import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../protocol/clock.js';
import { DeviceConfig } from '../../device/config.js';
import {
  CHECK_NAMES,
  explainBrokerError,
  procJournalHolders,
  realHttpDate,
  runDoctor,
  type DoctorCheck,
  type DoctorDeps,
} from '../../device/doctor.js';
import { JOURNAL_FILE, Journal, type Credentials } from '../../device/journal.js';
import type { SerialFactory, SerialLike } from '../../device/serial-port.js';
import type { RunningCloud } from '../../cloud/index.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { pairBox, startTestCloud } from '../cloud/harness.js';
import { FakeClock } from '../support/fake-clock.js';
import { makeTestCa, type TestCa } from '../support/test-ca.js';
import { BoxProcess, TestEnd, runCli, socatPair } from './child-box.js';
import { useTempDirs } from './temp-dir.js';
import { waitUntil } from './wait-until.js';

const tempDir = useTempDirs();
const PAYMENT_CODE = '134567890123456789';
const GiB = 1024 ** 3;

// ── doubles ──────────────────────────────────────────────────────────────────────────────────────

type PortBehaviour = 'ok' | 'locked' | 'absent' | 'denied';

/** Serial ports by path: each opens, is locked by another process, is absent or not allowed. */
class FakePorts {
  readonly opened: string[] = [];
  readonly ports = new Map<string, EventEmitter & SerialLike>();
  constructor(private readonly behaviour: Record<string, PortBehaviour>) {}

  factory: SerialFactory = ({ path }) => {
    const b = this.behaviour[path] ?? 'absent';
    const port = Object.assign(new EventEmitter(), {
      isOpen: false,
      open: (cb: (err: Error | null) => void) => {
        if (b === 'locked') return cb(new Error('Error Resource temporarily unavailable Cannot lock port'));
        if (b === 'absent') return cb(Object.assign(new Error(`Error: No such file or directory, cannot open ${path}`), { code: 'ENOENT' }));
        if (b === 'denied') return cb(new Error(`Error: Permission denied, cannot open ${path}`));
        port.isOpen = true;
        this.opened.push(path);
        cb(null);
      },
      close: (cb?: (err: Error | null) => void) => {
        port.isOpen = false;
        cb?.(null);
      },
      write: () => true,
    });
    this.ports.set(path, port as never);
    return port as never;
  };

  /** Open at the end of the run: the doctor must close what it opened. */
  stillOpen(): string[] {
    return [...this.ports].filter(([, p]) => p.isOpen).map(([path]) => path);
  }
}

function skewed(offsetMs: number): Clock {
  return { ...systemClock, now: () => Date.now() + offsetMs };
}

function config(dataDir: string, extra: Record<string, unknown> = {}): DeviceConfig {
  return DeviceConfig.parse({ scannerPath: '/dev/scan', ecrPath: '/dev/ecr', dataDir, ...extra });
}

function deps(over: Partial<DoctorDeps> = {}): DoctorDeps & { said: string[] } {
  const said: string[] = [];
  return {
    openSerial: new FakePorts({ '/dev/scan': 'ok', '/dev/ecr': 'ok' }).factory,
    clock: systemClock,
    connectMqtt: mqtt.connect,
    statfs: async () => ({ bavail: 10 * GiB / 4096, bsize: 4096 }),
    httpDate: realHttpDate,
    journalHolders: () => ({ pids: [], complete: true }),
    say: (line) => said.push(line),
    said,
    ...over,
  };
}

function byName(checks: DoctorCheck[]): Record<string, DoctorCheck> {
  return Object.fromEntries(checks.map((c) => [c.name, c]));
}

function failing(checks: DoctorCheck[]): string[] {
  return checks.filter((c) => !c.ok).map((c) => c.name);
}

/** A data directory with a journal holding these credentials (or none). */
function boxDir(creds: Partial<Credentials> | null): string {
  const dir = tempDir();
  const j = Journal.open(dir);
  if (creds) {
    j.saveCredentials({ deviceId: 'box1', secret: 's3cret', mqttUrl: 'mqtt://127.0.0.1:1', merchantId: 'M1', storeId: 'S1', cloudUrl: 'http://127.0.0.1:9', pairedAt: Date.now(), ...creds });
  }
  j.close();
  return dir;
}

async function pairedDir(cloud: RunningCloud, over: Partial<Credentials> = {}): Promise<string> {
  const p = await pairBox(cloud);
  return boxDir({ deviceId: p.deviceId, secret: p.secret, mqttUrl: p.mqttUrl, cloudUrl: cloud.httpUrl, ...over });
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

// ── checks without a cloud ───────────────────────────────────────────────────────────────────────

describe('doctor checks with doubles', () => {
  it('reports every check, in order, each with a fix when it fails: an unpaired box with absent ports', async () => {
    const dir = tempDir();
    const ports = new FakePorts({});
    const checks = await runDoctor({ config: config(dir) }, deps({ openSerial: ports.factory }));
    expect(checks.map((c) => c.name)).toEqual(CHECK_NAMES.filter((n) => n !== 'scan-test'));
    for (const c of checks) if (!c.ok) expect(c.fix, c.name).toBeTruthy();
    const c = byName(checks);
    expect(c.scanner).toMatchObject({ ok: false, detail: expect.stringContaining('/dev/scan does not open') });
    expect(c.scanner!.fix).toMatch(/plug in the scanner/);
    expect(c.ecr!.fix).toMatch(/cash register/);
    expect(c.credentials).toMatchObject({ ok: false });
    expect(c.credentials!.fix).toMatch(/scanbox-device pair/);
    expect(c.journal).toMatchObject({ ok: false, detail: expect.stringContaining('no journal') });
    expect(c.disk!.ok).toBe(true);
  });

  it('passes the ports that open and closes them again; a port without permission says dialout', async () => {
    const ports = new FakePorts({ '/dev/scan': 'ok', '/dev/ecr': 'denied' });
    const c = byName(await runDoctor({ config: config(boxDir(null)) }, deps({ openSerial: ports.factory })));
    expect(c.scanner).toMatchObject({ ok: true, detail: '/dev/scan opens' });
    expect(c.ecr).toMatchObject({ ok: false });
    expect(c.ecr!.fix).toMatch(/dialout/);
    expect(ports.stillOpen()).toEqual([]);
  });

  it('a port locked while the agent runs is in use by the agent (ok); locked by another program fails', async () => {
    const locked = new FakePorts({ '/dev/scan': 'locked', '/dev/ecr': 'locked' });
    const agent = byName(await runDoctor({ config: config(boxDir(null)) }, deps({ openSerial: locked.factory, journalHolders: () => ({ pids: [4242], complete: true }) })));
    expect(agent.scanner).toMatchObject({ ok: true, detail: expect.stringContaining('in use by the running agent (pid 4242) (ok)') });
    expect(agent.ecr!.ok).toBe(true);
    const other = byName(await runDoctor({ config: config(boxDir(null)) }, deps({ openSerial: locked.factory })));
    expect(other.scanner).toMatchObject({ ok: false, detail: expect.stringContaining('another program') });
    expect(other.scanner!.fix).toMatch(/fuser -v \/dev\/scan/);
    // Processes the doctor may not look into: presumably the agent.
    const unsure = byName(await runDoctor({ config: config(boxDir(null)) }, deps({ openSerial: locked.factory, journalHolders: () => ({ pids: [], complete: false }) })));
    expect(unsure.scanner).toMatchObject({ ok: true, detail: expect.stringContaining('presumably by the running agent') });
  });

  it('--scan-test reads a scanned code and shows it masked', async () => {
    const ports = new FakePorts({ '/dev/scan': 'ok', '/dev/ecr': 'ok' });
    const d = deps({
      openSerial: ports.factory,
      say: (line) => {
        d.said.push(line);
        // The engineer scans once asked; in two pieces, CRLF-terminated, after an empty line.
        ports.ports.get('/dev/scan')!.emit('data', Buffer.from(`\r\n${PAYMENT_CODE.slice(0, 5)}`));
        ports.ports.get('/dev/scan')!.emit('data', Buffer.from(`${PAYMENT_CODE.slice(5)}\r\n`));
      },
    });
    const checks = await runDoctor({ config: config(boxDir(null)), scanTest: true }, d);
    expect(d.said).toEqual(['scan a payment code within 30 s…']);
    expect(checks.map((c) => c.name).slice(0, 3)).toEqual(['scanner', 'scan-test', 'ecr']);
    const c = byName(checks);
    expect(c['scan-test']).toMatchObject({ ok: true, detail: 'read a wechat payment code **************6789' });
    expect(JSON.stringify(checks)).not.toContain(PAYMENT_CODE);
    expect(ports.stillOpen()).toEqual([]);
  });

  it('--scan-test fails after 30 s without a code, and on a line that is no payment code', async () => {
    const clock = new FakeClock();
    const ports = new FakePorts({ '/dev/scan': 'ok', '/dev/ecr': 'ok' });
    const run = runDoctor({ config: config(boxDir(null)), scanTest: true }, deps({ openSerial: ports.factory, clock }));
    await clock.advance(29_999);
    let settled = false;
    void run.then(() => (settled = true));
    await clock.advance(0);
    expect(settled).toBe(false);
    await clock.advance(1);
    const c = byName(await run);
    expect(c['scan-test']).toMatchObject({ ok: false, detail: 'no code read within 30 s on /dev/scan' });
    expect(c['scan-test']!.fix).toMatch(/serial .*mode/);

    const garbage = new FakePorts({ '/dev/scan': 'ok', '/dev/ecr': 'ok' });
    const d = deps({ openSerial: garbage.factory, say: () => garbage.ports.get('/dev/scan')!.emit('data', Buffer.from('HELLO-WORLD-1234\n')) });
    const g = byName(await runDoctor({ config: config(boxDir(null)), scanTest: true }, d));
    expect(g['scan-test']).toMatchObject({ ok: false, detail: expect.stringContaining('************1234') });
    expect(g['scan-test']!.detail).not.toContain('HELLO');
  });

  it('--scan-test does not take the port from the running agent', async () => {
    const ports = new FakePorts({ '/dev/scan': 'locked', '/dev/ecr': 'ok' });
    const c = byName(await runDoctor({ config: config(boxDir(null)), scanTest: true }, deps({ openSerial: ports.factory, journalHolders: () => ({ pids: [7], complete: true }) })));
    expect(c.scanner!.ok).toBe(true);
    expect(c['scan-test']).toMatchObject({ ok: false });
    expect(c['scan-test']!.fix).toMatch(/systemctl stop scanbox-device/);
  });

  it('a journal without credentials fails credentials; the journal itself passes integrity_check', async () => {
    const c = byName(await runDoctor({ config: config(boxDir(null)) }, deps()));
    expect(c.credentials).toMatchObject({ ok: false, detail: expect.stringContaining('not paired') });
    expect(c.broker).toMatchObject({ ok: false, detail: expect.stringContaining('no credentials') });
    expect(c.journal).toMatchObject({ ok: true, detail: expect.stringContaining('integrity_check ok') });
    expect(c.outbox).toMatchObject({ ok: true, detail: 'outbox empty; no open attempt' });
  });

  it('a corrupt journal fails the journal check with what to do', async () => {
    const dir = boxDir({});
    const j = Journal.open(dir);
    j.db.exec('CREATE TABLE filler (x TEXT); CREATE INDEX filler_x ON filler(x);');
    const fill = j.db.prepare('INSERT INTO filler VALUES (?)');
    j.transaction(() => {
      for (let i = 0; i < 2000; i++) fill.run(`row-${i}-${'x'.repeat(40)}`);
    });
    j.db.pragma('wal_checkpoint(TRUNCATE)');
    const { rootpage } = j.db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'filler_x'").get() as { rootpage: number };
    const pageSize = j.db.pragma('page_size', { simple: true }) as number;
    j.close();
    const path = join(dir, JOURNAL_FILE);
    const bytes = readFileSync(path);
    bytes.fill(0x33, (rootpage - 1) * pageSize, rootpage * pageSize);
    writeFileSync(path, bytes);

    const c = byName(await runDoctor({ config: config(dir) }, deps({ httpDate: async () => new Date().toUTCString() })));
    expect(c.journal!.ok).toBe(false);
    expect(c.journal!.fix).toMatch(/mv journal.db journal.db.corrupt/);
  });

  it('a journal that is not SQLite at all fails the journal, credentials and outbox checks', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, JOURNAL_FILE), Buffer.alloc(8192, 0x5a));
    const c = byName(await runDoctor({ config: config(dir) }, deps()));
    expect(c.journal).toMatchObject({ ok: false, detail: expect.stringContaining('JOURNAL_CORRUPT') });
    expect(c.credentials!.ok).toBe(false);
    expect(c.outbox!.ok).toBe(false);
  });

  it('free disk space under 100 MiB fails; an unreadable data directory fails', async () => {
    const low = byName(await runDoctor({ config: config(boxDir(null)) }, deps({ statfs: async () => ({ bavail: 20 * 256, bsize: 4096 }) })));
    expect(low.disk).toMatchObject({ ok: false, detail: expect.stringMatching(/^20 MiB free in .* \(under 100 MiB\)$/) });
    const enough = byName(await runDoctor({ config: config(boxDir(null)) }, deps({ statfs: async () => ({ bavail: 101 * 256, bsize: 4096 }) })));
    expect(enough.disk!.ok).toBe(true);
    const gone = byName(await runDoctor({ config: config(boxDir(null)) }, deps({ statfs: async () => Promise.reject(new Error('ENOENT: no such file or directory')) })));
    expect(gone.disk).toMatchObject({ ok: false, detail: expect.stringContaining('ENOENT') });
  });

  it('an outbox whose oldest row is older than 5 min is stuck; the oldest open attempt is reported', async () => {
    const dir = boxDir({});
    const now = Date.now();
    const j = Journal.open(dir);
    j.transaction(() => {
      j.sql('INSERT INTO sales (sale_id, ref, amount, currency, state, created_at, updated_at, deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run('box1-s1', 'T-1', 100, 'CNY', 'CANCELLING', now - 700_000, now, now);
      j.sql('INSERT INTO attempts (out_trade_no, sale_id, sale_ref, amount, currency, wallet, state, created_at, updated_at, deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run('box1-1', 'box1-s1', 'T-1', 100, 'CNY', 'wechat', 'CANCELLING', now - 660_000, now, now);
      j.sql('INSERT INTO outbox (kind, out_trade_no, payload, created_at) VALUES (?, ?, ?, ?)').run('cancel', 'box1-1', '{}', now - 301_000);
      j.sql('INSERT INTO outbox (kind, out_trade_no, payload, created_at) VALUES (?, ?, ?, ?)').run('query', 'box1-1', '{}', now - 1_000);
    });
    j.close();
    const stuck = byName(await runDoctor({ config: config(dir) }, deps({ httpDate: async () => new Date().toUTCString() })));
    expect(stuck.outbox).toMatchObject({ ok: false, detail: expect.stringMatching(/^outbox 2 row\(s\), the oldest 5 min 1 s old; 1 open attempt\(s\), the oldest 11 min 0 s old: stuck/) });
    expect(stuck.outbox!.fix).toMatch(/broker\/login/);
    // Four minutes earlier the same outbox was merely busy.
    const busy = byName(await runDoctor({ config: config(dir) }, deps({ clock: skewed(-240_000), httpDate: async () => new Date().toUTCString(), journalHolders: () => ({ pids: [1], complete: true }) })));
    expect(busy.outbox).toMatchObject({ ok: true, detail: expect.stringContaining('outbox 2 row(s), the oldest 1 min 1 s old') });
  });

  it('explains each TLS failure: expired, not yet valid, wrong name, unknown CA, unreachable', () => {
    const url = 'mqtts://cloud.example.com:8883';
    expect(explainBrokerError('CERT_HAS_EXPIRED', '', url, undefined).detail).toMatch(/has expired/);
    expect(explainBrokerError('CERT_NOT_YET_VALID', '', url, undefined).fix).toMatch(/NTP/);
    expect(explainBrokerError('ERR_TLS_CERT_ALTNAME_INVALID', "Host: x. is not in the cert's altnames", url, undefined).detail).toMatch(/another name/);
    expect(explainBrokerError('UNABLE_TO_VERIFY_LEAF_SIGNATURE', '', url, '/etc/scanbox/ca.pem').detail).toMatch(/unknown CA for the configured CA \(\/etc\/scanbox\/ca.pem\)/);
    expect(explainBrokerError('SELF_SIGNED_CERT_IN_CHAIN', '', url, undefined).detail).toMatch(/unknown CA for the system's CAs/);
    expect(explainBrokerError('ECONNREFUSED', 'connect ECONNREFUSED', url, undefined).detail).toMatch(/unreachable/);
  });

  it('an unreadable CA file fails the cloud checks instead of stopping the doctor', async () => {
    const dir = boxDir({});
    const c = byName(await runDoctor({ config: config(dir, { caFile: join(dir, 'missing.pem') }) }, deps()));
    for (const n of ['broker', 'login', 'clock']) expect(c[n]).toMatchObject({ ok: false, detail: expect.stringContaining('missing.pem') });
  });
});

// ── against a real cloud ─────────────────────────────────────────────────────────────────────────

describe('doctor against a cloud', () => {
  let cloud: RunningCloud;
  beforeAll(async () => {
    cloud = await startTestCloud(new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }));
  });
  afterAll(async () => {
    await cloud.close();
  });

  it('a paired box passes every check', async () => {
    const checks = await runDoctor({ config: config(await pairedDir(cloud)) }, deps());
    expect(failing(checks)).toEqual([]);
    const c = byName(checks);
    expect(c.broker!.detail).toMatch(/reachable \(plain mqtt:\/\/, no TLS\)/);
    expect(c.login!.detail).toMatch(/CONNACK 0/);
    expect(c.clock!.detail).toMatch(/within 1 s of the cloud's/);
  });

  it('a secret the broker refuses fails the login with "re-pair the box"', async () => {
    const c = byName(await runDoctor({ config: config(await pairedDir(cloud, { secret: 'not-the-secret' })) }, deps()));
    expect(c.broker!.ok).toBe(true);
    expect(c.login).toMatchObject({ ok: false, detail: expect.stringMatching(/refused .*CONNACK [45]/) });
    expect(c.login!.fix).toMatch(/re-pair the box/);
  });

  it('an unreachable broker fails the broker check; the login is not tried', async () => {
    const port = await closedPort();
    const connects: string[] = [];
    const c = byName(await runDoctor({ config: config(await pairedDir(cloud, { mqttUrl: `mqtt://127.0.0.1:${port}` })) }, deps({ connectMqtt: (url, o) => (connects.push(url), mqtt.connect(url, o)) })));
    expect(c.broker).toMatchObject({ ok: false, detail: expect.stringContaining('unreachable (ECONNREFUSED') });
    expect(c.broker!.fix).toMatch(/network/);
    expect(c.login).toMatchObject({ ok: false, detail: expect.stringContaining('not checked') });
    expect(connects).toEqual([]);
    expect(c.clock!.ok).toBe(true);
  });

  it("a box clock 10 s ahead or behind the cloud's fails with \"fix the box's NTP\"; 3 s passes", async () => {
    const dir = await pairedDir(cloud);
    for (const offset of [10_000, -10_000]) {
      const c = byName(await runDoctor({ config: config(dir) }, deps({ clock: skewed(offset) })));
      expect(c.clock).toMatchObject({ ok: false, detail: expect.stringMatching(offset > 0 ? /1\d\.\d s ahead of|9\.\d s ahead of/ : /1\d\.\d s behind|9\.\d s behind/) });
      expect(c.clock!.fix).toMatch(/fix the box's NTP/);
    }
    const c = byName(await runDoctor({ config: config(dir) }, deps({ clock: skewed(3_000) })));
    expect(c.clock!.ok).toBe(true);
  });

  it('while the agent runs the doctor does not log in with its identity, and judges the login by its last contact', async () => {
    const dir = await pairedDir(cloud);
    const connects: string[] = [];
    const agent = { journalHolders: () => ({ pids: [99], complete: true }), connectMqtt: (url: string, o: mqtt.IClientOptions) => (connects.push(url), mqtt.connect(url, o)) };
    const never = byName(await runDoctor({ config: config(dir) }, deps(agent)));
    expect(never.login).toMatchObject({ ok: false, detail: expect.stringContaining('never reached the cloud') });
    const j = Journal.open(dir);
    j.setSetting('last_contact', String(Date.now() - 10_000));
    j.close();
    const recent = byName(await runDoctor({ config: config(dir) }, deps(agent)));
    expect(recent.login).toMatchObject({ ok: true, detail: expect.stringContaining('last contact with the cloud was 10 s ago (ok)') });
    const stale = byName(await runDoctor({ config: config(dir) }, deps({ ...agent, clock: skewed(600_000), httpDate: async () => new Date(Date.now() + 600_000).toUTCString() })));
    expect(stale.login).toMatchObject({ ok: false, detail: expect.stringContaining('10 min 10 s ago') });
    expect(stale.login!.fix).toMatch(/re-pair/);
    expect(connects).toEqual([]);
  });
});

describe('doctor against a TLS cloud', () => {
  let ca: TestCa;
  let otherCa: TestCa;
  let cloud: RunningCloud;
  beforeAll(async () => {
    ca = makeTestCa();
    otherCa = makeTestCa();
    cloud = await startTestCloud(new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }), { tls: { certFile: ca.serverCertFile, keyFile: ca.serverKeyFile } });
  });
  afterAll(async () => {
    await cloud.close();
    ca.remove();
    otherCa.remove();
  });

  async function tlsDir(): Promise<string> {
    const p = await pairBox(cloud, undefined, { ca: Buffer.from(ca.caCert) });
    return boxDir({ deviceId: p.deviceId, secret: p.secret, mqttUrl: p.mqttUrl, cloudUrl: cloud.httpUrl });
  }

  it('with the right CA every cloud check passes over mqtts:// and https://', async () => {
    expect(cloud.mqttUrl).toMatch(/^mqtts:/);
    const c = byName(await runDoctor({ config: config(await tlsDir(), { caFile: ca.caCertFile }) }, deps()));
    expect(c.broker).toMatchObject({ ok: true, detail: expect.stringContaining('TLS certificate valid for the configured CA until') });
    expect(c.login!.ok).toBe(true);
    expect(c.clock!.ok).toBe(true);
  });

  it('a broker certificate from a CA the box does not trust fails with "unknown CA"', async () => {
    const c = byName(await runDoctor({ config: config(await tlsDir(), { caFile: otherCa.caCertFile }) }, deps()));
    expect(c.broker).toMatchObject({ ok: false, detail: expect.stringContaining('unknown CA for the configured CA') });
    expect(c.broker!.fix).toMatch(/caFile/);
    expect(c.login!.detail).toMatch(/not checked/);
  });

  it('a broker certificate for another name fails with "another name"', async () => {
    // The test certificate names 127.0.0.1, localhost and ::1; 127.0.0.2 is loopback too, but not in it.
    const server = createTlsServer({ cert: ca.serverCert, key: ca.serverKey }, (s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const c = byName(await runDoctor({ config: config(await tlsDir(), { caFile: ca.caCertFile, mqttUrl: `mqtts://127.0.0.2:${port}` }) }, deps()));
      expect(c.broker).toMatchObject({ ok: false, detail: expect.stringContaining('certificate is for another name') });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

// ── the CLI, end to end ──────────────────────────────────────────────────────────────────────────

describe('scanbox-device doctor (CLI)', () => {
  let cloud: RunningCloud;
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    cloud = await startTestCloud(new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }));
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await cloud.close();
  });

  async function rig(): Promise<{ dir: string; scanner: { boxEnd: string; testEnd: string }; ecr: { boxEnd: string } }> {
    const dir = await pairedDir(cloud);
    const scanner = await socatPair(dir, 'scanner');
    const ecr = await socatPair(dir, 'ecr');
    cleanups.push(scanner.stop, ecr.stop);
    return { dir, scanner, ecr };
  }

  it('--json: a paired box on pseudo-terminals passes every check and exits 0', async () => {
    const r = await rig();
    const out = await runCli(['doctor', '--scanner', r.scanner.boxEnd, '--ecr', r.ecr.boxEnd, '--data', r.dir, '--json']);
    expect(out.code, out.stderr).toBe(0);
    const checks = JSON.parse(out.stdout) as DoctorCheck[];
    expect(checks.map((c) => c.name)).toEqual(CHECK_NAMES.filter((n) => n !== 'scan-test'));
    for (const c of checks) {
      expect(Object.keys(c).sort()).toEqual(['detail', 'name', 'ok']);
      expect(c).toMatchObject({ ok: true, detail: expect.any(String) });
    }
  }, 30_000);

  it('a failing check prints FAIL with its fix and exits 1', async () => {
    const r = await rig();
    const out = await runCli(['doctor', '--scanner', r.scanner.boxEnd, '--ecr', join(r.dir, 'no-such-ecr'), '--data', r.dir]);
    expect(out.code, out.stderr).toBe(1);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(9);
    expect(lines[0]).toMatch(/^PASS {2}scanner +\S/);
    expect(lines.find((l) => / ecr /.test(l))).toMatch(/^FAIL {2}ecr .*no-such-ecr does not open.*→ fix: no device at/);
    expect(lines.filter((l) => l.startsWith('FAIL'))).toHaveLength(1);
    expect(out.stdout).not.toContain('s3cret');
  }, 30_000);

  it('--json on a box that was never paired exits 1 with the failures in the array', async () => {
    const dir = tempDir();
    const out = await runCli(['doctor', '--scanner', join(dir, 'x'), '--ecr', join(dir, 'y'), '--data', dir, '--json']);
    expect(out.code).toBe(1);
    const checks = JSON.parse(out.stdout) as DoctorCheck[];
    expect(checks.find((c) => c.name === 'credentials')).toMatchObject({ ok: false, fix: expect.stringContaining('scanbox-device pair') });
    expect(checks.find((c) => c.name === 'disk')).toMatchObject({ ok: true });
  }, 30_000);

  it('--scan-test reads the code typed into the scanner pty', async () => {
    const r = await rig();
    const box = BoxProcess.spawn(['doctor', '--scanner', r.scanner.boxEnd, '--ecr', r.ecr.boxEnd, '--data', r.dir, '--scan-test', '--json']);
    let stdout = '';
    box.proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const end = await TestEnd.open(r.scanner.testEnd);
    cleanups.push(() => end.close());
    await new Promise<void>((resolve) => {
      const onData = (d: Buffer) => {
        if (!d.toString().includes('scan a payment code within 30 s')) return;
        box.proc.stderr!.off('data', onData);
        resolve();
      };
      box.proc.stderr!.on('data', onData);
    });
    end.write(`${PAYMENT_CODE}\r`);
    expect(await box.exited).toBe(0);
    const checks = JSON.parse(stdout) as DoctorCheck[];
    expect(checks.find((c) => c.name === 'scan-test')).toEqual({ name: 'scan-test', ok: true, detail: 'read a wechat payment code **************6789' });
    expect(stdout).not.toContain(PAYMENT_CODE);
  }, 30_000);

  it('while the agent runs: its ports are in use by it (ok), it is not thrown off the broker, exit 0', async () => {
    const r = await rig();
    const agent = await BoxProcess.start({ scanner: r.scanner.boxEnd, ecr: r.ecr.boxEnd, data: r.dir });
    cleanups.push(() => agent.kill('SIGKILL'));
    await agent.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up', 20_000);
    await agent.logs.find((l) => l.msg === 'port state' && l.port === 'scanner' && l.state === 'open', 'scanner open');
    await agent.logs.find((l) => l.msg === 'port state' && l.port === 'ecr' && l.state === 'open', 'ECR open');
    await waitUntil(() => readLastContact(r.dir) !== null, 'the agent saved its last contact');
    expect(procJournalHolders(join(r.dir, JOURNAL_FILE)).pids).toContain(agent.proc.pid);

    const out = await runCli(['doctor', '--scanner', r.scanner.boxEnd, '--ecr', r.ecr.boxEnd, '--data', r.dir, '--json']);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    const c = byName(JSON.parse(out.stdout) as DoctorCheck[]);
    expect(c.scanner!.detail).toContain(`port in use by the running agent (pid ${agent.proc.pid}) (ok)`);
    expect(c.ecr!.detail).toContain('port in use by the running agent');
    expect(c.login!.detail).toContain('does not log in');
    // The agent kept its connection: no second "cloud link connected".
    expect(agent.logs.items.filter((l) => l.msg === 'cloud link connected')).toHaveLength(1);
    expect(agent.proc.exitCode).toBe(null);
  }, 60_000);
});

function readLastContact(dir: string): string | null {
  const j = Journal.open(dir, { readonly: true });
  try {
    return j.getSetting('last_contact');
  } finally {
    j.close();
  }
}
