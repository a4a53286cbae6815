import { randomBytes } from 'node:crypto';
import type { Clock } from '../../protocol/clock.js';
import type { CloudStore } from '../store/store.js';
import type { DoctorAccess } from './dashboard.js';

/**
 * The boxes' doctor reports as the dashboard reads them, from the store the running cloud keeps
 * them in (fleet/doctor-reports.ts): the latest of a box for its page, every box's pass/fail for the
 * boxes table, and "ask again" as the same queued `doctor` command `scanbox-cloud devices doctor` makes.
 */
export function storeDoctorAccess(store: Pick<CloudStore, 'latestDoctorReport' | 'listDoctorReports' | 'addDeviceCommand'>, clock: Clock): DoctorAccess {
  return {
    latest: (deviceId) => store.latestDoctorReport(deviceId),
    summaries: async () => new Map((await store.listDoctorReports()).map((r) => [r.deviceId, { ok: r.checks.every((c) => c.ok), receivedAt: r.receivedAt }])),
    ask: async (deviceId) => {
      // The command's message id: the box remembers the last one it carried out and ignores a redelivery.
      const id = `cmd-${clock.now().toString(36)}-${randomBytes(6).toString('hex')}`;
      await store.addDeviceCommand({ id, deviceId, command: 'doctor' }, clock.now());
    },
  };
}
