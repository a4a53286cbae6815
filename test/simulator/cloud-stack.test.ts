import { describe, expect, it } from 'vitest';
import { runPart } from '../../simulator/processes.js';
import { checkWorkers, DEFAULT_SCALE_OUT_WORKERS } from '../../simulator/stack/cloud-stack.js';

/** How many cloud processes a rig stack runs, and the chaos runner's flags for it (a run itself is in scale-out.test.ts). */
describe('cloud stack workers', () => {
  it('one on the embedded stack, three by default on mosquitto-postgres, up to 16', () => {
    expect(checkWorkers('embedded-sqlite', undefined)).toBe(1);
    expect(checkWorkers('mosquitto-postgres', undefined)).toBe(DEFAULT_SCALE_OUT_WORKERS);
    expect(DEFAULT_SCALE_OUT_WORKERS).toBe(3);
    expect(checkWorkers('mosquitto-postgres', 16)).toBe(16);
  });

  it.each([
    ['embedded-sqlite', 2, /several workers need the mosquitto-postgres stack/],
    ['mosquitto-postgres', 0, /whole number from 1 to 16, not 0/],
    ['mosquitto-postgres', 17, /whole number from 1 to 16, not 17/],
    ['mosquitto-postgres', 2.5, /whole number from 1 to 16, not 2.5/],
  ] as const)('refuses %s with %s workers by name', (stack, workers, why) => {
    expect(() => checkWorkers(stack, workers)).toThrow(why);
  });

  it('scanbox-sim chaos refuses --workers without --stack mosquitto-postgres before starting anything (exit 2)', async () => {
    const r = await runPart('sim', ['chaos', '--workers', '3', '--minutes', '0.1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('several workers need the mosquitto-postgres stack');
    expect(r.stdout).not.toContain('working in');
  });
});
