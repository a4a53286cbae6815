import { describe, expect, it } from 'vitest';
import { businessDayRange } from '../../protocol/index.js';
import type { Attempt } from '../../cloud/payments/transaction.js';
import type { Refund } from '../../cloud/refunds/refund-machine.js';
import type { CloudStore, Lease, RefundAsk, RefundEventRow } from '../../cloud/store/store.js';

/**
 * The CloudStore contract for the cashier's refunds (cloud/refunds/): the atomic request, the
 * machine's writes, the lists and the day's figures. Run by describeStoreConformance (store.ts)
 * against every implementation; `store()` is that run's fresh store.
 */
export function describeRefundConformance(store: () => CloudStore): void {
  describe('cashier refunds', () => {
    // Beijing noon of a business day: a day's Beijing bounds are known exactly.
    const DAY = businessDayRange('2026-03-10');
    const NOON = DAY.from + 12 * 3_600_000;
    let codes = 0;

    async function box(deviceId: string, merchantId = 'M1', storeId = 'S1'): Promise<void> {
      const s = store();
      if (!(await s.getMerchant(merchantId))) await s.addMerchant(merchantId, {}, 1);
      const code = `RCODE${String(++codes).padStart(5, '0')}`;
      await s.createPairingCode({ code, merchantId, storeId, createdAt: 1, expiresAt: NOON * 2 });
      expect(await s.redeemPairingCode(code, `hw-${deviceId}`, 2, { deviceId, secretHash: 'h', firmware: '1.0.0' })).toMatchObject({ ok: true });
    }

    /** A payment as the attempt machine leaves it: SUCCESS unless told otherwise, charged = amount unless told. */
    async function paid(outTradeNo: string, patch: Partial<Attempt> = {}): Promise<void> {
      const deviceId = outTradeNo.slice(0, outTradeNo.lastIndexOf('-'));
      const a: Attempt = {
        outTradeNo, deviceId, saleId: `s-${outTradeNo}`, saleRef: 'R1', amount: 1_000, currency: 'CNY', wallet: 'wechat', state: 'SUCCESS', reason: 'PAID',
        createdAt: NOON, updatedAt: NOON, payAt: NOON, deadlineAt: null, nextAt: null, step: null, inFlight: null, callSeq: 1, tries: 0,
        cancelReason: null, gatewayTradeNo: 'g1', ackedState: null, version: 0,
        merchantId: 'M1', channel: 'wechat-a', charged: 1_000, walletPaidAt: NOON, buyerPaid: 1_000, discount: 0, flag: null, ...patch,
      };
      const [r] = await store().writeAttempts([{ attempt: a, expectedVersion: 0, event: 'test', fromState: null, note: '', claimSale: false }]);
      expect(r).toMatchObject({ ok: true });
    }

    let seq = 0;
    const ask = (outTradeNo: string, amount: number, patch: Partial<RefundAsk> = {}): RefundAsk => {
      const deviceId = patch.deviceId ?? outTradeNo.slice(0, outTradeNo.lastIndexOf('-'));
      return { refundId: `${deviceId}-r${++seq}`, deviceId, refundRef: `RF${seq}`, outTradeNo, amount, currency: 'CNY', at: NOON, ...patch };
    };

    it('listRefunds unresolved: leaves out a refund an operator resolved in the state it is in now', async () => {
      await box('sbA');
      await paid('sbA-1');
      const declined = async (amount: number) => {
        const { refund } = await store().requestRefund(ask('sbA-1', amount));
        expect(await store().writeRefund({ ...refund, state: 'FAILED', reason: 'DECLINED', finalAt: NOON + 1, updatedAt: NOON + 1 }, refund.version)).toMatchObject({ ok: true });
        return refund.refundId;
      };
      const [r1, r2] = [await declined(100), await declined(200)];
      const resolve = (subjectId: string, subjectState: string) =>
        store().addOperatorAction({ at: NOON + 2, operator: 'alice', action: 'resolve', subjectKind: 'refund', subjectId, subjectState, note: 'paid in cash', outcome: 'done' });
      await resolve(r1, 'FAILED');
      await resolve(r2, 'PENDING'); // resolved while it was pending: it failed since
      const ids = async (f: Parameters<CloudStore['listRefunds']>[0]) => (await store().listRefunds(f)).map((r) => r.refundId);
      expect(await ids({ state: 'FAILED', unresolved: true })).toEqual([r2]);
      expect(await ids({ state: 'FAILED' })).toEqual([r1, r2]);
    });

    it('takes a refund PENDING with its payment’s wallet, channel and total, and its sender’s merchant and store', async () => {
      await box('sbA');
      await paid('sbA-1');
      const a = ask('sbA-1', 400);
      const res = await store().requestRefund(a);
      expect(res.kind).toBe('created');
      expect(res.refund).toEqual<Refund>({
        refundId: a.refundId, deviceId: 'sbA', merchantId: 'M1', storeId: 'S1', outTradeNo: 'sbA-1', refundRef: a.refundRef, wallet: 'wechat', channel: 'wechat-a',
        amount: 400, saleTotal: 1_000, currency: 'CNY', state: 'PENDING', reason: null, message: null, createdAt: NOON, updatedAt: NOON, finalAt: null,
        tries: 0, nextAt: null, inFlight: false, callSeq: 0, flagged: false, version: 1,
      });
      expect(await store().getRefund(a.refundId)).toEqual(res.refund);
      expect(await store().refundBalance('sbA-1')).toEqual({ charged: 1_000, refunded: 0, pending: 400 });
      expect(await store().refundBalance('sbA-404')).toBeUndefined();
    });

    it('the same refund id again is the recorded refund; with another payment or amount it is a conflict and nothing changes', async () => {
      await box('sbA');
      await paid('sbA-1');
      await paid('sbA-2');
      const a = ask('sbA-1', 400);
      const first = (await store().requestRefund(a)).refund;
      expect(await store().requestRefund({ ...a, at: NOON + 5 })).toEqual({ kind: 'existing', refund: first });
      expect(await store().requestRefund({ ...a, amount: 500 })).toEqual({ kind: 'conflict', refund: first });
      expect(await store().requestRefund({ ...a, outTradeNo: 'sbA-2' })).toEqual({ kind: 'conflict', refund: first });
      expect(await store().getRefund(a.refundId)).toEqual(first);
      expect(await store().refundBalance('sbA-1')).toEqual({ charged: 1_000, refunded: 0, pending: 400 });
      expect(await store().refundBalance('sbA-2')).toEqual({ charged: 1_000, refunded: 0, pending: 0 });
    });

    it("a box's refundRef is used once: a new refund id with it is REFUSED REFUND_CONFLICT (a box that pruned its record cannot pay it twice)", async () => {
      await box('sbA');
      await paid('sbA-1');
      const first = ask('sbA-1', 300);
      expect((await store().requestRefund(first)).refund.state).toBe('PENDING');
      const again = await store().requestRefund(ask('sbA-1', 300, { refundRef: first.refundRef }));
      expect(again).toMatchObject({ kind: 'created', refund: { state: 'REFUSED', reason: 'REFUND_CONFLICT' } });
      expect(await store().refundBalance('sbA-1')).toEqual({ charged: 1_000, refunded: 0, pending: 300 });
    });

    it('refuses, and records the refusal: unknown payment, another merchant’s, not paid — a re-send gets the same answer', async () => {
      await box('sbA', 'M1');
      await box('sbB', 'M2');
      await paid('sbB-1', { merchantId: 'M2' });
      await paid('sbA-2', { state: 'REVERSED', reason: 'DEADLINE' });
      const cases = [
        [ask('sbA-404', 100, { deviceId: 'sbA' }), 'SALE_UNKNOWN'],
        [ask('sbB-1', 100, { deviceId: 'sbA' }), 'NOT_THIS_MERCHANT'],
        [ask('sbA-2', 100), 'SALE_NOT_PAID'],
      ] as const;
      for (const [a, reason] of cases) {
        const res = await store().requestRefund(a);
        expect(res, reason).toMatchObject({ kind: 'created', refund: { state: 'REFUSED', reason, finalAt: NOON, version: 1 } });
        expect(await store().requestRefund(a), reason).toEqual({ kind: 'existing', refund: res.refund });
      }
      // Another merchant's payment lends the refusal none of its details.
      expect(await store().getRefund(cases[1][0].refundId)).toMatchObject({ merchantId: 'M1', wallet: null, channel: null, saleTotal: null });
      expect(await store().refundBalance('sbB-1')).toEqual({ charged: 1_000, refunded: 0, pending: 0 });
    });

    it('partial refunds up to what the payment charged; more is EXCEEDS_REMAINING; FAILED and REFUSED hold nothing back', async () => {
      await box('sbA');
      await paid('sbA-1', { charged: null });
      const r1 = (await store().requestRefund(ask('sbA-1', 300))).refund;
      const r2 = (await store().requestRefund(ask('sbA-1', 500))).refund;
      expect([r1.state, r2.state]).toEqual(['PENDING', 'PENDING']);
      expect((await store().requestRefund(ask('sbA-1', 201))).refund).toMatchObject({ state: 'REFUSED', reason: 'EXCEEDS_REMAINING' });
      expect(await store().writeRefund({ ...r1, state: 'REFUNDED', finalAt: NOON + 1 }, 1)).toEqual({ ok: true, version: 2 });
      expect(await store().writeRefund({ ...r2, state: 'FAILED', reason: 'DECLINED', finalAt: NOON + 1 }, 1)).toEqual({ ok: true, version: 2 });
      expect(await store().refundBalance('sbA-1')).toEqual({ charged: 1_000, refunded: 300, pending: 0 });
      expect((await store().requestRefund(ask('sbA-1', 701))).refund).toMatchObject({ state: 'REFUSED', reason: 'EXCEEDS_REMAINING' });
      expect((await store().requestRefund(ask('sbA-1', 700))).refund).toMatchObject({ state: 'PENDING' });
      expect(await store().refundBalance('sbA-1')).toEqual({ charged: 1_000, refunded: 300, pending: 700 });
    });

    it('concurrent asks for one payment never both pass the remaining check', async () => {
      await box('sbA');
      await paid('sbA-1');
      const asks = Array.from({ length: 10 }, () => ask('sbA-1', 300));
      const results = await Promise.all(asks.map((a) => store().requestRefund(a)));
      expect(results.filter((r) => r.refund.state === 'PENDING')).toHaveLength(3);
      expect(results.filter((r) => r.refund.reason === 'EXCEEDS_REMAINING')).toHaveLength(7);
      expect(await store().refundBalance('sbA-1')).toEqual({ charged: 1_000, refunded: 0, pending: 900 });
    });

    it('concurrent asks for one payment from several boxes of its merchant, in several stores, never both pass the remaining check', async () => {
      const boxes = Array.from({ length: 10 }, (_, i) => `sbR${i}`);
      for (const [i, id] of boxes.entries()) await box(id, 'M1', `S${i}`);
      await paid('sbR0-1');
      const asks = boxes.map((deviceId) => ask('sbR0-1', 300, { deviceId }));
      const results = await Promise.all(asks.map((a) => store().requestRefund(a)));
      expect(results.filter((r) => r.refund.state === 'PENDING')).toHaveLength(3);
      expect(await store().refundBalance('sbR0-1')).toEqual({ charged: 1_000, refunded: 0, pending: 900 });
    });

    it("a store's daily limit counts its PENDING and REFUNDED refunds created on the Beijing day, whichever box asked", async () => {
      await box('sbA', 'M1', 'S1');
      await box('sbB', 'M1', 'S1');
      await box('sbC', 'M1', 'S2');
      for (const otn of ['sbA-1', 'sbA-2', 'sbB-1', 'sbC-1']) await paid(otn);
      expect(await store().storeRefundLimit('M1', 'S1')).toBeNull();
      expect(await store().storeRefundLimit('M1', 'S9')).toBeUndefined();
      await store().setStoreRefundLimit('M1', 'S1', 1_000, 5);
      expect(await store().storeRefundLimit('M1', 'S1')).toBe(1_000);
      expect((await store().requestRefund(ask('sbA-1', 600, { at: DAY.from }))).refund.state).toBe('PENDING');
      const refused = await store().requestRefund(ask('sbB-1', 500, { at: DAY.to - 1 }));
      expect(refused.refund).toMatchObject({ state: 'REFUSED', reason: 'DAILY_LIMIT' });
      // A refused refund holds nothing: 400 more still fit.
      expect((await store().requestRefund(ask('sbB-1', 400, { at: DAY.to - 1 }))).refund.state).toBe('PENDING');
      // Another store, and the next Beijing day, have their own figures.
      expect((await store().requestRefund(ask('sbC-1', 900))).refund.state).toBe('PENDING');
      expect((await store().requestRefund(ask('sbA-2', 900, { at: DAY.to }))).refund.state).toBe('PENDING');
      await store().setStoreRefundLimit('M1', 'S1', null, 6);
      expect((await store().requestRefund(ask('sbA-2', 100, { at: DAY.to }))).refund.state).toBe('PENDING');
    });

    it('a limit for a store not seen yet is kept; for a merchant that does not exist it is refused (MERCHANT_UNKNOWN)', async () => {
      await store().addMerchant('M1', {}, 1);
      await store().setStoreRefundLimit('M1', 'S-NEW', 5_000, 2);
      expect(await store().storeRefundLimit('M1', 'S-NEW')).toBe(5_000);
      await expect(store().setStoreRefundLimit('M-NONE', 'S1', 5_000, 2)).rejects.toMatchObject({ code: 'MERCHANT_UNKNOWN' });
      expect(await store().storeRefundLimit('M-NONE', 'S1')).toBeUndefined();
    });

    it('a sender that is not a paired device is refused (NOT_PAIRED) and nothing is recorded', async () => {
      await box('sbA');
      await paid('sbA-1');
      const a = ask('sbA-1', 100, { deviceId: 'sbZ', refundId: 'sbZ-r1' });
      await expect(store().requestRefund(a)).rejects.toMatchObject({ code: 'NOT_PAIRED' });
      expect(await store().getRefund('sbZ-r1')).toBeUndefined();
    });

    it('writeRefund replaces only the version it read', async () => {
      await box('sbA');
      await paid('sbA-1');
      const r = (await store().requestRefund(ask('sbA-1', 100))).refund;
      const calling = { ...r, inFlight: true, callSeq: 1, updatedAt: NOON + 1 };
      expect(await store().writeRefund(calling, 1)).toEqual({ ok: true, version: 2 });
      expect(await store().writeRefund({ ...r, tries: 9 }, 1)).toEqual({ ok: false });
      expect(await store().getRefund(r.refundId)).toEqual({ ...calling, version: 2 });
      const flagged = { ...calling, inFlight: false, tries: 1, nextAt: NOON + 50, flagged: true, message: 'unknown (TIMEOUT)' };
      expect(await store().writeRefund(flagged, 2)).toEqual({ ok: true, version: 3 });
      expect(await store().getRefund(r.refundId)).toEqual({ ...flagged, version: 3 });
    });

    describe('history (refund_events)', () => {
      /** What refundEvents answers, but the store's own sequence numbers. */
      const history = async (outTradeNo: string) => (await store().refundEvents(outTradeNo)).map(({ seq: _, ...e }) => e);
      const lease = (owner: string, now: number): Lease => ({ owner, now, until: now + 1_000 });

      it('a created refund starts its history: from no state to PENDING, at the ask', async () => {
        await box('sbA');
        await paid('sbA-1');
        const a = ask('sbA-1', 400);
        await store().requestRefund(a);
        expect(await history('sbA-1')).toEqual<Omit<RefundEventRow, 'seq'>[]>([
          { refundId: a.refundId, outTradeNo: 'sbA-1', at: NOON, event: 'request', fromState: null, toState: 'PENDING', note: expect.stringContaining(a.refundRef) as string },
        ]);
        expect(await store().refundEvents('sbA-2')).toEqual([]);
      });

      it('a refused ask is recorded with its reason; asking again (same or conflicting) adds nothing', async () => {
        await box('sbA');
        await paid('sbA-1');
        const a = ask('sbA-1', 1_001);
        expect((await store().requestRefund(a)).refund.state).toBe('REFUSED');
        expect(await store().requestRefund(a)).toMatchObject({ kind: 'existing' });
        expect(await store().requestRefund({ ...a, amount: 5 })).toMatchObject({ kind: 'conflict' });
        expect(await history('sbA-1')).toEqual([
          { refundId: a.refundId, outTradeNo: 'sbA-1', at: NOON, event: 'request', fromState: null, toState: 'REFUSED', note: expect.stringContaining('EXCEEDS_REMAINING') },
        ]);
      });

      it('a write with an event appends exactly one row, from the state it replaced to the one written, at its updatedAt; one without appends none', async () => {
        await box('sbA');
        await paid('sbA-1');
        const r = (await store().requestRefund(ask('sbA-1', 100))).refund;
        const calling = { ...r, inFlight: true, callSeq: 1, updatedAt: NOON + 1 };
        expect(await store().writeRefund(calling, 1, undefined, { event: 'start', note: 'taken: refund' })).toEqual({ ok: true, version: 2 });
        const waiting = { ...calling, inFlight: false, tries: 1, nextAt: NOON + 60, updatedAt: NOON + 2 };
        expect(await store().writeRefund(waiting, 2)).toEqual({ ok: true, version: 3 });
        const done = { ...waiting, state: 'REFUNDED' as const, nextAt: null, finalAt: NOON + 3, updatedAt: NOON + 3 };
        expect(await store().writeRefund(done, 3, undefined, { event: 'outcome', note: 'refunded' })).toEqual({ ok: true, version: 4 });
        expect((await history('sbA-1')).slice(1)).toEqual([
          { refundId: r.refundId, outTradeNo: 'sbA-1', at: NOON + 1, event: 'start', fromState: 'PENDING', toState: 'PENDING', note: 'taken: refund' },
          { refundId: r.refundId, outTradeNo: 'sbA-1', at: NOON + 3, event: 'outcome', fromState: 'PENDING', toState: 'REFUNDED', note: 'refunded' },
        ]);
      });

      it('a write refused on its version or on another worker’s lease appends nothing', async () => {
        await box('sbA');
        await paid('sbA-1');
        const r = (await store().requestRefund(ask('sbA-1', 100))).refund;
        expect(await store().writeRefund({ ...r, tries: 1, updatedAt: NOON + 1 }, 1, lease('W1', NOON), { event: 'start', note: 'W1 drives it' })).toEqual({ ok: true, version: 2 });
        const before = await store().refundEvents('sbA-1');
        expect(before).toHaveLength(2);
        // Stale: written against version 1, which is gone.
        expect(await store().writeRefund({ ...r, state: 'FAILED', finalAt: NOON + 2, updatedAt: NOON + 2 }, 1, undefined, { event: 'outcome', note: 'stale' })).toEqual({ ok: false });
        // Current, but W1's lease runs until NOON + 1000.
        expect(await store().writeRefund({ ...r, state: 'FAILED', finalAt: NOON + 2, updatedAt: NOON + 2 }, 2, lease('W2', NOON + 2), { event: 'outcome', note: 'leased' })).toEqual({ ok: false, leasedTo: 'W1' });
        // No such refund at all.
        expect(await store().writeRefund({ ...r, refundId: 'sbA-r999' }, 1, undefined, { event: 'tick', note: 'nothing' })).toEqual({ ok: false });
        expect(await store().refundEvents('sbA-1')).toEqual(before);
        expect(await store().getRefund(r.refundId)).toMatchObject({ state: 'PENDING', version: 2 });
      });

      it('of writes racing at one version, only the winner’s event is kept', async () => {
        await box('sbA');
        await paid('sbA-1');
        const r = (await store().requestRefund(ask('sbA-1', 100))).refund;
        const results = await Promise.all(
          Array.from({ length: 5 }, (_, i) => store().writeRefund({ ...r, tries: i + 1, updatedAt: NOON + i + 1 }, 1, undefined, { event: 'tick', note: `writer ${i}` })),
        );
        const won = results.findIndex((x) => x.ok);
        expect(results.filter((x) => x.ok)).toEqual([{ ok: true, version: 2 }]);
        expect((await history('sbA-1')).slice(1)).toEqual([
          { refundId: r.refundId, outTradeNo: 'sbA-1', at: NOON + won + 1, event: 'tick', fromState: 'PENDING', toState: 'PENDING', note: `writer ${won}` },
        ]);
      });

      it("a payment's history holds all its refunds, oldest first, and no other payment's", async () => {
        await box('sbA');
        await paid('sbA-1');
        await paid('sbA-2');
        const r1 = (await store().requestRefund(ask('sbA-1', 100))).refund;
        const r2 = (await store().requestRefund(ask('sbA-1', 200, { at: NOON + 1 }))).refund;
        const other = (await store().requestRefund(ask('sbA-2', 300, { at: NOON + 2 }))).refund;
        await store().writeRefund({ ...r2, inFlight: true, callSeq: 1, updatedAt: NOON + 3 }, 1, undefined, { event: 'start', note: 'r2 out' });
        await store().writeRefund({ ...other, inFlight: true, callSeq: 1, updatedAt: NOON + 4 }, 1, undefined, { event: 'start', note: 'other out' });
        await store().writeRefund({ ...r1, inFlight: true, callSeq: 1, updatedAt: NOON + 5 }, 1, undefined, { event: 'start', note: 'r1 out' });
        await store().writeRefund({ ...r2, state: 'FAILED', reason: 'DECLINED', finalAt: NOON + 6, updatedAt: NOON + 6 }, 2, undefined, { event: 'outcome', note: 'r2 declined' });
        const events = await store().refundEvents('sbA-1');
        expect(events.map((e) => [e.refundId, e.event, e.toState])).toEqual([
          [r1.refundId, 'request', 'PENDING'],
          [r2.refundId, 'request', 'PENDING'],
          [r2.refundId, 'start', 'PENDING'],
          [r1.refundId, 'start', 'PENDING'],
          [r2.refundId, 'outcome', 'FAILED'],
        ]);
        expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((x, y) => x - y));
        expect((await store().refundEvents('sbA-2')).map((e) => e.note)).toEqual([expect.stringContaining(other.refundRef), 'other out']);
      });
    });

    it('lists refunds by state, flag, box, merchant, payment, channel, ids and final time, oldest first', async () => {
      await box('sbA', 'M1');
      await box('sbB', 'M2');
      await paid('sbA-1');
      await paid('sbA-2', { channel: 'alipay-a', wallet: 'alipay' });
      await paid('sbB-1', { merchantId: 'M2' });
      const r1 = (await store().requestRefund(ask('sbA-1', 100, { at: NOON }))).refund;
      const r2 = (await store().requestRefund(ask('sbA-2', 100, { at: NOON + 1 }))).refund;
      const r3 = (await store().requestRefund(ask('sbB-1', 100, { at: NOON + 2 }))).refund;
      await store().writeRefund({ ...r1, state: 'REFUNDED', finalAt: NOON + 10 }, 1);
      await store().writeRefund({ ...r2, flagged: true }, 1);
      const ids = async (f: Parameters<CloudStore['listRefunds']>[0]) => (await store().listRefunds(f)).map((r) => r.refundId);
      expect(await ids({})).toEqual([r1.refundId, r2.refundId, r3.refundId]);
      expect(await ids({ state: 'PENDING' })).toEqual([r2.refundId, r3.refundId]);
      expect(await ids({ flagged: true })).toEqual([r2.refundId]);
      expect(await ids({ deviceId: 'sbB' })).toEqual([r3.refundId]);
      expect(await ids({ merchantId: 'M1' })).toEqual([r1.refundId, r2.refundId]);
      expect(await ids({ outTradeNo: 'sbA-2' })).toEqual([r2.refundId]);
      expect(await ids({ channel: 'alipay-a' })).toEqual([r2.refundId]);
      expect(await ids({ refundIds: [r3.refundId, r1.refundId, 'sbA-r999'] })).toEqual([r1.refundId, r3.refundId]);
      expect(await ids({ refundIds: [] })).toEqual([]);
      expect(await ids({ finalFrom: NOON + 10, finalTo: NOON + 11 })).toEqual([r1.refundId]);
      expect(await ids({ finalFrom: NOON + 11 })).toEqual([]);
      expect(await ids({ limit: 1 })).toEqual([r1.refundId]);
    });

    it("the day's figures: per box and wallet, SUCCESS paid in the range (the wallet's time, else created) and REFUNDED final in it", async () => {
      await box('sbA', 'M1', 'S1');
      await box('sbB', 'M1', 'S2');
      await box('sbC', 'M2', 'S1');
      await paid('sbA-1', { amount: 1_000 });
      await paid('sbA-2', { amount: 2_000, wallet: 'alipay', channel: 'alipay-a', charged: 2_000 });
      await paid('sbA-3', { amount: 500, charged: 500, walletPaidAt: null, createdAt: DAY.from });
      // Paid before the day by the wallet's clock although created in it; and one never paid.
      await paid('sbA-4', { amount: 700, charged: 700, createdAt: DAY.from + 10, walletPaidAt: DAY.from - 1 });
      await paid('sbA-5', { amount: 900, state: 'FAILED', reason: 'DECLINED' });
      await paid('sbB-1', { amount: 300, charged: 300 });
      await paid('sbC-1', { amount: 4_000, charged: 4_000, merchantId: 'M2' });
      const done = async (a: RefundAsk, finalAt: number) => {
        const r = (await store().requestRefund(a)).refund;
        await store().writeRefund({ ...r, state: 'REFUNDED', finalAt }, 1);
      };
      await done(ask('sbA-1', 100), NOON);
      await done(ask('sbA-1', 200), DAY.to); // the next day's
      await store().requestRefund(ask('sbA-2', 50)); // still PENDING: not counted
      await done(ask('sbB-1', 300), NOON);
      await done(ask('sbC-1', 1_000), NOON);
      expect(await store().dayFigures({ deviceId: 'sbA' }, DAY.from, DAY.to)).toEqual([
        { storeId: 'S1', deviceId: 'sbA', wallet: 'alipay', paidCount: 1, paidAmount: 2_000, refundCount: 0, refundAmount: 0 },
        { storeId: 'S1', deviceId: 'sbA', wallet: 'wechat', paidCount: 2, paidAmount: 1_500, refundCount: 1, refundAmount: 100 },
      ]);
      expect(await store().dayFigures({ merchantId: 'M1' }, DAY.from, DAY.to)).toEqual([
        { storeId: 'S1', deviceId: 'sbA', wallet: 'alipay', paidCount: 1, paidAmount: 2_000, refundCount: 0, refundAmount: 0 },
        { storeId: 'S1', deviceId: 'sbA', wallet: 'wechat', paidCount: 2, paidAmount: 1_500, refundCount: 1, refundAmount: 100 },
        { storeId: 'S2', deviceId: 'sbB', wallet: 'wechat', paidCount: 1, paidAmount: 300, refundCount: 1, refundAmount: 300 },
      ]);
      expect(await store().dayFigures({ deviceId: 'sbA' }, DAY.to, DAY.to + 86_400_000)).toEqual([
        { storeId: 'S1', deviceId: 'sbA', wallet: 'wechat', paidCount: 0, paidAmount: 0, refundCount: 1, refundAmount: 200 },
      ]);
      expect(await store().dayFigures({ merchantId: 'M9' }, DAY.from, DAY.to)).toEqual([]);
    });
  });
}
