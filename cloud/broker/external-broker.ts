import type { MqttClient } from 'mqtt';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CloudStore } from '../store/store.js';
import { STORE_CHECKED_ACCOUNTS, type BrokerAccounts } from './broker-accounts.js';
import type { BrokerConfig } from './broker-config.js';
import type { CloudBroker } from './cloud-broker.js';
import { DynsecAccounts } from './dynsec.js';
import { connectExternal, parseBrokerUrl, type ExternalBrokerTarget } from './external-connection.js';
import { externalServiceLink } from './external-link.js';
import { HeartbeatPresence } from './heartbeat-presence.js';
import type { MessageHandler } from './service-link.js';

/**
 * The cloud on an external MQTT 5 broker: one connection for the boxes' accounts (Mosquitto's
 * dynamic security, brought in line with the store before anything else), one for the service link
 * (the shared subscription). Box connections are inferred from their messages (heartbeat-presence.ts).
 */
export interface ExternalBrokerDeps {
  broker: BrokerConfig;
  heartbeatIntervalS: number;
  store: Pick<CloudStore, 'listDevices'>;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

/** Heartbeat intervals without a message after which a box's next message counts as a new connection. */
const PRESENCE_GAP_INTERVALS = 10;
/** QoS 1 messages the broker may have in flight to a worker at once (MQTT 5 receive maximum). */
const RECEIVE_MAXIMUM = 1_000;

export async function connectExternalBroker(deps: ExternalBrokerDeps): Promise<CloudBroker> {
  const { broker: b, logger } = deps;
  const target: ExternalBrokerTarget = { url: b.url, keepaliveS: b.keepaliveS, caFile: b.caFile };
  const addr = parseBrokerUrl(b.url);
  let accounts: BrokerAccounts = STORE_CHECKED_ACCOUNTS;
  let linkClient: MqttClient | undefined;
  try {
    if (b.accounts === 'dynsec') {
      const client = await connectExternal(target, 'accounts', logger);
      accounts = await DynsecAccounts.start({ client, username: addr.username, group: b.group, logger, metrics: deps.metrics }).catch(async (err: unknown) => {
        await client.endAsync(true);
        throw err;
      });
      await accounts.resync(deps.store);
    }
    linkClient = await connectExternal(target, 'link', logger, { properties: { sessionExpiryInterval: 0, receiveMaximum: RECEIVE_MAXIMUM } });
    const link = await externalServiceLink(linkClient, { group: b.group, logger });
    const presence = new HeartbeatPresence({ clock: deps.clock, gapMs: PRESENCE_GAP_INTERVALS * deps.heartbeatIntervalS * 1000 });
    let handler: MessageHandler = () => undefined;
    link.onMessage((topic, payload, publisher) => {
      presence.observe(topic, payload);
      handler(topic, payload, publisher);
    });
    logger.info({ broker: addr.publicUrl, user: addr.username, group: b.group, filter: link.filter, accounts: b.accounts }, 'on the external broker');
    return {
      url: addr.publicUrl,
      port: addr.port,
      serviceLink: { onMessage: (h) => void (handler = h), publish: (t, p, q) => link.publish(t, p, q), close: () => link.close() },
      accounts,
      disconnect(deviceId) {
        // Mosquitto: the account goes, and the plugin drops the box with it. EMQX: the box is refused at its next login or check.
        accounts.remove(deviceId).catch((err: Error) => logger.error({ deviceId, err: err.message }, 'removing a revoked box from the broker failed; it is removed at the next start'));
      },
      setEvents: (events) => presence.setEvents(events),
      stopAccepting: () => link.stopReceiving(),
      async close() {
        await link.close();
        await accounts.close();
      },
    };
  } catch (err) {
    await linkClient?.endAsync(true);
    await accounts.close();
    throw err;
  }
}
