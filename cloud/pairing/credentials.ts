import { randomBytes, randomInt, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { PAIRING_CODE_ALPHABET, PAIRING_CODE_LENGTH } from '../../protocol/index.js';
import type { ServerKey } from './server-key.js';

/**
 * Secrets and identifiers the cloud issues. A device secret is stored as `hmac-sha256$<mac>` under
 * the server key (server-key.ts). Stores written before that hold `scrypt$N$r$p$salt$hash`: such a
 * hash is still verified (once, on the thread pool) and then rewritten as a keyed hash.
 */
const KEYED = 'hmac-sha256';
const SECRET_PURPOSE = 'device-secret';
const SCRYPT_MAXMEM = 64 * 1024 * 1024;

/** 32 random bytes, base64url: 43 characters. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashSecret(key: ServerKey, secret: string | Buffer): string {
  return `${KEYED}$${key.mac(SECRET_PURPOSE, secret).toString('base64url')}`;
}

/** Which kind of check a stored hash needs: a keyed hash is checked at once, a legacy one costs a scrypt run. */
export function isLegacyHash(stored: string): boolean {
  return !stored.startsWith(`${KEYED}$`);
}

export function verifyKeyed(key: ServerKey, secret: string | Buffer, stored: string): boolean {
  const expected = Buffer.from(stored.slice(KEYED.length + 1), 'base64url');
  const actual = key.mac(SECRET_PURPOSE, secret);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export async function verifyLegacyScrypt(secret: string | Buffer, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const opts: ScryptOptions = { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT_MAXMEM };
  const key = await new Promise<Buffer>((resolve, reject) => scrypt(secret, Buffer.from(salt, 'base64url'), expected.length || 32, opts, (err, k) => (err ? reject(err) : resolve(k))));
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** `length` characters of Crockford base32 from the CSPRNG. */
export function randomBase32(length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += PAIRING_CODE_ALPHABET[randomInt(PAIRING_CODE_ALPHABET.length)];
  return s;
}

export function generatePairingCode(): string {
  return randomBase32(PAIRING_CODE_LENGTH);
}

/**
 * `sb` + 10 base32 characters: 12 in all, so `<deviceId>-<seq>` keeps 19 characters for the
 * sequence within WeChat's 32-character out_trade_no.
 */
export function generateDeviceId(): string {
  return `sb${randomBase32(10)}`;
}
