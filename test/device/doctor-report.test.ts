import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DOCTOR_BOUNDS, MAX_PAYLOAD_BYTES, decodeUp, encodeUp, parseTopic, type PortState } from '../../protocol/index.js';
import { systemClock } from '../../protocol/clock.js';
import { decideCommand } from '../../device/commands.js';
import { DeviceConfig } from '../../device/config.js';
import { AGENT_CHECK_NAMES, runAgentDoctor, type AgentDoctorDeps, type DoctorCheck } from '../../device/doctor.js';
import { RemoteDoctor, doctorReport } from '../../device/doctor-report.js';
import { Journal } from '../../device/journal.js';
import { useTempDirs } from './temp-dir.js';

/**
 * The box's side of the cloud's `doctor` command: the checks the running agent runs on itself
 * (doctor.ts runAgentDoctor, the CLI's check functions), and the report it builds from them
 * (doctor-report.ts), which must fit in one MQTT message whatever the checks say.
 */
const tempDir = useTempDirs();
const GiB = 1024 ** 3;
const HEAD = { id: 'doctor-1', ts: 1_764_086_400_000, refId: 'cmd-1', firmware: '0.1.0' };

const failing = (name: string, detail: string, fix: string): DoctorCheck => ({ name, ok: false, detail, fix });
const bytes = (msg: unknown) => Buffer.byteLength(JSON.stringify(msg));

describe('doctorReport: the up/doctor a box sends', () => {
  it('checks that fit are sent as they are', () => {
    const checks: DoctorCheck[] = [{ name: 'scanner', ok: true, detail: '/dev/scan opens' }, failing('disk', '12 MiB free', 'free space')];
    expect(doctorReport(checks, HEAD)).toEqual({ v: 3, ...HEAD, checks });
  });

  it('32 checks of 400-character texts (quotes, accents, emoji: JSON and UTF-8 grow them) fit in MAX_PAYLOAD_BYTES, each shortened and marked, and encode', () => {
    const long = (c: string) => c.repeat(DOCTOR_BOUNDS.text / c.length);
    const checks = Array.from({ length: DOCTOR_BOUNDS.checks }, (_, i) => failing(`check-${i}`, long(['"', 'é', '💰', 'a\\'][i % 4]!), long('f')));
    const msg = doctorReport(checks, HEAD);
    expect(bytes(msg)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    expect(() => encodeUp('doctor', msg)).not.toThrow();
    expect(msg.checks.map((c) => c.name)).toEqual(checks.map((c) => c.name));
    for (const c of msg.checks) {
      expect(c.detail.endsWith('…')).toBe(true);
      expect(c.fix!.endsWith('…')).toBe(true);
      // Cut between characters: no half of a surrogate pair is left behind.
      expect(c.detail).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
    }
  });

  it('longest first: one long detail is shortened, the short texts beside it stay whole', () => {
    const checks = [failing('journal', 'x'.repeat(2_000), 'stop the agent'), ...Array.from({ length: 20 }, (_, i) => failing(`c${i}`, `detail ${i}`, `fix ${i}`))];
    const msg = doctorReport(checks, HEAD);
    expect(msg.checks[0]!.detail).toHaveLength(DOCTOR_BOUNDS.text);
    expect(msg.checks.slice(1)).toEqual(checks.slice(1));
    expect(msg.checks[0]!.fix).toBe('stop the agent');
  });

  it('more than 32 checks: the failing ones are kept rather than passing ones, in their order', () => {
    const checks: DoctorCheck[] = [...Array.from({ length: 30 }, (_, i) => ({ name: `pass-${i}`, ok: true, detail: 'ok' })), ...Array.from({ length: 5 }, (_, i) => failing(`fail-${i}`, 'bad', 'fix it'))];
    const msg = doctorReport(checks, HEAD);
    expect(msg.checks).toHaveLength(DOCTOR_BOUNDS.checks);
    expect(msg.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(['fail-0', 'fail-1', 'fail-2', 'fail-3', 'fail-4']);
    expect(msg.checks.map((c) => c.name)).toEqual([...Array.from({ length: 27 }, (_, i) => `pass-${i}`), 'fail-0', 'fail-1', 'fail-2', 'fail-3', 'fail-4']);
  });

  it('an empty detail becomes "-", an empty fix is left out: the schema wants neither empty', () => {
    const msg = doctorReport([{ name: 'disk', ok: false, detail: '', fix: '' }], HEAD);
    expect(msg.checks).toEqual([{ name: 'disk', ok: false, detail: '-' }]);
    expect(() => encodeUp('doctor', msg)).not.toThrow();
  });
});

describe('decideCommand: doctor', () => {
  it('is carried out, also while unpairing (it changes nothing the unpair waits for)', () => {
    expect(decideCommand('doctor', 'cmd-1', { unpairing: false, lastHandled: null })).toEqual({ kind: 'doctor' });
    expect(decideCommand('doctor', 'cmd-1', { unpairing: true, lastHandled: null })).toEqual({ kind: 'doctor' });
  });
});

// ── the checks inside the agent ──────────────────────────────────────────────────────────────────

function pairedJournal(): { dir: string; journal: Journal } {
  const dir = tempDir();
  const journal = Journal.open(dir);
  journal.saveCredentials({ deviceId: 'box1', secret: 's3cret', mqttUrl: 'mqtt://127.0.0.1:1883', merchantId: 'M1', storeId: 'S1', cloudUrl: 'http://127.0.0.1:9', pairedAt: Date.now() });
  return { dir, journal };
}

function io(over: Partial<AgentDoctorDeps> = {}): AgentDoctorDeps {
  return {
    clock: systemClock,
    statfs: async () => ({ bavail: (10 * GiB) / 4096, bsize: 4096 }),
    httpDate: async () => new Date().toUTCString(),
    ...over,
  };
}

const config = (dataDir: string) => DeviceConfig.parse({ scannerPath: '/dev/scan', ecrPath: '/dev/ecr', dataDir });
const ports = (scanner: PortState, ecr: PortState) => ({ scanner, ecr });

describe('runAgentDoctor: the checks of the running agent', () => {
  it('a healthy agent: every check passes, its ports held by itself, the broker judged by its link, the journal by quick_check', async () => {
    const { dir, journal } = pairedJournal();
    try {
      const checks = await runAgentDoctor({ config: config(dir), journal, ports: ports('open', 'open'), online: true }, io());
      expect(checks.map((c) => c.name)).toEqual([...AGENT_CHECK_NAMES]);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
      const c = Object.fromEntries(checks.map((x) => [x.name, x]));
      expect(c.scanner!.detail).toBe('/dev/scan: port held by this agent (open)');
      expect(c.broker!.detail).toBe("mqtt://127.0.0.1:1883: connected as box1 (the agent's link is up)");
      expect(c.journal!.detail).toMatch(/^quick_check ok/);
      expect(c.outbox!.detail).toBe('outbox empty; no open attempt');
    } finally {
      journal.close();
    }
  });

  it('what the agent cannot do fails with its fix: a port it cannot keep open, its link down, a full disk, the cloud 10 minutes off', async () => {
    const { dir, journal } = pairedJournal();
    try {
      const checks = await runAgentDoctor(
        { config: config(dir), journal, ports: ports('reopening', 'absent'), online: false },
        io({ statfs: async () => ({ bavail: 10, bsize: 4096 }), httpDate: async () => new Date(Date.now() - 600_000).toUTCString() }),
      );
      const failed = checks.filter((c) => !c.ok);
      expect(failed.map((c) => c.name)).toEqual(['scanner', 'ecr', 'broker', 'clock', 'disk']);
      for (const c of failed) expect(c.fix, c.name).toBeTruthy();
      expect(failed[0]!.detail).toContain('reopening');
      expect(failed[3]!.detail).toMatch(/(599|600|601)\.\d s ahead of the cloud/);
      // And whatever the checks say, the report made of them is one the cloud reads.
      expect(decodeUp('doctor', encodeUp('doctor', doctorReport(checks, HEAD))).checks).toHaveLength(AGENT_CHECK_NAMES.length);
    } finally {
      journal.close();
    }
  });
});

describe('RemoteDoctor: a report per command, on up/doctor', () => {
  it('answers each command id with a report of the checks; commands that come during a run share the next run', async () => {
    const { dir, journal } = pairedJournal();
    const published: { topic: string; payload: string }[] = [];
    let views = 0;
    const doctor = new RemoteDoctor({
      log: pino({ level: 'silent' }),
      deviceId: 'box1',
      view: () => (views++, { config: config(dir), journal, ports: ports('open', 'open'), online: true }),
      publish: (topic, payload, done) => (published.push({ topic, payload }), done()),
      ...io(),
    });
    try {
      doctor.ask('cmd-a');
      doctor.ask('cmd-b');
      doctor.ask('cmd-b');
      await doctor.idle();
      expect(views).toBe(2);
      expect(published.map((p) => parseTopic(p.topic))).toEqual([
        { deviceId: 'box1', direction: 'up', kind: 'doctor' },
        { deviceId: 'box1', direction: 'up', kind: 'doctor' },
      ]);
      const reports = published.map((p) => decodeUp('doctor', p.payload));
      expect(reports.map((r) => r.refId)).toEqual(['cmd-a', 'cmd-b']);
      expect(new Set(reports.map((r) => r.id)).size).toBe(2);
      for (const r of reports) expect(r.checks.map((c) => c.name)).toEqual([...AGENT_CHECK_NAMES]);
    } finally {
      journal.close();
    }
  });

  it('checks that cannot run at all (the journal closed under a stopping agent) still answer, with what went wrong', async () => {
    const { dir, journal } = pairedJournal();
    journal.close();
    const published: string[] = [];
    const doctor = new RemoteDoctor({
      log: pino({ level: 'silent' }),
      deviceId: 'box1',
      view: () => ({ config: config(dir), journal, ports: ports('open', 'open'), online: true }),
      publish: (_topic, payload, done) => (published.push(payload), done()),
      ...io(),
    });
    doctor.ask('cmd-z');
    await doctor.idle();
    const [r] = published.map((p) => decodeUp('doctor', p));
    expect(r!.refId).toBe('cmd-z');
    expect(r!.checks.some((c) => !c.ok)).toBe(true);
  });
});
