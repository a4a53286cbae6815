import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeDown, upTopic, type DownKind } from '../../protocol/index.js';
import { AttemptsService } from '../../cloud/payments/attempts-service.js';
import { systemClock } from '../../protocol/clock.js';
import { FakeClock } from '../support/fake-clock.js';
import { machineConfig } from '../../cloud/index.js';
import { parseConfig } from '../../cloud/config.js';
import { createLogger } from '../../cloud/log.js';
import { Metrics } from '../../cloud/metrics.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import { ensureMerchant, payMsg, tempDir } from './harness.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { ChannelLimits } from '../../cloud/payments/channel-limits.js';

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

const DEVICE = 'sbTESTDEVICE';
let store: SqliteStore;
let remove: () => void;
let dbPath: string;
let time: FakeClock;
let gw: ScriptedGateway;
let sent: { deviceId: string; kind: DownKind; msg: any }[];
let service: AttemptsService;

function makeService(): AttemptsService {
  return new AttemptsService({
    store,
    gateway: gw,
    logger: createLogger('silent'),
    metrics: new Metrics(),
    clock: time,
    timers: time,
    random: () => 0.5,
    machine: machineConfig(parseConfig({})),
    gatewayCallTimeoutMs: 10_000,
    channelLimits: new ChannelLimits(64),
    // Resumed calls start at once here; their spread has its own suite (resume.test.ts).
    resumeSpreadMs: 0,
    resumeRatePerS: 500,
    publish: async (topic, payload) => {
      const [, , , deviceId, , kind] = topic.split('/') as [string, string, string, string, string, DownKind];
      sent.push({ deviceId, kind, msg: decodeDown(kind, payload) });
    },
  });
}

beforeEach(async () => {
  const t = tempDir();
  remove = t.remove;
  dbPath = join(t.dir, 'c.db');
  store = new SqliteStore(dbPath);
  await ensureMerchant(store, 'M');
  const { code } = await createPairingCode({ store, clock: systemClock, codeTtlS: 60 }, 'M', 'S');
  await store.redeemPairingCode(code, 'hw', Date.now(), { deviceId: DEVICE, secretHash: 'scrypt$x', firmware: null });
  time = new FakeClock(1_764_086_400_000);
  gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  sent = [];
  service = makeService();
});
afterEach(async () => {
  await service.close();
  await store.close();
  remove();
});

const deliver = (kind: 'pay' | 'cancel' | 'query', msg: object) => service.handleMessage(upTopic(DEVICE, kind), Buffer.from(JSON.stringify(msg)));

describe('AttemptsService (the shell)', () => {
  it('writes the attempt to the store before the gateway sees the pay', async () => {
    let recordedFirst: string | undefined;
    const pay = gw.pay.bind(gw);
    gw.pay = async (req, opts) => {
      recordedFirst = (await store.getAttempt(req.outTradeNo))?.state;
      return pay(req, opts);
    };
    await deliver('pay', payMsg(DEVICE, 1));
    await settle();
    expect(recordedFirst).toBe('PAYING');
    expect(sent.find((s) => s.kind === 'result')?.msg).toMatchObject({ state: 'SUCCESS' });
  });

  it('group-commits the writes of one event-loop turn in one store transaction', async () => {
    const sizes: number[] = [];
    const write = store.writeAttempts.bind(store);
    store.writeAttempts = async (w) => (sizes.push(w.length), write(w));
    await Promise.all(Array.from({ length: 20 }, (_, i) => deliver('pay', payMsg(DEVICE, i + 1))));
    expect(sizes[0]).toBe(20);
    await settle();
    expect((await store.listAttempts({ state: 'SUCCESS' })).length).toBe(20);
  });

  it('drives polling, the deadline and the reverse by the injected clock (no real waiting)', async () => {
    gw.pays.push('userpaying');
    await deliver('pay', payMsg(DEVICE, 1));
    await settle();
    expect(gw.count('query')).toBe(0);
    await time.advance(5_000);
    expect(gw.count('query')).toBe(1);
    await time.advance(39_999);
    expect(gw.count('reverse')).toBe(0);
    await time.advance(1);
    expect(gw.count('reverse')).toBe(1);
    expect(sent.filter((s) => s.kind === 'result').map((s) => s.msg.state)).toEqual(['REVERSED']);
    expect(gw.net(`${DEVICE}-1`)).toBe(0);
  });

  it('resumes after a restart from the store alone: queries the pay in flight, never re-sends it', async () => {
    gw.pays.push('charge-and-hold');
    await deliver('pay', payMsg(DEVICE, 1));
    await settle();
    expect((await store.getAttempt(`${DEVICE}-1`))?.inFlight).toBe('pay');
    // "crash": a new service on the same store; the old one's gateway call never answers
    await service.close();
    service = makeService();
    expect(await service.resumeAll()).toBe(1);
    await settle();
    expect(gw.count('pay')).toBe(1);
    expect(gw.count('query')).toBe(1);
    expect((await store.getAttempt(`${DEVICE}-1`))?.state).toBe('SUCCESS');
  });

  it('refuses a message whose real publisher is another client: error to the publisher, nothing recorded', async () => {
    await service.handleMessage(upTopic(DEVICE, 'pay'), Buffer.from(JSON.stringify(payMsg(DEVICE, 1))), 'sbINTRUDER00');
    expect(sent).toEqual([{ deviceId: 'sbINTRUDER00', kind: 'error', msg: expect.objectContaining({ code: 'FORBIDDEN' }) }]);
    expect(await store.listAttempts({})).toEqual([]);
    expect(gw.count('pay')).toBe(0);
  });
});
