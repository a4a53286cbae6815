import { describe, expect, it } from 'vitest';
import type { Refund } from '../../cloud/refunds/refund-machine.js';
import type { CloudStore, Lease } from '../../cloud/store/store.js';
import { attempt, write, type StoreSubject } from './store.js';

/**
 * The CloudStore contract for several workers on one store (store.ts Lease): who drives an attempt
 * or a refund, claimed for background work, taken over once a dead worker's lease runs out. Each
 * worker is a store handle of its own on the same data (`subject().another()`), as two cloud
 * processes would be. Run by describeStoreConformance (store.ts) against every implementation.
 */
export function describeLeaseConformance(subject: () => StoreSubject): void {
  const lease = (owner: string, now: number, ms = 1_000): Lease => ({ owner, now, until: now + ms });
  const ids = (list: { outTradeNo: string }[]) => list.map((a) => a.outTradeNo);

  /** `n` attempts with work left (PAYING), created in order, on boxes sbA…, one sale each. */
  async function active(s: CloudStore, n: number): Promise<string[]> {
    const list = Array.from({ length: n }, (_, i) => attempt(`sbA-${String(i + 1).padStart(3, '0')}`, { saleId: `s${i}`, createdAt: 100 + i }));
    await s.writeAttempts(list.map((a) => write(a, 0)));
    return list.map((a) => a.outTradeNo);
  }

  describe('leases: several workers on one store', () => {
    it('claims only attempts with work left, oldest first, at most as many as asked', async () => {
      const s = subject().store;
      await s.writeAttempts([
        write(attempt('sbA-1', { createdAt: 30 }), 0),
        write(attempt('sbA-2', { saleId: 's2', createdAt: 10, state: 'SUCCESS', step: null, inFlight: null, nextAt: null }), 0),
        write(attempt('sbA-3', { saleId: 's3', createdAt: 20, state: 'REVERSED', step: 'late_check', inFlight: null, nextAt: 99 }), 0),
        write(attempt('sbA-4', { saleId: 's4', createdAt: 40 }), 0),
      ]);
      const first = await s.claimAttempts(lease('W1', 1_000), 2);
      expect(ids(first)).toEqual(['sbA-3', 'sbA-1']);
      // What a claim answers is the attempt as written.
      expect(first[0]).toEqual(await s.getAttempt('sbA-3'));
      // The worker's own are not answered again: it drives them already.
      expect(ids(await s.claimAttempts(lease('W1', 1_000), 10))).toEqual(['sbA-4']);
      expect(await s.claimAttempts(lease('W1', 1_500), 10)).toEqual([]);
    });

    it('two handles racing to claim the same attempts never both get one, and between them get all', async () => {
      const s1 = subject().store;
      const s2 = await subject().another();
      const all = await active(s1, 30);
      const w1 = new Set<string>();
      const w2 = new Set<string>();
      for (let round = 0; round < 10; round++) {
        const [a, b] = await Promise.all([s1.claimAttempts(lease('W1', 1_000, 60_000), 4), s2.claimAttempts(lease('W2', 1_000, 60_000), 4)]);
        ids(a).forEach((id) => w1.add(id));
        ids(b).forEach((id) => w2.add(id));
      }
      expect([...w1].filter((id) => w2.has(id))).toEqual([]);
      expect([...w1, ...w2].sort()).toEqual(all);
    });

    it("a worker's lease keeps the others off until it runs out; then another takes the attempt over", async () => {
      const s1 = subject().store;
      const s2 = await subject().another();
      await active(s1, 2);
      expect(ids(await s1.claimAttempts(lease('W1', 1_000), 10))).toEqual(['sbA-001', 'sbA-002']);
      expect(await s2.claimAttempts(lease('W2', 1_999), 10)).toEqual([]);
      // W1 is gone (no renewal): at its lease's end the attempts are W2's.
      expect(ids(await s2.claimAttempts(lease('W2', 2_000), 10))).toEqual(['sbA-001', 'sbA-002']);
      expect(await s1.claimAttempts(lease('W1', 2_100), 10)).toEqual([]);
      // W1's late write of one of them is refused: W2 drives it now.
      const a = (await s1.getAttempt('sbA-001'))!;
      expect(await s1.writeAttempts([{ ...write({ ...a, tries: 9 }, a.version), lease: lease('W1', 2_100) }])).toEqual([{ ok: false, why: 'leased', owner: 'W2', until: 3_000 }]);
      expect(await s2.getAttempt('sbA-001')).toEqual(a);
      expect((await s2.writeAttempts([{ ...write({ ...a, tries: 1 }, a.version), lease: lease('W2', 2_100) }]))[0]).toEqual({ ok: true, version: a.version + 1 });
    });

    it('a write with a lease takes it with the write; without one it neither checks nor changes the lease', async () => {
      const s1 = subject().store;
      const s2 = await subject().another();
      const [id] = await active(s1, 1);
      const v1 = (await s1.getAttempt(id!))!;
      expect(await s1.writeAttempts([{ ...write({ ...v1, tries: 1 }, 1), lease: lease('W1', 1_000) }])).toEqual([{ ok: true, version: 2 }]);
      expect(await s2.claimAttempts(lease('W2', 1_500), 10)).toEqual([]);
      // The box's own messages (an ack) are written without a lease: the version alone decides, and W1 keeps driving.
      expect(await s2.writeAttempts([write({ ...v1, state: 'FAILED', ackedState: 'FAILED' }, 2)])).toEqual([{ ok: true, version: 3 }]);
      expect(await s2.claimAttempts(lease('W2', 1_500), 10)).toEqual([]);
      expect(await s2.writeAttempts([{ ...write({ ...v1, tries: 2 }, 3), lease: lease('W2', 1_500) }])).toEqual([{ ok: false, why: 'leased', owner: 'W1', until: 2_000 }]);
      // The lease is checked after the version: a stale write is told so, whoever holds it.
      expect(await s2.writeAttempts([{ ...write({ ...v1, tries: 2 }, 1), lease: lease('W2', 1_500) }])).toEqual([{ ok: false, why: 'version' }]);
      // Read on the handle that wrote last: SQLite's handle answers its own recent writes from memory (sqlite-store.ts remember).
      expect((await s2.getAttempt(id!))!).toMatchObject({ version: 3, tries: 0, ackedState: 'FAILED' });
      // A create takes the new attempt's lease: at the end of W1's, W1 gets its attempt back, not W2's new one.
      expect(await s2.writeAttempts([{ ...write(attempt('sbB-1'), 0), lease: lease('W2', 1_500) }])).toEqual([{ ok: true, version: 1 }]);
      expect(ids(await s1.claimAttempts(lease('W1', 2_000), 10))).toEqual([id]);
    });

    it("a forced write takes the lease from its live holder (the write that puts a call out); the version still decides", async () => {
      const s1 = subject().store;
      const s2 = await subject().another();
      const [id] = await active(s1, 1);
      expect(ids(await s1.claimAttempts(lease('W1', 1_000), 10))).toEqual([id]);
      const a = (await s2.getAttempt(id!))!;
      // Stale: refused on the version, forced or not.
      expect(await s2.writeAttempts([{ ...write({ ...a, tries: 5 }, a.version + 1), lease: { ...lease('W2', 1_500), force: true } }])).toEqual([{ ok: false, why: 'version' }]);
      expect(await s2.writeAttempts([{ ...write({ ...a, inFlight: 'query' }, a.version), lease: { ...lease('W2', 1_500), force: true } }])).toEqual([{ ok: true, version: a.version + 1 }]);
      // W2 holds it now, until its own lease's end: W1's next write is refused, and nobody can claim it.
      const b = (await s2.getAttempt(id!))!;
      expect(await s1.writeAttempts([{ ...write({ ...b, tries: 1 }, b.version), lease: lease('W1', 1_600) }])).toEqual([{ ok: false, why: 'leased', owner: 'W2', until: 2_500 }]);
      expect(await s1.claimAttempts(lease('W1', 2_499), 10)).toEqual([]);
      expect(ids(await s1.claimAttempts(lease('W1', 2_500), 10))).toEqual([id]);
    });

    it('of two handles writing one attempt at once with their leases, exactly one wins', async () => {
      const s1 = subject().store;
      const s2 = await subject().another();
      const [id] = await active(s1, 1);
      const a = (await s1.getAttempt(id!))!;
      const [r1, r2] = await Promise.all([
        s1.writeAttempts([{ ...write({ ...a, tries: 1 }, 1), lease: lease('W1', 1_000) }]),
        s2.writeAttempts([{ ...write({ ...a, tries: 2 }, 1), lease: lease('W2', 1_000) }]),
      ]);
      const results = [r1[0]!, r2[0]!];
      expect(results.filter((r) => r.ok)).toEqual([{ ok: true, version: 2 }]);
      expect(results.find((r) => !r.ok)).toMatchObject({ ok: false });
      expect((await s1.attemptEvents(id!)).length).toBe(2);
    });

    it('renewing extends every lease of the owner on work left; releasing hands them over at once', async () => {
      const s1 = subject().store;
      const s2 = await subject().another();
      await active(s1, 3);
      await s1.claimAttempts(lease('W1', 1_000), 2);
      expect(await s1.renewLeases(lease('W1', 1_900, 5_000))).toBe(2);
      expect(ids(await s2.claimAttempts(lease('W2', 3_000), 10))).toEqual(['sbA-003']);
      await s1.releaseLeases('W1');
      expect(ids(await s2.claimAttempts(lease('W2', 3_000), 10))).toEqual(['sbA-001', 'sbA-002']);
      expect(await s1.renewLeases(lease('W1', 3_000))).toBe(0);
    });

    it('refunds: PENDING ones are claimed by one worker at a time, taken over at expiry, and a leased write of another is refused', async () => {
      const s1 = subject().store;
      const s2 = await subject().another();
      await s1.addMerchant('M1', {}, 1);
      await s1.createPairingCode({ code: 'LEASE00001', merchantId: 'M1', storeId: 'S1', createdAt: 1, expiresAt: 10_000 });
      await s1.redeemPairingCode('LEASE00001', 'hw-a', 2, { deviceId: 'sbA', secretHash: 'h', firmware: '1.0.0' });
      const paid = ['sbA-1', 'sbA-2', 'sbA-3'].map((id, i) =>
        attempt(id, { saleId: `s${i}`, state: 'SUCCESS', step: null, inFlight: null, charged: 100, createdAt: 10 + i }),
      );
      await s1.writeAttempts(paid.map((a) => write(a, 0)));
      const refunds: Refund[] = [];
      for (const [i, a] of paid.entries()) {
        const r = await s1.requestRefund({ refundId: `sbA-r${i}`, deviceId: 'sbA', refundRef: `RF${i}`, outTradeNo: a.outTradeNo, amount: 50, currency: 'CNY', at: 100 + i });
        refunds.push(r.refund);
      }
      await s1.writeRefund({ ...refunds[2]!, state: 'REFUNDED', finalAt: 200 }, 1);
      const [a, b] = await Promise.all([s1.claimRefunds(lease('W1', 1_000), 10), s2.claimRefunds(lease('W2', 1_000), 10)]);
      const claimed = [...a, ...b].map((r) => r.refundId);
      expect(claimed.sort()).toEqual(['sbA-r0', 'sbA-r1']);
      // The other worker, whoever holds sbA-r0.
      const [holder, otherOwner, other] = a.some((r) => r.refundId === 'sbA-r0') ? (['W1', 'W2', s2] as const) : (['W2', 'W1', s1] as const);
      const r0 = (await other.getRefund('sbA-r0'))!;
      expect(await other.writeRefund({ ...r0, tries: 1 }, r0.version, lease(otherOwner, 1_500))).toEqual({ ok: false, leasedTo: holder });
      expect(await other.getRefund('sbA-r0')).toEqual(r0);
      // Without a lease the version alone decides; at the lease's end the other worker takes both over.
      expect(await other.writeRefund({ ...r0, tries: 1 }, r0.version)).toEqual({ ok: true, version: r0.version + 1 });
      // Forced, it takes the lease from its holder: the holder's next leased write is refused.
      expect(await other.writeRefund({ ...r0, tries: 2 }, r0.version + 1, { ...lease(otherOwner, 1_500), force: true })).toEqual({ ok: true, version: r0.version + 2 });
      const byHolder = holder === 'W1' ? s1 : s2;
      expect(await byHolder.writeRefund({ ...r0, tries: 3 }, r0.version + 2, lease(holder, 1_600))).toEqual({ ok: false, leasedTo: otherOwner });
      expect((await other.claimRefunds(lease('W3', 2_500), 10)).map((r) => r.refundId)).toEqual(['sbA-r0', 'sbA-r1']);
    });
  });
}
