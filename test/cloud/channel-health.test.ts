import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChannelHealthConfig, DEFAULT_CHANNEL_HEALTH } from '../../cloud/gateway/channel-config.js';
import {
  MAX_WINDOW_CALLS,
  admit,
  healthSummary,
  isFailure,
  newHealth,
  probeAbandoned,
  probeStarted,
  recordCall,
  tickHealth,
  type BreakerState,
  type CallResult,
  type ChannelHealth,
  type Transition,
} from '../../cloud/gateway/channel-health.js';

/** Small numbers so a test can see every edge: 4 calls, 10 s window, 5 s cool-down, 3 probes to close. */
const cfg = ChannelHealthConfig.parse({ windowMs: 10_000, minCalls: 4, failureRatio: 0.5, slowCallMs: 1_000, coolDownMs: 5_000, probeShare: 0.25, maxProbes: 2, probesToClose: 3 });

const ok = (at: number, latencyMs = 100): CallResult => ({ at, ok: true, latencyMs, probe: false });
const fail = (at: number, latencyMs = 100): CallResult => ({ at, ok: false, latencyMs, probe: false });
const asProbe = (c: CallResult): CallResult => ({ ...c, probe: true });

function play(h: ChannelHealth, calls: CallResult[], c: ChannelHealthConfig = cfg): { health: ChannelHealth; transitions: Transition[] } {
  const transitions: Transition[] = [];
  for (const call of calls) {
    const r = recordCall(h, call, c);
    h = r.health;
    if (r.transition) transitions.push(r.transition);
  }
  return { health: h, transitions };
}

/** Opened at `at` by minCalls failures ending then. */
function openedAt(at: number): ChannelHealth {
  const h = play(newHealth(0), [fail(at - 3), fail(at - 2), fail(at - 1), fail(at)]).health;
  expect(h).toMatchObject({ state: 'open', since: at });
  return h;
}

/** Half-open since `at` (opened at at - coolDownMs). */
function halfOpenAt(at: number): ChannelHealth {
  const h = tickHealth(openedAt(at - cfg.coolDownMs), at, cfg).health;
  expect(h).toMatchObject({ state: 'half_open', since: at });
  return h;
}

function fixture(state: BreakerState, at: number): ChannelHealth {
  if (state === 'closed') return newHealth(at);
  return state === 'open' ? openedAt(at) : halfOpenAt(at);
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

describe('channel health: every state × event', () => {
  const T = 100_000;
  type Event = { name: string; apply: (h: ChannelHealth) => { health: ChannelHealth; transition?: Transition } };
  const events: Record<string, Event> = {
    ok: { name: 'an answered call', apply: (h) => recordCall(h, ok(T + 1), cfg) },
    fail: { name: 'an unknown outcome', apply: (h) => recordCall(h, fail(T + 1), cfg) },
    slow: { name: 'an answered but slow call', apply: (h) => recordCall(h, ok(T + 1, cfg.slowCallMs + 1), cfg) },
    probeOk: { name: 'a probe success', apply: (h) => recordCall(probeStarted(h), asProbe(ok(T + 1)), cfg) },
    probeFail: { name: 'a probe failure', apply: (h) => recordCall(probeStarted(h), asProbe(fail(T + 1)), cfg) },
    probeSlow: { name: 'a slow probe', apply: (h) => recordCall(probeStarted(h), asProbe(ok(T + 1, cfg.slowCallMs + 1)), cfg) },
    tickEarly: { name: 'a tick before the cool-down ends', apply: (h) => tickHealth(h, T + cfg.coolDownMs - 1, cfg) },
    tickLate: { name: 'a tick once the cool-down ended', apply: (h) => tickHealth(h, T + cfg.coolDownMs + 7, cfg) },
  };
  // [state, event, next state, why of the transition (none: no transition)]
  const table: [BreakerState, keyof typeof events, BreakerState, RegExp | null][] = [
    ['closed', 'ok', 'closed', null],
    ['closed', 'fail', 'closed', null], // one call is under minCalls
    ['closed', 'slow', 'closed', null],
    ['closed', 'probeOk', 'closed', null], // a late probe of an earlier half-open period: just a call
    ['closed', 'probeFail', 'closed', null],
    ['closed', 'probeSlow', 'closed', null],
    ['closed', 'tickEarly', 'closed', null],
    ['closed', 'tickLate', 'closed', null],
    ['open', 'ok', 'open', null],
    ['open', 'fail', 'open', null],
    ['open', 'slow', 'open', null],
    ['open', 'probeOk', 'open', null],
    ['open', 'probeFail', 'open', null],
    ['open', 'probeSlow', 'open', null],
    ['open', 'tickEarly', 'open', null],
    ['open', 'tickLate', 'half_open', /^cool-down over$/],
    ['half_open', 'ok', 'half_open', null], // not a probe: does not count toward closing
    ['half_open', 'fail', 'half_open', null], // not a probe: does not reopen
    ['half_open', 'slow', 'half_open', null],
    ['half_open', 'probeOk', 'half_open', null], // 1 of probesToClose
    ['half_open', 'probeFail', 'open', /^probe failed: no answer after 100 ms$/],
    ['half_open', 'probeSlow', 'open', /^probe failed: slow, 1001 ms > 1000 ms$/],
    ['half_open', 'tickEarly', 'half_open', null],
    ['half_open', 'tickLate', 'half_open', null],
  ];

  it.each(table)('%s + %s → %s', (state, event, next, why) => {
    const before = deepFreeze(fixture(state, T));
    const r = events[event]!.apply(before);
    expect(r.health.state).toBe(next);
    if (why === null) {
      expect(r.transition).toBeUndefined();
      expect(r.health.since).toBe(before.since);
    } else {
      expect(r.transition).toMatchObject({ from: state, to: next });
      expect(r.transition!.why).toMatch(why);
      expect(r.health.since).toBe(r.transition!.at);
    }
  });

  it('the table covers every state × event', () => {
    const covered = new Set(table.map(([s, e]) => `${s}:${e}`));
    for (const s of ['closed', 'open', 'half_open']) for (const e of Object.keys(events)) expect(covered).toContain(`${s}:${e}`);
  });

  it.each(Object.keys(events))('%s records the call in the window of every state (ticks only prune)', (event) => {
    for (const state of ['closed', 'open', 'half_open'] as const) {
      const before = fixture(state, T);
      const after = events[event]!.apply(before).health;
      const recorded = !event.startsWith('tick');
      if (recorded) expect(after.window.at(-1)?.at).toBe(T + 1);
      else expect(after.window.length).toBeLessThanOrEqual(before.window.length);
    }
  });
});

describe('closed → open', () => {
  it('opens when the window holds minCalls calls with failures/calls ≥ failureRatio, and says so', () => {
    const { health, transitions } = play(newHealth(0), [ok(1), fail(2), ok(3), fail(4)]);
    expect(health).toMatchObject({ state: 'open', since: 4 });
    expect(transitions).toEqual([{ from: 'closed', to: 'open', at: 4, why: '2 of 4 calls failed in 10 s' }]);
  });

  it('stays closed under minCalls, however bad', () => {
    expect(play(newHealth(0), [fail(1), fail(2), fail(3)]).health.state).toBe('closed');
  });

  it('stays closed just under the ratio', () => {
    expect(play(newHealth(0), [ok(1), ok(2), ok(3), fail(4), fail(5)]).health.state).toBe('closed'); // 2 of 5
    expect(play(newHealth(0), [ok(1), ok(2), ok(3), fail(4), fail(5), fail(6)]).health.state).toBe('open'); // 3 of 6
  });

  it('counts a call slower than slowCallMs as a failure, one at slowCallMs as not', () => {
    expect(isFailure({ ok: true, latencyMs: cfg.slowCallMs }, cfg)).toBe(false);
    expect(isFailure({ ok: true, latencyMs: cfg.slowCallMs + 1 }, cfg)).toBe(true);
    expect(isFailure({ ok: false, latencyMs: 1 }, cfg)).toBe(true);
    const slow = (at: number) => ok(at, cfg.slowCallMs + 1);
    expect(play(newHealth(0), [ok(1), slow(2), ok(3), slow(4)]).health.state).toBe('open');
    expect(play(newHealth(0), [ok(1), ok(2, cfg.slowCallMs), ok(3), ok(4, cfg.slowCallMs)]).health.state).toBe('closed');
  });

  it('forgets calls older than windowMs: failures spread thinner than the window never open it', () => {
    const spread = [fail(0), fail(1), fail(2), ok(cfg.windowMs + 1), fail(cfg.windowMs + 2)];
    // At the last call the window is (2, 10002]: ok, fail → 2 calls, under minCalls.
    const { health } = play(newHealth(0), spread);
    expect(health.state).toBe('closed');
    expect(health.window.map((c) => c.at)).toEqual([cfg.windowMs + 1, cfg.windowMs + 2]);
  });

  it('a call exactly windowMs old is out of the window', () => {
    const { health } = play(newHealth(0), [fail(0), fail(1), fail(2), fail(cfg.windowMs)]);
    expect(health.state).toBe('closed');
    expect(health.window).toHaveLength(3);
  });

  it('keeps at most MAX_WINDOW_CALLS calls (the latest), or minCalls if larger', () => {
    const many = Array.from({ length: MAX_WINDOW_CALLS + 500 }, (_, i) => ok(i));
    const wide = { ...cfg, windowMs: 1_000_000 };
    expect(play(newHealth(0), many, wide).health.window).toHaveLength(MAX_WINDOW_CALLS);
    expect(play(newHealth(0), many, wide).health.window[0]!.at).toBe(500);
    expect(play(newHealth(0), many, { ...wide, minCalls: MAX_WINDOW_CALLS + 200 }).health.window).toHaveLength(MAX_WINDOW_CALLS + 200);
  });
});

describe('open → half_open', () => {
  it('after coolDownMs, not a millisecond earlier; since is when the cool-down ended, however late the tick', () => {
    const h = openedAt(1_000);
    expect(tickHealth(h, 1_000 + cfg.coolDownMs - 1, cfg).health.state).toBe('open');
    const onTime = tickHealth(h, 1_000 + cfg.coolDownMs, cfg);
    const late = tickHealth(h, 1_000 + cfg.coolDownMs + 3_000, cfg);
    expect(onTime.transition).toEqual({ from: 'open', to: 'half_open', at: 6_000, why: 'cool-down over' });
    expect(late.transition).toEqual(onTime.transition);
    expect(late.health).toMatchObject({ state: 'half_open', since: 6_000, probeSuccesses: 0 });
  });

  it('ticking again changes nothing', () => {
    const once = tickHealth(openedAt(1_000), 7_000, cfg).health;
    const twice = tickHealth(once, 7_500, cfg);
    expect(twice.transition).toBeUndefined();
    expect(twice.health).toEqual(once);
  });

  it('a tick prunes the window to now', () => {
    const h = openedAt(1_000);
    expect(tickHealth(h, 1_000 + cfg.windowMs, cfg).health.window).toEqual([]);
  });

  it('a call recorded after the cool-down moves it on its own, even without a tick', () => {
    const r = recordCall(openedAt(1_000), ok(9_000), cfg);
    expect(r.health.state).toBe('half_open');
    expect(r.transition).toEqual({ from: 'open', to: 'half_open', at: 6_000, why: 'cool-down over' });
  });

  it('a probe ending after an un-ticked cool-down counts as a probe; one transition spans both steps', () => {
    const opened = probeStarted(openedAt(1_000));
    const failed = recordCall(opened, asProbe({ ...fail(9_000), detail: 'timeout' }), cfg);
    expect(failed.health).toMatchObject({ state: 'open', since: 9_000, probesInFlight: 0 });
    expect(failed.transition).toEqual({ from: 'open', to: 'open', at: 9_000, why: 'cool-down over; probe failed: timeout' });
    const succeeded = recordCall(opened, asProbe(ok(9_000)), cfg);
    expect(succeeded.health).toMatchObject({ state: 'half_open', probeSuccesses: 1 });
  });
});

describe('half_open', () => {
  it('probesToClose probe successes in a row close it, on a cleared window', () => {
    let h = probeStarted(probeStarted(halfOpenAt(10_000)));
    const transitions: (Transition | undefined)[] = [];
    for (const at of [10_100, 10_200]) {
      const r = recordCall(h, asProbe(ok(at)), cfg);
      transitions.push(r.transition);
      h = probeStarted(r.health);
    }
    expect(h).toMatchObject({ state: 'half_open', probeSuccesses: 2, probesInFlight: 2 });
    const r = recordCall(h, asProbe(ok(10_300)), cfg);
    expect(transitions).toEqual([undefined, undefined]);
    expect(r.transition).toEqual({ from: 'half_open', to: 'closed', at: 10_300, why: '3 probes succeeded' });
    expect(r.health).toMatchObject({ state: 'closed', since: 10_300, window: [], probeSuccesses: 0, probesInFlight: 1 });
  });

  it('non-probe successes never close it, however many', () => {
    const h = play(halfOpenAt(10_000), Array.from({ length: 50 }, (_, i) => ok(10_001 + i))).health;
    expect(h.state).toBe('half_open');
    expect(h.probeSuccesses).toBe(0);
    expect(healthSummary(h, 10_100, cfg).calls).toBe(54); // 4 from opening + 50: they still count in the window
  });

  it('a probe failure after successes opens it again with a fresh cool-down', () => {
    const h = play(halfOpenAt(10_000), [asProbe(ok(10_100)), asProbe(ok(10_200)), asProbe(fail(10_300))]).health;
    expect(h).toMatchObject({ state: 'open', since: 10_300, probeSuccesses: 0 });
    expect(admit(h, 10_300 + cfg.coolDownMs - 1, 0, cfg)).toBe('no');
    expect(admit(h, 10_300 + cfg.coolDownMs, 0, cfg)).toBe('probe');
    // The next half-open period starts its count from zero.
    const again = tickHealth(h, 20_000, cfg).health;
    expect(again.probeSuccesses).toBe(0);
    expect(play(again, [asProbe(ok(20_001)), asProbe(ok(20_002))]).health.state).toBe('half_open');
  });

  it('a probe of an earlier round still in flight counts against maxProbes in the next', () => {
    let h = probeStarted(probeStarted(halfOpenAt(10_000)));
    h = recordCall(h, asProbe(fail(10_100)), cfg).health; // reopens, one probe still out
    h = tickHealth(h, 10_100 + cfg.coolDownMs, cfg).health;
    expect(h).toMatchObject({ state: 'half_open', probesInFlight: 1 });
    expect(admit(h, 15_100, 0, cfg)).toBe('probe');
    expect(admit(probeStarted(h), 15_100, 0, cfg)).toBe('no');
  });

  it('an abandoned probe (never sent) frees its slot and teaches nothing', () => {
    const full = probeStarted(probeStarted(halfOpenAt(10_000)));
    expect(admit(full, 10_001, 0, cfg)).toBe('no');
    const freed = probeAbandoned(full);
    expect(freed).toEqual({ ...full, probesInFlight: 1 });
    expect(admit(freed, 10_001, 0, cfg)).toBe('probe');
    expect(probeAbandoned(probeAbandoned(freed)).probesInFlight).toBe(0);
  });

  it('an ended probe never drives probesInFlight below zero', () => {
    const h = recordCall(halfOpenAt(10_000), asProbe(ok(10_001)), cfg).health;
    expect(h.probesInFlight).toBe(0);
  });
});

describe('admit', () => {
  const T = 50_000;
  // [state, probes in flight, roll, verdict]
  it.each([
    ['closed', 0, 0, 'yes'],
    ['closed', 0, 0.99, 'yes'],
    ['closed', 5, 0.1, 'yes'],
    ['open', 0, 0, 'no'],
    ['open', 0, 0.99, 'no'],
    ['half_open', 0, 0, 'probe'],
    ['half_open', 0, 0.2499, 'probe'],
    ['half_open', 0, 0.25, 'no'], // roll < probeShare, strictly
    ['half_open', 0, 0.9, 'no'],
    ['half_open', 1, 0.1, 'probe'],
    ['half_open', 2, 0.1, 'no'], // maxProbes in flight
    ['half_open', 3, 0.1, 'no'],
  ] as const)('%s with %i probes in flight, roll %d → %s', (state, inFlight, roll, verdict) => {
    let h = fixture(state, T);
    for (let i = 0; i < inFlight; i++) h = probeStarted(h);
    expect(admit(h, T + 1, roll, cfg)).toBe(verdict);
  });

  it('applies the cool-down itself: an open breaker whose cool-down passed answers as half-open', () => {
    const h = openedAt(T);
    expect(admit(h, T + cfg.coolDownMs - 1, 0, cfg)).toBe('no');
    expect(admit(h, T + cfg.coolDownMs, 0, cfg)).toBe('probe');
    expect(admit(h, T + cfg.coolDownMs, 0.5, cfg)).toBe('no');
  });
});

describe('healthSummary', () => {
  it('reports state, since, counts, ratio and the median latency over the window at now', () => {
    const h = play(newHealth(0), [ok(1, 300), fail(2, 100), ok(3, 200), ok(4, 1_500)]).health; // 1500 ms: slow
    expect(healthSummary(h, 10, cfg)).toEqual({ state: 'open', since: 4, calls: 4, failures: 2, failureRatio: 0.5, p50LatencyMs: 200 });
    expect(healthSummary(h, 10_002, cfg)).toMatchObject({ state: 'half_open', since: 5_004, calls: 2, failures: 1, p50LatencyMs: 200 });
  });

  it('takes the lower middle of an even count and the middle of an odd one', () => {
    const h = play(newHealth(0), [ok(1, 40), ok(2, 10), ok(3, 30)]).health;
    expect(healthSummary(h, 3, cfg).p50LatencyMs).toBe(30);
    expect(healthSummary(play(h, [ok(4, 20)]).health, 4, cfg).p50LatencyMs).toBe(20);
  });

  it('is empty and zero with no calls', () => {
    expect(healthSummary(newHealth(7), 9, cfg)).toEqual({ state: 'closed', since: 7, calls: 0, failures: 0, failureRatio: 0, p50LatencyMs: null });
  });
});

describe('purity', () => {
  it('never changes its argument (frozen in, new value out)', () => {
    const h = deepFreeze(probeStarted(halfOpenAt(10_000)));
    const copy = structuredClone(h);
    recordCall(h, asProbe(ok(10_001)), cfg);
    recordCall(h, fail(10_001), cfg);
    tickHealth(h, 99_999, cfg);
    admit(h, 10_001, 0, cfg);
    healthSummary(h, 10_001, cfg);
    probeStarted(h);
    probeAbandoned(h);
    expect(h).toEqual(copy);
  });
});

describe('properties', () => {
  const neverCool = { ...cfg, coolDownMs: 1_000_000 };

  it('open exactly when some prefix of a one-window stream had ≥ minCalls calls and failures/calls ≥ failureRatio', () => {
    const stream = fc.array(fc.record({ at: fc.integer({ min: 0, max: cfg.windowMs - 1 }), ok: fc.boolean(), latencyMs: fc.integer({ min: 0, max: 2 * cfg.slowCallMs }) }), { maxLength: 40 });
    fc.assert(
      fc.property(stream, fc.double({ min: 0.05, max: 1, noNaN: true }), fc.integer({ min: 1, max: 12 }), (calls, failureRatio, minCalls) => {
        const c = { ...neverCool, failureRatio, minCalls };
        const sorted = [...calls].sort((a, b) => a.at - b.at).map((x) => ({ ...x, probe: false }));
        let expectOpen = false;
        let failures = 0;
        sorted.forEach((x, i) => {
          if (isFailure(x, c)) failures++;
          if (i + 1 >= minCalls && failures / (i + 1) >= failureRatio) expectOpen = true;
        });
        expect(play(newHealth(0), sorted, c).health.state).toBe(expectOpen ? 'open' : 'closed');
      }),
      { seed: 42, numRuns: 400 },
    );
  });

  it('a stream failing half its calls opens the breaker within one window (default config)', () => {
    const d = DEFAULT_CHANNEL_HEALTH;
    const maxGap = Math.floor(d.windowMs / (d.minCalls + 1));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 1, max: maxGap }), fc.array(fc.boolean(), { minLength: 100, maxLength: 100 }), (t0, gap, firstFails) => {
        // Each pair of calls holds one failure, in either order: exactly 50% over any even prefix.
        const calls = firstFails.flatMap((f, i) => {
          const a = t0 + 2 * i * gap;
          return [{ at: a, ok: !f, latencyMs: 50, probe: false }, { at: a + gap, ok: f, latencyMs: 50, probe: false }];
        });
        const { transitions } = play(newHealth(t0), calls, d);
        expect(transitions[0]).toMatchObject({ from: 'closed', to: 'open' });
        expect(transitions[0]!.at - t0).toBeLessThanOrEqual(d.windowMs);
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  it('from half-open: closes at the probesToClose-th consecutive probe success, reopens at the first probe failure with a fresh cool-down', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 5 }), (outcomes, probesToClose) => {
        const c = { ...cfg, probesToClose };
        let h = halfOpenAt(10_000);
        const firstFail = outcomes.indexOf(false);
        const closesAt = probesToClose - 1;
        for (const [i, good] of outcomes.entries()) {
          const at = 10_001 + i;
          h = recordCall(probeStarted(h), asProbe(good ? ok(at) : fail(at)), c).health;
          if (h.state !== 'half_open') {
            if (firstFail !== -1 && firstFail < probesToClose) {
              expect(i).toBe(firstFail);
              expect(h).toMatchObject({ state: 'open', since: at });
            } else {
              expect(i).toBe(closesAt);
              expect(h).toMatchObject({ state: 'closed', since: at, window: [] });
            }
            return;
          }
        }
        expect(firstFail === -1 ? outcomes.length < probesToClose : false).toBe(true);
      }),
      { seed: 3, numRuns: 300 },
    );
  });

  it('any event sequence: transitions match state changes, probes in flight stay ≥ 0, the window stays within windowMs', () => {
    const event = fc.oneof(
      fc.record({ kind: fc.constant('call' as const), dt: fc.integer({ min: 0, max: 3_000 }), ok: fc.boolean(), latencyMs: fc.integer({ min: 0, max: 2_000 }), probe: fc.boolean() }),
      fc.record({ kind: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 8_000 }) }),
      fc.record({ kind: fc.constant('start' as const), dt: fc.constant(0) }),
    );
    fc.assert(
      fc.property(fc.array(event, { maxLength: 80 }), (events) => {
        let h = newHealth(0);
        let now = 0;
        for (const e of events) {
          now += e.dt;
          const before = h;
          const r = e.kind === 'call' ? recordCall(h, { at: now, ok: e.ok, latencyMs: e.latencyMs, probe: e.probe }, cfg) : e.kind === 'tick' ? tickHealth(h, now, cfg) : { health: probeStarted(h) };
          h = r.health;
          if (r.transition) {
            expect(r.transition.from).toBe(before.state);
            expect(r.transition.to).toBe(h.state);
            expect(h.since).toBe(r.transition.at);
            expect(r.transition.at).toBeLessThanOrEqual(now);
          } else {
            expect(h.state).toBe(before.state);
            expect(h.since).toBe(before.since);
          }
          expect(h.probesInFlight).toBeGreaterThanOrEqual(0);
          if (e.kind !== 'start') for (const c of h.window) expect(c.at).toBeGreaterThan(now - cfg.windowMs);
          // closed with enough failing calls in the window is impossible right after a call
          if (e.kind === 'call' && h.state === 'closed') {
            const s = healthSummary(h, now, cfg);
            expect(s.calls < cfg.minCalls || s.failureRatio < cfg.failureRatio).toBe(true);
          }
        }
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});
