import { ErrorCode, ProtocolError } from './errors.js';

/** Topic layout: scanbox/v1/d/<deviceId>/{up|down}/<kind>. Pairing is HTTP, not MQTT. */
export const TOPIC_ROOT = 'scanbox/v1/d';

/**
 * `refund` and `totals` (both ways) are protocol v3: a cloud sends them only to a box that announced v3.
 * `up/doctor` (v3) answers the command `doctor`, which a cloud sends only to such a box.
 */
export const UP_KINDS = ['pay', 'cancel', 'query', 'ack', 'heartbeat', 'refund', 'totals', 'doctor'] as const;
export const DOWN_KINDS = ['result', 'progress', 'error', 'command', 'refund', 'totals'] as const;
export type UpKind = (typeof UP_KINDS)[number];
export type DownKind = (typeof DOWN_KINDS)[number];
export type Direction = 'up' | 'down';

export type ParsedTopic =
  | { deviceId: string; direction: 'up'; kind: UpKind }
  | { deviceId: string; direction: 'down'; kind: DownKind };

/** Device ids are what the cloud issues: letters, digits, '-' and '_', 1–64 characters. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function assertDeviceId(deviceId: string): string {
  if (!DEVICE_ID_PATTERN.test(deviceId)) {
    throw new ProtocolError(ErrorCode.TOPIC_INVALID, `device id "${deviceId.slice(0, 70)}" must be 1–64 of A-Z a-z 0-9 _ - (no +, #, /, $ or empty)`);
  }
  return deviceId;
}

export function upTopic(deviceId: string, kind: UpKind): string {
  return `${TOPIC_ROOT}/${assertDeviceId(deviceId)}/up/${kind}`;
}

export function downTopic(deviceId: string, kind: DownKind): string {
  return `${TOPIC_ROOT}/${assertDeviceId(deviceId)}/down/${kind}`;
}

/** Subscription filters. `+` here is MQTT's single-level wildcard, used by the cloud only. */
export function deviceDownFilter(deviceId: string): string {
  return `${TOPIC_ROOT}/${assertDeviceId(deviceId)}/down/+`;
}
export const ALL_UP_FILTER = `${TOPIC_ROOT}/+/up/+`;

/** Parse a concrete topic; anything not exactly one of the two shapes is a TOPIC_INVALID error. */
export function parseTopic(topic: string): ParsedTopic {
  const parts = topic.split('/');
  const bad = (why: string) => new ProtocolError(ErrorCode.TOPIC_INVALID, `topic "${topic.slice(0, 120)}" ${why}`);
  if (parts.length !== 6) throw bad('must have 6 levels: scanbox/v1/d/<deviceId>/<up|down>/<kind>');
  const [a, b, c, deviceId, direction, kind] = parts as [string, string, string, string, string, string];
  if (`${a}/${b}/${c}` !== TOPIC_ROOT) throw bad(`must start with ${TOPIC_ROOT}/`);
  if (!DEVICE_ID_PATTERN.test(deviceId)) throw bad('has an invalid device id');
  if (direction === 'up' && (UP_KINDS as readonly string[]).includes(kind)) {
    return { deviceId, direction, kind: kind as UpKind };
  }
  if (direction === 'down' && (DOWN_KINDS as readonly string[]).includes(kind)) {
    return { deviceId, direction, kind: kind as DownKind };
  }
  throw bad(`has unknown direction/kind "${direction}/${kind}"`);
}
