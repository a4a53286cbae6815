import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../protocol/clock.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import type { RunningCloud } from '../../cloud/index.js';
import type { DoctorReportRow } from '../../cloud/store/store.js';
import { AGENT_CHECK_NAMES } from '../../device/doctor.js';
import { pairBox } from '../../device/pairing.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { ensureMerchant, startTestCloud } from '../cloud/harness.js';
import { BoxProcess, ROOT, TestEnd, socatPair } from './child-box.js';
import { useTempDirs } from './temp-dir.js';

/**
 * `scanbox-cloud devices doctor <id> --wait S` end to end: the operator's CLI as its own process on the
 * store of a running cloud (in this process: embedded broker, store, scripted gateway) queues the
 * command; the cloud sends it to a real box process on socat pseudo-terminals, paired through the
 * real pairing API; the box runs its checks inside its agent and answers on up/doctor; the CLI prints
 * the report it finds in the store. Each process takes about a second to start on a loaded machine:
 * explicit timeouts.
 */
const tempDir = useTempDirs();

let cloud: RunningCloud & { dir: string };
const cleanups: (() => Promise<void> | void)[] = [];

beforeEach(async () => {
  cloud = await startTestCloud(new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }));
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await cloud.close();
});

async function pairedDir(): Promise<{ data: string; deviceId: string }> {
  const data = tempDir();
  await ensureMerchant(cloud.store, 'M1');
  const { code } = await createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: 600 }, 'M1', 'S1');
  return { data, deviceId: (await pairBox({ code, cloudUrl: cloud.httpUrl, dataDir: data })).deviceId };
}

/** The operator, beside the running cloud: its own process on the same store file; its exit status and output. */
function operator(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/scanbox-cloud.js', ...args, '--db', join(cloud.dir, 'cloud.db')], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

describe('scanbox-cloud devices doctor', () => {
  it("prints the box's report, run inside its running agent: all pass (exit 0); with its cash register unplugged, that check fails with its fix (exit 1)", async () => {
    const { data, deviceId } = await pairedDir();
    const scanner = await socatPair(data, 'scanner');
    const ecr = await socatPair(data, 'ecr');
    cleanups.push(scanner.stop, ecr.stop);
    const scannerEnd = await TestEnd.open(scanner.testEnd);
    cleanups.push(() => scannerEnd.close());
    const box = BoxProcess.spawn(['start', '--scanner', scanner.boxEnd, '--ecr', ecr.boxEnd, '--data', data]);
    cleanups.push(async () => {
      if (box.proc.exitCode === null && box.proc.signalCode === null) await box.kill('SIGKILL');
    });
    await box.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up', 30_000);
    await box.logs.find((l) => l.msg === 'port state' && l.port === 'ecr' && l.state === 'open', 'ecr open');

    const healthy = await operator('devices', 'doctor', deviceId, '--wait', '60');
    expect(healthy.stderr).toContain(`doctor of ${deviceId} queued`);
    const lines = healthy.stdout.trim().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^doctor report of ${deviceId} \\(firmware [^)]+\\), received \\S+ for command cmd-\\S+: all checks pass$`));
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 2))).toEqual(AGENT_CHECK_NAMES.map((n) => ['PASS', n]));
    expect(healthy.stdout).toContain(`${scanner.boxEnd}: port held by this agent (open)`);
    expect(healthy.stdout).toContain(`connected as ${deviceId} (the agent's link is up)`);
    expect(healthy.stdout).toContain('quick_check ok');
    expect(healthy.status).toBe(0);
    const sent = await box.logs.find((l) => l.msg === 'doctor report sent', 'report sent');
    expect(sent).toMatchObject({ failed: [] });
    // The box went on as it was: still linked, nothing restarted.
    expect(box.proc.exitCode).toBeNull();

    // The cash register's cable is pulled (socat gone): the agent reopens it with backoff.
    ecr.stop();
    await box.logs.find((l) => l.msg === 'port state' && l.port === 'ecr' && l.state !== 'open', 'ecr lost', 15_000);
    const unplugged = await operator('devices', 'doctor', deviceId, '--wait', '60', '--json');
    expect(unplugged.status).toBe(1);
    const report = JSON.parse(unplugged.stdout) as DoctorReportRow;
    expect(report).toMatchObject({ deviceId });
    expect(report.checks.filter((c) => !c.ok)).toEqual([{ name: 'ecr', ok: false, detail: expect.stringContaining(`${ecr.boxEnd} does not open`), fix: expect.stringContaining('cash register') }]);
    expect(await cloud.store.latestDoctorReport(deviceId)).toEqual(report);
  }, 120_000);

  it('no report in time (the box is not running): exit 2, and the command stays queued for when it comes', async () => {
    const { deviceId } = await pairedDir();
    const r = await operator('devices', 'doctor', deviceId, '--wait', '1');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`no doctor report from ${deviceId} within 1 s`);
    expect(r.stderr).toContain('not sent: the box is not connected');
    expect(await cloud.store.openDeviceCommands()).toMatchObject([{ deviceId, command: 'doctor', sentAt: null }]);
    // An unknown box is refused before anything is queued.
    const unknown = await operator('devices', 'doctor', 'sbNOSUCHBOX', '--wait', '1');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain('NOT_PAIRED');
  }, 60_000);
});
