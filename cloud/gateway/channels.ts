import type { Logger } from 'pino';
import { ErrorCode, ProtocolError, WALLETS, type Wallet } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { CloudConfig } from '../config.js';
import type { MerchantLookup } from '../merchants/merchant.js';
import type { Metrics } from '../metrics.js';
import { alipayGatewayFromConfig } from './alipay/adapter.js';
import { ChannelConfig, DEFAULT_CHANNEL_HEALTH, walletsOf, type ChannelHealthConfig } from './channel-config.js';
import { healthSummary, newHealth, probeAbandoned, probeStarted, recordCall, tickHealth, type ChannelHealth, type HealthSummary, type Transition } from './channel-health.js';
import type { CallOptions, ChannelGateway, Gateway, PayRequest, QueryRequest, RefundRequest, ReverseRequest } from './gateway.js';
import { httpGateway } from './http-gateway.js';
import { instantGateway } from './instant-gateway.js';
import { chooseChannel, type Overrides } from './routing.js';
import { wechatGatewayFromConfig } from './wechat/adapter.js';

/** One provider account: how routing sees it, and the gateway its calls go through. */
export interface ChannelEntry {
  config: ChannelConfig;
  gateway: Gateway & Partial<ChannelGateway>;
}

export interface RouterDeps {
  clock: Clock;
  random: () => number;
  health: ChannelHealthConfig;
  logger: Logger;
  metrics?: Metrics;
  /** Standing pins from the config's `routes`. */
  routes?: Partial<Record<Wallet, string>>;
  /** A state change of a channel's breaker (for the store's `channel list` view). */
  onTransition?: (channel: string, t: Transition) => void;
}

/** A probe whose pay never went out (refused before the gateway) is given up after this long. */
const PROBE_ABANDON_MS = 60_000;

/**
 * The channels, and the two jobs around them. A NEW payment is routed (routing.ts: hard rules,
 * pins, then the cheapest healthy channel; a half-open channel gets a share as probes). Every call —
 * pay, query, reverse, refund — goes to the channel its request names, the attempt's own, and its
 * result feeds that channel's health (channel-health.ts). A channel this cloud does not have is never
 * guessed at: a pay is refused before anything is sent, a later call is `unknown` so the attempt
 * keeps retrying until the channel is back.
 */
export class ChannelRouter implements ChannelGateway {
  private readonly health = new Map<string, ChannelHealth>();
  private overrides: Overrides;
  /** outTradeNo → its channel and when it was chosen, for new payments chosen as probes. */
  private readonly probes = new Map<string, { channel: string; at: number }>();

  constructor(
    private readonly channels: ReadonlyMap<string, ChannelEntry>,
    private readonly deps: RouterDeps,
  ) {
    for (const name of channels.keys()) this.health.set(name, newHealth(deps.clock.now()));
    this.overrides = { pinned: { ...deps.routes }, disabled: new Set() };
  }

  /** The operator's pins and disabled channels (from the store); the config's routes stay standing pins. */
  setOverrides(o: Overrides): void {
    this.overrides = { pinned: { ...this.deps.routes, ...o.pinned }, disabled: o.disabled };
  }

  names(): string[] {
    return [...this.channels.keys()];
  }

  /** The channel a new attempt starts on, or null when no channel may take it (a pay there is refused unsent). */
  channelFor(wallet: Wallet, merchantId: string, amount: number, outTradeNo: string): string | null {
    const now = this.deps.clock.now();
    this.abandonStaleProbes(now);
    for (const name of this.channels.keys()) this.tick(name, now);
    const candidates = [...this.channels].map(([name, e]) => ({ name, config: e.config, health: this.health.get(name)! }));
    const choice = chooseChannel({ wallet, merchantId, amount, candidates, overrides: this.overrides, now, roll: this.deps.random(), cfg: this.deps.health });
    if (choice.channel === null) {
      this.deps.logger.warn({ outTradeNo, wallet, merchantId, amount, why: choice.why }, 'no channel may take this payment');
      return null;
    }
    if (choice.probe) {
      this.health.set(choice.channel, probeStarted(this.health.get(choice.channel)!));
      this.probes.set(outTradeNo, { channel: choice.channel, at: now });
    }
    this.deps.logger.debug({ outTradeNo, channel: choice.channel, probe: choice.probe, why: choice.why }, 'payment routed');
    return choice.channel;
  }

  /** Each channel's breaker and window figures now. */
  summaries(): Record<string, HealthSummary> {
    const now = this.deps.clock.now();
    return Object.fromEntries([...this.health].map(([name, h]) => [name, healthSummary(h, now, this.deps.health)]));
  }

  pay(req: PayRequest, opts: CallOptions) {
    const gw = this.channels.get(req.channel)?.gateway;
    if (!gw) return Promise.resolve({ kind: 'failed', reason: 'DECLINED', message: `no channel ${req.channel} is configured for ${req.wallet}; nothing was sent` } as const);
    return this.observe(req.channel, req.outTradeNo, () => gw.pay(req, opts));
  }

  query(req: QueryRequest, opts: CallOptions) {
    const gw = this.channels.get(req.channel)?.gateway;
    return gw ? this.observe(req.channel, undefined, () => gw.query(req, opts)) : Promise.resolve(missing(req.channel));
  }

  reverse(req: ReverseRequest, opts: CallOptions) {
    const gw = this.channels.get(req.channel)?.gateway;
    return gw ? this.observe(req.channel, undefined, () => gw.reverse(req, opts)) : Promise.resolve(missing(req.channel));
  }

  refund(req: RefundRequest, opts: CallOptions) {
    const gw = this.channels.get(req.channel)?.gateway;
    return gw ? this.observe(req.channel, undefined, () => gw.refund(req, opts)) : Promise.resolve(missing(req.channel));
  }

  async close(): Promise<void> {
    await Promise.all([...this.channels.values()].map((c) => c.gateway.close?.()));
  }

  /** Times the call and records its result on the channel: an unknown outcome is the channel's failure. */
  private async observe<O extends { kind: string; code?: string }>(channel: string, payOf: string | undefined, call: () => Promise<O>): Promise<O> {
    const started = this.deps.clock.now();
    const outcome = await call();
    const probe = payOf !== undefined && this.probes.delete(payOf);
    const at = this.deps.clock.now();
    const detail = outcome.kind === 'unknown' ? outcome.code : undefined;
    this.apply(channel, recordCall(this.health.get(channel)!, { at, ok: outcome.kind !== 'unknown', latencyMs: at - started, probe, ...(detail ? { detail } : {}) }, this.deps.health));
    return outcome;
  }

  private tick(channel: string, now: number): void {
    this.apply(channel, tickHealth(this.health.get(channel)!, now, this.deps.health));
  }

  private apply(channel: string, r: { health: ChannelHealth; transition?: Transition }): void {
    this.health.set(channel, r.health);
    if (!r.transition) return;
    const t = r.transition;
    this.deps.logger.warn({ channel, from: t.from, to: t.to, why: t.why }, `channel ${channel} ${t.to === 'open' ? 'OPEN: new payments go elsewhere' : t.to === 'closed' ? 'closed: back in routing' : 'half-open: probing'}`);
    this.deps.metrics?.inc('channel_transitions_total', `${channel}:${t.to}`);
    this.deps.onTransition?.(channel, t);
  }

  /** A probe chosen for a pay that never reached the gateway (a code refused first) frees its slot. */
  private abandonStaleProbes(now: number): void {
    for (const [outTradeNo, p] of this.probes) {
      if (now - p.at < PROBE_ABANDON_MS) continue;
      this.probes.delete(outTradeNo);
      this.health.set(p.channel, probeAbandoned(this.health.get(p.channel)!));
    }
  }
}

function missing(channel: string) {
  return { kind: 'unknown', code: 'OTHER', message: `channel ${channel} is not configured on this cloud; retrying until it is` } as const;
}

export interface ChannelDeps {
  merchants: MerchantLookup;
  clock: Clock;
  /** Rolls for half-open probes (default Math.random). */
  random?: () => number;
  logger: Logger;
  metrics?: Metrics;
  onTransition?: RouterDeps['onTransition'];
}

/**
 * The configured channels, plus one per wallet no channel serves: named after the wallet, on
 * `gatewayUrl` (the generic JSON gateway), the built-in instant gateway, or `fallback` (a test's or
 * a simulator's in-process gateway). Refuses a route to a channel that does not exist or does not
 * serve the wallet.
 */
export function channelsFromConfig(
  config: Pick<CloudConfig, 'channels' | 'routes' | 'gatewayUrl' | 'gateway'> & { channelHealth?: ChannelHealthConfig },
  deps: ChannelDeps,
  fallback?: Gateway,
): ChannelRouter {
  const channels = new Map<string, ChannelEntry>();
  for (const [name, c] of Object.entries(config.channels)) channels.set(name, { config: c, gateway: buildChannel(name, c, deps) });
  for (const wallet of WALLETS) {
    checkRoute(wallet, config.routes[wallet], channels);
    if ([...channels.values()].some((e) => walletsOf(e.config).includes(wallet)) || channels.has(wallet)) continue;
    const generic = fallback ?? genericGateway(config, deps.logger);
    if (generic) channels.set(wallet, { config: ChannelConfig.parse({ kind: 'http', url: config.gatewayUrl ?? 'http://in-process.invalid/', wallets: [wallet] }), gateway: generic });
  }
  if (channels.size === 0) throw new ProtocolError(ErrorCode.CONFIG_INVALID, 'no payment channel: configure channels, or give --gateway-url (or --gateway instant for benchmarks)');
  return new ChannelRouter(channels, { ...deps, random: deps.random ?? Math.random, health: config.channelHealth ?? DEFAULT_CHANNEL_HEALTH, routes: config.routes });
}

function checkRoute(wallet: Wallet, route: string | undefined, channels: ReadonlyMap<string, ChannelEntry>): void {
  if (route === undefined) return;
  const entry = channels.get(route);
  if (!entry) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `routes.${wallet} names channel ${route}, which is not in channels`);
  if (!walletsOf(entry.config).includes(wallet)) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `routes.${wallet} names channel ${route}, which does not serve ${wallet}`);
}

function genericGateway(config: Pick<CloudConfig, 'gatewayUrl' | 'gateway'>, logger: Logger): Gateway | undefined {
  if (config.gatewayUrl) return httpGateway(config.gatewayUrl);
  if (config.gateway !== 'instant') return undefined;
  logger.warn('using the built-in INSTANT gateway: every payment succeeds and no money moves. Never use this in production');
  return instantGateway();
}

function buildChannel(name: string, c: ChannelConfig, deps: ChannelDeps): Gateway & Partial<ChannelGateway> {
  const logger = deps.logger.child({ channel: name });
  switch (c.kind) {
    case 'wechat':
      return wechatGatewayFromConfig(name, c, { merchants: deps.merchants, logger });
    case 'alipay':
      return alipayGatewayFromConfig(name, c, { merchants: deps.merchants, clock: deps.clock, logger });
    case 'http':
      return httpGateway(c.url);
    case 'instant':
      return instantGateway();
  }
}
