import type { Aedes, AedesPublishPacket } from 'aedes';
import { ALL_UP_FILTER } from '../../protocol/index.js';

/**
 * How the cloud's services meet the boxes: every message on an `up/` topic, with the client that
 * published it when the broker knows it, and publishing on `down/` topics. The embedded broker
 * hands messages over in-process; an external broker (scale-out) is another implementation of the
 * same three calls.
 */
export type MessageHandler = (topic: string, payload: Buffer, publisher: string | undefined) => void;

export interface ServiceLink {
  onMessage(handler: MessageHandler): void;
  publish(topic: string, payload: string, qos: 0 | 1): Promise<void>;
  close(): Promise<void>;
}

/**
 * The service as an in-process subscriber of aedes: no loopback socket, no second encode/decode
 * of each message, and the publisher's id comes from the broker itself (aedes stamps `clientId`
 * on a packet published by a client) instead of being matched up afterwards.
 *
 * The box's PUBACK is sent once every subscriber has called back; the handler is answered at
 * once, as a networked subscriber would PUBACK on receipt, so a slow payment never holds up the
 * box's next message (its outbox is stop-and-wait).
 */
export async function embeddedServiceLink(aedes: Aedes): Promise<ServiceLink> {
  let handler: MessageHandler = () => undefined;
  const deliver = (packet: AedesPublishPacket, done: () => void) => {
    const publisher = (packet as { clientId?: string }).clientId;
    handler(packet.topic, packet.payload as Buffer, publisher);
    done();
  };
  await new Promise<void>((resolve) => aedes.subscribe(ALL_UP_FILTER, deliver, resolve));
  return {
    onMessage(h) {
      handler = h;
    },
    publish: (topic, payload, qos) =>
      new Promise((resolve, reject) =>
        aedes.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
      ),
    close: () => new Promise<void>((resolve) => aedes.unsubscribe(ALL_UP_FILTER, deliver, resolve)),
  };
}
