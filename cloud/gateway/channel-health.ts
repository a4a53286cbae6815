import type { ChannelHealthConfig } from './channel-config.js';

/**
 * One channel's health: a circuit breaker over a sliding window of its recent gateway calls
 * (ChannelHealthConfig's doc comment is the spec). Pure: plain data in, plain data out — the caller
 * (the router) keeps one ChannelHealth per channel, passes the time and the random roll, and stores
 * what comes back. Nothing here reads a clock, draws a random number or mutates its argument.
 *
 * Times are the caller's clock in ms. A call's `at` is when its result became known.
 */

export type BreakerState = 'closed' | 'open' | 'half_open';

/** One call's result as the window keeps it. */
export interface CallSample {
  readonly at: number;
  /** The channel answered (success, a definitive failure or in-progress); false: the outcome is unknown. */
  readonly ok: boolean;
  readonly latencyMs: number;
}

export interface ChannelHealth {
  readonly state: BreakerState;
  /**
   * When the state began. For half_open it is the moment the cool-down ended (open's `since` +
   * coolDownMs), not the moment someone noticed: ticking late or twice gives the same health.
   */
  readonly since: number;
  /** Recent calls, oldest first as recorded, none older than windowMs before the latest record or tick. */
  readonly window: readonly CallSample[];
  /**
   * Probes started (probeStarted) and not ended (recordCall with probe: true). Never reset on a state
   * change: a probe still in flight when its round ended is still a real call to a sick channel, and
   * counting it keeps "at most maxProbes at once" true. The router must end every probe it starts
   * (recordCall with probe: true, or probeAbandoned if it was never sent).
   */
  readonly probesInFlight: number;
  /** Probe successes in a row in this half-open period. */
  readonly probeSuccesses: number;
}

/** A state change, for the log and `channel list`; the router adds the channel's name. */
export interface Transition {
  channel?: never;
  from: BreakerState;
  to: BreakerState;
  at: number;
  why: string;
}

export interface CallResult {
  at: number;
  ok: boolean;
  latencyMs: number;
  /** The call was a half-open probe (chooseChannel said probe: true), ending now. */
  probe: boolean;
  /** Optional short reason for a failure ("timeout", "SYSTEMERROR"): goes into a "probe failed" why. */
  detail?: string;
}

export interface HealthSummary {
  state: BreakerState;
  since: number;
  calls: number;
  failures: number;
  /** failures / calls over the window; 0 with no calls. */
  failureRatio: number;
  /** Median latency over the window (the lower middle for an even count); null with no calls. */
  p50LatencyMs: number | null;
}

/**
 * The window keeps at most this many calls (or minCalls, if larger): at thousands of calls a second
 * the ratio over the latest thousand is as telling as over all, and each record copies the window.
 */
export const MAX_WINDOW_CALLS = 1_000;

export function newHealth(now: number): ChannelHealth {
  return { state: 'closed', since: now, window: [], probesInFlight: 0, probeSuccesses: 0 };
}

/** Slow calls count as failures: a channel that answers in 8 s is as bad for the counter as one that does not. */
export function isFailure(c: Pick<CallSample, 'ok' | 'latencyMs'>, cfg: ChannelHealthConfig): boolean {
  return !c.ok || c.latencyMs > cfg.slowCallMs;
}

/**
 * Records one call's result: the window takes it in every state; then closed may open (ratio over
 * the window), half_open may close or reopen (probes only), open stays open. An open breaker whose
 * cool-down ended by `call.at` goes half-open first; if the call then changes the state again, the
 * one transition returned spans both ("cool-down over; probe failed: …", open → open).
 */
export function recordCall(h: ChannelHealth, call: CallResult, cfg: ChannelHealthConfig): { health: ChannelHealth; transition?: Transition } {
  const ticked = tickHealth(h, call.at, cfg);
  const recorded = withCall(ticked.health, call, cfg);
  const next = afterCall(recorded, call, cfg);
  const transition = chain(ticked.transition, next.transition);
  return transition ? { health: next.health, transition } : { health: next.health };
}

/** open → half_open once coolDownMs has passed since it opened; also prunes the window to `now`. */
export function tickHealth(h: ChannelHealth, now: number, cfg: ChannelHealthConfig): { health: ChannelHealth; transition?: Transition } {
  const window = prune(h.window, now, cfg);
  const pruned = window.length === h.window.length ? h : { ...h, window };
  const coolDownEnds = h.since + cfg.coolDownMs;
  if (h.state !== 'open' || now < coolDownEnds) return { health: pruned };
  const health: ChannelHealth = { ...pruned, state: 'half_open', since: coolDownEnds, probeSuccesses: 0 };
  return { health, transition: { from: 'open', to: 'half_open', at: coolDownEnds, why: 'cool-down over' } };
}

/**
 * May a NEW payment start on this channel? closed: yes; open: no; half_open: 'probe' for a roll
 * under probeShare while fewer than maxProbes probes are in flight, else no. The cool-down is applied
 * inside (an open breaker whose cool-down has passed answers as half-open), so the answer does not
 * depend on whether the caller ticked first; the caller still ticks to store and log the transition.
 */
export function admit(h: ChannelHealth, now: number, roll: number, cfg: ChannelHealthConfig): 'yes' | 'probe' | 'no' {
  const { state, probesInFlight } = tickHealth(h, now, cfg).health;
  if (state === 'closed') return 'yes';
  if (state === 'open') return 'no';
  return roll < cfg.probeShare && probesInFlight < cfg.maxProbes ? 'probe' : 'no';
}

/** A payment was routed to this channel as a probe; its result ends it (recordCall with probe: true). */
export function probeStarted(h: ChannelHealth): ChannelHealth {
  return { ...h, probesInFlight: h.probesInFlight + 1 };
}

/**
 * A probe that never reached the channel (the pay was refused before the gateway) frees its slot:
 * no result, so neither the window nor the breaker learns anything from it.
 */
export function probeAbandoned(h: ChannelHealth): ChannelHealth {
  return h.probesInFlight === 0 ? h : { ...h, probesInFlight: h.probesInFlight - 1 };
}

/** State and window figures at `now` (cool-down applied, window pruned), for `channel list` and logs. */
export function healthSummary(h: ChannelHealth, now: number, cfg: ChannelHealthConfig): HealthSummary {
  const { state, since, window } = tickHealth(h, now, cfg).health;
  const { calls, failures } = counts(window, cfg);
  return { state, since, calls, failures, failureRatio: calls === 0 ? 0 : failures / calls, p50LatencyMs: median(window.map((c) => c.latencyMs)) };
}

/** When a breaker's cool-down ends (or ended): open's since + coolDownMs, half_open's since; closed: its since. */
export function coolDownEnd(h: ChannelHealth, cfg: ChannelHealthConfig): number {
  return h.state === 'open' ? h.since + cfg.coolDownMs : h.since;
}

function withCall(h: ChannelHealth, call: CallResult, cfg: ChannelHealthConfig): ChannelHealth {
  const sample: CallSample = { at: call.at, ok: call.ok, latencyMs: call.latencyMs };
  const window = [...prune(h.window, call.at, cfg), sample];
  const cap = Math.max(MAX_WINDOW_CALLS, cfg.minCalls);
  const probesInFlight = call.probe ? Math.max(0, h.probesInFlight - 1) : h.probesInFlight;
  return { ...h, window: window.length > cap ? window.slice(window.length - cap) : window, probesInFlight };
}

function afterCall(h: ChannelHealth, call: CallResult, cfg: ChannelHealthConfig): { health: ChannelHealth; transition?: Transition } {
  if (h.state === 'closed') return tripIfFailing(h, call.at, cfg);
  if (h.state === 'half_open' && call.probe) return probeEnded(h, call, cfg);
  // open: recorded only; half_open and not a probe: the call was not chosen as a test of the channel.
  return { health: h };
}

function tripIfFailing(h: ChannelHealth, at: number, cfg: ChannelHealthConfig): { health: ChannelHealth; transition?: Transition } {
  const { calls, failures } = counts(h.window, cfg);
  if (calls < cfg.minCalls || failures / calls < cfg.failureRatio) return { health: h };
  const why = `${failures} of ${calls} calls failed in ${seconds(cfg.windowMs)}`;
  return { health: { ...h, state: 'open', since: at, probeSuccesses: 0 }, transition: { from: 'closed', to: 'open', at, why } };
}

function probeEnded(h: ChannelHealth, call: CallResult, cfg: ChannelHealthConfig): { health: ChannelHealth; transition?: Transition } {
  if (isFailure(call, cfg)) {
    // One failed probe reopens it, with a fresh cool-down counted from now.
    const why = `probe failed: ${probeFailure(call, cfg)}`;
    return { health: { ...h, state: 'open', since: call.at, probeSuccesses: 0 }, transition: { from: 'half_open', to: 'open', at: call.at, why } };
  }
  const probeSuccesses = h.probeSuccesses + 1;
  if (probeSuccesses < cfg.probesToClose) return { health: { ...h, probeSuccesses } };
  // Closed starts on a clean window: the failures that opened it must not trip it again at once.
  const health: ChannelHealth = { ...h, state: 'closed', since: call.at, window: [], probeSuccesses: 0 };
  return { health, transition: { from: 'half_open', to: 'closed', at: call.at, why: `${probeSuccesses} probes succeeded` } };
}

function probeFailure(call: CallResult, cfg: ChannelHealthConfig): string {
  if (!call.ok) return call.detail ?? `no answer after ${call.latencyMs} ms`;
  return `slow, ${call.latencyMs} ms > ${cfg.slowCallMs} ms`;
}

function chain(first: Transition | undefined, second: Transition | undefined): Transition | undefined {
  if (!first || !second) return first ?? second;
  return { from: first.from, to: second.to, at: second.at, why: `${first.why}; ${second.why}` };
}

function prune(window: readonly CallSample[], now: number, cfg: ChannelHealthConfig): readonly CallSample[] {
  const oldest = now - cfg.windowMs;
  return window.every((c) => c.at > oldest) ? window : window.filter((c) => c.at > oldest);
}

function counts(window: readonly CallSample[], cfg: ChannelHealthConfig): { calls: number; failures: number } {
  return { calls: window.length, failures: window.filter((c) => isFailure(c, cfg)).length };
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = values.sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? null;
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}
