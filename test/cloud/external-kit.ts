import mqtt, { type MqttClient } from 'mqtt';
import { DynsecAccounts } from '../../cloud/broker/dynsec.js';
import { connectExternal, parseBrokerUrl } from '../../cloud/broker/external-connection.js';
import { externalServiceLink, type ExternalServiceLink } from '../../cloud/broker/external-link.js';
import { createLogger, type Logger } from '../../cloud/log.js';
import { Metrics } from '../../cloud/metrics.js';
import type { MosquittoBroker } from '../support/mosquitto.js';

/**
 * The cloud's pieces on a test Mosquitto, without a whole cloud: box accounts (dynsec.ts), a
 * worker's service link (external-link.ts), and boxes that log in with their accounts.
 */
export const GROUP = 'scanbox-test';

export async function openAccounts(m: MosquittoBroker, opts: { logger?: Logger; metrics?: Metrics; group?: string } = {}): Promise<DynsecAccounts> {
  const logger = opts.logger ?? createLogger('silent');
  const client = await connectExternal({ url: m.adminUrl, keepaliveS: 10, reconnectMs: 100 }, 'accounts', logger);
  return DynsecAccounts.start({ client, username: parseBrokerUrl(m.adminUrl).username, group: opts.group ?? GROUP, logger, metrics: opts.metrics ?? new Metrics() });
}

/** One worker's link, and its connection; the service role must have been granted (openAccounts does it). */
export async function openWorker(m: MosquittoBroker, group = GROUP): Promise<{ link: ExternalServiceLink; client: MqttClient }> {
  const logger = createLogger('silent');
  const client = await connectExternal({ url: m.adminUrl, keepaliveS: 10, reconnectMs: 100 }, 'link', logger);
  return { link: await externalServiceLink(client, { group, logger }), client };
}

export async function openLink(m: MosquittoBroker, group = GROUP): Promise<ExternalServiceLink> {
  return (await openWorker(m, group)).link;
}

export async function connectBox(m: MosquittoBroker, deviceId: string, secret: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(m.url, { clientId: deviceId, username: deviceId, password: secret, reconnectPeriod: 0, clean: true });
  (client.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
  return client;
}
