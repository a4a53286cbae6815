import { z } from 'zod';
import { ErrorCode, ProtocolError } from './errors.js';
import * as f from './fields.js';

/**
 * Pairing runs over the cloud's HTTP API: `POST /v1/pair` with a PairRequest, answered by a
 * PairResponse (200) or a PairErrorBody (400 invalid, 404 unknown code, 410 expired/used, 429 rate
 * limited). Codes are 10 characters of Crockford base32 (no I, L, O, U): 50 bits, typed or scanned.
 */
export const PAIRING_CODE_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const PAIRING_CODE_LENGTH = 10;
export const PAIRING_CODE_PATTERN = /^[0-9ABCDEFGHJKMNPQRSTVWXYZ]{10}$/;

/** Accept what an engineer types: lower case, dashes and spaces between groups. */
export function normalisePairingCode(input: string): string {
  const code = input.toUpperCase().replace(/[\s-]/g, '');
  if (!PAIRING_CODE_PATTERN.test(code)) {
    throw new ProtocolError(ErrorCode.PAIRING_CODE_INVALID, `pairing code must be ${PAIRING_CODE_LENGTH} characters of ${PAIRING_CODE_ALPHABET}`);
  }
  return code;
}

/**
 * The version of the pairing bodies. Pairing is HTTP, not MQTT: it did not change when the MQTT
 * protocol did (v2), and a box of any MQTT version pairs with any cloud in these v1 bodies.
 */
export const PAIRING_VERSION = 1 as const;
const pairingVersion = f.versionLiteral(PAIRING_VERSION);

export const PairRequest = z.strictObject({
  v: pairingVersion,
  code: z.string().regex(PAIRING_CODE_PATTERN, `code must be ${PAIRING_CODE_LENGTH} characters of ${PAIRING_CODE_ALPHABET}`),
  hardwareId: z.string().min(1).max(128).regex(/^[\x21-\x7e]+$/, 'hardwareId must be printable ASCII without spaces'),
  firmware: z.string().min(1).max(32).optional(),
  /**
   * Sent only when a paired box pairs again (`--reset`): its current credentials, proving it is that
   * box, so the cloud may revoke them even when the new code belongs to another merchant.
   */
  previous: z.strictObject({ deviceId: f.deviceId, secret: z.string().min(32).max(128) }).optional(),
});
export const PairResponse = z.strictObject({
  v: pairingVersion,
  deviceId: f.deviceId,
  /** Shown once, to the box only. The cloud keeps a hash. */
  secret: z.string().min(32).max(128),
  mqttUrl: z.string().regex(/^mqtts?:\/\/[^\s]+$/, 'mqttUrl must be mqtt:// or mqtts://'),
  merchantId: z.string().min(1).max(64),
  storeId: z.string().min(1).max(64),
});
export const PairErrorBody = z.strictObject({
  v: pairingVersion,
  error: z.strictObject({ code: f.errorCode, message: f.shortText }),
});
export type PairRequest = z.infer<typeof PairRequest>;
export type PairResponse = z.infer<typeof PairResponse>;
export type PairErrorBody = z.infer<typeof PairErrorBody>;

/**
 * What the pairing QR code carries, so the box's own scanner can pair it:
 * `scanbox:pair?code=XXXXXXXXXX&cloud=http%3A%2F%2Fhost%3A8080`.
 */
export interface PairingQr {
  code: string;
  cloudUrl: string;
}
const QR_PREFIX = 'scanbox:pair?';

export function pairingQrText(qr: PairingQr): string {
  return `${QR_PREFIX}${new URLSearchParams({ code: qr.code, cloud: qr.cloudUrl }).toString()}`;
}

export function parsePairingQr(text: string): PairingQr {
  const t = text.replace(/[\r\n]+$/, '');
  if (!t.startsWith(QR_PREFIX) || t.length > 512) {
    throw new ProtocolError(ErrorCode.PAIRING_CODE_INVALID, 'not a scanbox pairing QR code');
  }
  const params = new URLSearchParams(t.slice(QR_PREFIX.length));
  const cloudUrl = params.get('cloud') ?? '';
  if (!/^https?:\/\/[^\s]+$/.test(cloudUrl)) {
    throw new ProtocolError(ErrorCode.PAIRING_CODE_INVALID, 'pairing QR code has no valid cloud address');
  }
  return { code: normalisePairingCode(params.get('code') ?? ''), cloudUrl };
}
