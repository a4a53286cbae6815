import { describe, expect, it } from 'vitest';
import type { CloudStore, DoctorReportRow } from '../../cloud/store/store.js';

/**
 * The CloudStore contract for the box's doctor (`scanbox-cloud devices doctor`): a `doctor` command is
 * queued like any other, and a box's latest report is kept only when it answers a `doctor` queued for
 * that box. Run by describeStoreConformance (store.ts) against every implementation; `store()` is that
 * run's fresh store.
 */
export function describeDoctorConformance(store: () => CloudStore): void {
  describe('doctor reports', () => {
    let codes = 0;
    async function box(deviceId: string): Promise<void> {
      const s = store();
      if (!(await s.getMerchant('M1'))) await s.addMerchant('M1', {}, 1);
      const code = `DCODE${String(++codes).padStart(5, '0')}`;
      await s.createPairingCode({ code, merchantId: 'M1', storeId: 'S1', createdAt: 1, expiresAt: 60_000 });
      expect(await s.redeemPairingCode(code, `hw-${deviceId}`, 2, { deviceId, secretHash: 'h', firmware: '1.0.0' })).toMatchObject({ ok: true });
    }
    const report = (deviceId: string, commandId: string, patch: Partial<DoctorReportRow> = {}): DoctorReportRow => ({
      deviceId,
      commandId,
      messageId: `doctor-${commandId}`,
      firmware: '0.1.0',
      checks: [
        { name: 'scanner', ok: true, detail: '/dev/scan: port held by this agent (open)' },
        { name: 'disk', ok: false, detail: '61 MiB free', fix: 'free space; never delete journal.db' },
      ],
      sentAt: 9_000,
      receivedAt: 9_100,
      ...patch,
    });

    it('a doctor is queued like any command, once while open; a box without a report has none', async () => {
      await box('sbA');
      const first = await store().addDeviceCommand({ id: 'doc-1', deviceId: 'sbA', command: 'doctor' }, 2_000);
      expect(first).toEqual({ created: true, row: { id: 'doc-1', deviceId: 'sbA', command: 'doctor', createdAt: 2_000, sentAt: null, doneAt: null, outcome: null } });
      expect(await store().addDeviceCommand({ id: 'doc-2', deviceId: 'sbA', command: 'doctor' }, 2_100)).toMatchObject({ created: false, row: { id: 'doc-1' } });
      expect(await store().markDeviceCommandSent('doc-1', 3_000)).toBe(true);
      expect((await store().listDeviceCommands('sbA'))[0]).toMatchObject({ outcome: 'sent', doneAt: 3_000 });
      expect(await store().latestDoctorReport('sbA')).toBeUndefined();
      expect(await store().listDoctorReports()).toEqual([]);
    });

    it('keeps a report answering its box’s doctor, whole, and the next one replaces it', async () => {
      await box('sbA');
      await store().addDeviceCommand({ id: 'doc-1', deviceId: 'sbA', command: 'doctor' }, 2_000);
      const r1 = report('sbA', 'doc-1');
      expect(await store().saveDoctorReport(r1)).toBe(true);
      expect(await store().latestDoctorReport('sbA')).toEqual(r1);
      await store().markDeviceCommandSent('doc-1', 3_000);
      await store().addDeviceCommand({ id: 'doc-2', deviceId: 'sbA', command: 'doctor' }, 4_000);
      const r2 = report('sbA', 'doc-2', { checks: [{ name: 'disk', ok: true, detail: '9 GiB free' }], sentAt: 10_000, receivedAt: 10_050 });
      expect(await store().saveDoctorReport(r2)).toBe(true);
      expect(await store().latestDoctorReport('sbA')).toEqual(r2);
      expect(await store().listDoctorReports()).toEqual([r2]);
    });

    it("refuses a report that answers no doctor of its box (another box's, another command, none) and keeps what was there", async () => {
      await box('sbA');
      await box('sbB');
      await store().addDeviceCommand({ id: 'doc-b', deviceId: 'sbB', command: 'doctor' }, 2_000);
      await store().addDeviceCommand({ id: 'reboot-a', deviceId: 'sbA', command: 'reboot' }, 2_000);
      await store().addDeviceCommand({ id: 'doc-a', deviceId: 'sbA', command: 'doctor' }, 2_000);
      const kept = report('sbA', 'doc-a');
      expect(await store().saveDoctorReport(kept)).toBe(true);
      for (const commandId of ['doc-b', 'reboot-a', 'never-asked']) expect(await store().saveDoctorReport(report('sbA', commandId, { firmware: 'evil' })), commandId).toBe(false);
      expect(await store().latestDoctorReport('sbA')).toEqual(kept);
      expect(await store().latestDoctorReport('sbB')).toBeUndefined();
    });

    it('lists the latest report of every box that has one, by device id', async () => {
      for (const id of ['sbC', 'sbA', 'sbB']) await box(id);
      for (const id of ['sbC', 'sbA']) {
        await store().addDeviceCommand({ id: `doc-${id}`, deviceId: id, command: 'doctor' }, 2_000);
        await store().saveDoctorReport(report(id, `doc-${id}`));
      }
      expect((await store().listDoctorReports()).map((r) => r.deviceId)).toEqual(['sbA', 'sbC']);
    });
  });
}
