import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SerialPortMock } from 'serialport';
import { downTopic, encodeDown, PROTOCOL_VERSION } from '../../protocol/index.js';
import { EXIT_REBOOT, EXIT_UNPAIRED, LAST_COMMAND_SETTING, UNPAIR_SETTING } from '../../device/commands.js';
import { Journal } from '../../device/journal.js';
import { AgentHarness, writeCredentials } from './agent-harness.js';
import { TestBroker } from './broker.js';
import { FakeCloud } from './fake-cloud.js';
import { useTempDirs } from './temp-dir.js';

/**
 * `reboot` and `unpair` from the cloud, in one process: the real agent against an in-process aedes
 * broker and a scripted cloud, serialport's mock binding as hardware. The agent's `exit` is caught
 * here instead of ending the process (the process itself: cloud-commands.e2e.test.ts).
 */
const tempDir = useTempDirs();
const PAID = '134567890123450101';
/** The wallet says nothing until the test settles it. */
const SILENT = '134567890123450102';

let broker: TestBroker;
let cloud: FakeCloud;
const boxes: AgentHarness[] = [];

interface Box {
  h: AgentHarness;
  dir: string;
  /** Resolves with the status the agent asked to exit with. */
  exited: Promise<number>;
}

async function startBox(config: Record<string, unknown> = {}, dir = tempDir(), fresh = true): Promise<Box> {
  if (fresh) writeCredentials(dir, 'box1', broker.url);
  let exit!: (status: number) => void;
  const exited = new Promise<number>((resolve) => (exit = resolve));
  const h = new AgentHarness(dir, { paymentDeadlineMs: 60_000, recheckMs: 60_000, ...config }, { exit });
  boxes.push(h);
  await h.start();
  await h.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up');
  return { h, dir, exited };
}

/** What the cloud's command watcher publishes: down/command, QoS 1. */
function command(name: 'reboot' | 'unpair' | 'resync', id: string): Promise<void> {
  const payload = encodeDown('command', { v: PROTOCOL_VERSION, id, ts: Date.now(), command: name }, PROTOCOL_VERSION);
  return new Promise((resolve, reject) =>
    broker.aedes.publish({ cmd: 'publish', topic: downTopic('box1', 'command'), payload: Buffer.from(payload), qos: 1, retain: false, dup: false, messageId: 0 } as never, (err) => (err ? reject(err) : resolve())),
  );
}

function readJournal<T>(dir: string, fn: (j: Journal) => T): T {
  const j = Journal.open(dir, { readonly: true });
  try {
    return fn(j);
  } finally {
    j.close();
  }
}

async function payInFlight(box: Box, ref: string, code: string): Promise<void> {
  box.h.sale(ref, 1234);
  await box.h.ecrOut.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE' && l.ref === ref, 'WAITING_CODE');
  box.h.scan(`${code}\r\n`);
  await cloud.up.find((u) => u.kind === 'pay', 'pay reached the cloud');
}

beforeEach(async () => {
  broker = await TestBroker.start();
  cloud = await FakeCloud.start(broker.url, { [PAID]: 'success', [SILENT]: 'silence' });
});

afterEach(async () => {
  for (const b of boxes.splice(0)) await b.stop();
  await cloud.close();
  await broker.close();
  SerialPortMock.binding.reset();
});

describe('unpair', () => {
  it('nothing in flight: a sale waiting for a code is closed NOT_PAID for the register; credentials wiped, journal kept, exit 76', async () => {
    const box = await startBox();
    box.h.sale('W1', 500);
    await box.h.ecrOut.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    await command('unpair', 'cmd-u1');
    expect(await box.h.logs.find((l) => l.msg === 'cloud command', 'command logged')).toMatchObject({ level: 30, command: 'unpair', commandId: 'cmd-u1' });
    expect(await box.h.ecrOut.find((l) => l.type === 'result', 'result line')).toMatchObject({ ref: 'W1', outcome: 'NOT_PAID' });
    expect(await box.exited).toBe(EXIT_UNPAIRED);
    expect(box.h.logs.filter((l) => l.msg === 'unpaired: credentials wiped, journal kept')).toMatchObject([{ commandId: 'cmd-u1', handedOver: 0 }]);
    readJournal(box.dir, (j) => {
      expect(j.credentials()).toBeNull();
      expect(j.getSetting(UNPAIR_SETTING)).toBeNull();
      expect(j.loadSaleByRef('W1', Date.now())?.sale).toMatchObject({ state: 'NOT_PAID', reported: true });
    });
  });

  it('a payment that does not finish in time is handed over: new sales refused (UNPAIRING), the attempt named in a warning and kept open in the journal', async () => {
    const box = await startBox({ unpairWaitMs: 400 });
    await payInFlight(box, 'R1', SILENT);
    await command('unpair', 'cmd-u2');
    await box.h.logs.find((l) => l.msg === 'unpairing: no new sale; waiting for what is in flight', 'unpairing');
    box.h.sale('R2', 100);
    expect(await box.h.ecrOut.find((l) => l.type === 'error' && l.ref === 'R2', 'R2 refused')).toMatchObject({ code: 'UNPAIRING' });
    // The sale the box has is answered as always (its progress), not refused.
    const mark = box.h.ecrOut.mark();
    box.h.sale('R1', 1234);
    expect(await box.h.ecrOut.find((l) => l.ref === 'R1', 'R1 answered', 5_000, mark)).toMatchObject({ type: 'progress', stage: 'PAYING' });
    expect(await box.exited).toBe(EXIT_UNPAIRED);
    expect(box.h.logs.filter((l) => l.msg.startsWith('unpair: attempt not final in time'))).toMatchObject([{ level: 40, outTradeNo: 'box1-1', commandId: 'cmd-u2' }]);
    readJournal(box.dir, (j) => {
      expect(j.credentials()).toBeNull();
      expect(j.pendingAttempts()).toBe(1);
      expect(j.attemptRecords()).toMatchObject([{ outTradeNo: 'box1-1', state: 'PAYING' }]);
    });
    expect(cloud.up.filter((u) => u.kind === 'cancel')).toEqual([]);
  });

  it('a repeat of the unpair is ignored; a restart in the middle carries on with the same unpair, which ends once the payment is final and acknowledged', async () => {
    const first = await startBox({ unpairWaitMs: 60_000 });
    await payInFlight(first, 'R1', SILENT);
    await command('unpair', 'cmd-u3');
    await command('unpair', 'cmd-u3');
    await first.h.logs.find((l) => l.msg === 'cloud command ignored: the box is unpairing', 'repeat ignored');
    const mark = readJournal(first.dir, (j) => JSON.parse(j.getSetting(UNPAIR_SETTING)!) as { deadline: number });
    await first.h.stop(); // as a power cut would leave it: the unpair mark is journaled

    cloud.settle('box1', 'box1-1', 'SUCCESS');
    const again = await startBox({ unpairWaitMs: 60_000 }, first.dir, false);
    expect(await again.h.logs.find((l) => l.msg === 'unpair interrupted by a restart: carrying on', 'resumed')).toMatchObject({ commandId: 'cmd-u3', deadline: mark.deadline });
    expect(await again.h.ecrOut.find((l) => l.type === 'result', 'result line')).toMatchObject({ ref: 'R1', outcome: 'PAID', outTradeNo: 'box1-1' });
    expect(await again.exited).toBe(EXIT_UNPAIRED);
    // It left only after the cloud had its acknowledgement.
    expect(cloud.up.filter((u) => u.kind === 'ack').map((u) => u.msg)).toMatchObject([{ outTradeNo: 'box1-1', state: 'SUCCESS' }]);
    expect(again.h.logs.filter((l) => l.msg.startsWith('unpair: attempt not final in time'))).toEqual([]);
    readJournal(first.dir, (j) => {
      expect(j.credentials()).toBeNull();
      expect(j.attemptRecords()).toMatchObject([{ outTradeNo: 'box1-1', state: 'SUCCESS' }]);
    });
  });
});

describe('reboot', () => {
  it('stops gracefully and asks for exit 75; after the restart a redelivery is not a second reboot, and the journal carries on', async () => {
    const box = await startBox();
    box.h.sale('R1', 1234);
    await box.h.ecrOut.find((l) => l.type === 'progress' && l.stage === 'WAITING_CODE', 'WAITING_CODE');
    box.h.scan(`${PAID}\r\n`);
    await box.h.ecrOut.find((l) => l.type === 'result', 'paid');
    await command('reboot', 'cmd-r1');
    expect(await box.exited).toBe(EXIT_REBOOT);
    expect(box.h.logs.filter((l) => l.msg === 'cloud command')).toMatchObject([{ level: 30, command: 'reboot', commandId: 'cmd-r1' }]);
    await box.h.logs.find((l) => l.msg === 'stopped', 'stopped');
    readJournal(box.dir, (j) => {
      expect(j.credentials()?.deviceId).toBe('box1');
      expect(j.getSetting(LAST_COMMAND_SETTING)).toBe('cmd-r1');
    });

    const again = await startBox({}, box.dir, false);
    await command('reboot', 'cmd-r1');
    await again.h.logs.find((l) => l.msg === 'cloud command already carried out (delivered again); ignored', 'redelivery ignored');
    again.h.ecr({ type: 'lookup', ref: 'R1' });
    expect(await again.h.ecrOut.find((l) => l.type === 'result', 'lookup answer')).toMatchObject({ ref: 'R1', outcome: 'PAID', outTradeNo: 'box1-1', lookup: true });
    again.h.sale('R2', 200);
    await again.h.ecrOut.find((l) => l.type === 'progress' && l.ref === 'R2' && l.stage === 'WAITING_CODE', 'R2 WAITING_CODE');
    again.h.scan(`${PAID}\r\n`);
    expect(await again.h.ecrOut.find((l) => l.type === 'result' && l.ref === 'R2', 'R2 paid')).toMatchObject({ outcome: 'PAID', outTradeNo: 'box1-2' });
    const settled = await Promise.race([again.exited, new Promise((r) => setImmediate(() => r('running')))]);
    expect(settled).toBe('running');
  });
});
