import type { Wallet } from '../../protocol/index.js';
import { walletsOf, type ChannelConfig, type ChannelHealthConfig } from './channel-config.js';
import { admit, coolDownEnd, healthSummary, tickHealth, type ChannelHealth } from './channel-health.js';

/**
 * Which channel a NEW payment starts on. Pure: the router passes the channels with their health,
 * the operator's overrides, the time and a random roll in [0, 1); the same input gives the same
 * answer. Queries, reverses and refunds never come here: they stay on their attempt's channel.
 *
 * Order of decision:
 * 1. hard rules — the channel serves the wallet, allows the merchant, takes the amount, is not
 *    disabled; a channel failing one is never used, pinned or not;
 * 2. a pin (operator's, or the config's `routes` entry) that passes them wins, even with its breaker
 *    open: the operator decided;
 * 3. among channels whose breaker admits the payment, the lowest cost, then the lower failure ratio,
 *    then the lower p50 latency (no calls yet counts as 0: an idle channel earns a figure), then the name;
 * 4. none admits: fail open to the channel whose cool-down ends first. Refusing the payment is worse
 *    than trying a failing channel: an unknown outcome is queried and reversed, so no money is lost.
 */

export interface RouteCandidate {
  name: string;
  config: ChannelConfig;
  health: ChannelHealth;
}

export interface Overrides {
  /** The channel each wallet's new payments must use (`channel pin`, or the config's `routes`). */
  pinned: Partial<Record<Wallet, string>>;
  /** Channels the operator took out of routing (`channel disable`). */
  disabled: ReadonlySet<string>;
}

export interface RouteInput {
  wallet: Wallet;
  merchantId: string;
  /** Fen. */
  amount: number;
  candidates: readonly RouteCandidate[];
  overrides: Overrides;
  now: number;
  /** Uniform in [0, 1): decides whether a half-open channel gets this payment as a probe. */
  roll: number;
  cfg: ChannelHealthConfig;
}

export type RouteChoice = { channel: string; probe: boolean; why: string } | { channel: null; why: string };

export function chooseChannel(input: RouteInput): RouteChoice {
  const eligible = input.candidates.filter((c) => !exclusion(c, input));
  if (eligible.length === 0) return { channel: null, why: noChannel(input) };
  const pin = input.overrides.pinned[input.wallet];
  const pinned = pin === undefined ? undefined : eligible.find((c) => c.name === pin);
  if (pinned) return usePinned(pinned, input);
  const note = pin === undefined ? '' : `pinned ${pin} skipped (${pinSkipped(pin, input)}); `;
  const choice = cheapestAdmitted(eligible, input) ?? failOpen(eligible, input);
  return { ...choice, why: note + choice.why };
}

/** Price of this payment on this channel, in fen (fractional: compared, not charged). */
export function costOf(config: ChannelConfig, amount: number): number {
  return (config.cost.bps * amount) / 10_000 + config.cost.fixedFen;
}

function costUnits(config: ChannelConfig, amount: number): number {
  return config.cost.bps * amount + config.cost.fixedFen * 10_000;
}

/** Why a hard rule keeps this channel from the payment; undefined: it may take it. */
export function exclusion(c: RouteCandidate, input: Pick<RouteInput, 'wallet' | 'merchantId' | 'amount' | 'overrides'>): string | undefined {
  const { config } = c;
  const wallets = walletsOf(config);
  if (!wallets.includes(input.wallet)) return `serves ${wallets.join(', ')} only`;
  if (config.merchants && !config.merchants.includes(input.merchantId)) return `merchant ${input.merchantId} not allowed`;
  if (config.minAmount !== undefined && input.amount < config.minAmount) return `${input.amount} fen below its minimum ${config.minAmount}`;
  if (config.maxAmount !== undefined && input.amount > config.maxAmount) return `${input.amount} fen above its maximum ${config.maxAmount}`;
  if (input.overrides.disabled.has(c.name)) return 'disabled by the operator';
  return undefined;
}

function usePinned(c: RouteCandidate, input: RouteInput): RouteChoice {
  // A half-open pinned channel still needs probes to close: without them it would stay half-open.
  const verdict = admit(c.health, input.now, input.roll, input.cfg);
  const state = tickHealth(c.health, input.now, input.cfg).health.state;
  const why = `pinned for ${input.wallet} by the operator` + (state === 'closed' ? '' : `; breaker is ${state.replace('_', '-')}, used anyway`);
  return { channel: c.name, probe: verdict === 'probe', why };
}

function cheapestAdmitted(eligible: readonly RouteCandidate[], input: RouteInput): RouteChoice | undefined {
  const admitted = eligible
    .map((c) => ({ c, verdict: admit(c.health, input.now, input.roll, input.cfg) }))
    .filter((a) => a.verdict !== 'no')
    .map((a) => ({ ...a, rank: rankOf(a.c, input) }))
    .sort((a, b) => compareRanks(a.rank, b.rank));
  const best = admitted[0];
  if (!best) return undefined;
  const probe = best.verdict === 'probe';
  const why = `lowest cost ${best.rank.cost.toFixed(2)} fen of ${admitted.length} admitted` + (probe ? '; half-open probe' : '');
  return { channel: best.c.name, probe, why };
}

function failOpen(eligible: readonly RouteCandidate[], input: RouteInput): RouteChoice {
  const ticked = eligible.map((c) => ({ c, health: tickHealth(c.health, input.now, input.cfg).health }));
  const byCoolDown = ticked.sort((a, b) => coolDownEnd(a.health, input.cfg) - coolDownEnd(b.health, input.cfg) || byName(a.c.name, b.c.name));
  const states = byCoolDown.map((t) => `${t.c.name} ${t.health.state.replace('_', '-')}`).join(', ');
  const first = byCoolDown[0]!; // eligible is never empty here
  const why = `no breaker admits (${states}); failing open to ${first.c.name}, whose cool-down ends first`;
  return { channel: first.c.name, probe: false, why };
}

interface Rank {
  name: string;
  cost: number;
  /** The cost in 1/10000 fen: whole numbers for whole bps, so equal prices compare equal (no float residue). */
  costUnits: number;
  failureRatio: number;
  p50: number;
}

function rankOf(c: RouteCandidate, input: RouteInput): Rank {
  const s = healthSummary(c.health, input.now, input.cfg);
  return { name: c.name, cost: costOf(c.config, input.amount), costUnits: costUnits(c.config, input.amount), failureRatio: s.failureRatio, p50: s.p50LatencyMs ?? 0 };
}

function compareRanks(a: Rank, b: Rank): number {
  return a.costUnits - b.costUnits || a.failureRatio - b.failureRatio || a.p50 - b.p50 || byName(a.name, b.name);
}

/** Code-unit order, not the locale's: the same on every machine. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function pinSkipped(pin: string, input: RouteInput): string {
  const c = input.candidates.find((x) => x.name === pin);
  return c ? (exclusion(c, input) ?? 'eligible') : 'not configured';
}

function noChannel(input: RouteInput): string {
  const what = `${input.wallet} payment of ${input.amount} fen for merchant ${input.merchantId}`;
  if (input.candidates.length === 0) return `no channel is configured for a ${what}`;
  const sorted = [...input.candidates].sort((a, b) => byName(a.name, b.name)); // the why is as deterministic as the choice
  const reasons = sorted.map((c) => `${c.name}: ${exclusion(c, input)}`).join('; ');
  return `no channel may take a ${what} — ${reasons}`;
}
