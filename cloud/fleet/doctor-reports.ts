import { formatDoctorChecks, type UpMessage } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { CloudStore, DoctorReportRow } from '../store/store.js';

/**
 * A box's doctor report (up/doctor), the answer to `scanbox-cloud devices doctor`: kept as the box's
 * latest when it answers a `doctor` command queued for that box. Any other report is ignored with a
 * warn line: a box must not write to the store at will. Who sent it was checked before this is
 * reached (attempts-service.ts `checkPublisher`): a report lands only under the box whose topic it
 * came on, and only from that box.
 */
export interface DoctorReportsDeps {
  store: CloudStore;
  logger: Logger;
  clock: Clock;
}

export async function recordDoctorReport(deps: DoctorReportsDeps, deviceId: string, msg: UpMessage<'doctor'>): Promise<void> {
  const row: DoctorReportRow = { deviceId, commandId: msg.refId, messageId: msg.id, firmware: msg.firmware, checks: msg.checks, sentAt: msg.ts, receivedAt: deps.clock.now() };
  if (!(await deps.store.saveDoctorReport(row))) {
    return deps.logger.warn({ deviceId, commandId: msg.refId }, 'doctor report answers no doctor command of this box; ignored');
  }
  deps.logger.info({ deviceId, commandId: msg.refId, checks: msg.checks.length, failed: msg.checks.filter((c) => !c.ok).map((c) => c.name) }, 'doctor report received');
}

/** For a person: which box, when, and one PASS/FAIL line per check with its fix, as the box's own doctor prints them. */
export function formatDoctorReport(r: DoctorReportRow): string {
  const failed = r.checks.filter((c) => !c.ok).length;
  const head = `doctor report of ${r.deviceId} (firmware ${r.firmware}), received ${new Date(r.receivedAt).toISOString()} for command ${r.commandId}: ${failed === 0 ? 'all checks pass' : `${failed} of ${r.checks.length} checks fail`}`;
  return `${head}\n${formatDoctorChecks(r.checks)}`;
}

/** How often `scanbox-cloud devices doctor --wait` looks in the store: the running cloud writes the report there. */
export const DOCTOR_WAIT_POLL_MS = 250;

/**
 * The box's report that answers `commandId`, once the running cloud has stored it (the CLI runs in
 * another process, so it looks in the store every `pollMs`); undefined when none came within `timeoutMs`.
 */
export async function waitForDoctorReport(
  store: Pick<CloudStore, 'latestDoctorReport'>,
  ask: { deviceId: string; commandId: string; timeoutMs: number },
  clock: Clock,
  pollMs = DOCTOR_WAIT_POLL_MS,
): Promise<DoctorReportRow | undefined> {
  const deadline = clock.now() + ask.timeoutMs;
  for (;;) {
    const r = await store.latestDoctorReport(ask.deviceId);
    if (r?.commandId === ask.commandId) return r;
    const left = deadline - clock.now();
    if (left <= 0) return undefined;
    await new Promise<void>((resolve) => clock.setTimeout(() => resolve(), Math.min(pollMs, left)));
  }
}
