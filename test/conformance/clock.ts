import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../protocol/clock.js';

/**
 * The Clock contract (protocol/clock.ts) as device, cloud and simulator rely on it, written once
 * and run against the system clock (short real delays) and the fake. The subject says how time
 * passes for it (`pass`: real waiting, or moving a fake), and how precise its timers are.
 */
export interface ClockSubject {
  clock: Clock;
  /** Lets `ms` of the clock's time pass (and the callbacks it made due run). */
  pass(ms: number): Promise<void>;
  /** How early a timer may seem to fire when measured with now() (real timers round to whole ms). */
  slackMs: number;
  dispose?(): Promise<void>;
}

export function describeClockConformance(name: string, makeSubject: () => ClockSubject): void {
  describe(`Clock conformance: ${name}`, () => {
    let subject: ClockSubject;
    let clock: Clock;
    const handles: unknown[] = [];
    const set = (fn: () => void, ms: number) => {
      const h = clock.setTimeout(fn, ms);
      handles.push(h);
      return h;
    };

    beforeEach(() => {
      subject = makeSubject();
      clock = subject.clock;
    });
    afterEach(async () => {
      for (const h of handles.splice(0)) clock.clearTimeout(h);
      await subject.dispose?.();
    });

    it('now() never goes backwards while time passes, and moves by at least the time that passed', async () => {
      const start = clock.now();
      let last = start;
      for (let i = 0; i < 1_000; i++) {
        const t = clock.now();
        expect(t).toBeGreaterThanOrEqual(last);
        last = t;
      }
      await subject.pass(25);
      expect(clock.now()).toBeGreaterThanOrEqual(start + 25 - subject.slackMs);
      expect(Number.isFinite(clock.now())).toBe(true);
    });

    it('monotonic(), when the clock has it, never goes backwards and moves with the time that passed', async () => {
      if (!clock.monotonic) return;
      const start = clock.monotonic();
      expect(clock.monotonic()).toBeGreaterThanOrEqual(start);
      await subject.pass(20);
      expect(clock.monotonic()).toBeGreaterThanOrEqual(start + 20 - subject.slackMs);
    });

    it('a timer fires once, and not before its delay', async () => {
      const start = clock.now();
      const fired: number[] = [];
      set(() => fired.push(clock.now()), 30);
      await subject.pass(10);
      expect(fired).toEqual([]);
      await subject.pass(40);
      expect(fired).toHaveLength(1);
      expect(fired[0]! - start).toBeGreaterThanOrEqual(30 - subject.slackMs);
      await subject.pass(40);
      expect(fired).toHaveLength(1);
    });

    it('a cleared timer never fires; clearing it again, or clearing a timer that fired, is harmless', async () => {
      let cleared = 0;
      let kept = 0;
      const h = set(() => cleared++, 10);
      const k = set(() => kept++, 10);
      clock.clearTimeout(h);
      clock.clearTimeout(h);
      await subject.pass(40);
      expect(cleared).toBe(0);
      expect(kept).toBe(1);
      clock.clearTimeout(k);
      await subject.pass(10);
      expect(kept).toBe(1);
    });

    it('timers fire in due order; equal delays in the order they were set', async () => {
      const order: string[] = [];
      set(() => order.push('30'), 30);
      set(() => order.push('10'), 10);
      set(() => order.push('20a'), 20);
      set(() => order.push('20b'), 20);
      set(() => order.push('0'), 0);
      await subject.pass(60);
      expect(order).toEqual(['0', '10', '20a', '20b', '30']);
    });

    it('a zero (or negative) delay fires asynchronously: never inside setTimeout, and soon after', async () => {
      let fired = 0;
      set(() => fired++, 0);
      set(() => fired++, -5);
      expect(fired).toBe(0);
      await Promise.resolve();
      expect(fired).toBe(0);
      await subject.pass(10);
      expect(fired).toBe(2);
    });

    it('a timer set from inside a timer fires later, not within the same callback', async () => {
      const order: string[] = [];
      set(() => {
        order.push('outer');
        set(() => order.push('inner'), 0);
        order.push('outer done');
      }, 5);
      await subject.pass(30);
      expect(order).toEqual(['outer', 'outer done', 'inner']);
    });

    it('a timer cleared by an earlier timer of the same moment does not fire', async () => {
      let late = 0;
      let victim: unknown;
      set(() => clock.clearTimeout(victim), 10);
      victim = set(() => late++, 10);
      await subject.pass(40);
      expect(late).toBe(0);
    });
  });
}
