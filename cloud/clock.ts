/** Time and timers, injected so tests can drive deadlines without waiting for them. */
export interface Clock {
  now(): number;
}

export interface Scheduler {
  setTimer(fn: () => void, delayMs: number): unknown;
  clearTimer(handle: unknown): void;
}

export const systemClock: Clock = { now: () => Date.now() };

export const systemScheduler: Scheduler = {
  setTimer: (fn, delayMs) => setTimeout(fn, Math.max(0, delayMs)),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
