import Database from 'better-sqlite3';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeDown, encodeUp, parseTopic, upTopic, type DownKind, type UpToSend } from '../../protocol/index.js';
import { UP_EXAMPLES } from '../../protocol/examples.js';
import { systemClock } from '../../protocol/clock.js';
import { AttemptsService } from '../../cloud/payments/attempts-service.js';
import { CommandWatch } from '../../cloud/fleet/command-watch.js';
import { formatDoctorReport, waitForDoctorReport } from '../../cloud/fleet/doctor-reports.js';
import { machineConfig } from '../../cloud/index.js';
import { parseConfig } from '../../cloud/config.js';
import { createLogger } from '../../cloud/log.js';
import { Metrics } from '../../cloud/metrics.js';
import { MIGRATIONS, openConnection } from '../../cloud/store/sqlite-schema.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { FakeClock } from '../support/fake-clock.js';
import { ensureMerchant, tempDir } from './harness.js';
import { ChannelLimits } from '../../cloud/payments/channel-limits.js';

/**
 * The cloud's side of the box's doctor: up/doctor routed to the store (cloud/fleet/doctor-reports.ts)
 * only from the box whose topic it is and only in answer to a `doctor` queued for that box; the
 * command sent only to a box that announced v3; `devices doctor --wait` finding the report; and
 * migration 11, which rebuilds the command table to take `doctor`.
 */
const BOX = 'sbDOCTORBOX1';
const OTHER = 'sbOTHERBOX01';

let store: SqliteStore;
let remove: () => void;
let dir: string;
let time: FakeClock;
let sent: { deviceId: string; kind: DownKind; msg: any }[];
let service: AttemptsService;

async function pair(deviceId: string): Promise<void> {
  const { code } = await createPairingCode({ store, clock: systemClock, codeTtlS: 60 }, 'M', 'S');
  await store.redeemPairingCode(code, `hw-${deviceId}`, Date.now(), { deviceId, secretHash: 'scrypt$x', firmware: null });
}

beforeEach(async () => {
  const t = tempDir();
  remove = t.remove;
  dir = t.dir;
  store = new SqliteStore(join(dir, 'c.db'));
  await ensureMerchant(store, 'M');
  await pair(BOX);
  await pair(OTHER);
  time = new FakeClock(1_764_086_400_000);
  sent = [];
  service = new AttemptsService({
    store,
    gateway: new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS }),
    logger: createLogger('silent'),
    metrics: new Metrics(),
    clock: time,
    timers: time,
    random: () => 0.5,
    machine: machineConfig(parseConfig({})),
    gatewayCallTimeoutMs: 10_000,
    channelLimits: new ChannelLimits(64),
    resumeSpreadMs: 0,
    resumeRatePerS: 500,
    publish: async (topic, payload) => {
      const t = parseTopic(topic);
      sent.push({ deviceId: t.deviceId, kind: t.kind as DownKind, msg: decodeDown(t.kind as DownKind, payload) });
    },
  });
});
afterEach(async () => {
  await service.close();
  await store.close();
  remove();
});

const report = (refId: string, patch: Partial<UpToSend<'doctor'>> = {}): UpToSend<'doctor'> => ({ ...UP_EXAMPLES.doctor, refId, ...patch });
const deliver = (topicOf: string, msg: unknown, publisher?: string) => service.handleMessage(upTopic(topicOf, 'doctor'), Buffer.from(JSON.stringify(msg)), publisher);
const ask = async (deviceId = BOX, id = 'cmd-doc-1') => (await store.addDeviceCommand({ id, deviceId, command: 'doctor' }, 1_000)).row;

describe('up/doctor in the cloud', () => {
  it('a report answering a doctor queued for the box is kept as its latest, with the time the cloud took it', async () => {
    await ask();
    await deliver(BOX, report('cmd-doc-1'), BOX);
    expect(await store.latestDoctorReport(BOX)).toEqual({
      deviceId: BOX,
      commandId: 'cmd-doc-1',
      messageId: UP_EXAMPLES.doctor.id,
      firmware: '0.1.0',
      checks: UP_EXAMPLES.doctor.checks,
      sentAt: UP_EXAMPLES.doctor.ts,
      receivedAt: time.now(),
    });
    expect(sent).toEqual([]);
    const text = formatDoctorReport((await store.latestDoctorReport(BOX))!);
    expect(text.split('\n')[0]).toBe(`doctor report of ${BOX} (firmware 0.1.0), received ${new Date(time.now()).toISOString()} for command cmd-doc-1: 1 of 3 checks fail`);
    expect(text).toContain('FAIL  disk');
  });

  it("a report published by another client on this box's topic is refused (FORBIDDEN, to the publisher) and nothing is kept", async () => {
    await ask();
    await deliver(BOX, report('cmd-doc-1'), OTHER);
    expect(sent).toEqual([{ deviceId: OTHER, kind: 'error', msg: expect.objectContaining({ code: 'FORBIDDEN' }) }]);
    expect(await store.latestDoctorReport(BOX)).toBeUndefined();
    expect(await store.latestDoctorReport(OTHER)).toBeUndefined();
  });

  it("a report nobody asked of this box — another box's doctor, a reboot's id, an unknown id — changes nothing", async () => {
    await ask(OTHER, 'cmd-other');
    await store.addDeviceCommand({ id: 'cmd-reboot', deviceId: BOX, command: 'reboot' }, 1_000);
    for (const refId of ['cmd-other', 'cmd-reboot', 'cmd-never']) await deliver(BOX, report(refId), BOX);
    expect(await store.latestDoctorReport(BOX)).toBeUndefined();
    expect(await store.listDoctorReports()).toEqual([]);
    expect(sent).toEqual([]);
  });

  it('an off-contract report is refused with its error and keeps nothing', async () => {
    await ask();
    await deliver(BOX, report('cmd-doc-1', { checks: [] }), BOX);
    const tooMany = { ...report('cmd-doc-1'), checks: Array.from({ length: 33 }, () => ({ name: 'disk', ok: true, detail: 'ok' })) };
    await deliver(BOX, tooMany, BOX);
    expect(sent.map((s) => s.msg.code)).toEqual(['SCHEMA_INVALID', 'SCHEMA_INVALID']);
    expect(await store.latestDoctorReport(BOX)).toBeUndefined();
  });

  it('the next report replaces the latest', async () => {
    await ask(BOX, 'cmd-doc-1');
    await deliver(BOX, report('cmd-doc-1'), BOX);
    await store.markDeviceCommandSent('cmd-doc-1', 2_000);
    await ask(BOX, 'cmd-doc-2');
    await time.advance(5_000);
    const fine = report('cmd-doc-2', { id: 'doctor-2', checks: [{ name: 'disk', ok: true, detail: '9 GiB free' }] });
    await deliver(BOX, fine, BOX);
    expect(await store.latestDoctorReport(BOX)).toMatchObject({ commandId: 'cmd-doc-2', messageId: 'doctor-2', checks: fine.checks, receivedAt: time.now() });
    expect((await store.listDoctorReports()).map((r) => r.commandId)).toEqual(['cmd-doc-2']);
  });
});

describe('the doctor command is sent only to a box that reads it', () => {
  it('waits while the box has announced less than v3 (or nothing yet on this connection), goes out once it announces v3', async () => {
    const announced = new Map<string, number>([[BOX, 2]]);
    const published: string[] = [];
    const logged: { level: number; msg: string }[] = [];
    const watch = new CommandWatch({
      store,
      clock: time,
      logger: pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) }),
      pollMs: 60_000,
      goneMs: 15_000,
      graceMs: 300_000,
      downVersionFor: (id) => announced.get(id) ?? 1,
      publish: async (_topic, payload) => void published.push(payload),
    });
    await ask();
    await store.addDeviceCommand({ id: 'cmd-reboot', deviceId: BOX, command: 'reboot' }, 1_500);
    watch.connected(BOX, true);
    await watch.poll();
    // The reboot (v1) goes; the doctor waits in the queue, unsent.
    expect(published.map((p) => decodeDown('command', p).command)).toEqual(['reboot']);
    expect((await store.openDeviceCommands()).map((c) => [c.id, c.sentAt])).toEqual([['cmd-doc-1', null]]);
    // Waiting is not a failure: nothing was tried, so nothing is logged as one at every poll.
    expect(logged.filter((l) => l.level >= 50)).toEqual([]);
    announced.set(BOX, 3);
    await watch.poll();
    expect(published.map((p) => decodeDown('command', p))).toMatchObject([{ command: 'reboot' }, { command: 'doctor', id: 'cmd-doc-1', v: 3 }]);
    expect(await store.openDeviceCommands()).toEqual([]);
  });
});

describe('devices doctor --wait: the report that answers the command', () => {
  it('is returned once the running cloud has stored it; an older report of the box does not count', async () => {
    await ask(BOX, 'cmd-old');
    await store.markDeviceCommandSent('cmd-old', 1_500);
    await deliver(BOX, report('cmd-old'), BOX);
    const row = await ask(BOX, 'cmd-new');
    expect(row.id).toBe('cmd-new');
    const clock = new FakeClock(1_000);
    const waiting = waitForDoctorReport(store, { deviceId: BOX, commandId: row.id, timeoutMs: 60_000 }, clock, 250);
    let got: unknown = 'pending';
    void waiting.then((r) => (got = r));
    await clock.advance(1_000);
    expect(got).toBe('pending');
    await deliver(BOX, report('cmd-new', { id: 'doctor-new' }), BOX);
    await clock.advance(250);
    expect(await waiting).toMatchObject({ commandId: 'cmd-new', messageId: 'doctor-new' });
  });

  it('gives up after its timeout with nothing', async () => {
    const row = await ask();
    const clock = new FakeClock(1_000);
    const waiting = waitForDoctorReport(store, { deviceId: BOX, commandId: row.id, timeoutMs: 1_000 }, clock, 250);
    let got: unknown = 'pending';
    void waiting.then((r) => (got = r));
    await clock.advance(750);
    expect(got).toBe('pending');
    await clock.advance(250);
    expect(got).toBeUndefined();
  });
});

describe('migration 11', () => {
  it('rebuilds the command table to take doctor: every command and its order kept, anything else still refused', async () => {
    const path = join(dir, 'm10.db');
    const v10 = openConnection(path);
    for (const m of MIGRATIONS.slice(0, 10)) v10.exec(m);
    v10.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES ${MIGRATIONS.slice(0, 10).map((_, i) => `(${i + 1})`).join(', ')};`);
    v10.exec(`INSERT INTO merchants (merchant_id, created_at) VALUES ('M', 1); INSERT INTO stores (merchant_id, store_id, created_at) VALUES ('M', 'S', 1);
              INSERT INTO devices (device_id, hardware_id, merchant_id, store_id, secret_hash, status, paired_at) VALUES ('sbA', 'hw', 'M', 'S', 'h', 'active', 1);
              INSERT INTO device_commands (id, device_id, command, created_at, sent_at, done_at, outcome) VALUES
                ('cmd-z', 'sbA', 'unpair', 5, 6, NULL, NULL), ('cmd-a', 'sbA', 'reboot', 5, 6, 6, 'sent'), ('cmd-m', 'sbA', 'resync', 3, NULL, NULL, NULL);`);
    expect(() => v10.exec(`INSERT INTO device_commands (id, device_id, command, created_at) VALUES ('cmd-d', 'sbA', 'doctor', 7)`)).toThrow(/CHECK/);
    v10.close();

    const s = new SqliteStore(path);
    try {
      expect(await s.listDeviceCommands()).toEqual([
        { id: 'cmd-m', deviceId: 'sbA', command: 'resync', createdAt: 3, sentAt: null, doneAt: null, outcome: null },
        { id: 'cmd-z', deviceId: 'sbA', command: 'unpair', createdAt: 5, sentAt: 6, doneAt: null, outcome: null },
        { id: 'cmd-a', deviceId: 'sbA', command: 'reboot', createdAt: 5, sentAt: 6, doneAt: 6, outcome: 'sent' },
      ]);
      expect((await s.addDeviceCommand({ id: 'cmd-d', deviceId: 'sbA', command: 'doctor' }, 7)).created).toBe(true);
      expect((await s.openDeviceCommands()).map((c) => c.id)).toEqual(['cmd-m', 'cmd-z', 'cmd-d']);
    } finally {
      await s.close();
    }
    const db = new Database(path);
    try {
      expect(db.prepare('SELECT MAX(version) FROM schema_version').pluck().get()).toBe(MIGRATIONS.length);
      db.pragma('foreign_keys = ON');
      expect(() => db.exec(`INSERT INTO device_commands (id, device_id, command, created_at) VALUES ('cmd-x', 'sbA', 'selfTest', 8)`)).toThrow(/CHECK/);
      expect(() => db.exec(`INSERT INTO device_commands (id, device_id, command, created_at) VALUES ('cmd-y', 'sbNONE', 'doctor', 8)`)).toThrow(/FOREIGN KEY/);
      const plans = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((p) => p.detail).join(' ');
      expect(plans('SELECT * FROM device_commands WHERE done_at IS NULL ORDER BY created_at')).toMatch(/device_commands_open/);
    } finally {
      db.close();
    }
  });
});
