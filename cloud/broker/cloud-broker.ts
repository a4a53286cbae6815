import type { Clock } from '../../protocol/clock.js';
import type { CloudConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CloudStore } from '../store/store.js';
import { STORE_CHECKED_ACCOUNTS, type BrokerAccounts } from './broker-accounts.js';
import { startBroker, type BrokerEvents } from './broker.js';
import type { DeviceAuthenticator } from './device-auth.js';
import { connectExternalBroker } from './external-broker.js';
import type { ServiceLink } from './service-link.js';

/**
 * The broker as the rest of the cloud sees it, embedded or external: the services' link, the boxes'
 * accounts, and the boxes' connections. Nothing past this file knows which one it runs on.
 */
export interface CloudBroker {
  /** Where boxes connect: the embedded listener, or the external broker (without the cloud's credentials). */
  url: string;
  port: number;
  serviceLink: ServiceLink;
  accounts: BrokerAccounts;
  /** Cuts a revoked box off now (the embedded broker closes it; on Mosquitto its account goes). */
  disconnect(deviceId: string): void;
  setEvents(events: BrokerEvents): void;
  /** Takes no more from boxes (new connections, or this worker's share of the messages); what is in hand finishes. */
  stopAccepting(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenBrokerDeps {
  config: CloudConfig;
  auth: DeviceAuthenticator;
  store: CloudStore;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

export async function openBroker(deps: OpenBrokerDeps): Promise<CloudBroker> {
  const c = deps.config;
  if (c.broker) return connectExternalBroker({ broker: c.broker, heartbeatIntervalS: c.heartbeatIntervalS, store: deps.store, logger: deps.logger, metrics: deps.metrics, clock: deps.clock });
  const embedded = await startBroker({ auth: deps.auth, logger: deps.logger, metrics: deps.metrics, host: c.host, port: c.mqttPort, tls: c.tls, drainTimeoutMs: c.drainTimeoutMs, mqttLimits: c.mqttLimits });
  return { ...embedded, accounts: STORE_CHECKED_ACCOUNTS };
}
