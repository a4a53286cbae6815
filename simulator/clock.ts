/**
 * Time as a dependency. The gateway's scenarios are all about time (a customer confirms after 5 s,
 * a pay hangs past the caller's timeout), so tests drive them with a ManualClock instead of waiting.
 */
export interface Clock {
  now(): number;
}

export type TimerHandle = { readonly id: number } | ReturnType<typeof setTimeout>;

export interface TimerScheduler {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const systemClock: Clock & TimerScheduler = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A scripted hang must not keep a CLI process alive on its own.
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Resolves `true` after `ms`, or `false` as soon as `signal` aborts. `ms <= 0` resolves at once
 * without a timer, so "instant" latency costs nothing in benchmarks.
 */
export function sleep(timers: TimerScheduler, ms: number, signal?: AbortSignal): Promise<boolean> {
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

interface ManualTimer {
  id: number;
  due: number;
  fn: () => void;
}

/** Fake time for tests: nothing happens until `advance` moves the clock; timers fire in due order. */
export class ManualClock implements Clock, TimerScheduler {
  private current: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(startMs = 1_767_225_600_000) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: ++this.seq, due: this.current + Math.max(0, ms), fn };
    this.timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    const id = (handle as { id?: number }).id;
    this.timers = this.timers.filter((t) => t.id !== id);
  }

  pendingTimers(): number {
    return this.timers.length;
  }

  /** Move time forward, firing due timers in order and letting promise chains settle after each. */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    await settle();
    for (let t = this.nextDue(target); t; t = this.nextDue(target)) {
      this.timers = this.timers.filter((x) => x !== t);
      this.current = t.due;
      t.fn();
      await settle();
    }
    this.current = target;
    await settle();
  }

  /**
   * Like advance, but stops as soon as `done()` holds after a timer fired: "wait up to `maxMs` for
   * this answer" without moving time further than the answer needed.
   */
  async advanceUntil(done: () => boolean, maxMs: number): Promise<void> {
    const target = this.current + maxMs;
    await settle();
    for (let t = this.nextDue(target); t && !done(); t = this.nextDue(target)) {
      this.timers = this.timers.filter((x) => x !== t);
      this.current = t.due;
      t.fn();
      await settle();
    }
    if (!done()) this.current = target;
    await settle();
  }

  private nextDue(target: number): ManualTimer | undefined {
    const due = this.timers.filter((t) => t.due <= target);
    return due.sort((a, b) => a.due - b.due || a.id - b.id)[0];
  }
}

/** A macrotask turn: every promise continuation queued so far has run. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
