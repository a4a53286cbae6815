import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pairingQrText } from '../../protocol/index.js';
import { systemClock } from '../../protocol/clock.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import type { RunningCloud } from '../../cloud/index.js';
import type { DeviceCommandRow } from '../../cloud/store/store.js';
import { EXIT_REBOOT, EXIT_UNPAIRED } from '../../device/commands.js';
import { Journal } from '../../device/journal.js';
import { pairBox } from '../../device/pairing.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { ensureMerchant, startTestCloud, until } from '../cloud/harness.js';
import { BoxProcess, ROOT, TestEnd, socatPair } from './child-box.js';
import { useTempDirs } from './temp-dir.js';

/**
 * `scanbox-cloud devices unpair|reboot` end to end: the operator's CLI as its own process writes the
 * store of a running cloud (in this process: embedded broker, store, scripted gateway); the cloud
 * sends the command to a real box process on socat pseudo-terminals, paired through the real pairing
 * API. Each process takes about a second to start on a loaded machine: explicit timeouts.
 */
const tempDir = useTempDirs();
const run = promisify(execFile);
const CODE = '134567890123451001';

let gw: ScriptedGateway;
let cloud: RunningCloud & { dir: string };
const cleanups: (() => Promise<void> | void)[] = [];

interface Rig {
  data: string;
  scanner: TestEnd;
  ecr: TestEnd;
  ports: { scanner: string; ecr: string };
}

async function rig(): Promise<Rig> {
  const data = tempDir();
  const s = await socatPair(data, 'scanner');
  const e = await socatPair(data, 'ecr');
  cleanups.push(s.stop, e.stop);
  const scanner = await TestEnd.open(s.testEnd);
  const ecr = await TestEnd.open(e.testEnd);
  cleanups.push(() => scanner.close(), () => ecr.close());
  return { data, scanner, ecr, ports: { scanner: s.boxEnd, ecr: e.boxEnd } };
}

async function pairingCode(merchantId: string): Promise<string> {
  await ensureMerchant(cloud.store, merchantId);
  return (await createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: 600 }, merchantId, 'S1')).code;
}

/** What `scanbox-device pair` runs, against the cloud's pairing API; the device id it was given. */
async function pair(r: Rig): Promise<string> {
  return (await pairBox({ code: await pairingCode('M1'), cloudUrl: cloud.httpUrl, dataDir: r.data })).deviceId;
}

function track(box: BoxProcess): BoxProcess {
  cleanups.push(async () => {
    if (box.proc.exitCode === null && box.proc.signalCode === null) await box.kill('SIGKILL');
  });
  return box;
}

async function startBox(r: Rig, extra: string[] = []): Promise<BoxProcess> {
  const box = track(BoxProcess.spawn(['start', '--scanner', r.ports.scanner, '--ecr', r.ports.ecr, '--data', r.data, ...extra]));
  await box.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up', 30_000);
  await box.logs.find((l) => l.msg === 'port state' && l.port === 'scanner' && l.state === 'open', 'scanner open');
  return box;
}

/** The operator, next to the running cloud: its own process on the same store file. */
async function operator(...args: string[]): Promise<DeviceCommandRow & { created: boolean }> {
  const { stdout } = await run(process.execPath, ['bin/scanbox-cloud.js', ...args, '--db', join(cloud.dir, 'cloud.db'), '--json'], { cwd: ROOT });
  return JSON.parse(stdout) as DeviceCommandRow & { created: boolean };
}

/** The box's journal, read as `scanbox-device status` and `attempts` read it (read-only, beside the agent). */
function journal<T>(data: string, fn: (j: Journal) => T): T {
  const j = Journal.open(data, { readonly: true });
  try {
    return fn(j);
  } finally {
    j.close();
  }
}

beforeEach(async () => {
  gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  // The customer takes their time with the password: the cloud keeps asking for a minute.
  cloud = await startTestCloud(gw, { pollDeadlineMs: { wechat: 60_000, alipay: 60_000, unionpay: 60_000 }, unpairGoneMs: 1_000 });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await cloud.close();
});

describe('commands from the cloud to a box process', () => {
  it('unpair while a payment is in flight: the payment ends PAID and the register hears it, then the box leaves unpaired, is revoked, and pairs again in pairing mode', async () => {
    const r = await rig();
    const deviceId = await pair(r);
    const box = await startBox(r);
    r.ecr.json({ type: 'sale', ref: 'U1', amount: 1234, currency: 'CNY' });
    await r.ecr.lines.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    gw.pays.push('userpaying');
    r.scanner.write(`${CODE}\r\n`);
    await r.ecr.lines.find((l) => l.type === 'progress' && l.stage === 'WAITING_PASSWORD', 'WAITING_PASSWORD', 15_000);

    const queued = await operator('devices', 'unpair', deviceId);
    expect(queued).toMatchObject({ deviceId, command: 'unpair', created: true });
    expect(await box.logs.find((l) => l.msg === 'cloud command', 'unpair received', 15_000)).toMatchObject({ level: 30, command: 'unpair', commandId: queued.id });
    r.ecr.json({ type: 'sale', ref: 'U2', amount: 100, currency: 'CNY' });
    expect(await r.ecr.lines.find((l) => l.type === 'error' && l.ref === 'U2', 'new sale refused')).toMatchObject({ code: 'UNPAIRING' });

    gw.confirm(`${deviceId}-1`);
    expect(await r.ecr.lines.find((l) => l.type === 'result', 'result line', 15_000)).toMatchObject({ ref: 'U1', outcome: 'PAID', outTradeNo: `${deviceId}-1` });
    expect(await box.exited).toBe(EXIT_UNPAIRED);
    expect(box.logs.filter((l) => l.msg.startsWith('unpair: attempt not final in time'))).toEqual([]);

    // The cloud saw it go: revoked, the command finished; the attempt acknowledged and final.
    await until('device revoked', async () => (await cloud.store.getDevice(deviceId))?.status === 'revoked', 15_000);
    expect(await cloud.store.listDeviceCommands(deviceId)).toMatchObject([{ id: queued.id, outcome: 'revoked' }]);
    expect(await cloud.store.getAttempt(`${deviceId}-1`)).toMatchObject({ state: 'SUCCESS', ackedState: 'SUCCESS' });
    expect(gw.net(`${deviceId}-1`)).toBe(1234);
    // The box: no credentials, its journal kept.
    journal(r.data, (j) => {
      expect(j.credentials()).toBeNull();
      expect(j.pendingAttempts()).toBe(0);
      expect(j.attemptRecords()).toMatchObject([{ outTradeNo: `${deviceId}-1`, state: 'SUCCESS', saleRef: 'U1' }]);
    });

    // What systemd starts next: pairing mode. A code of another merchant pairs it, which the cloud
    // allows only because the old box was revoked (else HARDWARE_ID_IN_USE).
    const again = track(BoxProcess.spawn(['start', '--scanner', r.ports.scanner, '--ecr', r.ports.ecr, '--data', r.data, '--wait-for-pairing']));
    await again.logs.find((l) => l.msg === 'port state' && l.port === 'scanner' && l.state === 'open', 'scanner open for pairing', 30_000);
    r.scanner.write(`${pairingQrText({ code: await pairingCode('M2'), cloudUrl: cloud.httpUrl })}\r\n`);
    const paired = await again.logs.find((l) => l.msg === 'paired by scan', 'paired again', 15_000);
    expect(paired).toMatchObject({ merchantId: 'M2' });
    expect(paired.deviceId).not.toBe(deviceId);
    await again.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up as the new box', 15_000);
    // The old sale is still in the journal for the register.
    r.ecr.json({ type: 'lookup', ref: 'U1' });
    expect(await r.ecr.lines.find((l) => l.type === 'result' && l.lookup === true, 'lookup answer')).toMatchObject({ ref: 'U1', outcome: 'PAID', outTradeNo: `${deviceId}-1` });
  }, 120_000);

  it('reboot: the box exits 75 and, started again, carries on with its journal; the command is carried out once', async () => {
    const r = await rig();
    const deviceId = await pair(r);
    const box = await startBox(r);
    r.ecr.json({ type: 'sale', ref: 'B1', amount: 300, currency: 'CNY' });
    await r.ecr.lines.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    r.scanner.write(`${CODE}\r\n`);
    const paid = await r.ecr.lines.find((l) => l.type === 'result', 'B1 paid', 15_000);
    expect(paid).toMatchObject({ ref: 'B1', outcome: 'PAID', outTradeNo: `${deviceId}-1` });

    // `device` (singular) is the same command as `devices`.
    const queued = await operator('device', 'reboot', deviceId);
    expect(await box.exited).toBe(EXIT_REBOOT);
    expect(box.logs.filter((l) => l.msg === 'cloud command')).toMatchObject([{ command: 'reboot', commandId: queued.id }]);
    expect(await cloud.store.listDeviceCommands(deviceId)).toMatchObject([{ id: queued.id, outcome: 'sent' }]);
    expect((await cloud.store.getDevice(deviceId))?.status).toBe('active');

    const again = await startBox(r);
    r.ecr.json({ type: 'lookup', ref: 'B1' });
    expect(await r.ecr.lines.find((l) => l.type === 'result' && l.lookup === true, 'lookup answer')).toMatchObject({ ref: 'B1', outcome: 'PAID', outTradeNo: `${deviceId}-1` });
    r.ecr.json({ type: 'sale', ref: 'B2', amount: 400, currency: 'CNY' });
    await r.ecr.lines.find((l) => l.type === 'progress' && l.ref === 'B2' && l.stage === 'WAITING_CODE', 'B2 WAITING_CODE');
    r.scanner.write(`${CODE}\r\n`);
    expect(await r.ecr.lines.find((l) => l.type === 'result' && l.ref === 'B2', 'B2 paid', 15_000)).toMatchObject({ outcome: 'PAID', outTradeNo: `${deviceId}-2` });
    expect(again.proc.exitCode).toBeNull();
    expect(again.logs.filter((l) => l.msg === 'cloud command')).toEqual([]);
  }, 120_000);
});
