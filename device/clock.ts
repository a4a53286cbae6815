/** Time as the agent sees it: injected so tests can drive deadlines without sleeping. */
export interface Clock {
  /** Wall-clock time: deadlines and timestamps. NTP or a person may step it, forward or back. */
  now(): number;
  /**
   * A clock that never steps (ms, any origin), for durations such as uptime. Optional: clocks that
   * never step (a test's manual clock) may leave it out, and `now` is used.
   */
  monotonic?(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Longest delay Node's timers accept; a later deadline is re-armed when this one fires. */
export const MAX_TIMER_MS = 2_147_483_647;

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
