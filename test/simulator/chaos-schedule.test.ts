import { describe, expect, it } from 'vitest';
import { chaosSchedule, countByKind, FAULT_KINDS, QUIET_TAIL_MS, WARMUP_MS } from '../../simulator/chaos/chaos-schedule.js';

describe('chaos fault schedule', () => {
  it('is a pure function of seed, boxes and minutes', () => {
    const a = chaosSchedule({ seed: 1, boxes: 10, minutes: 10 });
    expect(chaosSchedule({ seed: 1, boxes: 10, minutes: 10 })).toEqual(a);
    expect(chaosSchedule({ seed: '1', boxes: 10, minutes: 10 })).toEqual(a);
    expect(chaosSchedule({ seed: 2, boxes: 10, minutes: 10 })).not.toEqual(a);
    expect(chaosSchedule({ seed: 1, boxes: 9, minutes: 10 })).not.toEqual(a);
  });

  it('injects every kind of fault in a long enough run, and in the CI run (3 boxes, 1 min, seed 1)', () => {
    for (const seed of [1, 2, 3, 'abc', 99]) {
      const counts = countByKind(chaosSchedule({ seed, boxes: 10, minutes: 10 }));
      for (const kind of FAULT_KINDS) expect(counts[kind], `${kind} with seed ${seed}`).toBeGreaterThan(0);
    }
    const ci = countByKind(chaosSchedule({ seed: 1, boxes: 3, minutes: 1 }));
    expect(Object.values(ci).filter((n) => n > 0).length).toBeGreaterThanOrEqual(6);
  });

  it('is bounded: inside the run, after the warm-up, every fault over before the quiet tail, no target hit twice at once', () => {
    for (const [boxes, minutes] of [[1, 0.5], [3, 1], [10, 10], [50, 30]] as const) {
      const faults = chaosSchedule({ seed: 7, boxes, minutes });
      const runMs = minutes * 60_000;
      expect(faults.length).toBeLessThanOrEqual(runMs / 2_500);
      let prev = 0;
      const busy = new Map<string, number>();
      for (const f of faults) {
        expect(f.atMs).toBeGreaterThanOrEqual(Math.max(prev, WARMUP_MS));
        prev = f.atMs;
        expect(f.durationMs).toBeGreaterThanOrEqual(0);
        expect(f.durationMs).toBeLessThanOrEqual(20_000);
        expect(f.atMs + f.durationMs).toBeLessThanOrEqual(runMs - QUIET_TAIL_MS);
        if (f.box !== undefined) {
          expect(f.box).toBeGreaterThanOrEqual(0);
          expect(f.box).toBeLessThan(boxes);
        }
        const target = f.box !== undefined ? `box${f.box}` : ['link_drop', 'black_hole'].includes(f.kind) ? undefined : f.kind;
        if (target) {
          expect(busy.get(target) ?? 0, `${target} at ${f.atMs}`).toBeLessThanOrEqual(f.atMs);
          busy.set(target, f.atMs + f.durationMs);
        }
        if (f.kind === 'duplicates') expect(f.rate).toBeGreaterThan(0);
        if (f.kind === 'clock_jump') expect(f.forwardS! > 0 && f.backS! > 0).toBe(true);
      }
    }
  });

  it('leaves out excluded kinds (no libfaketime: no clock jumps)', () => {
    const faults = chaosSchedule({ seed: 1, boxes: 10, minutes: 10, exclude: ['clock_jump'] });
    expect(faults.some((f) => f.kind === 'clock_jump')).toBe(false);
    expect(faults.length).toBeGreaterThan(50);
  });
});
