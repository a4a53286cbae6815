import mqtt, { type MqttClient } from 'mqtt';
import { ALL_UP_FILTER } from '../protocol/index.js';
import type { Logger } from './log.js';

/**
 * The cloud services' one MQTT connection: an ordinary client, so the same code runs against the
 * embedded aedes and an external broker. It subscribes to every box's up/ topics and publishes
 * replies on their down/ topics.
 */
export interface ServiceLinkOptions {
  url: string;
  clientId: string;
  username: string;
  password: string;
  caPem?: string | undefined;
  logger: Logger;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface ServiceLink {
  onMessage(handler: MessageHandler): void;
  publish(topic: string, payload: string, qos: 0 | 1): Promise<void>;
  close(): Promise<void>;
}

export async function connectServiceLink(opts: ServiceLinkOptions): Promise<ServiceLink> {
  const client: MqttClient = mqtt.connect(opts.url, {
    clientId: opts.clientId,
    username: opts.username,
    password: opts.password,
    clean: true,
    reconnectPeriod: 1000,
    // The service pins the broker's own certificate; the host name is loopback, not the cert's CN.
    ...(opts.caPem ? { ca: opts.caPem, checkServerIdentity: () => undefined } : {}),
  });
  let handler: MessageHandler = () => undefined;
  client.on('message', (topic, payload) => handler(topic, payload));
  client.on('error', (err) => opts.logger.error({ err: err.message }, 'service MQTT link error'));
  // Resolved once the first subscription is granted, so nothing a box sends right after start is missed.
  await new Promise<void>((resolve, reject) => {
    client.once('error', reject);
    client.on('connect', () => {
      // TCP_NODELAY on the client side too: a QoS 1 round trip drops from ~40 ms to well under 1 ms.
      (client.stream as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
      client.subscribe(ALL_UP_FILTER, { qos: 1 }, (err) => {
        if (err) opts.logger.error({ err: err.message }, 'service subscription failed');
        else resolve();
      });
    });
  });
  return {
    onMessage(h) {
      handler = h;
    },
    publish(topic, payload, qos) {
      return new Promise((resolve, reject) => client.publish(topic, payload, { qos }, (err) => (err ? reject(err) : resolve())));
    },
    close: () => new Promise<void>((resolve) => client.end(false, {}, () => resolve())),
  };
}
