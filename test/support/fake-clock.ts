import type { Clock } from '../../protocol/clock.js';

interface FakeTimer {
  id: number;
  due: number;
  fn: () => void;
}

/** The default start: 2026-01-01T00:00:00Z. */
export const FAKE_CLOCK_START = 1_767_225_600_000;

/**
 * The one fake Clock of the repository (device, cloud and simulator tests alike): nothing happens
 * until the test moves time. Timers fire in due order (equal due times in the order they were set),
 * each once, never from inside `setTimeout` itself. Proven against the system clock by
 * test/conformance/clock.test.ts.
 *
 * - `advance(ms)`: moves time, firing due timers, and lets promise chains and I/O callbacks settle
 *   before the first, after each and at the end (async code driven by the timers gets to run).
 * - `advanceUntil(done, maxMs)`: the same, stopping as soon as `done()` holds after a timer fired.
 * - `advanceSync(ms)`: moves time and fires due timers synchronously, with no settling in between.
 */
export class FakeClock implements Clock {
  private current: number;
  private elapsed = 0;
  private seq = 0;
  private timers: FakeTimer[] = [];

  constructor(startMs = FAKE_CLOCK_START) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  /** Time moved by advance (never stepped): what the box uses for uptime. */
  monotonic(): number {
    return this.elapsed;
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const timer = { id: ++this.seq, due: this.current + Math.max(0, Number.isFinite(ms) ? ms : 0), fn };
    this.timers.push(timer);
    return Object.freeze({ id: timer.id });
  }

  clearTimeout(handle: unknown): void {
    const id = (handle as { id?: unknown } | null | undefined)?.id;
    this.timers = this.timers.filter((t) => t.id !== id);
  }

  /** Timers set and neither fired nor cleared. */
  pendingTimers(): number {
    return this.timers.length;
  }

  advanceSync(ms: number): void {
    const target = this.current + ms;
    for (let t = this.nextDue(target); t; t = this.nextDue(target)) this.fire(t);
    this.moveTo(target);
  }

  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    await settle();
    for (let t = this.nextDue(target); t; t = this.nextDue(target)) {
      this.fire(t);
      await settle();
    }
    this.moveTo(target);
    await settle();
  }

  async advanceUntil(done: () => boolean, maxMs: number): Promise<void> {
    const target = this.current + maxMs;
    await settle();
    for (let t = this.nextDue(target); t && !done(); t = this.nextDue(target)) {
      this.fire(t);
      await settle();
    }
    if (!done()) this.moveTo(target);
    await settle();
  }

  private fire(t: FakeTimer): void {
    this.timers = this.timers.filter((x) => x !== t);
    this.moveTo(t.due);
    t.fn();
  }

  private moveTo(at: number): void {
    if (at <= this.current) return;
    this.elapsed += at - this.current;
    this.current = at;
  }

  private nextDue(target: number): FakeTimer | undefined {
    let next: FakeTimer | undefined;
    for (const t of this.timers) if (t.due <= target && (!next || t.due < next.due || (t.due === next.due && t.id < next.id))) next = t;
    return next;
  }
}

/**
 * A few macrotask turns: every promise continuation queued so far has run, and the work they
 * queued in turn (a store write a turn later, a group commit) too.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < SETTLE_TURNS; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
const SETTLE_TURNS = 20;
