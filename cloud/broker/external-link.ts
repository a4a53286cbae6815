import type { MqttClient } from 'mqtt';
import { ALL_UP_FILTER, ErrorCode, parseTopic, ProtocolError } from '../../protocol/index.js';
import type { Logger } from '../log.js';
import type { MessageHandler, ServiceLink } from './service-link.js';

/**
 * The services' side of an external MQTT 5 broker: an ordinary client subscribed, QoS 1, to every
 * box's up/ topics through a shared subscription, `$share/<group>/scanbox/v1/d/+/up/+`. The broker
 * hands each message to one subscriber of the group, so N workers split the boxes' messages, and
 * when a worker's connection goes its share goes to the others.
 *
 * The publisher's identity: a broker does not tell a subscriber who published a message. The link
 * reports the device id in the topic, which is the publisher's own: the broker's ACL lets a box
 * publish only under its own up/ (dynsec.ts for Mosquitto, cloud/http/emqx-auth.ts for EMQX). That
 * ACL is the line that stops a box speaking for another here; the transaction service's own check
 * (the attempt's outTradeNo belongs to the topic's device) still applies behind it.
 *
 * A message is acknowledged (PUBACK) once the handler has been called, as the embedded link does:
 * a slow payment never holds up the next message. One handed to a worker that dies before handling
 * it is lost, as any single message may be; the box's outbox and queries recover it.
 */
export interface ExternalLinkOptions {
  /** Workers with the same group split the messages; a second cloud on the same broker needs its own. */
  group: string;
  logger: Logger;
}

export function sharedUpFilter(group: string): string {
  return `$share/${group}/${ALL_UP_FILTER}`;
}

/** Subscribes before returning: a worker that is not given its share fails to start instead of idling. */
export async function externalServiceLink(client: MqttClient, opts: ExternalLinkOptions): Promise<ExternalServiceLink> {
  const filter = sharedUpFilter(opts.group);
  let handler: MessageHandler = () => undefined;
  const deliver = (topic: string, payload: Buffer) => handler(topic, payload, topicDevice(topic));
  client.on('message', deliver);
  await subscribe(client, filter);
  let closed = false;
  let subscribed = true;
  return {
    filter,
    onMessage(h) {
      handler = h;
    },
    async publish(topic, payload, qos) {
      // While the connection is down mqtt.js keeps the message and sends it once it is back.
      await client.publishAsync(topic, payload, { qos });
    },
    async stopReceiving() {
      if (!subscribed || closed) return;
      subscribed = false;
      await client.unsubscribeAsync(filter).catch((err: Error) => opts.logger.warn({ err: err.message }, 'unsubscribing the shared subscription failed; the broker drops it with the connection'));
    },
    async close() {
      if (closed) return;
      closed = true;
      client.off('message', deliver);
      await client.endAsync();
    },
  };
}

export interface ExternalServiceLink extends ServiceLink {
  readonly filter: string;
  /**
   * Leaves the group: the broker sends this worker's share to the others from now on, while what it
   * has in hand finishes and its publishes still go out.
   */
  stopReceiving(): Promise<void>;
}

async function subscribe(client: MqttClient, filter: string): Promise<void> {
  let granted;
  try {
    granted = await client.subscribeAsync(filter, { qos: 1 });
  } catch (err) {
    throw refused(filter, (err as Error).message);
  }
  const code = granted[0]?.qos ?? 128;
  if (code >= 0x80) throw refused(filter, `reason code ${code}`);
}

function refused(filter: string, why: string): ProtocolError {
  return new ProtocolError(ErrorCode.CONFIG_INVALID, `the broker refused the cloud's subscription to ${filter} (${why}): the cloud's broker user needs subscribe rights on it (on Mosquitto the cloud grants itself the role at start; see cloud/README.md "External broker")`);
}

/** The device id in a scanbox topic; undefined for anything else (the service refuses it). */
function topicDevice(topic: string): string | undefined {
  try {
    return parseTopic(topic).deviceId;
  } catch {
    return undefined;
  }
}
