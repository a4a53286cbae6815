import type { Clock } from '../../protocol/clock.js';
import type { CloudConfig } from '../config.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CloudStore } from '../store/store.js';
import type { ChannelLimits } from '../payments/channel-limits.js';
import type { WorkerLease } from '../payments/lease-keeper.js';
import { DownLink, type DownLinkDeps } from './down-link.js';
import { RefundsService } from './refunds-service.js';
import { TotalsService } from './totals.js';

export interface CounterServicesDeps {
  store: CloudStore;
  gateway: Gateway;
  config: Pick<CloudConfig, 'refundRetryMs' | 'refundRetryMaxMs' | 'refundFlagAfterMs' | 'gatewayCallTimeoutMs'>;
  channelLimits: ChannelLimits;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  timers: Clock;
  random: () => number;
  publish: DownLinkDeps['publish'];
  downVersionFor: DownLinkDeps['downVersionFor'];
  worker?: WorkerLease;
}

/** The cloud's side of the cash register's refunds and totals, as startCloud wires them: one down link for both. */
export function counterServices(d: CounterServicesDeps): { refunds: RefundsService; totals: TotalsService } {
  const link = new DownLink({ publish: d.publish, downVersionFor: d.downVersionFor, clock: d.clock, logger: d.logger });
  const refunds = new RefundsService({
    store: d.store,
    gateway: d.gateway,
    link,
    logger: d.logger,
    metrics: d.metrics,
    clock: d.clock,
    timers: d.timers,
    random: d.random,
    machine: { retryMs: d.config.refundRetryMs, retryMaxMs: d.config.refundRetryMaxMs, flagAfterMs: d.config.refundFlagAfterMs },
    gatewayCallTimeoutMs: d.config.gatewayCallTimeoutMs,
    channelLimits: d.channelLimits,
    ...(d.worker ? { worker: d.worker } : {}),
  });
  return { refunds, totals: new TotalsService({ store: d.store, link, clock: d.clock, logger: d.logger }) };
}
