import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPairingCode } from '../../cloud/pairing/pairing.js';
import type { AttemptsService } from '../../cloud/payments/attempts-service.js';
import type { Attempt } from '../../cloud/payments/transaction.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { upTopic, type UpKind } from '../../protocol/index.js';
import { FakeClock } from '../support/fake-clock.js';
import { ensureMerchant, envelope, payMsg } from './harness.js';
import { RecordingGateway, shellFor, type Sent } from './shell-kit.js';

/**
 * A device acts only on its own attempts. Device ids may contain '-', so "the outTradeNo starts with
 * `<deviceId>-`" is not ownership: device `sbA` would own `sbA-B-1` of device `sbA-B`. A recorded
 * attempt belongs to the device stored with it; a new outTradeNo must be exactly `<deviceId>-<seq>`.
 */
const A = 'sbA';
const AB = 'sbA-B';

let clock: FakeClock;
let store: SqliteStore;
let gw: RecordingGateway;
let sent: Sent[];
let service: AttemptsService;

beforeEach(async () => {
  clock = new FakeClock();
  store = new SqliteStore(':memory:');
  for (const deviceId of [A, AB]) {
    await ensureMerchant(store, 'M');
    const { code } = await createPairingCode({ store, clock, codeTtlS: 60 }, 'M', 'S');
    await store.redeemPairingCode(code, `hw-${deviceId}`, clock.now(), { deviceId, secretHash: 'scrypt$x', firmware: null });
  }
  gw = new RecordingGateway(clock);
  sent = [];
  service = shellFor({ store, gateway: gw, clock, sent });
});
afterEach(async () => {
  await service.close();
  await store.close();
});

/** `as` publishes on its own up/ topic (the broker's ACL let it), about whatever outTradeNo it likes. */
async function deliver(as: string, kind: UpKind, msg: object): Promise<Sent[]> {
  const before = sent.length;
  await service.handleMessage(upTopic(as, kind), Buffer.from(JSON.stringify(msg)), as);
  await clock.advance(0);
  return sent.slice(before);
}

const forbidden = (to: string) => [{ deviceId: to, kind: 'error', msg: expect.objectContaining({ code: 'FORBIDDEN' }) }];
const sale = (deviceId: string, seq: number) => ({ outTradeNo: `${deviceId}-${seq}`, saleId: `${deviceId}-s${seq}`, amount: 1234, currency: 'CNY' });
/** Every message a box can send about an attempt. */
const aboutAttempt = (deviceId: string, seq: number): [UpKind, object][] => [
  ['query', { ...envelope(), ...sale(deviceId, seq) }],
  ['cancel', { ...envelope(), ...sale(deviceId, seq), reason: 'CASHIER_CANCEL' }],
  ['pay', payMsg(deviceId, seq)],
  ['ack', { ...envelope(), outTradeNo: `${deviceId}-${seq}`, state: 'SUCCESS' }],
];

describe('who owns an attempt', () => {
  it("sbA cannot query, cancel, pay or ack sbA-B's attempt sbA-B-1: FORBIDDEN to sbA, and nothing changes", async () => {
    gw.payAnswer = () => 'userpaying';
    await deliver(AB, 'pay', payMsg(AB, 1));
    const before = await store.getAttempt('sbA-B-1');
    expect(before).toMatchObject({ deviceId: AB, state: 'PAYING' });
    const calls = gw.starts.length;
    for (const [kind, msg] of aboutAttempt(AB, 1)) expect(await deliver(A, kind, msg), kind).toEqual(forbidden(A));
    // Not reversed, not re-paid, not acknowledged, its box told nothing: the same record, the same calls.
    expect(await store.getAttempt('sbA-B-1')).toEqual(before);
    expect(gw.starts.length).toBe(calls);
    // It goes on for its owner: the customer confirms, the next query finds the charge.
    gw.charged('sbA-B-1', 1234);
    await clock.advance(5_000);
    expect(await store.getAttempt('sbA-B-1')).toMatchObject({ state: 'SUCCESS' });
    expect(gw.net('sbA-B-1')).toBe(1234);
  });

  it("sbA cannot take one of sbA-B's sequence numbers: its pay of sbA-B-2 is refused and recorded nowhere, and sbA-B's own pay of it goes through", async () => {
    expect(await deliver(A, 'pay', payMsg(AB, 2))).toEqual(forbidden(A));
    expect(await store.getAttempt('sbA-B-2')).toBeUndefined();
    expect(gw.count('pay')).toBe(0);
    const own = await deliver(AB, 'pay', payMsg(AB, 2));
    expect(own.filter((s) => s.kind === 'result').map((s) => [s.deviceId, s.msg.state])).toEqual([[AB, 'SUCCESS']]);
  });

  it('each device keeps its own attempts: sbA pays sbA-1, which sbA-B may not touch', async () => {
    const own = await deliver(A, 'pay', payMsg(A, 1));
    expect(own.filter((s) => s.kind === 'result').map((s) => [s.deviceId, s.msg.state])).toEqual([[A, 'SUCCESS']]);
    for (const [kind, msg] of aboutAttempt(A, 1)) expect(await deliver(AB, kind, msg), kind).toEqual(forbidden(AB));
    expect(await store.getAttempt('sbA-1')).toMatchObject({ deviceId: A, state: 'SUCCESS', ackedState: null });
  });

  it('a recorded attempt belongs to the device stored with it, whatever its outTradeNo looks like', async () => {
    // What the old prefix rule let sbA record: an attempt named like one of sbA-B's.
    const now = clock.now();
    const squatted: Attempt = {
      outTradeNo: 'sbA-B-7', deviceId: A, saleId: 'sbA-s7', saleRef: 'R7', amount: 1234, currency: 'CNY', wallet: 'wechat', state: 'PAYING', reason: null,
      createdAt: now, updatedAt: now, payAt: now, deadlineAt: now + 45_000, nextAt: null, step: 'poll', inFlight: null, callSeq: 2, tries: 0,
      cancelReason: null, gatewayTradeNo: null, ackedState: null, version: 0,
        merchantId: 'M1', channel: null, charged: null, walletPaidAt: null, buyerPaid: null, discount: null, flag: null,
    };
    await store.writeAttempts([{ attempt: squatted, expectedVersion: 0, event: 'pay', fromState: null, note: 'seeded', claimSale: false }]);
    const before = await store.getAttempt('sbA-B-7');
    expect(await deliver(AB, 'cancel', { ...envelope(), outTradeNo: 'sbA-B-7', saleId: 'sbA-s7', amount: 1234, currency: 'CNY', reason: 'CASHIER_CANCEL' })).toEqual(forbidden(AB));
    expect(await store.getAttempt('sbA-B-7')).toEqual(before);
    const answer = await deliver(A, 'query', { ...envelope(), outTradeNo: 'sbA-B-7', saleId: 'sbA-s7', amount: 1234, currency: 'CNY' });
    expect(answer.map((s) => [s.deviceId, s.kind, s.msg.state])).toEqual([[A, 'result', 'PAYING']]);
  });
});
