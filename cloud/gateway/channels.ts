import type { Logger } from 'pino';
import { WALLETS, ErrorCode, ProtocolError, type Wallet } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { CloudConfig } from '../config.js';
import type { MerchantLookup } from '../merchants/merchant.js';
import { alipayGatewayFromConfig } from './alipay/adapter.js';
import type { ChannelConfig } from './channel-config.js';
import type { CallOptions, ChannelGateway, Gateway, PayRequest, QueryRequest, RefundRequest, ReverseRequest } from './gateway.js';
import { httpGateway } from './http-gateway.js';
import { instantGateway } from './instant-gateway.js';
import { wechatGatewayFromConfig } from './wechat/adapter.js';

/**
 * Every gateway call goes to the channel its request names: the attempt's own, fixed when it started.
 * A channel this cloud does not have (removed from the config while attempts were open) is never
 * guessed at: a pay is refused before anything is sent, any later call is `unknown` so the attempt
 * keeps retrying until the channel is back.
 */
export class ChannelRouter implements ChannelGateway {
  constructor(
    private readonly channels: ReadonlyMap<string, Gateway & Partial<ChannelGateway>>,
    private readonly routes: Readonly<Record<Wallet, string>>,
  ) {}

  /** The channel a new attempt of this wallet starts on (channel routing and failover slot in here). */
  channelFor(wallet: Wallet, _merchantId: string): string {
    return this.routes[wallet];
  }

  names(): string[] {
    return [...this.channels.keys()];
  }

  pay(req: PayRequest, opts: CallOptions) {
    const gw = this.channels.get(req.channel);
    if (!gw) return Promise.resolve({ kind: 'failed', reason: 'DECLINED', message: `no channel ${req.channel} is configured for ${req.wallet}; nothing was sent` } as const);
    return gw.pay(req, opts);
  }

  query(req: QueryRequest, opts: CallOptions) {
    return this.channels.get(req.channel)?.query(req, opts) ?? Promise.resolve(missing(req.channel));
  }

  reverse(req: ReverseRequest, opts: CallOptions) {
    return this.channels.get(req.channel)?.reverse(req, opts) ?? Promise.resolve(missing(req.channel));
  }

  refund(req: RefundRequest, opts: CallOptions) {
    return this.channels.get(req.channel)?.refund(req, opts) ?? Promise.resolve(missing(req.channel));
  }

  async close(): Promise<void> {
    await Promise.all([...this.channels.values()].map((g) => g.close?.()));
  }
}

function missing(channel: string) {
  return { kind: 'unknown', code: 'OTHER', message: `channel ${channel} is not configured on this cloud; retrying until it is` } as const;
}

export interface ChannelDeps {
  merchants: MerchantLookup;
  clock: Clock;
  logger: Logger;
}

/**
 * The configured channels, plus one per wallet nobody routed: named after the wallet, on
 * `gatewayUrl` (the generic JSON gateway), the built-in instant gateway, or `fallback` (a test's or
 * a simulator's in-process gateway). Refuses a route to a channel that does not exist.
 */
export function channelsFromConfig(config: Pick<CloudConfig, 'channels' | 'routes' | 'gatewayUrl' | 'gateway'>, deps: ChannelDeps, fallback?: Gateway): ChannelRouter {
  const channels = new Map<string, Gateway & Partial<ChannelGateway>>();
  for (const [name, c] of Object.entries(config.channels)) channels.set(name, buildChannel(name, c, deps));
  const routes = {} as Record<Wallet, string>;
  for (const wallet of WALLETS) {
    const name = config.routes[wallet] ?? wallet;
    routes[wallet] = name;
    if (channels.has(name)) continue;
    if (config.routes[wallet]) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `routes.${wallet} names channel ${name}, which is not in channels`);
    const generic = fallback ?? genericGateway(config, deps.logger);
    if (generic) channels.set(name, generic);
  }
  if (channels.size === 0) throw new ProtocolError(ErrorCode.CONFIG_INVALID, 'no payment channel: configure channels, or give --gateway-url (or --gateway instant for benchmarks)');
  return new ChannelRouter(channels, routes);
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
