import { z } from 'zod';

/**
 * One check of the box's doctor as it travels (up/doctor, v3) and as both sides print it: a name, pass
 * or fail, what was found, and what to do when it failed.
 *
 * Why these bounds: an up/doctor must stay under MAX_PAYLOAD_BYTES (4096), which every receiver
 * enforces before it parses. 32 checks with a 32-character name and a one-character detail take about
 * 2.4 KB with the envelope, so a box can always make its report fit by shortening detail and fix
 * (device/doctor-report.ts does, longest first); the doctor has ten checks today, so 32 leaves room for
 * a newer box's. 400 characters keeps one check from taking the whole budget while leaving whole
 * every fix the doctor writes today (the longest is about 250) and every detail but one naming an
 * unusually long path. A name is a lower-case
 * word with dashes, as in `scanbox-device doctor`, so an operator's tools can key on it.
 */
export const DOCTOR_BOUNDS = { checks: 32, name: 32, text: 400 } as const;

export const DoctorCheckResult = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, `name must be 1–${DOCTOR_BOUNDS.name} of a-z 0-9 - (a lower-case letter first)`),
  ok: z.boolean(),
  detail: z.string().min(1).max(DOCTOR_BOUNDS.text),
  /** What to do; present when the check failed. */
  fix: z.string().min(1).max(DOCTOR_BOUNDS.text).optional(),
});
export type DoctorCheckResult = z.infer<typeof DoctorCheckResult>;

/** One line per check for a person: PASS/FAIL, name, detail, and the fix (`scanbox-device doctor`, `scanbox-cloud devices doctor`). */
export function formatDoctorChecks(checks: readonly { name: string; ok: boolean; detail: string; fix?: string }[]): string {
  const width = Math.max(0, ...checks.map((c) => c.name.length));
  return checks.map((c) => `${c.ok ? 'PASS' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}${c.ok || !c.fix ? '' : `  → fix: ${c.fix}`}`).join('\n');
}
