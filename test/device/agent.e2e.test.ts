import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeviceAttemptRecord, pairingQrText } from '../../protocol/index.js';
import { SECRET, writeCredentials } from './agent-harness.js';
import { TestBroker } from './broker.js';
import { BoxProcess, TestEnd, runCli, socatPair } from './child-box.js';
import { FakeCloud } from './fake-cloud.js';
import { FakePairingServer } from './fake-pairing-server.js';
import { useTempDirs } from './temp-dir.js';

/**
 * End to end with real serial: socat pseudo-terminal pairs, the agent as a child process
 * (`node --import tsx device/cli.ts start …`), an aedes broker on TCP and a scripted cloud here.
 */
const tempDir = useTempDirs();
const PAID_CODE = '134567890123451001';
const SILENT_CODE = '134567890123451002';
/** The customer is charged but the wallet never answers: only a cancel (which reverses) ends it. */
const CHARGED_SILENT_CODE = '134567890123451003';

let broker: TestBroker;
let scannerSocat: { stop(): void } | null = null;
let cloud: FakeCloud;
const cleanups: (() => Promise<void> | void)[] = [];

interface Rig {
  data: string;
  scanner: TestEnd;
  ecr: TestEnd;
  ports: { scanner: string; ecr: string };
}

async function rig(): Promise<Rig> {
  const data = tempDir();
  writeCredentials(data, 'box1', broker.url);
  const s = await socatPair(data, 'scanner');
  scannerSocat = s;
  const e = await socatPair(data, 'ecr');
  cleanups.push(s.stop, e.stop);
  const scanner = await TestEnd.open(s.testEnd);
  const ecr = await TestEnd.open(e.testEnd);
  cleanups.push(() => scanner.close(), () => ecr.close());
  return { data, scanner, ecr, ports: { scanner: s.boxEnd, ecr: e.boxEnd } };
}

async function startBox(r: Rig, env: Record<string, string> = {}): Promise<BoxProcess> {
  const box = await BoxProcess.start({ ...r.ports, data: r.data }, env);
  cleanups.push(async () => {
    if (box.proc.exitCode === null && box.proc.signalCode === null) await box.kill('SIGKILL');
  });
  await box.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up');
  await box.logs.find((l) => l.msg === 'port state' && l.port === 'ecr' && l.state === 'open', 'ECR open');
  await box.logs.find((l) => l.msg === 'port state' && l.port === 'scanner' && l.state === 'open', 'scanner open');
  return box;
}

async function attempts(data: string): Promise<DeviceAttemptRecord[]> {
  const r = await runCli(['attempts', '--data', data, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return DeviceAttemptRecord.array().parse(JSON.parse(r.stdout));
}

beforeEach(async () => {
  broker = await TestBroker.start();
  cloud = await FakeCloud.start(broker.url, { [PAID_CODE]: 'success', [SILENT_CODE]: 'silence', [CHARGED_SILENT_CODE]: 'charge-and-hold' });
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await cloud.close();
  await broker.close();
});

describe('box agent as a process on pseudo-terminals', () => {
  it('sale and scan over real serial lines end in one PAID line; status and attempts work while it runs; SIGTERM exits 0', async () => {
    const r = await rig();
    const box = await startBox(r);
    r.ecr.json({ type: 'sale', ref: 'E1', amount: 2500, currency: 'CNY' });
    await r.ecr.lines.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    // The terminator arrives in a second write, as a slow UART would deliver it.
    r.scanner.write(PAID_CODE);
    r.scanner.write('\r\n');
    const res = await r.ecr.lines.find((l) => l.type === 'result', 'result line');
    expect(res).toMatchObject({ ref: 'E1', outcome: 'PAID', amount: 2500, outTradeNo: 'box1-1' });
    await box.logs.find((l) => l.msg === 'display' && l.screen === '支付成功 ¥25.00', 'success screen');

    const list = await attempts(r.data);
    expect(list).toMatchObject([{ outTradeNo: 'box1-1', state: 'SUCCESS', saleRef: 'E1', amount: 2500 }]);
    const status = await runCli(['status', '--data', r.data, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ paired: true, deviceId: 'box1', pendingAttempts: 0 });
    expect(status.stdout).not.toContain(SECRET);

    expect(await box.kill('SIGTERM')).toBe(0);
    const all = JSON.stringify(box.logs.items);
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(PAID_CODE);
  });

  it('crash after the attempt is journaled, cloud charges while the box is dead: restart ends SUCCESS exactly once', async () => {
    const r = await rig();
    const box = await startBox(r);
    r.ecr.json({ type: 'sale', ref: 'C1', amount: 700, currency: 'CNY' });
    await r.ecr.lines.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    r.scanner.write(`${SILENT_CODE}\r`);
    await cloud.up.find((u) => u.kind === 'pay', 'pay reached the cloud');
    await box.kill('SIGKILL');
    cloud.settle('box1', 'box1-1', 'SUCCESS');

    const again = await startBox(r);
    const res = await r.ecr.lines.find((l) => l.type === 'result', 'result after restart', 15_000);
    expect(res).toMatchObject({ ref: 'C1', outcome: 'PAID', outTradeNo: 'box1-1' });
    await again.logs.find((l) => l.msg === 'attempt final' && l.outTradeNo === 'box1-1', 'attempt final');
    expect((await attempts(r.data)).map((a) => [a.outTradeNo, a.state])).toEqual([['box1-1', 'SUCCESS']]);
    expect(cloud.up.filter((u) => u.kind === 'pay')).toHaveLength(1);
    expect(cloud.charges).toEqual(['box1-1']);
    expect(r.ecr.lines.filter((l) => l.type === 'result')).toHaveLength(1);
  });

  it('crash after the pay left, the customer charged but the wallet silent: restart cancels it past its deadline (REVERSED, charge undone), never re-pays', async () => {
    // (Killed before the pay left, the query finds nothing and the cloud tombstones it: the
    // integration test "restart with a journaled, never-published pay" covers that branch.)
    const r = await rig();
    const env = { SCANBOX_DEVICE_PAYMENT_DEADLINE_MS: '1500', SCANBOX_DEVICE_RECHECK_MS: '60000' };
    const box = await startBox(r, env);
    r.ecr.json({ type: 'sale', ref: 'C2', amount: 800, currency: 'CNY' });
    await r.ecr.lines.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    r.scanner.write(`${CHARGED_SILENT_CODE}\n`);
    await cloud.up.find((u) => u.kind === 'pay', 'pay reached the cloud');
    await box.kill('SIGKILL');

    const again = await startBox(r, env);
    const final = await again.logs.find((l) => l.msg === 'attempt final' && l.outTradeNo === 'box1-1', 'attempt final', 15_000);
    expect(final).toMatchObject({ state: 'REVERSED', reason: 'DEADLINE' });
    expect(cloud.up.filter((u) => u.kind === 'cancel').map((u) => u.msg)).toMatchObject([{ outTradeNo: 'box1-1', reason: 'DEADLINE' }]);
    r.ecr.json({ type: 'cancel', ref: 'C2' });
    const res = await r.ecr.lines.find((l) => l.type === 'result', 'result');
    expect(res).toMatchObject({ ref: 'C2', outcome: 'NOT_PAID' });
    // The customer was charged; only the box's cancel after the restart got the money back.
    expect(cloud.ledger.map((e) => e.kind)).toEqual(['charge', 'reverse']);
    expect(cloud.net('box1-1')).toBe(0);
    expect(cloud.up.filter((u) => u.kind === 'pay')).toHaveLength(1);
    const [rec] = await attempts(r.data);
    expect(rec!.state).toBe('REVERSED');
  });

  it('the scanner vanishes (socat dies) and comes back: reopened with backoff, then it pays', async () => {
    const r = await rig();
    const box = await startBox(r);
    const mark = box.logs.mark();
    await r.scanner.close();
    scannerSocat!.stop();
    await box.logs.find((l) => l.msg === 'port state' && l.port === 'scanner' && l.state === 'reopening', 'scanner reopening', 10_000, mark);
    const back = await socatPair(r.data, 'scanner');
    cleanups.push(back.stop);
    await box.logs.find((l) => l.msg === 'port state' && l.port === 'scanner' && l.state === 'open', 'scanner open again', 15_000, mark);
    const scanner = await TestEnd.open(back.testEnd);
    cleanups.push(() => scanner.close());
    r.ecr.json({ type: 'sale', ref: 'U1', amount: 100, currency: 'CNY' });
    await r.ecr.lines.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    scanner.write(`${PAID_CODE}\r\n`);
    expect(await r.ecr.lines.find((l) => l.type === 'result', 'result')).toMatchObject({ ref: 'U1', outcome: 'PAID' });
  });

  it('an unpaired box started with --wait-for-pairing pairs from a scanned pairing QR, then takes payments', async () => {
    const r = await rig();
    const fresh = tempDir();
    const pairing = await new FakePairingServer('ABCDE12345', 'WWWWW00000', SECRET, broker.url, () => 'box2').start();
    cleanups.push(() => pairing.close());
    const box = BoxProcess.spawn(['start', '--scanner', r.ports.scanner, '--ecr', r.ports.ecr, '--data', fresh, '--wait-for-pairing']);
    cleanups.push(async () => {
      if (box.proc.exitCode === null && box.proc.signalCode === null) await box.kill('SIGKILL');
    });
    await box.logs.find((l) => l.msg === 'port state' && l.port === 'scanner' && l.state === 'open', 'scanner open', 20_000);
    r.scanner.write(`${pairingQrText({ code: 'WWWWW00000', cloudUrl: pairing.url })}\r\n`);
    await box.logs.find((l) => l.msg === 'pairing by scan failed' && l.code === 'PAIRING_CODE_USED', 'used code refused');
    r.scanner.write(`${pairingQrText({ code: 'ABCDE12345', cloudUrl: pairing.url })}\r\n`);
    await box.logs.find((l) => l.msg === 'paired by scan' && l.deviceId === 'box2', 'paired');
    await box.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up');
    await box.logs.find((l) => l.msg === 'port state' && l.port === 'scanner' && l.state === 'open' && l.deviceId === 'box2', 'scanner reopened by the agent');
    r.ecr.json({ type: 'sale', ref: 'P1', amount: 100, currency: 'CNY' });
    await r.ecr.lines.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    r.scanner.write(`${PAID_CODE}\r`);
    expect(await r.ecr.lines.find((l) => l.type === 'result', 'result')).toMatchObject({ ref: 'P1', outcome: 'PAID', outTradeNo: 'box2-1' });
    expect(JSON.stringify(box.logs.items)).not.toContain(SECRET);
  });

  it('a bad config exits non-zero naming the field; an unpaired box says how to pair', async () => {
    const r = await rig();
    const bad = await runCli(['start', '--scanner', r.ports.scanner, '--ecr', r.ports.ecr, '--data', r.data], { SCANBOX_DEVICE_PAYMENT_DEADLINE_MS: '-5' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('paymentDeadlineMs');
    const empty = tempDir();
    const unpaired = await runCli(['start', '--scanner', r.ports.scanner, '--ecr', r.ports.ecr, '--data', empty]);
    expect(unpaired.code).toBe(1);
    expect(unpaired.stderr).toContain('NOT_PAIRED');
    expect(unpaired.stderr).toContain('scanbox-device pair');
  });
});
