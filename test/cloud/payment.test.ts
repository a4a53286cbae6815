import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { boxWill, envelope, pairBox, payMsg, startTestCloud, STACKS, TestBox, until, useStack, type TestCloud } from './harness.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { OFFLINE_WILL_ID, type PairResponse } from '../../protocol/index.js';

/**
 * Over real TCP MQTT through each broker the cloud runs on (its embedded one on SQLite, Mosquitto on
 * PostgreSQL), with the scripted gateway in process.
 */
describe.each(STACKS)('payment over MQTT on %s', (stackKind) => {
  const stack = useStack(stackKind);
  let gw: ScriptedGateway;
  let cloud: TestCloud;
  let creds: PairResponse;
  let box: TestBox;
  /**
   * The embedded broker tells the cloud when a box's connection ends; an external one does not, and
   * the cloud learns it from the box's last will. There the box registers one, as every real box does;
   * on the embedded broker it registers none, so the connection's end alone is what is tested.
   */
  const connectBox = () => TestBox.connect(creds.mqttUrl, creds.deviceId, creds.secret, stack.seesConnections ? {} : { will: boxWill(creds.deviceId) });
  const status = { firmware: '1.2.3', uptimeS: 5, outboxDepth: 2, pendingAttempts: 1, scanner: 'open', ecr: 'open' } as const;

  beforeEach(async () => {
    gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
    cloud = await startTestCloud(gw, {}, { stack });
    creds = await pairBox(cloud);
    // Where the pairing answer says: the box never learns the address any other way.
    box = await connectBox();
  });
  afterEach(async () => {
    await box?.close();
    await cloud?.close();
  });

  const otn = (seq: number) => `${box.deviceId}-${seq}`;

  it('pairing → connect with the issued secret at the issued address → pay → SUCCESS result, recorded with its history', async () => {
    // The stack is the one named: PostgreSQL and Mosquitto, or neither.
    const external = stackKind === 'mosquitto-postgres';
    expect([cloud.config.store !== undefined, cloud.config.broker !== undefined]).toEqual([external, external]);
    // On Mosquitto the address is the broker's own, without the cloud's admin credentials.
    expect(creds.mqttUrl).toBe(cloud.mqttUrl);
    expect(new URL(creds.mqttUrl)).toMatchObject({ username: '', password: '' });
    await box.send('pay', payMsg(box.deviceId, 1));
    const r = await box.next('result', (m) => m.outTradeNo === otn(1));
    expect(r).toMatchObject({ state: 'SUCCESS', reason: 'PAID', amount: 1234, saleId: `${box.deviceId}-s1`, wallet: 'wechat' });
    expect(gw.net(otn(1))).toBe(1234);
    const events = await cloud.store.attemptEvents(otn(1));
    expect(events.map((e) => e.toState)).toEqual(['PAYING', 'SUCCESS']);
  });

  it('USERPAYING: progress to the box, polling, then SUCCESS when the customer confirms', async () => {
    gw.pays.push('userpaying');
    await box.send('pay', payMsg(box.deviceId, 2));
    await box.next('progress', (m) => m.stage === 'USERPAYING');
    await gw.waitFor('query', 2);
    gw.confirm(otn(2));
    expect(await box.next('result', (m) => m.outTradeNo === otn(2))).toMatchObject({ state: 'SUCCESS' });
    expect(gw.count('pay')).toBe(1);
  });

  it('the customer never confirms: reversed at the deadline, nothing charged', async () => {
    gw.pays.push('userpaying');
    await box.send('pay', payMsg(box.deviceId, 3));
    const r = await box.next('result', (m) => m.outTradeNo === otn(3), 5_000);
    expect(r).toMatchObject({ state: 'REVERSED', reason: 'DEADLINE' });
    expect(gw.net(otn(3))).toBe(0);
  });

  it('a redelivered pay returns the recorded state and never charges twice', async () => {
    const pay = payMsg(box.deviceId, 4);
    await box.send('pay', pay);
    await box.next('result', (m) => m.outTradeNo === otn(4));
    await box.send('pay', { ...pay, id: 'redelivery-1' });
    expect(await box.next('result', (m) => m.outTradeNo === otn(4))).toMatchObject({ state: 'SUCCESS' });
    expect(gw.count('pay', otn(4))).toBe(1);
  });

  it('cancel before pay: CANCELLED tombstone; the late pay is refused and never reaches the gateway', async () => {
    const pay = payMsg(box.deviceId, 5);
    await box.send('cancel', { ...envelope(), outTradeNo: pay.outTradeNo, saleId: pay.saleId, amount: pay.amount, currency: 'CNY', reason: 'DEADLINE' });
    expect(await box.next('result', (m) => m.outTradeNo === otn(5))).toMatchObject({ state: 'CANCELLED', reason: 'DEADLINE' });
    await box.send('pay', pay);
    expect(await box.next('error', (m) => m.outTradeNo === otn(5))).toMatchObject({ code: 'ATTEMPT_TOMBSTONED' });
    expect(gw.count('pay')).toBe(0);
  });

  it('cashier cancel during USERPAYING: reversed, not charged', async () => {
    gw.pays.push('userpaying');
    const pay = payMsg(box.deviceId, 6);
    await box.send('pay', pay);
    await box.next('progress', (m) => m.stage === 'USERPAYING');
    await box.send('cancel', { ...envelope(), outTradeNo: pay.outTradeNo, saleId: pay.saleId, amount: pay.amount, currency: 'CNY', reason: 'CASHIER_CANCEL' });
    expect(await box.next('result', (m) => m.outTradeNo === otn(6))).toMatchObject({ state: 'REVERSED', reason: 'CASHIER_CANCEL' });
    expect(gw.net(otn(6))).toBe(0);
  });

  it('the customer confirms while the reverse is being retried: the reverse undoes it', async () => {
    gw.pays.push('userpaying');
    gw.reverses.push('unknown', 'retry_later', 'unknown', 'retry_later');
    await box.send('pay', payMsg(box.deviceId, 7));
    await gw.waitFor('reverse', 1);
    gw.confirm(otn(7));
    expect(await box.next('result', (m) => m.outTradeNo === otn(7), 5_000)).toMatchObject({ state: 'REVERSED' });
    expect(gw.net(otn(7))).toBe(0);
    expect(gw.count('reverse', otn(7))).toBe(5);
  });

  it('late success after REVERSED: the verification query finds it and it is refunded (LATE_SUCCESS)', async () => {
    gw.pays.push('userpaying');
    gw.reverses.push('lands-late');
    await box.send('pay', payMsg(box.deviceId, 13));
    expect(await box.next('result', (m) => m.outTradeNo === otn(13), 5_000)).toMatchObject({ state: 'REVERSED' });
    gw.confirm(otn(13)); // the payment lands after the gateway said "reversed"
    expect(await box.next('result', (m) => m.outTradeNo === otn(13), 5_000)).toMatchObject({ state: 'REFUNDED', reason: 'LATE_SUCCESS' });
    expect(gw.net(otn(13))).toBe(0);
    expect(gw.ledger.entries().filter((e) => e.outTradeNo === otn(13)).map((e) => e.kind)).toEqual(['charge', 'refund']);
  });

  it('a second success for one sale is refunded as DUPLICATE_PAYMENT; the sale stays paid once', async () => {
    const first = payMsg(box.deviceId, 8);
    const second = payMsg(box.deviceId, 9, { saleId: first.saleId });
    await box.send('pay', first);
    await box.send('pay', second);
    // Both pays race to the wallet: whichever success claims the sale first keeps it, the other is given back.
    const results = await Promise.all([8, 9].map((seq) => box.next('result', (m) => m.outTradeNo === otn(seq))));
    const states = results.map((r) => `${r.state}/${r.reason}`).sort();
    expect(states).toEqual(['REFUNDED/DUPLICATE_PAYMENT', 'SUCCESS/PAID']);
    expect(gw.net(otn(8)) + gw.net(otn(9))).toBe(1234);
  });

  it('query for an unknown attempt: CANCELLED/UNKNOWN_ATTEMPT, and the tombstone refuses a late pay', async () => {
    await box.send('query', { ...envelope(), outTradeNo: otn(10), saleId: 's10', amount: 1234, currency: 'CNY' });
    expect(await box.next('result', (m) => m.outTradeNo === otn(10))).toMatchObject({ state: 'CANCELLED', reason: 'UNKNOWN_ATTEMPT' });
    await box.send('pay', payMsg(box.deviceId, 10, { saleId: 's10' }));
    await box.next('error', (m) => m.code === 'ATTEMPT_TOMBSTONED');
    expect(gw.count('pay')).toBe(0);
  });

  it('an unacknowledged final result is sent again on reconnect; an acked one is not', async () => {
    await box.send('pay', payMsg(box.deviceId, 11));
    await box.send('pay', payMsg(box.deviceId, 12));
    await box.next('result', (m) => m.outTradeNo === otn(11));
    await box.next('result', (m) => m.outTradeNo === otn(12));
    await box.send('ack', { ...envelope(), outTradeNo: otn(11), state: 'SUCCESS' });
    await until('ack recorded', async () => (await cloud.store.getAttempt(otn(11)))?.ackedState === 'SUCCESS');
    await box.close();
    // Gone before it is back: on Mosquitto the cloud knows a connection only by the box's will and its next message.
    await until('offline', async () => (await cloud.store.getDevice(box.deviceId))?.connectivity === 'offline', 2_000);
    box = await connectBox();
    // What a box sends first once subscribed (device/link.ts).
    await box.send('heartbeat', { ...envelope(), status });
    expect(await box.next('result', (m) => m.outTradeNo === otn(12))).toMatchObject({ state: 'SUCCESS' });
    // 11 would be in the same re-send pass as 12, before it (oldest first); a later answer on this
    // connection closes the window.
    await box.send('query', { ...envelope(), outTradeNo: otn(14), saleId: 's14', amount: 1, currency: 'CNY' });
    await box.next('result', (m) => m.outTradeNo === otn(14));
    expect(box.received.filter((r) => r.kind === 'result' && (r.msg as { outTradeNo: string }).outTradeNo === otn(11))).toEqual([]);
  });

  it('a heartbeat marks the box online with its status; a dropped connection marks it offline at once', async () => {
    await box.send('heartbeat', { ...envelope(), status });
    const d = await until('heartbeat stored', async () => {
      const row = await cloud.store.getDevice(box.deviceId);
      return row?.firmware === '1.2.3' ? row : undefined;
    });
    expect(d).toMatchObject({ connectivity: 'online', outboxDepth: 2, pendingAttempts: 1 });
    await box.close();
    await until('offline', async () => (await cloud.store.getDevice(box.deviceId))?.connectivity === 'offline', 2_000);
  });

  it("the box's last will (a heartbeat with OFFLINE_WILL_ID) marks it offline, not online", async () => {
    await box.send('heartbeat', { ...envelope(), status });
    await until('online', async () => (await cloud.store.getDevice(box.deviceId))?.connectivity === 'online');
    await box.send('heartbeat', { ...envelope(), id: OFFLINE_WILL_ID, status: { ...status, scanner: 'closed', ecr: 'closed' } });
    await until('offline', async () => (await cloud.store.getDevice(box.deviceId))?.connectivity === 'offline', 2_000);
  });

  it('a box silent after its heartbeat is marked stale after three heartbeat intervals', async () => {
    await box.send('heartbeat', { ...envelope(), status });
    await until('online', async () => (await cloud.store.getDevice(box.deviceId))?.connectivity === 'online');
    await until('stale', async () => (await cloud.store.getDevice(box.deviceId))?.connectivity === 'stale', 3_000);
  });
});
