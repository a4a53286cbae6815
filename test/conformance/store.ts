import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Attempt } from '../../cloud/payments/transaction.js';
import type { AttemptWrite, CloudStore, NewDevice, ReconcileFindingRow } from '../../cloud/store/store.js';
import { describeRefundConformance } from './store-refunds.js';
import { describeDashboardConformance } from './store-dashboard.js';
import { describeDoctorConformance } from './store-doctor.js';
import { describeLeaseConformance } from './store-leases.js';

/**
 * The CloudStore contract (cloud/store/store.ts) as the services rely on it, written once and run
 * against every implementation (SQLite inline and on its commit thread, PostgreSQL).
 * Only the interface is used: what a store does inside (hashes, caches, indexes, file modes) belongs
 * to its own tests.
 */
export interface StoreSubject {
  store: CloudStore;
  /** Another handle on the same data, as a second cloud worker would open it; closed by dispose. */
  another(): Promise<CloudStore>;
  /** Closes the store (if the test did not), every other handle, and removes what it left behind. */
  dispose(): Promise<void>;
}

export function attempt(outTradeNo: string, patch: Partial<Attempt> = {}): Attempt {
  const deviceId = outTradeNo.slice(0, outTradeNo.lastIndexOf('-'));
  return {
    outTradeNo, deviceId, saleId: 's1', saleRef: 'R1', amount: 100, currency: 'CNY', wallet: 'wechat', state: 'PAYING', reason: null,
    createdAt: 1, updatedAt: 1, payAt: 1, deadlineAt: 2, nextAt: null, step: 'pay', inFlight: 'pay', callSeq: 1, tries: 0,
    cancelReason: null, gatewayTradeNo: null, ackedState: null, version: 0,
    merchantId: 'M1', channel: 'wechat', charged: null, walletPaidAt: null, buyerPaid: null, discount: null, flag: null, ...patch,
  };
}

export const write = (a: Attempt, expectedVersion: number, claimSale = false, event = 'test'): AttemptWrite => ({ attempt: a, expectedVersion, event, fromState: null, note: '', claimSale });

const MINUTE = 60_000;
const device = (deviceId: string, secretHash = `hash-${deviceId}`): NewDevice => ({ deviceId, secretHash, firmware: '1.0.0' });

export function describeStoreConformance(name: string, makeSubject: () => Promise<StoreSubject>): void {
  describe(`CloudStore conformance: ${name}`, () => {
    let subject: StoreSubject;
    let s: CloudStore;
    let codes = 0;
    /** A fresh pairing code for merchant/store, valid from `at` for a minute. */
    const code = async (merchantId = 'M1', storeId = 'S1', at = 1_000) => {
      const c = `CODE${String(++codes).padStart(6, '0')}`;
      if (!(await s.getMerchant(merchantId))) await s.addMerchant(merchantId, {}, at);
      await s.createPairingCode({ code: c, merchantId, storeId, createdAt: at, expiresAt: at + MINUTE });
      return c;
    };
    const pair = async (deviceId: string, hardwareId: string, merchantId = 'M1', at = 1_000, proven?: string) =>
      s.redeemPairingCode(await code(merchantId, 'S1', at), hardwareId, at, device(deviceId), proven);

    beforeEach(async () => {
      subject = await makeSubject();
      s = subject.store;
    });
    afterEach(async () => {
      await subject.dispose();
    });

    describeRefundConformance(() => s);
    describeDashboardConformance(() => s);
    describeDoctorConformance(() => s);
    describeLeaseConformance(() => subject);

    describe('merchants', () => {
      it('adds a merchant once (MERCHANT_EXISTS after), reads and lists it', async () => {
        const m = await s.addMerchant('M1', { name: 'Tea House', wechatSubMchId: '1900000109' }, 5);
        expect(m).toEqual({ merchantId: 'M1', name: 'Tea House', wechatSubMchId: '1900000109', alipayAppAuthToken: null, createdAt: 5, updatedAt: 5 });
        await expect(s.addMerchant('M1', { name: 'Other' }, 6)).rejects.toMatchObject({ code: 'MERCHANT_EXISTS' });
        expect(await s.getMerchant('M1')).toEqual(m);
        expect(await s.getMerchant('M2')).toBeUndefined();
        await s.addMerchant('M0', {}, 7);
        expect((await s.listMerchants()).map((x) => x.merchantId)).toEqual(['M0', 'M1']);
      });

      it('updates keep what the patch leaves out, clear what it sets null, and refuse an unknown merchant (MERCHANT_UNKNOWN)', async () => {
        await s.addMerchant('M1', { name: 'Tea House', wechatSubMchId: '1900000109' }, 5);
        const m = await s.updateMerchant('M1', { alipayAppAuthToken: '202512BB1234', wechatSubMchId: null }, 9);
        expect(m).toEqual({ merchantId: 'M1', name: 'Tea House', wechatSubMchId: null, alipayAppAuthToken: '202512BB1234', createdAt: 5, updatedAt: 9 });
        await expect(s.updateMerchant('M9', { name: 'x' }, 9)).rejects.toMatchObject({ code: 'MERCHANT_UNKNOWN' });
        expect(await s.getMerchant('M9')).toBeUndefined();
      });

      it('a pairing code for a merchant that was never added is refused (MERCHANT_UNKNOWN) and nothing is kept', async () => {
        await expect(s.createPairingCode({ code: 'NOPE000001', merchantId: 'M-NONE', storeId: 'S1', createdAt: 1, expiresAt: MINUTE })).rejects.toMatchObject({ code: 'MERCHANT_UNKNOWN' });
        expect(await s.checkPairingCode('NOPE000001', 2)).toBe('unknown');
        expect(await s.listMerchants()).toEqual([]);
      });

      it("an attempt keeps its merchant, channel, receipt and flag; a device's auth names its merchant", async () => {
        const receipt = { merchantId: 'M7', channel: 'wechat-2', charged: 1221, walletPaidAt: 1_764_000_000_000, buyerPaid: 1200, discount: 21, flag: 'AMOUNT_MISMATCH' as const };
        await s.writeAttempts([write(attempt('sbA-1', receipt), 0)]);
        expect(await s.getAttempt('sbA-1')).toMatchObject(receipt);
        expect((await s.listAttempts({ flag: 'AMOUNT_MISMATCH' })).map((a) => a.outTradeNo)).toEqual(['sbA-1']);
        await pair('sbD', 'hw-d', 'M3');
        expect((await s.getDeviceAuth('sbD'))?.merchantId).toBe('M3');
      });
    });

    describe('channels', () => {
      it("keeps the operator's pins and disables; a pin replaces another pin of one of its wallets; null clears", async () => {
        expect(await s.channelOverrides()).toEqual([]);
        await s.setChannelOverride('wx-a', { mode: 'pinned', wallets: ['wechat'] }, 10);
        await s.setChannelOverride('multi', { mode: 'disabled', wallets: ['wechat', 'unionpay'] }, 11);
        await s.setChannelOverride('wx-b', { mode: 'pinned', wallets: ['wechat'] }, 12);
        expect(await s.channelOverrides()).toEqual([
          { channel: 'multi', mode: 'disabled', wallets: ['wechat', 'unionpay'], at: 11 },
          { channel: 'wx-b', mode: 'pinned', wallets: ['wechat'], at: 12 },
        ]);
        await s.setChannelOverride('wx-b', null, 13);
        await s.setChannelOverride('multi', { mode: 'pinned', wallets: ['wechat', 'unionpay'] }, 14);
        expect(await s.channelOverrides()).toEqual([{ channel: 'multi', mode: 'pinned', wallets: ['wechat', 'unionpay'], at: 14 }]);
      });

      it('keeps the last breaker state written per channel', async () => {
        const summary = (state: 'closed' | 'open', calls: number) => ({ state, since: 5, calls, failures: calls / 2, failureRatio: 0.5, p50LatencyMs: 12 });
        await s.saveChannelStates([{ channel: 'wx-a', summary: summary('closed', 4), at: 20 }]);
        await s.saveChannelStates([{ channel: 'wx-a', summary: summary('open', 10), at: 30 }, { channel: 'wx-b', summary: summary('closed', 2), at: 30 }]);
        expect(await s.channelStates()).toEqual([
          { channel: 'wx-a', summary: summary('open', 10), at: 30 },
          { channel: 'wx-b', summary: summary('closed', 2), at: 30 },
        ]);
      });
    });

    describe('attempts: optimistic versioning', () => {
      it('expectedVersion 0 means "must not exist": the first write creates version 1, a second create fails and changes nothing', async () => {
        expect(await s.writeAttempts([write(attempt('sbA-1'), 0)])).toEqual([{ ok: true, version: 1 }]);
        const before = await s.getAttempt('sbA-1');
        expect(before).toMatchObject({ outTradeNo: 'sbA-1', state: 'PAYING', version: 1 });
        expect(await s.writeAttempts([write(attempt('sbA-1', { state: 'FAILED', amount: 999 }), 0)])).toEqual([{ ok: false, why: 'version' }]);
        expect(await s.getAttempt('sbA-1')).toEqual(before);
        expect(await s.attemptEvents('sbA-1')).toHaveLength(1);
      });

      it('an update of an attempt that does not exist fails with version', async () => {
        expect(await s.writeAttempts([write(attempt('sbA-9'), 1)])).toEqual([{ ok: false, why: 'version' }]);
        expect(await s.getAttempt('sbA-9')).toBeUndefined();
        expect(await s.attemptEvents('sbA-9')).toEqual([]);
      });

      it('writes are versioned: a stale writer loses with why "version" and changes nothing', async () => {
        await s.writeAttempts([write(attempt('sbA-1'), 0)]);
        expect(await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS', gatewayTradeNo: 'g1' }), 1)])).toEqual([{ ok: true, version: 2 }]);
        const winner = await s.getAttempt('sbA-1');
        expect(await s.writeAttempts([write(attempt('sbA-1', { state: 'FAILED' }), 1)])).toEqual([{ ok: false, why: 'version' }]);
        expect(await s.getAttempt('sbA-1')).toEqual(winner);
        expect((await s.attemptEvents('sbA-1')).map((e) => e.toState)).toEqual(['PAYING', 'SUCCESS']);
      });

      it('getAttempt answers what was written, with the version the write returned; an unknown attempt is undefined', async () => {
        const a = attempt('sbA-1', { saleRef: null, wallet: 'alipay', nextAt: 42, step: 'poll', inFlight: null, callSeq: 3, tries: 2, gatewayTradeNo: 'g7' });
        const [r] = await s.writeAttempts([write(a, 0)]);
        expect(await s.getAttempt('sbA-1')).toEqual({ ...a, version: r!.ok ? r!.version : -1 });
        expect(await s.getAttempt('sbA-2')).toBeUndefined();
      });
    });

    describe('attempts: group writes', () => {
      it('each write of a group succeeds or fails on its own, in order', async () => {
        await s.writeAttempts([write(attempt('sbA-2'), 0)]);
        const res = await s.writeAttempts([write(attempt('sbA-1'), 0), write(attempt('sbA-2', { state: 'FAILED' }), 5), write(attempt('sbA-3', { saleId: 's3' }), 0)]);
        expect(res).toEqual([{ ok: true, version: 1 }, { ok: false, why: 'version' }, { ok: true, version: 1 }]);
        expect((await s.getAttempt('sbA-1'))?.state).toBe('PAYING');
        expect((await s.getAttempt('sbA-2'))?.state).toBe('PAYING');
        expect((await s.getAttempt('sbA-3'))?.state).toBe('PAYING');
      });

      it('two writes of one attempt in one group: the first wins, the second is stale', async () => {
        await s.writeAttempts([write(attempt('sbA-1'), 0)]);
        const res = await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS' }), 1), write(attempt('sbA-1', { state: 'FAILED' }), 1)]);
        expect(res).toEqual([{ ok: true, version: 2 }, { ok: false, why: 'version' }]);
        expect((await s.getAttempt('sbA-1'))?.state).toBe('SUCCESS');
      });

      it('an empty group is answered with no results', async () => {
        expect(await s.writeAttempts([])).toEqual([]);
      });
    });

    describe('attempts: the sale claim', () => {
      it('one sale (deviceId, saleId) can be claimed by one attempt only; the loser gets sale_taken with the winner and leaves no trace', async () => {
        await s.writeAttempts([write(attempt('sbA-1'), 0), write(attempt('sbA-2'), 0)]);
        const res = await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS' }), 1, true), write(attempt('sbA-2', { state: 'SUCCESS' }), 1, true)]);
        expect(res).toEqual([{ ok: true, version: 2 }, { ok: false, why: 'sale_taken', winner: 'sbA-1' }]);
        expect(await s.getAttempt('sbA-2')).toMatchObject({ state: 'PAYING', version: 1 });
        expect((await s.attemptEvents('sbA-2')).map((e) => e.toState)).toEqual(['PAYING']);
        // The winner may claim its own sale again (a retried write).
        expect(await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS' }), 2, true)])).toEqual([{ ok: true, version: 3 }]);
        // Later writes of the loser still fail the claim, in another group too.
        expect(await s.writeAttempts([write(attempt('sbA-2', { state: 'SUCCESS' }), 1, true)])).toEqual([{ ok: false, why: 'sale_taken', winner: 'sbA-1' }]);
      });

      it('the same saleId on another device, or another sale on the same device, is a different sale', async () => {
        await s.writeAttempts([write(attempt('sbA-1'), 0), write(attempt('sbB-1'), 0), write(attempt('sbA-2', { saleId: 's2' }), 0)]);
        const res = await s.writeAttempts([
          write(attempt('sbA-1', { state: 'SUCCESS' }), 1, true),
          write(attempt('sbB-1', { state: 'SUCCESS' }), 1, true),
          write(attempt('sbA-2', { saleId: 's2', state: 'SUCCESS' }), 1, true),
        ]);
        expect(res).toEqual([{ ok: true, version: 2 }, { ok: true, version: 2 }, { ok: true, version: 2 }]);
      });

      it('a write refused for its version claims nothing: another attempt can still claim the sale', async () => {
        await s.writeAttempts([write(attempt('sbA-1'), 0), write(attempt('sbA-2'), 0)]);
        expect(await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS' }), 7, true)])).toEqual([{ ok: false, why: 'version' }]);
        expect(await s.writeAttempts([write(attempt('sbA-2', { state: 'SUCCESS' }), 1, true)])).toEqual([{ ok: true, version: 2 }]);
      });

      it('a write without claimSale neither claims nor is refused by a claim', async () => {
        await s.writeAttempts([write(attempt('sbA-1'), 0), write(attempt('sbA-2'), 0)]);
        await s.writeAttempts([write(attempt('sbA-1', { state: 'SUCCESS' }), 1, true)]);
        expect(await s.writeAttempts([write(attempt('sbA-2', { state: 'REFUND_PENDING', reason: 'DUPLICATE_PAYMENT' }), 1)])).toEqual([{ ok: true, version: 2 }]);
      });
    });

    describe('attempts: lists', () => {
      it('lists as active: not final, a late check due, and a late check in flight (chaos: cloud killed mid late check)', async () => {
        await s.writeAttempts([
          write(attempt('sbA-1'), 0),
          write(attempt('sbA-2', { saleId: 's2', state: 'REVERSED', step: 'late_check', inFlight: null, nextAt: 5 }), 0),
          write(attempt('sbA-3', { saleId: 's3', state: 'REVERSED', step: 'late_check', inFlight: 'query', nextAt: null }), 0),
          write(attempt('sbA-4', { saleId: 's4', state: 'REVERSED', step: null, inFlight: null, nextAt: null }), 0),
          write(attempt('sbA-5', { saleId: 's5', state: 'SUCCESS', step: null, inFlight: null, nextAt: null }), 0),
        ]);
        expect((await s.listActiveAttempts()).map((a) => a.outTradeNo).sort()).toEqual(['sbA-1', 'sbA-2', 'sbA-3']);
      });

      it("lists a device's final results it has not acknowledged, oldest first: not another device's, not acked, not in progress", async () => {
        const done = { step: null, inFlight: null, nextAt: null } as const;
        await s.writeAttempts([
          write(attempt('sbA-1', { ...done, createdAt: 20, state: 'SUCCESS' }), 0),
          write(attempt('sbA-2', { ...done, createdAt: 10, saleId: 's2', state: 'FAILED' }), 0),
          write(attempt('sbA-3', { ...done, createdAt: 5, saleId: 's3', state: 'SUCCESS', ackedState: 'SUCCESS' }), 0),
          write(attempt('sbA-4', { createdAt: 1, saleId: 's4' }), 0),
          write(attempt('sbAB-1', { ...done, state: 'FAILED' }), 0),
        ]);
        expect((await s.listUnackedFinal('sbA')).map((a) => a.outTradeNo)).toEqual(['sbA-2', 'sbA-1']);
        // An ack of an earlier state does not acknowledge a later one.
        await s.writeAttempts([write(attempt('sbA-3', { ...done, createdAt: 5, saleId: 's3', state: 'REFUNDED', ackedState: 'SUCCESS' }), 1)]);
        expect((await s.listUnackedFinal('sbA')).map((a) => a.outTradeNo)).toEqual(['sbA-3', 'sbA-2', 'sbA-1']);
        expect(await s.listUnackedFinal('sbZ')).toEqual([]);
      });

      it('listAttempts filters by state, outTradeNo and device (a device id that prefixes another is not confused), oldest first, with a limit', async () => {
        await s.writeAttempts([
          write(attempt('sbA-1', { createdAt: 3, state: 'SUCCESS' }), 0),
          write(attempt('sbA-2', { createdAt: 1, saleId: 's2' }), 0),
          write(attempt('sbA-3', { createdAt: 2, saleId: 's3', state: 'SUCCESS' }), 0),
          write(attempt('sbAB-1', { createdAt: 0, state: 'SUCCESS' }), 0),
        ]);
        const ids = async (f: Parameters<CloudStore['listAttempts']>[0]) => (await s.listAttempts(f)).map((a) => a.outTradeNo);
        expect(await ids({})).toEqual(['sbAB-1', 'sbA-2', 'sbA-3', 'sbA-1']);
        expect(await ids({ deviceId: 'sbA' })).toEqual(['sbA-2', 'sbA-3', 'sbA-1']);
        expect(await ids({ deviceId: 'sbAB' })).toEqual(['sbAB-1']);
        expect(await ids({ state: 'SUCCESS' })).toEqual(['sbAB-1', 'sbA-3', 'sbA-1']);
        expect(await ids({ state: 'SUCCESS', deviceId: 'sbA' })).toEqual(['sbA-3', 'sbA-1']);
        expect(await ids({ outTradeNo: 'sbA-3' })).toEqual(['sbA-3']);
        expect(await ids({ outTradeNo: 'sbA-9' })).toEqual([]);
        expect(await ids({ limit: 2 })).toEqual(['sbAB-1', 'sbA-2']);
      });

      it('countAttempts: how many attempts are in a state and when the oldest was created; a state with none is 0 and null', async () => {
        await s.writeAttempts([
          write(attempt('sbA-1', { createdAt: 30, state: 'REVERSE_PENDING' }), 0),
          write(attempt('sbA-2', { createdAt: 10, saleId: 's2', state: 'REVERSE_PENDING' }), 0),
          write(attempt('sbA-3', { createdAt: 5, saleId: 's3', state: 'REFUNDED' }), 0),
        ]);
        expect(await s.countAttempts('REVERSE_PENDING')).toEqual({ count: 2, oldestCreatedAt: 10 });
        expect(await s.countAttempts('REFUND_PENDING')).toEqual({ count: 0, oldestCreatedAt: null });
      });
    });

    describe('attempts: the audit trail', () => {
      it('each successful write appends one event, in order; refused writes append none', async () => {
        await s.writeAttempts([write(attempt('sbA-1', { updatedAt: 10 }), 0, false, 'pay')]);
        await s.writeAttempts([write(attempt('sbA-1', { state: 'FAILED', updatedAt: 11 }), 9, false, 'stale')]);
        await s.writeAttempts([{ ...write(attempt('sbA-1', { state: 'REFUND_PENDING', reason: 'DUPLICATE_PAYMENT', updatedAt: 12 }), 1, false, 'outcome'), fromState: 'PAYING', note: 'dup' }]);
        await s.writeAttempts([{ ...write(attempt('sbA-1', { state: 'REFUNDED', reason: 'DUPLICATE_PAYMENT', updatedAt: 13 }), 2, false, 'refund'), fromState: 'REFUND_PENDING' }]);
        const events = await s.attemptEvents('sbA-1');
        expect(events.map(({ outTradeNo, at, event, fromState, toState, note }) => ({ outTradeNo, at, event, fromState, toState, note }))).toEqual([
          { outTradeNo: 'sbA-1', at: 10, event: 'pay', fromState: null, toState: 'PAYING', note: '' },
          { outTradeNo: 'sbA-1', at: 12, event: 'outcome', fromState: 'PAYING', toState: 'REFUND_PENDING', note: 'dup' },
          { outTradeNo: 'sbA-1', at: 13, event: 'refund', fromState: 'REFUND_PENDING', toState: 'REFUNDED', note: '' },
        ]);
        const seqs = events.map((e) => e.seq);
        expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
        expect(new Set(seqs).size).toBe(seqs.length);
      });

      it("an attempt's trail holds its own events only", async () => {
        await s.writeAttempts([write(attempt('sbA-1'), 0), write(attempt('sbA-2', { saleId: 's2' }), 0)]);
        await s.writeAttempts([write(attempt('sbA-2', { saleId: 's2', state: 'FAILED' }), 1)]);
        expect((await s.attemptEvents('sbA-1')).map((e) => e.toState)).toEqual(['PAYING']);
        expect((await s.attemptEvents('sbA-2')).map((e) => e.toState)).toEqual(['PAYING', 'FAILED']);
        expect(await s.attemptEvents('sbA-3')).toEqual([]);
      });
    });

    describe('the morning reconciliation', () => {
      const finding = (patch: Partial<ReconcileFindingRow> = {}): ReconcileFindingRow => ({
        billDate: '2026-01-01', channel: 'wechat', outTradeNo: 'sbA-1', kind: 'charged_not_success', status: 'open',
        merchantId: 'M1', amount: 1234, detail: 'FAILED here, 12.34 kept there', action: null, foundAt: 10, updatedAt: 10, ...patch,
      });

      it("lists a channel's attempts created in [from, to), oldest first: not another channel's, not before from, not at or after to", async () => {
        await s.writeAttempts([
          write(attempt('sbA-1', { createdAt: 100 }), 0),
          write(attempt('sbA-2', { saleId: 's2', createdAt: 99 }), 0),
          write(attempt('sbA-3', { saleId: 's3', createdAt: 200 }), 0),
          write(attempt('sbA-4', { saleId: 's4', createdAt: 150, channel: 'alipay', wallet: 'alipay' }), 0),
          write(attempt('sbA-5', { saleId: 's5', createdAt: 199 }), 0),
          write(attempt('sbA-0', { saleId: 's0', createdAt: 100 }), 0),
        ]);
        const ids = async (channel: string, from: number, to: number) => (await s.listAttemptsCreated({ channel, from, to })).map((a) => a.outTradeNo);
        expect(await ids('wechat', 100, 200)).toEqual(['sbA-0', 'sbA-1', 'sbA-5']);
        expect(await ids('alipay', 0, 1_000)).toEqual(['sbA-4']);
        expect(await ids('wechat', 200, 201)).toEqual(['sbA-3']);
        expect(await ids('unionpay', 0, 1_000)).toEqual([]);
        expect((await s.listAttemptsCreated({ channel: 'wechat', from: 99, to: 100 }))[0]).toEqual(await s.getAttempt('sbA-2'));
      });

      it('keeps findings by (bill day, channel, outTradeNo, kind): listed by outTradeNo then kind, other days and channels apart', async () => {
        const rows = [
          finding({ outTradeNo: 'sbA-2', kind: 'duplicate' }),
          finding({ outTradeNo: 'sbA-1', kind: 'duplicate', merchantId: null, action: 'queried' }),
          finding(),
          finding({ channel: 'alipay' }),
          finding({ billDate: '2026-01-02' }),
        ];
        await s.saveReconcileFindings(rows);
        const keys = (list: ReconcileFindingRow[]) => list.map((r) => `${r.outTradeNo}/${r.kind}`);
        const day = await s.listReconcileFindings('2026-01-01', 'wechat');
        expect(keys(day)).toEqual(['sbA-1/charged_not_success', 'sbA-1/duplicate', 'sbA-2/duplicate']);
        expect(day[0]).toEqual(rows[2]);
        expect(day[1]).toEqual(rows[1]);
        expect(await s.listReconcileFindings('2026-01-01', 'alipay')).toEqual([rows[3]]);
        expect(await s.listReconcileFindings('2026-01-02', 'wechat')).toEqual([rows[4]]);
        expect(await s.listReconcileFindings('2026-01-03', 'wechat')).toEqual([]);
      });

      it('saving a finding again replaces what it says and keeps when it was first found; an empty save changes nothing', async () => {
        await s.saveReconcileFindings([finding()]);
        await s.saveReconcileFindings([finding({ status: 'settled', action: 'refunded 12.34 as sbA-1-RC', amount: 1200, detail: 'again', foundAt: 99, updatedAt: 20 })]);
        await s.saveReconcileFindings([]);
        expect(await s.listReconcileFindings('2026-01-01', 'wechat')).toEqual([
          finding({ status: 'settled', action: 'refunded 12.34 as sbA-1-RC', amount: 1200, detail: 'again', foundAt: 10, updatedAt: 20 }),
        ]);
      });

      it('a save is all or nothing: a finding the store refuses (an unknown status) keeps the others of its save out', async () => {
        const bad = finding({ outTradeNo: 'sbA-9', status: 'lost' as ReconcileFindingRow['status'] });
        await expect(s.saveReconcileFindings([finding(), bad])).rejects.toThrow();
        expect(await s.listReconcileFindings('2026-01-01', 'wechat')).toEqual([]);
      });
    });

    describe('pairing codes', () => {
      it('a code is single-use: checked fine, redeemed once into an active device of its merchant and store, then "used"', async () => {
        const c = await code('M1', 'S7', 1_000);
        expect(await s.checkPairingCode(c, 1_001)).toBeUndefined();
        expect(await s.redeemPairingCode(c, 'hw1', 1_002, device('sbA'))).toEqual({ ok: true, merchantId: 'M1', storeId: 'S7', revoked: [] });
        expect(await s.checkPairingCode(c, 1_003)).toBe('used');
        expect(await s.redeemPairingCode(c, 'hw2', 1_003, device('sbB'))).toEqual({ ok: false, why: 'used' });
        expect(await s.getDevice('sbB')).toBeUndefined();
        expect(await s.getDevice('sbA')).toMatchObject({
          deviceId: 'sbA', hardwareId: 'hw1', merchantId: 'M1', storeId: 'S7', status: 'active', connectivity: 'never',
          lastSeenAt: null, firmware: '1.0.0', pairedAt: 1_002, revokedAt: null,
        });
      });

      it('an unknown code is "unknown"; a code expires at its expiry time', async () => {
        expect(await s.checkPairingCode('NOSUCHCODE', 1_000)).toBe('unknown');
        expect(await s.redeemPairingCode('NOSUCHCODE', 'hw1', 1_000, device('sbA'))).toEqual({ ok: false, why: 'unknown' });
        const c = await code('M1', 'S1', 1_000);
        expect(await s.checkPairingCode(c, 1_000 + MINUTE - 1)).toBeUndefined();
        expect(await s.checkPairingCode(c, 1_000 + MINUTE)).toBe('expired');
        expect(await s.redeemPairingCode(c, 'hw1', 1_000 + MINUTE, device('sbA'))).toEqual({ ok: false, why: 'expired' });
        expect(await s.getDevice('sbA')).toBeUndefined();
      });

      it('re-pairing a hardware id within its merchant revokes the old device', async () => {
        await pair('sbA', 'hw1', 'M1', 1_000);
        expect(await pair('sbB', 'hw1', 'M1', 2_000)).toEqual({ ok: true, merchantId: 'M1', storeId: 'S1', revoked: ['sbA'] });
        expect(await s.getDevice('sbA')).toMatchObject({ status: 'revoked', revokedAt: 2_000 });
        expect(await s.getDevice('sbB')).toMatchObject({ status: 'active' });
      });

      it("another merchant's active hardware id is refused with hardware_in_use, and nothing changes (the code stays unused)", async () => {
        await pair('sbA', 'hw1', 'M1', 1_000);
        const c = await code('M2', 'S1', 2_000);
        expect(await s.redeemPairingCode(c, 'hw1', 2_000, device('sbB'))).toEqual({ ok: false, why: 'hardware_in_use', deviceId: 'sbA', merchantId: 'M1' });
        expect(await s.checkPairingCode(c, 2_001)).toBeUndefined();
        expect(await s.getDevice('sbB')).toBeUndefined();
        expect(await s.getDevice('sbA')).toMatchObject({ status: 'active', revokedAt: null });
        // A wrong proof is no proof.
        expect(await s.redeemPairingCode(c, 'hw1', 2_002, device('sbB'), 'sbZ')).toMatchObject({ ok: false, why: 'hardware_in_use' });
      });

      it('proof of the old device (its id proven by the caller) moves the hardware to the other merchant', async () => {
        await pair('sbA', 'hw1', 'M1', 1_000);
        expect(await pair('sbB', 'hw1', 'M2', 2_000, 'sbA')).toEqual({ ok: true, merchantId: 'M2', storeId: 'S1', revoked: ['sbA'] });
        expect(await s.getDevice('sbA')).toMatchObject({ status: 'revoked' });
      });

      it('once the old device is revoked, the hardware id pairs under another merchant', async () => {
        await pair('sbA', 'hw1', 'M1', 1_000);
        expect(await s.revokeDevice('sbA', 1_500)).toBe(true);
        expect(await pair('sbB', 'hw1', 'M2', 2_000)).toEqual({ ok: true, merchantId: 'M2', storeId: 'S1', revoked: [] });
      });
    });

    describe('devices', () => {
      it('getDeviceAuth answers the secret hash, status, hardware id and merchant; setSecretHash replaces the hash', async () => {
        await pair('sbA', 'hw1');
        expect(await s.getDeviceAuth('sbA')).toEqual({ secretHash: 'hash-sbA', status: 'active', hardwareId: 'hw1', merchantId: 'M1' });
        await s.setSecretHash('sbA', 'hmac$new');
        expect(await s.getDeviceAuth('sbA')).toEqual({ secretHash: 'hmac$new', status: 'active', hardwareId: 'hw1', merchantId: 'M1' });
        expect(await s.getDeviceAuth('sbZ')).toBeUndefined();
      });

      it('revocation: once, with its time; revokedSince lists the devices revoked after a moment', async () => {
        await pair('sbA', 'hw1');
        await pair('sbB', 'hw2');
        await pair('sbC', 'hw3');
        expect(await s.revokeDevice('sbA', 5_000)).toBe(true);
        expect(await s.revokeDevice('sbA', 6_000)).toBe(false);
        expect(await s.revokeDevice('sbZ', 6_000)).toBe(false);
        expect(await s.revokeDevice('sbB', 7_000)).toBe(true);
        expect(await s.getDevice('sbA')).toMatchObject({ status: 'revoked', revokedAt: 5_000 });
        expect((await s.getDeviceAuth('sbA'))?.status).toBe('revoked');
        const since = async (t: number) => (await s.revokedSince(t)).sort((a, b) => a.revokedAt - b.revokedAt);
        expect(await since(0)).toEqual([{ deviceId: 'sbA', revokedAt: 5_000 }, { deviceId: 'sbB', revokedAt: 7_000 }]);
        expect(await since(5_000)).toEqual([{ deviceId: 'sbB', revokedAt: 7_000 }]);
        expect(await since(7_000)).toEqual([]);
      });

      it('lists every device', async () => {
        await pair('sbA', 'hw1', 'M1');
        await pair('sbB', 'hw2', 'M2');
        expect((await s.listDevices()).map((d) => d.deviceId).sort()).toEqual(['sbA', 'sbB']);
      });
    });

    describe('device commands', () => {
      const queue = (id: string, deviceId: string, command: 'reboot' | 'unpair' | 'resync', at = 2_000) => s.addDeviceCommand({ id, deviceId, command }, at);

      it('queues a command for an active box, open until sent; a reboot is done once sent (outcome sent), and is never sent twice', async () => {
        await pair('sbA', 'hw1');
        expect(await queue('cmd-1', 'sbA', 'reboot')).toEqual({ created: true, row: { id: 'cmd-1', deviceId: 'sbA', command: 'reboot', createdAt: 2_000, sentAt: null, doneAt: null, outcome: null } });
        expect(await s.openDeviceCommands()).toMatchObject([{ id: 'cmd-1', sentAt: null }]);
        expect(await s.markDeviceCommandSent('cmd-1', 3_000)).toBe(true);
        expect(await s.openDeviceCommands()).toEqual([]);
        expect(await s.markDeviceCommandSent('cmd-1', 4_000)).toBe(false);
        expect(await s.listDeviceCommands('sbA')).toEqual([{ id: 'cmd-1', deviceId: 'sbA', command: 'reboot', createdAt: 2_000, sentAt: 3_000, doneAt: 3_000, outcome: 'sent' }]);
      });

      it('refuses a box that does not exist (NOT_PAIRED) or is revoked (DEVICE_REVOKED), queueing nothing', async () => {
        await pair('sbA', 'hw1');
        await s.revokeDevice('sbA', 1_500);
        await expect(queue('cmd-1', 'sbZ', 'unpair')).rejects.toMatchObject({ code: 'NOT_PAIRED' });
        await expect(queue('cmd-2', 'sbA', 'unpair')).rejects.toMatchObject({ code: 'DEVICE_REVOKED' });
        expect(await s.listDeviceCommands()).toEqual([]);
      });

      it('a command of the same name still open for the box is answered instead of a second; another name or box is queued beside it', async () => {
        await pair('sbA', 'hw1');
        await pair('sbB', 'hw2');
        await queue('cmd-1', 'sbA', 'reboot');
        expect(await queue('cmd-2', 'sbA', 'reboot', 2_500)).toMatchObject({ created: false, row: { id: 'cmd-1', createdAt: 2_000 } });
        expect(await queue('cmd-3', 'sbA', 'unpair', 2_600)).toMatchObject({ created: true, row: { id: 'cmd-3' } });
        expect(await queue('cmd-4', 'sbB', 'reboot', 2_700)).toMatchObject({ created: true });
        await s.markDeviceCommandSent('cmd-1', 3_000);
        expect(await queue('cmd-5', 'sbA', 'reboot', 4_000)).toMatchObject({ created: true, row: { id: 'cmd-5' } });
        expect((await s.openDeviceCommands()).map((c) => c.id)).toEqual(['cmd-3', 'cmd-4', 'cmd-5']);
      });

      it('an unpair stays open once sent (sending again keeps the first time); finished `revoked`, it revokes its box in the same step, once', async () => {
        await pair('sbA', 'hw1');
        await pair('sbB', 'hw2');
        await queue('cmd-1', 'sbA', 'unpair');
        expect(await s.markDeviceCommandSent('cmd-1', 3_000)).toBe(true);
        expect(await s.markDeviceCommandSent('cmd-1', 3_500)).toBe(true);
        expect(await s.openDeviceCommands()).toMatchObject([{ id: 'cmd-1', sentAt: 3_000, doneAt: null, outcome: null }]);
        expect(await s.getDevice('sbA')).toMatchObject({ status: 'active' });
        expect(await s.finishDeviceCommand('cmd-1', 9_000, 'revoked')).toBe(true);
        expect(await s.getDevice('sbA')).toMatchObject({ status: 'revoked', revokedAt: 9_000 });
        expect(await s.getDevice('sbB')).toMatchObject({ status: 'active' });
        expect(await s.finishDeviceCommand('cmd-1', 9_500, 'dropped')).toBe(false);
        expect(await s.markDeviceCommandSent('cmd-1', 9_600)).toBe(false);
        expect(await s.listDeviceCommands('sbA')).toEqual([{ id: 'cmd-1', deviceId: 'sbA', command: 'unpair', createdAt: 2_000, sentAt: 3_000, doneAt: 9_000, outcome: 'revoked' }]);
        expect(await s.revokedSince(0)).toEqual([{ deviceId: 'sbA', revokedAt: 9_000 }]);
      });

      it('finished `dropped`, a command ends and its box is left as it is', async () => {
        await pair('sbA', 'hw1');
        await queue('cmd-1', 'sbA', 'reboot');
        expect(await s.finishDeviceCommand('cmd-1', 5_000, 'dropped')).toBe(true);
        expect(await s.getDevice('sbA')).toMatchObject({ status: 'active' });
        expect(await s.listDeviceCommands()).toMatchObject([{ id: 'cmd-1', sentAt: null, doneAt: 5_000, outcome: 'dropped' }]);
        expect(await s.openDeviceCommands()).toEqual([]);
      });

      it("lists one box's commands or everyone's, oldest first", async () => {
        await pair('sbA', 'hw1');
        await pair('sbB', 'hw2');
        await queue('cmd-b', 'sbB', 'reboot', 2_000);
        await queue('cmd-a', 'sbA', 'unpair', 3_000);
        await queue('cmd-c', 'sbA', 'reboot', 4_000);
        expect((await s.listDeviceCommands()).map((c) => c.id)).toEqual(['cmd-b', 'cmd-a', 'cmd-c']);
        expect((await s.listDeviceCommands('sbA')).map((c) => c.id)).toEqual(['cmd-a', 'cmd-c']);
        expect(await s.listDeviceCommands('sbZ')).toEqual([]);
      });
    });

    describe('fleet', () => {
      it('updates the fleet and marks silent online boxes stale', async () => {
        await pair('sbA', 'hw1', 'M1', 1);
        await s.updateFleet([{ deviceId: 'sbA', at: 100, connectivity: 'online', outboxDepth: 3 }]);
        expect(await s.getDevice('sbA')).toMatchObject({ connectivity: 'online', lastSeenAt: 100, outboxDepth: 3 });
        expect(await s.markStale(50)).toEqual([]);
        expect(await s.markStale(101)).toEqual(['sbA']);
        expect((await s.getDevice('sbA'))?.connectivity).toBe('stale');
      });

      it('an update keeps the fields it does not carry, and last seen never moves back', async () => {
        await pair('sbA', 'hw1');
        await s.updateFleet([{ deviceId: 'sbA', at: 100, connectivity: 'online', firmware: '2.0.0', outboxDepth: 3, pendingAttempts: 1 }]);
        await s.updateFleet([{ deviceId: 'sbA', at: 90, outboxDepth: 0 }]);
        expect(await s.getDevice('sbA')).toMatchObject({ connectivity: 'online', lastSeenAt: 100, firmware: '2.0.0', outboxDepth: 0, pendingAttempts: 1 });
        await s.updateFleet([]);
        await s.updateFleet([{ deviceId: 'sbZ', at: 1, connectivity: 'online' }]);
        expect(await s.getDevice('sbZ')).toBeUndefined();
      });

      it('only online boxes go stale: offline and never-seen ones stay as they are', async () => {
        await pair('sbA', 'hw1');
        await pair('sbB', 'hw2');
        await pair('sbC', 'hw3');
        await s.updateFleet([
          { deviceId: 'sbA', at: 100, connectivity: 'online' },
          { deviceId: 'sbB', at: 100, connectivity: 'offline' },
        ]);
        expect(await s.markStale(1_000)).toEqual(['sbA']);
        expect(await s.markStale(1_000)).toEqual([]);
        expect((await s.getDevice('sbB'))?.connectivity).toBe('offline');
        expect((await s.getDevice('sbC'))?.connectivity).toBe('never');
      });

      it('the fleet summary counts active boxes by connectivity and lists the away ones (offline, stale), most recently seen first and at most as many as asked; a revoked box is in neither', async () => {
        for (const [i, id] of ['sbA', 'sbB', 'sbC', 'sbD', 'sbE'].entries()) await pair(id, `hw${i}`);
        await s.updateFleet([
          { deviceId: 'sbA', at: 100, connectivity: 'online' },
          { deviceId: 'sbB', at: 400, connectivity: 'online' },
          { deviceId: 'sbC', at: 200, connectivity: 'offline' },
          { deviceId: 'sbE', at: 300, connectivity: 'offline' },
        ]);
        await s.markStale(150);
        await s.revokeDevice('sbE', 500);
        const counts = { online: 1, stale: 1, offline: 1, never: 1 };
        expect(await s.fleetSummary(10)).toEqual({
          counts,
          away: [
            { deviceId: 'sbC', merchantId: 'M1', storeId: 'S1', connectivity: 'offline', lastSeenAt: 200 },
            { deviceId: 'sbA', merchantId: 'M1', storeId: 'S1', connectivity: 'stale', lastSeenAt: 100 },
          ],
        });
        expect(await s.fleetSummary(1)).toEqual({ counts, away: [{ deviceId: 'sbC', merchantId: 'M1', storeId: 'S1', connectivity: 'offline', lastSeenAt: 200 }] });
      });
    });
  });
}
