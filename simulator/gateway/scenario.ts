import { z } from 'zod';
import { FailReason } from '../../cloud/gateway/gateway.js';
import { createRandom, hashSeed } from '../random.js';

/**
 * What the scripted gateway does with one payment code: the story of the customer and the wallet
 * behind it. Scenarios are plain JSON so another process can bind them over HTTP and a fleet run can
 * read a mix from a file. Times are milliseconds of the gateway's clock.
 */
const ms = z.number().int().nonnegative();
const then = z.enum(['success', 'failure']);

export const Scenario = z.discriminatedUnion('name', [
  /**
   * Charged at once. `discount`: fen the wallet's coupons pay (the receipt shows it). `chargeDelta`: the
   * wallet charges amount + delta — a wallet fault the cloud must catch (a 13-fen short charge is -13).
   */
  z.strictObject({ name: z.literal('success'), discount: z.number().int().min(0).optional(), chargeDelta: z.number().int().optional() }),
  /** A definitive failure answered to the pay. */
  z.strictObject({ name: z.literal('failure'), reason: FailReason.default('INSUFFICIENT_FUNDS') }),
  /** USERPAYING: the customer types the password and the charge lands `confirmAfterMs` after the pay. */
  z.strictObject({ name: z.literal('user_paying'), confirmAfterMs: ms.default(5_000) }),
  /** USERPAYING, then the customer gives up: the order fails (DECLINED) unless reversed first. */
  z.strictObject({ name: z.literal('user_gives_up'), giveUpAfterMs: ms.default(30_000) }),
  /** The pay is answered SYSTEMERROR/BANKERROR; the truth (charged or not) is decided at once and queries tell it. */
  z.strictObject({
    name: z.literal('gateway_error'),
    code: z.enum(['SYSTEMERROR', 'BANKERROR']).default('SYSTEMERROR'),
    then: then.default('success'),
    reason: FailReason.default('DECLINED'),
  }),
  /**
   * The pay gets no answer for `hangMs` (the caller's timeout fires first). `charged`: the charge
   * happened anyway (queries find it), or the request never got through (queries say not_found).
   */
  z.strictObject({ name: z.literal('hang'), charged: z.boolean().default(true), hangMs: ms.default(600_000) }),
  /** Pay answers USERPAYING; the first `flaps` queries alternate in_progress / SYSTEMERROR before the truth. */
  z.strictObject({ name: z.literal('query_flaps'), flaps: z.number().int().min(0).default(4), then: then.default('success'), reason: FailReason.default('DECLINED') }),
  /** The customer never decides; the first `times` reverses answer retry_later (recall=Y). */
  z.strictObject({ name: z.literal('reverse_retry'), times: z.number().int().min(0).default(3) }),
  /** Pending until reversed; the charge lands `landAfterMs` after the reverse was answered. */
  z.strictObject({ name: z.literal('late_success'), landAfterMs: ms.default(0) }),
]);
export type Scenario = z.output<typeof Scenario>;
export type ScenarioInput = z.input<typeof Scenario>;
export type ScenarioName = Scenario['name'];
export const SCENARIO_NAMES = Scenario.options.map((o) => o.shape.name.value) as ScenarioName[];

/** Uniform latency, with an optional slow tail; `{minMs:0,maxMs:0}` is instant (no timers at all). */
export const Latency = z
  .strictObject({
    minMs: ms.default(0),
    maxMs: ms.default(0),
    tailProbability: z.number().min(0).max(1).default(0),
    tailMs: ms.default(0),
  })
  .refine((l) => l.maxMs >= l.minMs, 'latency maxMs must be >= minMs');
export type Latency = z.output<typeof Latency>;
export const INSTANT: Latency = { minMs: 0, maxMs: 0, tailProbability: 0, tailMs: 0 };

/** A weighted choice of scenarios for codes nobody bound explicitly (the `--mix FILE` format). */
export const ScenarioMix = z.strictObject({
  scenarios: z.array(z.strictObject({ weight: z.number().positive(), scenario: Scenario })).min(1),
  latency: Latency.default(INSTANT),
});
export type ScenarioMix = z.output<typeof ScenarioMix>;
export type ScenarioMixInput = z.input<typeof ScenarioMix>;

/** Mostly happy customers, with a little of every abnormal flow. */
export const DEFAULT_MIX: ScenarioMix = ScenarioMix.parse({
  scenarios: [
    { weight: 80, scenario: { name: 'success' } },
    { weight: 6, scenario: { name: 'user_paying', confirmAfterMs: 3_000 } },
    { weight: 3, scenario: { name: 'failure', reason: 'INSUFFICIENT_FUNDS' } },
    { weight: 2, scenario: { name: 'failure', reason: 'CODE_EXPIRED' } },
    { weight: 3, scenario: { name: 'gateway_error', code: 'SYSTEMERROR', then: 'success' } },
    { weight: 2, scenario: { name: 'gateway_error', code: 'BANKERROR', then: 'failure' } },
    { weight: 2, scenario: { name: 'query_flaps', flaps: 3 } },
    { weight: 2, scenario: { name: 'user_gives_up', giveUpAfterMs: 20_000 } },
  ],
  latency: { minMs: 5, maxMs: 40 },
});

/**
 * The scenario for an unbound code, chosen from the code and the seed alone, so the same code gets the
 * same story however many other payments ran before it.
 */
export function pickScenario(mix: ScenarioMix, seed: number | string, code: string): Scenario {
  const total = mix.scenarios.reduce((sum, s) => sum + s.weight, 0);
  let roll = createRandom(hashSeed(seed, code)).next() * total;
  for (const entry of mix.scenarios) {
    roll -= entry.weight;
    if (roll < 0) return entry.scenario;
  }
  return mix.scenarios[mix.scenarios.length - 1]!.scenario;
}
