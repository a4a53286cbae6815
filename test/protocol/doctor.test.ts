import { describe, expect, it } from 'vitest';
import {
  COMMAND_SINCE,
  Command,
  DOCTOR_BOUNDS,
  DOWN_SHAPES,
  ErrorCode,
  MAX_PAYLOAD_BYTES,
  UNKNOWN,
  UP_SHAPES,
  decodeDown,
  decodeUp,
  encodeDown,
  encodeUp,
  formatDoctorChecks,
  tolerant,
  type UpToSend,
} from '../../protocol/index.js';
import { DOWN_EXAMPLES, UP_EXAMPLES } from '../../protocol/examples.js';
import { z } from 'zod';

/**
 * The box's doctor over MQTT (protocol v3): down/command `doctor`, answered on up/doctor. v1 and v2
 * are frozen: neither has up/doctor nor the command; the report's bounds keep it under
 * MAX_PAYLOAD_BYTES, and the cloud reads a newer box's checks by the fields it knows.
 */

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as { code: string }).code;
  }
  throw new Error('accepted');
}

const report = UP_EXAMPLES.doctor;
const check = (patch: object) => ({ name: 'disk', ok: true, detail: 'fine', ...patch });
const withChecks = (checks: unknown[]) => ({ ...report, checks }) as UpToSend<'doctor'>;

describe('up/doctor', () => {
  it('is a v3 kind: v1 and v2 have no such shape, so a box never sends it in them', () => {
    expect(UP_SHAPES[3]!.doctor).toBeDefined();
    expect(UP_SHAPES[1]!.doctor).toBeUndefined();
    expect(UP_SHAPES[2]!.doctor).toBeUndefined();
    for (const v of [1, 2]) expect(refusal(() => encodeUp('doctor', { ...report, v } as never, v))).toBe(ErrorCode.UNSUPPORTED_VERSION);
  });

  it('round-trips: what the box encodes, the cloud decodes to the same report', () => {
    expect(decodeUp('doctor', encodeUp('doctor', report))).toEqual(report);
    const passing = withChecks([check({})]);
    expect(decodeUp('doctor', encodeUp('doctor', passing))).toEqual(passing);
  });

  it('is strict on sending: bounds of every check, at most 32 of them, at least one', () => {
    const off = (checks: unknown[]) => refusal(() => encodeUp('doctor', withChecks(checks)));
    expect(encodeUp('doctor', withChecks(Array.from({ length: DOCTOR_BOUNDS.checks }, () => check({}))))).toBeTruthy();
    expect(off(Array.from({ length: DOCTOR_BOUNDS.checks + 1 }, () => check({})))).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off([])).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off([check({ detail: 'x'.repeat(DOCTOR_BOUNDS.text + 1) })])).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off([check({ fix: 'x'.repeat(DOCTOR_BOUNDS.text + 1) })])).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off([check({ detail: '' })])).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off([check({ fix: '' })])).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off([check({ ok: 'yes' })])).toBe(ErrorCode.SCHEMA_INVALID);
    expect(off([check({ extra: 1 })])).toBe(ErrorCode.SCHEMA_INVALID);
    for (const name of ['', 'Disk', 'disk space', '1disk', 'd'.repeat(DOCTOR_BOUNDS.name + 1)]) expect(off([check({ name })]), name).toBe(ErrorCode.SCHEMA_INVALID);
    expect(encodeUp('doctor', withChecks([check({ name: 'scan-test' }), check({ name: 'd'.repeat(DOCTOR_BOUNDS.name) })]))).toBeTruthy();
    expect(refusal(() => encodeUp('doctor', { ...report, refId: 'not an id' }))).toBe(ErrorCode.SCHEMA_INVALID);
  });

  it('each field within its bound may still add up past MAX_PAYLOAD_BYTES: the sender refuses it, so the box must shorten (device/doctor-report.ts)', () => {
    const full = withChecks(Array.from({ length: DOCTOR_BOUNDS.checks }, () => check({ ok: false, detail: 'd'.repeat(DOCTOR_BOUNDS.text), fix: 'f'.repeat(DOCTOR_BOUNDS.text) })));
    expect(Buffer.byteLength(JSON.stringify(full))).toBeGreaterThan(MAX_PAYLOAD_BYTES);
    expect(refusal(() => encodeUp('doctor', full))).toBe(ErrorCode.PAYLOAD_TOO_LARGE);
  });

  it('the bounds leave room: 32 checks with the longest names and one-character texts fit', () => {
    const least = withChecks(Array.from({ length: DOCTOR_BOUNDS.checks }, (_, i) => check({ name: `c${i}`.padEnd(DOCTOR_BOUNDS.name, 'x'), ok: false, detail: '…', fix: '…' })));
    expect(Buffer.byteLength(encodeUp('doctor', { ...least, id: 'i'.repeat(64), refId: 'r'.repeat(64), firmware: 'f'.repeat(32) }))).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
  });

  it("a newer box's check fields are dropped, a check name this cloud does not know is kept", () => {
    const newer = JSON.stringify({ ...report, v: 4, battery: 87, checks: [{ name: 'battery', ok: true, detail: '87 %', severity: 'info' }] });
    expect(decodeUp('doctor', newer)).toEqual({ ...report, v: 4, checks: [{ name: 'battery', ok: true, detail: '87 %' }] });
  });
});

describe('down/command doctor', () => {
  it('v3 sends it; the frozen v1 and v2 shapes do not have it (a cloud never sends it to a box that announced less)', () => {
    const doctor = { ...DOWN_EXAMPLES.command, command: 'doctor' as const };
    expect(JSON.parse(encodeDown('command', doctor, 3))).toEqual(doctor);
    expect(decodeDown('command', encodeDown('command', doctor, 3)).command).toBe('doctor');
    for (const v of [1, 2]) {
      expect(refusal(() => encodeDown('command', doctor, v))).toBe(ErrorCode.SCHEMA_INVALID);
      expect(JSON.parse(encodeDown('command', DOWN_EXAMPLES.command, v))).toEqual({ ...DOWN_EXAMPLES.command, v });
    }
  });

  it('COMMAND_SINCE says exactly which version has which command', () => {
    for (const command of Command.options) {
      for (const v of [1, 2, 3]) {
        const has = DOWN_SHAPES[v]!.command!.safeParse({ ...DOWN_EXAMPLES.command, v, command }).success;
        expect(has, `${command} in v${v}`).toBe(COMMAND_SINCE[command] <= v);
      }
    }
  });

  it('a box whose reader predates doctor reads it as UNKNOWN (and ignores it: device/commands.ts decideCommand)', () => {
    const v2Reader = z.object({ command: tolerant(z.enum(['reboot', 'resync', 'unpair'])) });
    expect(v2Reader.parse({ command: 'doctor' }).command).toBe(UNKNOWN);
  });
});

describe('formatDoctorChecks', () => {
  it('one line per check: PASS/FAIL, the names aligned, the fix only on a failure', () => {
    expect(formatDoctorChecks(report.checks).split('\n')).toEqual([
      'PASS  scanner  /dev/serial/by-id/usb-scanner: port held by this agent (open)',
      "PASS  broker   mqtts://cloud.example:8883: connected as sb7K2M9QX4TA (the agent's link is up)",
      'FAIL  disk     61 MiB free in /var/lib/scanbox (under 100 MiB)  → fix: free space on that file system (old logs: journalctl --vacuum-size=50M); never delete journal.db',
    ]);
  });
});
