import { MAX_TIMER_MS, type Clock } from '../protocol/clock.js';

/**
 * The simulator's time: the one Clock of protocol/clock.ts. The gateway's scenarios are all about
 * time (a customer confirms after 5 s, a pay hangs past the caller's timeout), so tests drive them
 * with the fake of test/support/fake-clock.ts instead of waiting.
 */

/**
 * The system clock whose timers do not keep the process alive: a scripted hang or a paced scan is
 * never the only reason for a simulator CLI to keep running.
 */
export const backgroundClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Resolves `true` after `ms`, or `false` as soon as `signal` aborts. `ms <= 0` resolves at once
 * without a timer, so "instant" latency costs nothing in benchmarks.
 */
export function sleep(timers: Clock, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      timers.clearTimeout(handle);
      resolve(false);
    };
    const handle = timers.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
