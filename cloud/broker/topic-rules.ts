import { DOWN_KINDS, deviceDownFilter, downTopic, parseTopic } from '../../protocol/index.js';

/**
 * The one rule of every broker the cloud runs on, for the brokers that ask the cloud (the embedded
 * one, EMQX through cloud/http/emqx-auth.ts): a box publishes only on its own up/ topics and
 * subscribes only to its own down/. Mosquitto holds the same rule as ACLs (dynsec.ts boxAcls).
 * Each function answers null when allowed, else why not.
 */
export function publishRefusal(deviceId: string, topic: string): string | null {
  let t;
  try {
    t = parseTopic(topic);
  } catch {
    return 'topic is not a scanbox topic';
  }
  if (t.direction !== 'up') return 'a device publishes only on its up/ topics';
  return t.deviceId === deviceId ? null : "a device may not publish on another device's topics";
}

export function subscribeRefusal(deviceId: string, filter: string): string | null {
  let own: string[];
  try {
    own = [deviceDownFilter(deviceId), ...DOWN_KINDS.map((k) => downTopic(deviceId, k))];
  } catch {
    return 'the client id is not a device id';
  }
  return own.includes(filter) ? null : 'a device may subscribe only to its own down/ topics';
}
