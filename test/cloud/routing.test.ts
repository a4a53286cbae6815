import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChannelConfig, ChannelHealthConfig } from '../../cloud/gateway/channel-config.js';
import { admit, newHealth, probeStarted, recordCall, tickHealth, type ChannelHealth } from '../../cloud/gateway/channel-health.js';
import { chooseChannel, costOf, exclusion, type Overrides, type RouteCandidate, type RouteInput } from '../../cloud/gateway/routing.js';
import { WALLETS, type Wallet } from '../../protocol/index.js';

const cfg = ChannelHealthConfig.parse({ windowMs: 10_000, minCalls: 4, failureRatio: 0.5, slowCallMs: 1_000, coolDownMs: 5_000, probeShare: 0.25, maxProbes: 2, probesToClose: 3 });
const T = 1_000_000;

const wechat = (extra: Record<string, unknown> = {}) =>
  ChannelConfig.parse({ kind: 'wechat', appId: 'wx1', mchId: '1', apiKeyFile: 'k', clientCertFile: 'c', clientKeyFile: 'k2', ...extra });
const alipay = (extra: Record<string, unknown> = {}) => ChannelConfig.parse({ kind: 'alipay', appId: '2021', privateKeyFile: 'p', alipayPublicKeyFile: 'a', ...extra });
const http = (extra: Record<string, unknown> = {}) => ChannelConfig.parse({ kind: 'http', url: 'https://up.example', ...extra });
const instant = (extra: Record<string, unknown> = {}) => ChannelConfig.parse({ kind: 'instant', ...extra });

/** Health fixtures, all built through the breaker's own functions at T. */
const closed = (): ChannelHealth => newHealth(T - 60_000);
function openedAt(at: number): ChannelHealth {
  let h = newHealth(at - 10);
  for (let i = 3; i >= 0; i--) h = recordCall(h, { at: at - i, ok: false, latencyMs: 10, probe: false }, cfg).health;
  expect(h).toMatchObject({ state: 'open', since: at });
  return h;
}
const open = (at = T - 1_000) => openedAt(at);
const halfOpen = (since = T - 1_000) => tickHealth(openedAt(since - cfg.coolDownMs), since, cfg).health;
/** Closed, with calls in the window: the last `failures` of `calls` failed (last: so it never trips on the way), every one taking `latencyMs`. */
function closedWith(calls: number, failures: number, latencyMs = 100): ChannelHealth {
  let h = closed();
  for (let i = 0; i < calls; i++) h = recordCall(h, { at: T - 1_000 + i, ok: i < calls - failures, latencyMs, probe: false }, cfg).health;
  expect(h.state).toBe('closed');
  return h;
}

const none: Overrides = { pinned: {}, disabled: new Set() };
const cand = (name: string, config: ChannelConfig, health: ChannelHealth = closed()): RouteCandidate => ({ name, config, health });
function route(candidates: RouteCandidate[], over: Partial<RouteInput> = {}) {
  return chooseChannel({ wallet: 'wechat', merchantId: 'm1', amount: 10_000, candidates, overrides: none, now: T, roll: 0.5, cfg, ...over });
}

describe('hard rules', () => {
  // [what, candidate, input, rule in the why]
  it.each([
    ['another wallet', cand('ali', alipay()), {}, /ali: serves alipay only/],
    ['an http channel of unionpay only', cand('up', http()), {}, /up: serves unionpay only/],
    ['a merchant not on its list', cand('m', wechat({ merchants: ['m2', 'm3'] })), {}, /m: merchant m1 not allowed/],
    ['an amount under its minimum', cand('lo', wechat({ minAmount: 10_001 })), {}, /lo: 10000 fen below its minimum 10001/],
    ['an amount over its maximum', cand('hi', wechat({ maxAmount: 9_999 })), {}, /hi: 10000 fen above its maximum 9999/],
    ['a disabled channel', cand('off', wechat()), { overrides: { pinned: {}, disabled: new Set(['off']) } }, /off: disabled by the operator/],
    ['a disabled pinned channel', cand('off', wechat()), { overrides: { pinned: { wechat: 'off' }, disabled: new Set(['off']) } }, /off: disabled by the operator/],
  ] as const)('exclude %s: alone → no channel, with the rule named; beside an eligible one → the other', (_, c, over, why) => {
    const alone = route([c], over);
    expect(alone.channel).toBeNull();
    expect(alone.why).toMatch(why);
    expect(alone.why).toContain('wechat payment of 10000 fen for merchant m1');
    // Even cheaper, healthier or pinned, an excluded channel loses to an expensive one that passes.
    const beside = route([cand(c.name, c.config, closed()), cand('ok', wechat({ cost: { bps: 600 } }), open())], { ...over, overrides: { pinned: { wechat: c.name }, disabled: 'overrides' in over ? over.overrides.disabled : new Set() } });
    expect(beside.channel).toBe('ok');
    expect(beside.why).toMatch(new RegExp(`^pinned ${c.name} skipped \\(`));
  });

  it('takes amounts at the bounds (inclusive)', () => {
    expect(route([cand('a', wechat({ minAmount: 10_000, maxAmount: 10_000 }))]).channel).toBe('a');
  });

  it('names the rule excluding each channel when none may take the payment', () => {
    const r = route([cand('ali', alipay()), cand('m', wechat({ merchants: ['m9'] })), cand('off', instant())], { overrides: { pinned: {}, disabled: new Set(['off']) } });
    expect(r).toEqual({ channel: null, why: 'no channel may take a wechat payment of 10000 fen for merchant m1 — ali: serves alipay only; m: merchant m1 not allowed; off: disabled by the operator' });
  });

  it('no channels at all: no channel, and says so', () => {
    expect(route([])).toEqual({ channel: null, why: 'no channel is configured for a wechat payment of 10000 fen for merchant m1' });
  });

  it('instant and http channels serve the wallets they list', () => {
    expect(exclusion(cand('i', instant({ wallets: ['alipay', 'unionpay'] })), { wallet: 'unionpay', merchantId: 'm', amount: 1, overrides: none })).toBeUndefined();
    expect(exclusion(cand('i', instant({ wallets: ['alipay'] })), { wallet: 'unionpay', merchantId: 'm', amount: 1, overrides: none })).toBe('serves alipay only');
    expect(exclusion(cand('h', http({ wallets: ['wechat', 'unionpay'] })), { wallet: 'wechat', merchantId: 'm', amount: 1, overrides: none })).toBeUndefined();
  });
});

describe('pins', () => {
  const pin = (name: string): Partial<RouteInput> => ({ overrides: { pinned: { wechat: name }, disabled: new Set() } });

  it('a pinned channel wins over a cheaper one', () => {
    const r = route([cand('cheap', wechat()), cand('dear', wechat({ cost: { bps: 60 } }))], pin('dear'));
    expect(r).toEqual({ channel: 'dear', probe: false, why: 'pinned for wechat by the operator' });
  });

  it('a pinned channel is used with its breaker open, and the why says so', () => {
    const r = route([cand('cheap', wechat()), cand('sick', wechat(), open())], pin('sick'));
    expect(r).toEqual({ channel: 'sick', probe: false, why: 'pinned for wechat by the operator; breaker is open, used anyway' });
  });

  it('a pinned half-open channel is probed for a share of payments (else it could never close)', () => {
    const c = [cand('cheap', wechat()), cand('mending', wechat(), halfOpen())];
    expect(route(c, { ...pin('mending'), roll: 0.1 })).toMatchObject({ channel: 'mending', probe: true, why: expect.stringContaining('breaker is half-open, used anyway') });
    expect(route(c, { ...pin('mending'), roll: 0.9 })).toMatchObject({ channel: 'mending', probe: false });
  });

  it('a pin of another wallet does not apply', () => {
    expect(route([cand('cheap', wechat()), cand('dear', wechat({ cost: { bps: 60 } }))], { overrides: { pinned: { alipay: 'dear' }, disabled: new Set() } }).channel).toBe('cheap');
  });

  it('a pin to a channel that is not configured is skipped, saying so', () => {
    const r = route([cand('a', wechat())], pin('gone'));
    expect(r).toMatchObject({ channel: 'a', why: expect.stringMatching(/^pinned gone skipped \(not configured\); lowest cost/) });
  });
});

describe('cost', () => {
  it('is bps of the amount plus the fixed fee', () => {
    expect(costOf(wechat({ cost: { bps: 60, fixedFen: 2 } }), 10_000)).toBe(62);
    expect(costOf(wechat(), 10_000)).toBe(0);
  });

  it('the cheaper channel for this amount wins: a fixed fee beats a percentage on large amounts only', () => {
    const c = [cand('pct', wechat({ cost: { bps: 60 } })), cand('flat', wechat({ cost: { fixedFen: 50 } }))];
    expect(route(c, { amount: 5_000 })).toMatchObject({ channel: 'pct', probe: false, why: 'lowest cost 30.00 fen of 2 admitted' });
    expect(route(c, { amount: 20_000 })).toMatchObject({ channel: 'flat', why: 'lowest cost 50.00 fen of 2 admitted' });
  });

  it('equal prices compare equal whatever float residue their arithmetic would leave', () => {
    // 87 bps of 8 fen + 1 fen = 1337 bps of 8 fen = 1.0696 fen; in floating point the first is 1.0695999999999999.
    const flat = cand('flat', wechat({ cost: { bps: 87, fixedFen: 1 } }), closedWith(4, 1));
    const pct = cand('pct', wechat({ cost: { bps: 1337 } }), closedWith(4, 0));
    expect(costOf(flat.config, 8)).toBeLessThan(costOf(pct.config, 8)); // the residue is real
    expect(route([flat, pct], { amount: 8 }).channel).toBe('pct'); // the tie goes to health, not to a rounding error
  });
});

describe('ties', () => {
  it('equal cost: the lower failure ratio wins', () => {
    expect(route([cand('a', wechat(), closedWith(4, 1)), cand('b', wechat(), closedWith(4, 0))]).channel).toBe('b');
  });

  it('equal cost and ratio: the lower p50 latency wins', () => {
    expect(route([cand('a', wechat(), closedWith(4, 0, 300)), cand('b', wechat(), closedWith(4, 0, 200))]).channel).toBe('b');
  });

  it('no calls yet counts as the best latency: an idle channel gets traffic and so a figure', () => {
    expect(route([cand('a', wechat(), closedWith(4, 0, 5)), cand('b', wechat(), closed())]).channel).toBe('b');
  });

  it('all equal: the name decides, in code-unit order, whatever the candidates order', () => {
    const c = [cand('b', wechat()), cand('B', wechat()), cand('a', wechat())];
    expect(route(c).channel).toBe('B');
    expect(route([...c].reverse()).channel).toBe('B');
  });

  it('cost comes before health', () => {
    expect(route([cand('cheap', wechat(), closedWith(4, 1, 900)), cand('dear', wechat({ cost: { fixedFen: 1 } }), closedWith(4, 0, 10))]).channel).toBe('cheap');
  });
});

describe('breakers', () => {
  it('an open channel is passed over for a dearer closed one', () => {
    expect(route([cand('cheap', wechat(), open()), cand('dear', wechat({ cost: { bps: 600 } }))])).toMatchObject({ channel: 'dear', probe: false, why: 'lowest cost 600.00 fen of 1 admitted' });
  });

  it('a cheaper half-open channel is probed when the roll admits it, passed over otherwise', () => {
    const c = [cand('mending', wechat(), halfOpen()), cand('dear', wechat({ cost: { bps: 600 } }))];
    expect(route(c, { roll: 0.1 })).toEqual({ channel: 'mending', probe: true, why: 'lowest cost 0.00 fen of 2 admitted; half-open probe' });
    expect(route(c, { roll: 0.25 })).toMatchObject({ channel: 'dear', probe: false });
  });

  it('a half-open channel with maxProbes in flight is passed over', () => {
    const full = probeStarted(probeStarted(halfOpen()));
    expect(route([cand('mending', wechat(), full), cand('dear', wechat({ cost: { bps: 600 } }))], { roll: 0 }).channel).toBe('dear');
  });

  it('an open channel whose cool-down has passed is half-open for routing, ticked or not', () => {
    const h = open(T - cfg.coolDownMs);
    expect(route([cand('x', wechat(), h), cand('dear', wechat({ cost: { bps: 600 } }))], { roll: 0 })).toMatchObject({ channel: 'x', probe: true });
  });

  it('all open: fails open to the channel whose cool-down ends first, and says so', () => {
    const c = [cand('a', wechat(), open(T - 100)), cand('b', wechat(), open(T - 3_000)), cand('c', wechat(), open(T - 2_000))];
    expect(route(c)).toEqual({ channel: 'b', probe: false, why: 'no breaker admits (b open, c open, a open); failing open to b, whose cool-down ends first' });
    expect(route([...c].reverse()).channel).toBe('b');
  });

  it('fail-open ties on cool-down go by name', () => {
    expect(route([cand('z', wechat(), open()), cand('y', wechat(), open())]).channel).toBe('y');
  });

  it('fail-open prefers a half-open channel that did not admit (its cool-down is over) to an open one', () => {
    const c = [cand('open', wechat(), open(T - 4_999)), cand('mending', wechat({ cost: { bps: 900 } }), halfOpen(T - 10))];
    expect(route(c, { roll: 0.9 })).toMatchObject({ channel: 'mending', probe: false, why: expect.stringContaining('failing open to mending') });
  });

  it('fail-open still keeps the hard rules', () => {
    const r = route([cand('sick', wechat(), open()), cand('other', wechat({ merchants: ['m2'] }))]);
    expect(r.channel).toBe('sick');
  });
});

describe('properties', () => {
  const names = ['a', 'b', 'c', 'd', 'e'];
  type HealthKind = 'closed' | 'closed-failing' | 'open' | 'open-cooled' | 'half' | 'half-full';
  const healthOf = (k: HealthKind, i: number): ChannelHealth => {
    switch (k) {
      case 'closed':
        return closed();
      case 'closed-failing':
        return closedWith(6, 2, 100 + i);
      case 'open':
        return open(T - 1_000 * (i + 1));
      case 'open-cooled':
        return open(T - cfg.coolDownMs - i);
      case 'half':
        return halfOpen(T - 100 * (i + 1));
      case 'half-full':
        return probeStarted(probeStarted(halfOpen(T - 100 * (i + 1))));
    }
  };
  const candidateArb = fc.record({
    wallets: fc.subarray([...WALLETS], { minLength: 1 }),
    merchants: fc.option(fc.subarray(['m1', 'm2', 'm3'], { minLength: 1 }), { nil: undefined }),
    minAmount: fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined }),
    maxAmount: fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined }),
    bps: fc.integer({ min: 0, max: 100 }),
    fixedFen: fc.integer({ min: 0, max: 20 }),
    health: fc.constantFrom<HealthKind>('closed', 'closed-failing', 'open', 'open-cooled', 'half', 'half-full'),
  });
  const inputArb = fc.record({
    specs: fc.array(candidateArb, { minLength: 0, maxLength: names.length }),
    wallet: fc.constantFrom<Wallet>(...WALLETS),
    merchantId: fc.constantFrom('m1', 'm2', 'm3'),
    amount: fc.integer({ min: 1, max: 20_000 }),
    disabled: fc.subarray(names),
    pin: fc.option(fc.constantFrom(...names, 'gone'), { nil: undefined }),
    roll: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  });
  type Spec = typeof inputArb extends fc.Arbitrary<infer V> ? V : never;
  function build(x: Spec): RouteInput {
    const candidates = x.specs.map((s, i) => cand(names[i]!, instant({ wallets: s.wallets, merchants: s.merchants, minAmount: s.minAmount, maxAmount: s.maxAmount, cost: { bps: s.bps, fixedFen: s.fixedFen } }), healthOf(s.health, i)));
    return { wallet: x.wallet, merchantId: x.merchantId, amount: x.amount, candidates, overrides: { pinned: x.pin ? { [x.wallet]: x.pin } : {}, disabled: new Set(x.disabled) }, now: T, roll: x.roll, cfg };
  }
  const stateAt = (h: ChannelHealth) => tickHealth(h, T, cfg).health.state;

  it('never routes to a channel a hard rule excludes; no channel only when every one is excluded', () => {
    fc.assert(
      fc.property(inputArb, (x) => {
        const input = build(x);
        const r = chooseChannel(input);
        const eligible = input.candidates.filter((c) => exclusion(c, input) === undefined);
        if (r.channel === null) expect(eligible).toEqual([]);
        else {
          expect(eligible.map((c) => c.name)).toContain(r.channel);
          expect(input.overrides.disabled.has(r.channel)).toBe(false);
          const c = input.candidates.find((y) => y.name === r.channel)!;
          expect(c.config.merchants ?? [input.merchantId]).toContain(input.merchantId);
          expect(input.amount).toBeGreaterThanOrEqual(c.config.minAmount ?? 0);
          expect(input.amount).toBeLessThanOrEqual(c.config.maxAmount ?? Infinity);
        }
      }),
      { seed: 1, numRuns: 1_000 },
    );
  });

  it('an open channel is never chosen while a closed one passes the hard rules, unless pinned; a half-open one only as a probe', () => {
    fc.assert(
      fc.property(inputArb, (x) => {
        const input = build(x);
        const r = chooseChannel(input);
        if (r.channel === null) return;
        const pinnedHere = input.overrides.pinned[input.wallet] === r.channel;
        const chosen = input.candidates.find((c) => c.name === r.channel)!;
        const eligible = input.candidates.filter((c) => exclusion(c, input) === undefined);
        if (pinnedHere) {
          expect(r.why).toMatch(/^pinned for/);
          return;
        }
        if (eligible.some((c) => stateAt(c.health) === 'closed')) {
          expect(stateAt(chosen.health)).not.toBe('open');
          if (stateAt(chosen.health) === 'half_open') expect(r).toMatchObject({ probe: true });
        }
        if (r.probe) expect(admit(chosen.health, T, input.roll, cfg)).toBe('probe');
      }),
      { seed: 2, numRuns: 1_000 },
    );
  });

  it('the chosen admitted channel is the cheapest admitted one; with none admitted it fails open', () => {
    fc.assert(
      fc.property(inputArb, (x) => {
        const input = { ...build(x), overrides: { pinned: {}, disabled: new Set(x.disabled) } };
        const r = chooseChannel(input);
        if (r.channel === null) return;
        const admitted = input.candidates.filter((c) => exclusion(c, input) === undefined && admit(c.health, T, input.roll, cfg) !== 'no');
        if (admitted.length === 0) {
          expect(r.why).toMatch(/failing open/);
          return;
        }
        const chosen = admitted.find((c) => c.name === r.channel)!;
        expect(chosen).toBeDefined();
        for (const c of admitted) expect(costOf(chosen.config, input.amount)).toBeLessThanOrEqual(costOf(c.config, input.amount) + 1e-9);
      }),
      { seed: 3, numRuns: 1_000 },
    );
  });

  it('deterministic: the same input gives the same answer, in whatever order the candidates come', () => {
    fc.assert(
      fc.property(inputArb, fc.infiniteStream(fc.integer()), (x, noise) => {
        const input = build(x);
        const shuffled = [...input.candidates].map((c) => ({ c, k: noise.next().value })).sort((a, b) => a.k - b.k).map((e) => e.c);
        expect(chooseChannel({ ...input, candidates: shuffled })).toEqual(chooseChannel(input));
      }),
      { seed: 4, numRuns: 500 },
    );
  });

  it('with probeShare p, about p of the routings to a half-open channel probe it (seeded rolls)', () => {
    // mulberry32: a seeded, repeatable stream of rolls in [0, 1).
    const rolls = (seed: number) => () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
    };
    for (const [p, seed] of [[0.05, 1], [0.2, 2], [0.5, 3], [0.9, 4], [1, 5]] as const) {
      const c = { ...cfg, probeShare: p };
      const roll = rolls(seed);
      const candidates = [cand('mending', wechat(), halfOpen()), cand('dear', wechat({ cost: { bps: 600 } }))];
      const n = 10_000;
      let probes = 0;
      for (let i = 0; i < n; i++) {
        const r = chooseChannel({ wallet: 'wechat', merchantId: 'm1', amount: 10_000, candidates, overrides: none, now: T, roll: roll(), cfg: c });
        if (r.channel === 'mending') {
          expect(r).toMatchObject({ probe: true });
          probes++;
        } else expect(r.channel).toBe('dear');
      }
      expect(Math.abs(probes / n - p)).toBeLessThan(0.02);
    }
  });

  it('with only a half-open channel, every payment still goes to it, a share of them as probes', () => {
    const candidates = [cand('only', wechat(), halfOpen())];
    const rs = Array.from({ length: 100 }, (_, i) => route(candidates, { roll: i / 100 }));
    expect(rs.every((r) => r.channel === 'only')).toBe(true);
    expect(rs.filter((r) => r.channel !== null && r.probe)).toHaveLength(25);
  });
});
