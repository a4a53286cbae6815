import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunningCloud } from '../../cloud/index.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { pairBox, startTestCloud, STACKS, TestBox, until, useStack } from './harness.js';
import { announceV3, pay, REFUND_FAST, refundAnswer, refundMsg } from './refund-kit.js';

/**
 * The cashier's refunds through the cloud: over real TCP MQTT through each broker the cloud runs on
 * (its embedded one on SQLite, Mosquitto on PostgreSQL), the scripted gateway in process, and its
 * ledger as the judge of what money moved.
 */
describe.each(STACKS)('on %s', (stackKind) => {
  const stack = useStack(stackKind);
  let gw: ScriptedGateway;
  let cloud: RunningCloud;
  let box: TestBox;
  const others: TestBox[] = [];

  async function start(config: Parameters<typeof startTestCloud>[1] = {}): Promise<void> {
    gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
    cloud = await startTestCloud(gw, { ...REFUND_FAST, ...config }, { stack });
    box = await TestBox.of(cloud, await pairBox(cloud));
    await announceV3(box);
  }
  afterEach(async () => {
    for (const b of others.splice(0)) await b.close();
    await box?.close();
    await cloud?.close();
    gw?.stop();
  });

  const otn = (seq: number) => `${box.deviceId}-${seq}`;
  const rid = (seq: number) => `${box.deviceId}-r${seq}`;
  /** What the wallet's ledger says was refunded of one payment, entry by entry. */
  const ledgerRefunds = (outTradeNo: string) => gw.ledger.entries().filter((e) => e.outTradeNo === outTradeNo && e.kind === 'refund').map((e) => e.amount);

  describe('refunds from the cash register', () => {
    beforeEach(() => start());

    it('a full refund: PENDING at once, then REFUNDED; the wallet gave it all back once', async () => {
      expect(await pay(box, 1)).toMatchObject({ state: 'SUCCESS' });
      await box.send('refund', refundMsg(box, 1, otn(1), 1234));
      expect(await refundAnswer(box, rid(1))).toMatchObject({ state: 'PENDING', outTradeNo: otn(1), amount: 1234, refundedTotal: 0, remaining: 0 });
      expect(await refundAnswer(box, rid(1))).toMatchObject({ state: 'REFUNDED', amount: 1234, refundedTotal: 1234, remaining: 0 });
      expect(ledgerRefunds(otn(1))).toEqual([1234]);
      expect(gw.net(otn(1))).toBe(0);
      expect(await cloud.store.getRefund(rid(1))).toMatchObject({ state: 'REFUNDED', refundRef: 'RF1', wallet: 'wechat', finalAt: expect.any(Number) });
      expect(cloud.metrics.get('refunds_total', { state: 'REFUNDED', wallet: 'wechat' })).toBe(1);
    });

    it('two partial refunds, each with what remains after it', async () => {
      await pay(box, 2, { amount: 1000 });
      await box.send('refund', refundMsg(box, 2, otn(2), 400));
      expect(await refundAnswer(box, rid(2), 'REFUNDED')).toMatchObject({ refundedTotal: 400, remaining: 600 });
      await box.send('refund', refundMsg(box, 3, otn(2), 600));
      expect(await refundAnswer(box, rid(3), 'REFUNDED')).toMatchObject({ refundedTotal: 1000, remaining: 0 });
      expect(ledgerRefunds(otn(2))).toEqual([400, 600]);
      expect(gw.net(otn(2))).toBe(0);
    });

    it('a partial over what remains is REFUSED (EXCEEDS_REMAINING) before any wallet call', async () => {
      await pay(box, 3, { amount: 1000 });
      await box.send('refund', refundMsg(box, 4, otn(3), 600));
      await refundAnswer(box, rid(4), 'REFUNDED');
      await box.send('refund', refundMsg(box, 5, otn(3), 500));
      expect(await refundAnswer(box, rid(5))).toMatchObject({ state: 'REFUSED', reason: 'EXCEEDS_REMAINING', refundedTotal: 600, remaining: 400, message: expect.stringContaining('4.00 remain') });
      expect(gw.count('refund', otn(3))).toBe(1);
      expect(ledgerRefunds(otn(3))).toEqual([600]);
      expect(cloud.metrics.get('refunds_total', { state: 'REFUSED' })).toBe(1);
    });

    it("another merchant's sale is REFUSED (NOT_THIS_MERCHANT), and the box learns nothing of it", async () => {
      const other = await TestBox.of(cloud, await pairBox(cloud, undefined, { merchant: 'M2' }));
      others.push(other);
      await pay(other, 1, { amount: 5000 });
      await box.send('refund', refundMsg(box, 6, `${other.deviceId}-1`, 100));
      const answer = await refundAnswer(box, rid(6));
      expect(answer).toMatchObject({ state: 'REFUSED', reason: 'NOT_THIS_MERCHANT' });
      expect(answer).not.toHaveProperty('remaining');
      expect(answer).not.toHaveProperty('refundedTotal');
      expect(gw.count('refund')).toBe(0);
      expect(gw.net(`${other.deviceId}-1`)).toBe(5000);
    });

    it('a sale not paid is REFUSED (SALE_NOT_PAID); one the cloud never saw is SALE_UNKNOWN', async () => {
      gw.pays.push('declined');
      expect(await pay(box, 7)).toMatchObject({ state: 'FAILED' });
      await box.send('refund', refundMsg(box, 7, otn(7), 100));
      expect(await refundAnswer(box, rid(7))).toMatchObject({ state: 'REFUSED', reason: 'SALE_NOT_PAID' });
      await box.send('refund', refundMsg(box, 8, otn(99), 100));
      expect(await refundAnswer(box, rid(8))).toMatchObject({ state: 'REFUSED', reason: 'SALE_UNKNOWN' });
      expect(gw.count('refund')).toBe(0);
    });

    it('the wallet errs first (unknown, retry later, refunded but the answer lost), then succeeds: one refund, same number every time', async () => {
      await pay(box, 9);
      gw.refunds.push('unknown', 'retry_later', 'applied-unknown');
      await box.send('refund', refundMsg(box, 9, otn(9), 1234));
      expect(await refundAnswer(box, rid(9), 'REFUNDED')).toMatchObject({ refundedTotal: 1234, remaining: 0 });
      expect(gw.count('refund', otn(9))).toBe(4);
      expect(ledgerRefunds(otn(9))).toEqual([1234]);
      expect(await cloud.store.getRefund(rid(9))).toMatchObject({ state: 'REFUNDED', tries: 3, flagged: false });
    });

    it('the wallet declines: FAILED (DECLINED) with its words, and nothing is held back from a later refund', async () => {
      await pay(box, 10, { amount: 1000 });
      gw.refunds.push('declined');
      await box.send('refund', refundMsg(box, 10, otn(10), 1000));
      expect(await refundAnswer(box, rid(10), 'FAILED')).toMatchObject({ reason: 'DECLINED', message: expect.stringContaining('NOTENOUGH'), refundedTotal: 0, remaining: 1000 });
      await box.send('refund', refundMsg(box, 11, otn(10), 1000));
      await refundAnswer(box, rid(11), 'REFUNDED');
      expect(ledgerRefunds(otn(10))).toEqual([1000]);
    });

    it('the same refund id sent twice (and after it ended) is one wallet refund; each is answered with where it stands', async () => {
      await pay(box, 12);
      // The wallet does not answer until the test says so: the refund stays PENDING meanwhile.
      gw.refunds.push(...Array<'unknown'>(1_000).fill('unknown'));
      const msg = refundMsg(box, 12, otn(12), 1234);
      await box.send('refund', msg);
      await box.send('refund', { ...msg, id: 'resent-1' });
      const answers = [await refundAnswer(box, rid(12)), await refundAnswer(box, rid(12))];
      expect(answers.map((a) => a.state)).toEqual(['PENDING', 'PENDING']);
      gw.refunds.length = 0;
      await refundAnswer(box, rid(12), 'REFUNDED');
      await box.send('refund', { ...msg, id: 'resent-2' });
      expect(await refundAnswer(box, rid(12))).toMatchObject({ state: 'REFUNDED', refundedTotal: 1234 });
      expect(ledgerRefunds(otn(12))).toEqual([1234]);
    });

    it('a known refund id with another amount is REFUSED (REFUND_CONFLICT); the recorded refund is untouched', async () => {
      await pay(box, 13, { amount: 1000 });
      await box.send('refund', refundMsg(box, 13, otn(13), 300));
      await refundAnswer(box, rid(13), 'REFUNDED');
      await box.send('refund', { ...refundMsg(box, 13, otn(13), 700), id: 'other-amount' });
      expect(await refundAnswer(box, rid(13), 'REFUSED')).toMatchObject({ reason: 'REFUND_CONFLICT', amount: 700 });
      expect(await cloud.store.getRefund(rid(13))).toMatchObject({ state: 'REFUNDED', amount: 300 });
      expect(ledgerRefunds(otn(13))).toEqual([300]);
    });

    it("the store's daily limit: a refund that would pass it is REFUSED (DAILY_LIMIT)", async () => {
      await cloud.store.setStoreRefundLimit('M1', 'S1', 1_000, Date.now());
      await pay(box, 14, { amount: 2000 });
      await box.send('refund', refundMsg(box, 14, otn(14), 800));
      await refundAnswer(box, rid(14), 'REFUNDED');
      await box.send('refund', refundMsg(box, 15, otn(14), 300));
      expect(await refundAnswer(box, rid(15))).toMatchObject({ state: 'REFUSED', reason: 'DAILY_LIMIT', remaining: 1200 });
      await box.send('refund', refundMsg(box, 16, otn(14), 200));
      await refundAnswer(box, rid(16), 'REFUNDED');
      expect(ledgerRefunds(otn(14))).toEqual([800, 200]);
    });

    it("a refund id that is not the sender's is refused (FORBIDDEN) and nothing is recorded", async () => {
      await pay(box, 17);
      await box.send('refund', { ...refundMsg(box, 17, otn(17), 100), refundId: 'sbSOMEONE-r1' });
      expect(await box.next('error')).toMatchObject({ code: 'FORBIDDEN' });
      expect(await cloud.store.getRefund('sbSOMEONE-r1')).toBeUndefined();
    });
  });

  describe('a refund the wallet leaves unanswered', () => {
    beforeEach(() => start({ refundFlagAfterMs: 400 }));

    it('is flagged for an operator past refundFlagAfterMs, keeps being retried, and ends REFUNDED when the wallet answers', async () => {
      await pay(box, 1);
      gw.refunds.push(...Array<'unknown'>(1_000).fill('unknown'));
      await box.send('refund', refundMsg(box, 1, otn(1), 1234));
      await refundAnswer(box, rid(1), 'PENDING');
      await until('the refund is flagged', async () => (await cloud.store.getRefund(rid(1)))?.flagged);
      expect(cloud.metrics.get('refunds_flagged_total')).toBe(1);
      expect((await cloud.store.listRefunds({ flagged: true })).map((r) => r.refundId)).toEqual([rid(1)]);
      const tries = gw.count('refund', otn(1));
      await gw.waitFor('refund', tries + 2);
      expect((await cloud.store.getRefund(rid(1)))?.state).toBe('PENDING');
      gw.refunds.length = 0;
      expect(await refundAnswer(box, rid(1), 'REFUNDED')).toMatchObject({ refundedTotal: 1234 });
      expect(ledgerRefunds(otn(1))).toEqual([1234]);
      expect(cloud.metrics.get('refunds_flagged_total')).toBe(1);
    });
  });
});
