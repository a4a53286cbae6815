import { describe, expect, it } from 'vitest';
import { isProtocolError } from '../../protocol/index.js';
import type { CloudStore, OperatorActionRow, OperatorSessionRow } from '../../cloud/store/store.js';
import { attempt, write } from './store.js';

/**
 * The CloudStore contract for the dashboard (cloud/dashboard/): its operators' accounts, sessions
 * kept by the hash of their id, the append-only audit trail, and finding a payment by what a
 * merchant quotes. Run by describeStoreConformance (store.ts) against every implementation;
 * `store()` is that run's fresh store.
 */
export function describeDashboardConformance(store: () => CloudStore): void {
  describe('dashboard: finding a payment', () => {
    it('listAttempts finds attempts by the sale reference and by the wallet transaction id, alone or with other filters', async () => {
      const s = store();
      await s.writeAttempts([
        write(attempt('sbA-1', { createdAt: 1, saleRef: 'R-77', gatewayTradeNo: 'wx-100' }), 0),
        write(attempt('sbA-2', { createdAt: 2, saleId: 's2', saleRef: 'R-77', gatewayTradeNo: null }), 0),
        write(attempt('sbB-1', { createdAt: 3, saleRef: 'R-78', gatewayTradeNo: 'wx-101', state: 'SUCCESS' }), 0),
      ]);
      const ids = async (f: Parameters<CloudStore['listAttempts']>[0]) => (await s.listAttempts(f)).map((a) => a.outTradeNo);
      expect(await ids({ saleRef: 'R-77' })).toEqual(['sbA-1', 'sbA-2']);
      expect(await ids({ saleRef: 'R-77', deviceId: 'sbB' })).toEqual([]);
      expect(await ids({ gatewayTradeNo: 'wx-101' })).toEqual(['sbB-1']);
      expect(await ids({ gatewayTradeNo: 'wx-101', state: 'PAYING' })).toEqual([]);
      expect(await ids({ saleRef: 'R-404' })).toEqual([]);
    });
  });

  describe("dashboard charts: traffic per minute, every worker's", () => {
    const M = 60_000;
    it('adds what each worker saw into one total per minute and flow; reads from a minute on, oldest first', async () => {
      const s = store();
      await s.addTraffic(10 * M, { paid: 3, reversed: 1 });
      await s.addTraffic(10 * M, { paid: 2, userpaying: 0 }); // another worker, the same minute
      await s.addTraffic(11 * M, { paid: 1 });
      await s.addTraffic(9 * M, { paid: 7 });
      expect(await s.trafficSince(10 * M)).toEqual([
        { minute: 10 * M, flow: 'paid', count: 5 },
        { minute: 10 * M, flow: 'reversed', count: 1 },
        { minute: 11 * M, flow: 'paid', count: 1 },
      ]);
      expect(await s.trafficSince(12 * M)).toEqual([]);
    });

    it('refuses a count that is not a whole number ≥ 0 (SCHEMA_INVALID) and writes none of that call', async () => {
      const s = store();
      for (const bad of [-1, 1.5, Number.NaN]) {
        const err = await s.addTraffic(M, { paid: 1, flagged: bad }).then(() => undefined, (e: unknown) => e);
        expect(isProtocolError(err) ? err.code : err).toBe('SCHEMA_INVALID');
      }
      expect(await s.trafficSince(0)).toEqual([]);
    });

    it('forgets the minutes before a time, and says how many rows went', async () => {
      const s = store();
      await s.addTraffic(1 * M, { paid: 1, refunded: 1 });
      await s.addTraffic(2 * M, { paid: 1 });
      expect(await s.pruneTraffic(2 * M)).toBe(2);
      expect(await s.trafficSince(0)).toEqual([{ minute: 2 * M, flow: 'paid', count: 1 }]);
    });
  });

  describe('dashboard operators', () => {
    const session = (idHash: string, operator = 'alice', at = 1_000): OperatorSessionRow => ({ idHash, operator, csrfToken: `csrf-${idHash}`, createdAt: at, lastSeenAt: at });
    const refusedWith = async (p: Promise<unknown>, code: string) => {
      const err = await p.then(() => undefined, (e: unknown) => e);
      expect(isProtocolError(err) ? err.code : err).toBe(code);
    };

    it('adds an operator once (OPERATOR_EXISTS after, the first hash kept), reads and lists them by name', async () => {
      const s = store();
      expect(await s.addOperator('bob', 'hash-b', 5)).toEqual({ name: 'bob', passwordHash: 'hash-b', createdAt: 5, updatedAt: 5 });
      await s.addOperator('alice', 'hash-a', 6);
      await refusedWith(s.addOperator('bob', 'other', 7), 'OPERATOR_EXISTS');
      expect(await s.getOperator('bob')).toMatchObject({ passwordHash: 'hash-b' });
      expect(await s.getOperator('carol')).toBeUndefined();
      expect((await s.listOperators()).map((o) => o.name)).toEqual(['alice', 'bob']);
    });

    it('keeps a session by its hash; touching moves it forward only; ending removes it', async () => {
      const s = store();
      await s.addOperator('alice', 'h', 1);
      await s.createOperatorSession(session('S1'));
      expect(await s.getOperatorSession('S1')).toEqual(session('S1'));
      expect(await s.touchOperatorSession('S1', 5_000)).toBe(true);
      expect(await s.touchOperatorSession('S1', 2_000)).toBe(true);
      expect((await s.getOperatorSession('S1'))?.lastSeenAt).toBe(5_000);
      expect(await s.touchOperatorSession('nope', 5_000)).toBe(false);
      expect(await s.endOperatorSession('S1')).toBe(true);
      expect(await s.endOperatorSession('S1')).toBe(false);
      expect(await s.getOperatorSession('S1')).toBeUndefined();
    });

    it('refuses a session of an operator that does not exist (OPERATOR_UNKNOWN), and creates nothing', async () => {
      const s = store();
      await refusedWith(s.createOperatorSession(session('S1', 'ghost')), 'OPERATOR_UNKNOWN');
      expect(await s.getOperatorSession('S1')).toBeUndefined();
    });

    it('ends the sessions idle since a moment or created before another, and only those', async () => {
      const s = store();
      await s.addOperator('alice', 'h', 1);
      await s.createOperatorSession({ ...session('idle'), lastSeenAt: 1_000 });
      await s.createOperatorSession({ ...session('old'), createdAt: 100, lastSeenAt: 9_000 });
      await s.createOperatorSession({ ...session('fresh'), createdAt: 5_000, lastSeenAt: 9_000 });
      expect(await s.endExpiredOperatorSessions(2_000, 1_000)).toBe(2);
      expect(await s.getOperatorSession('fresh')).toBeDefined();
      expect(await s.getOperatorSession('idle')).toBeUndefined();
      expect(await s.getOperatorSession('old')).toBeUndefined();
    });

    it("a new password ends the operator's sessions (not another's); an unknown name is refused", async () => {
      const s = store();
      await s.addOperator('alice', 'h1', 1);
      await s.addOperator('bob', 'hb', 1);
      await s.createOperatorSession(session('A'));
      await s.createOperatorSession(session('B', 'bob'));
      await s.setOperatorPassword('alice', 'h2', 9);
      expect(await s.getOperator('alice')).toMatchObject({ passwordHash: 'h2', updatedAt: 9, createdAt: 1 });
      expect(await s.getOperatorSession('A')).toBeUndefined();
      expect(await s.getOperatorSession('B')).toBeDefined();
      await refusedWith(s.setOperatorPassword('carol', 'h', 9), 'OPERATOR_UNKNOWN');
    });

    it('removing an operator ends its sessions and keeps what it did', async () => {
      const s = store();
      await s.addOperator('alice', 'h', 1);
      await s.createOperatorSession(session('A'));
      await s.addOperatorAction({ at: 2, operator: 'alice', action: 'resolve', subjectKind: 'attempt', subjectId: 'sbA-1', subjectState: 'REVERSE_PENDING', note: 'called the shop', outcome: 'done' });
      expect(await s.removeOperator('alice')).toBe(true);
      expect(await s.removeOperator('alice')).toBe(false);
      expect(await s.getOperatorSession('A')).toBeUndefined();
      expect(await s.listOperatorActions({})).toEqual([expect.objectContaining({ operator: 'alice', note: 'called the shop' })]);
    });

    it('appends actions with increasing ids and lists them oldest first, narrowed by subject and action', async () => {
      const s = store();
      const base = { operator: 'alice', subjectState: null, note: '', outcome: 'done' } as const;
      const a1 = await s.addOperatorAction({ ...base, at: 1, action: 'query_now', subjectKind: 'attempt', subjectId: 'sbA-1' });
      const a2 = await s.addOperatorAction({ ...base, at: 2, action: 'resolve', subjectKind: 'refund', subjectId: 'sbA-r1', note: 'wallet says declined; customer paid cash' });
      const a3 = await s.addOperatorAction({ ...base, at: 3, action: 'resolve', subjectKind: 'attempt', subjectId: 'sbA-1', subjectState: 'REVERSE_PENDING' });
      await s.addOperatorAction({ ...base, at: 4, action: 'revoke', subjectKind: 'device', subjectId: 'sbA' });
      expect(a2.id).toBeGreaterThan(a1.id);
      expect(await s.listOperatorActions({ subjectKind: 'attempt', subjectIds: ['sbA-1'] })).toEqual<OperatorActionRow[]>([a1, a3]);
      expect((await s.listOperatorActions({ subjectIds: ['sbA-1', 'sbA-r1'] })).map((a) => a.id)).toEqual([a1.id, a2.id, a3.id]);
      expect(await s.listOperatorActions({ action: 'resolve', subjectKind: 'refund' })).toEqual([a2]);
      expect(await s.listOperatorActions({ subjectIds: [] })).toEqual([]);
      expect((await s.listOperatorActions({ limit: 2 })).map((a) => a.at)).toEqual([1, 2]);
      expect((await s.listOperatorActions({ limit: 2, newestFirst: true })).map((a) => a.at)).toEqual([4, 3]);
      expect((await s.listOperatorActions({ action: 'resolve', newestFirst: true })).map((a) => a.id)).toEqual([a3.id, a2.id]);
    });

    it('listAttempts unresolved: leaves out what an operator resolved in the state it is in now, only that', async () => {
      const s = store();
      await s.writeAttempts([
        write(attempt('sbA-1', { createdAt: 1, state: 'REVERSE_PENDING' }), 0),
        write(attempt('sbA-2', { createdAt: 2, saleId: 's2', state: 'REVERSE_PENDING' }), 0),
        write(attempt('sbA-3', { createdAt: 3, saleId: 's3', state: 'FAILED', flag: 'AMOUNT_MISMATCH' }), 0),
      ]);
      const resolve = (subjectId: string, subjectState: string, action: 'resolve' | 'query_now' = 'resolve') =>
        s.addOperatorAction({ at: 5, operator: 'alice', action, subjectKind: 'attempt', subjectId, subjectState, note: 'n', outcome: 'done' });
      await resolve('sbA-1', 'REVERSE_PENDING');
      await resolve('sbA-2', 'REVERSE_PENDING', 'query_now'); // not a resolution
      await resolve('sbA-3', 'REVERSE_PENDING'); // resolved in a state it is no longer in
      const ids = async (f: Parameters<CloudStore['listAttempts']>[0]) => (await s.listAttempts(f)).map((a) => a.outTradeNo);
      expect(await ids({ state: 'REVERSE_PENDING', unresolved: true })).toEqual(['sbA-2']);
      expect(await ids({ state: 'REVERSE_PENDING' })).toEqual(['sbA-1', 'sbA-2']);
      expect(await ids({ flag: 'AMOUNT_MISMATCH', unresolved: true })).toEqual(['sbA-3']);
      await resolve('sbA-3', 'FAILED');
      expect(await ids({ flag: 'AMOUNT_MISMATCH', unresolved: true })).toEqual([]);
    });
  });
}
