import { createHash, randomBytes, randomInt, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { PAIRING_CODE_ALPHABET, PAIRING_CODE_LENGTH } from '../protocol/index.js';

/**
 * Secrets and identifiers the cloud issues. Only a scrypt hash of a device secret is stored;
 * scrypt runs on libuv's thread pool (async), so a reconnect storm does not freeze the event loop.
 */
const SCRYPT: ScryptOptions = { N: 16_384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_LEN = 32;

function scryptAsync(secret: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(secret, salt, KEY_LEN, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** 32 random bytes, base64url: 43 characters. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** `scrypt$N$r$p$salt$hash`, so the cost can be raised later without breaking stored hashes. */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await scryptAsync(secret, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A fast digest for the in-memory cache of already-verified secrets (never stored). */
export function digest(secret: string | Buffer): Buffer {
  return createHash('sha256').update(secret).digest();
}

export function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
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
