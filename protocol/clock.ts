/**
 * Time as a dependency: the one Clock of the repository. The box's agent, the cloud and the
 * simulator all take it injected, so tests drive deadlines, polling and scripted customers without
 * waiting for them; test/support/fake-clock.ts is its one fake, and test/conformance/clock.ts is the
 * contract every implementation passes.
 */
export interface Clock {
  /** Wall-clock time (ms since the epoch): deadlines and timestamps. NTP or a person may step it, forward or back. */
  now(): number;
  /**
   * A clock that never steps (ms, any origin), for durations such as uptime. Optional: a clock that
   * never steps may leave it out, and `now` is used.
   */
  monotonic?(): number;
  /**
   * Calls `fn` once, no earlier than `ms` from now and never synchronously (a negative delay is 0).
   * Delays above MAX_TIMER_MS are cut to it: a caller with a later deadline re-arms when it fires.
   */
  setTimeout(fn: () => void, ms: number): unknown;
  /** The timer will not fire. Harmless for a timer that fired or was cleared already. */
  clearTimeout(handle: unknown): void;
}

/** Longest delay Node's timers accept; a later deadline is re-armed when this one fires. */
export const MAX_TIMER_MS = 2_147_483_647;

const clampDelay = (ms: number) => Math.min(Math.max(0, ms), MAX_TIMER_MS);

/** The machine's clock and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, clampDelay(ms)),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
