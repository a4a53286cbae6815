import { systemClock, type Clock } from '../protocol/clock.js';

/**
 * The cloud's time is the one Clock of protocol/clock.ts; import it from there. What is left here
 * is transitional:
 * - `Clock`/`systemClock` re-exported for bench/, which still imports them from this file.
 * - `Scheduler`: the Clock's timer half under the cloud's old method names, for the three call
 *   sites in payments/attempts-service.ts. Once they call `setTimeout`/`clearTimeout`, its
 *   `scheduler` dependency becomes a Clock and this file goes.
 */
export { systemClock, type Clock };

export interface Scheduler {
  setTimer(fn: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

/** The timers of `clock` as a Scheduler. */
export function schedulerOf(clock: Clock): Scheduler {
  return { setTimer: (fn, delayMs) => clock.setTimeout(fn, delayMs), clearTimer: (handle) => clock.clearTimeout(handle) };
}

export const systemScheduler: Scheduler = schedulerOf(systemClock);
