import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';

/**
 * Operators' passwords, kept as scrypt hashes (node:crypto): N = 2^15, r = 8, p = 1 (32 MiB and
 * ≈ 50–100 ms per try here), 16 random bytes of salt per hash. Unlike a box's 256-bit secret, a
 * password is chosen by a person, so the hash must be slow. The parameters travel in the stored
 * text, so raising them later leaves the older hashes readable:
 *
 *   scrypt$<log2 N>$<r>$<p>$<salt, base64>$<hash, base64>
 */
export interface ScryptParams {
  log2N: number;
  r: number;
  p: number;
}

export const OPERATOR_SCRYPT: ScryptParams = { log2N: 15, r: 8, p: 1 };
const KEY_BYTES = 32;
const SALT_BYTES = 16;
export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 1024;
const OPERATOR_NAME = /^[a-z0-9][a-z0-9._-]{0,31}$/;

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.log2N;
  // Node refuses more than 32 MiB by default, which N = 2^15, r = 8 needs exactly: allow twice that.
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 256 * N * params.r };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))));
}

/** Refuses (SCHEMA_INVALID) a name that is not 1–32 of a-z 0-9 . _ - starting with a letter or digit. */
export function checkOperatorName(name: string): string {
  if (!OPERATOR_NAME.test(name)) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, 'an operator name is 1–32 of a-z 0-9 . _ - (lower case), starting with a letter or digit');
  return name;
}

/** Refuses (SCHEMA_INVALID) a password shorter than 12 or longer than 1024 characters. */
export function checkPasswordRules(password: string): void {
  if ([...password].length < PASSWORD_MIN) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `a password has at least ${PASSWORD_MIN} characters`);
  if (password.length > PASSWORD_MAX) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `a password has at most ${PASSWORD_MAX} characters`);
}

export async function hashPassword(password: string, params: ScryptParams = OPERATOR_SCRYPT, salt: Buffer = randomBytes(SALT_BYTES)): Promise<string> {
  const key = await derive(password, salt, params);
  return ['scrypt', params.log2N, params.r, params.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** False for a wrong password and for a stored text that is not one of these hashes. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [log2N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![log2N, r, p].every(Number.isInteger) || log2N < 10 || log2N > 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const expected = Buffer.from(parts[5]!, 'base64');
  if (expected.length !== KEY_BYTES || password.length > PASSWORD_MAX) return false;
  const key = await derive(password, Buffer.from(parts[4]!, 'base64'), { log2N, r, p });
  return timingSafeEqual(key, expected);
}

let dummy: Promise<string> | undefined;
/**
 * What a login for a name that does not exist is checked against: it takes as long as a real
 * operator's wrong password, so the answer's timing does not tell which names exist.
 */
export function dummyPasswordHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  return dummy;
}
