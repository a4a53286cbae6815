import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { boxAcls, boxRoleName } from '../cloud/broker/dynsec.js';

/**
 * Box accounts written straight into Mosquitto's dynamic-security file before the broker starts: the
 * bulk path for a benchmark's thousands of boxes. The cloud makes a box's account at pairing, through
 * the plugin's control topic, and that cannot be used in bulk: Mosquitto 2.0.11 rewrites its whole
 * JSON file after every command: 1,000 accounts took 11.6 s here and 2,000 took 54 s (100 per
 * message), growing with the square of the count. Nor can the cloud's resync at start make them: the store keeps only a keyed
 * hash of each secret, so it reports such boxes as missing (cloud/broker/dynsec.ts).
 *
 * What is written is what `DynsecAccounts.add` makes — the client (username = client id = device id),
 * its role `boxRoleName(id)` with `boxAcls(id)` — and the password hashed as the plugin hashes it:
 * PBKDF2-HMAC-SHA512, 101 iterations, a 12-byte salt, 64 bytes (checked against a file written by
 * `mosquitto_ctrl dynsec init`). The file is rewritten in place, so it keeps the owner Mosquitto needs.
 */
const ITERATIONS = 101;

interface DynsecFile {
  clients: Record<string, unknown>[];
  roles: Record<string, unknown>[];
  [key: string]: unknown;
}

export function dynsecPasswordHash(password: string, salt: Buffer): string {
  return pbkdf2Sync(password, salt, ITERATIONS, 64, 'sha512').toString('base64');
}

/** Adds an account for each of `ids` (all with `secret`) to the plugin's file at `file`. */
export function addBoxAccounts(file: string, ids: readonly string[], secret: string): void {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as DynsecFile;
  for (const id of ids) {
    const salt = randomBytes(12);
    const rolename = boxRoleName(id);
    doc.roles.push({ rolename, acls: boxAcls(id).map((a) => ({ ...a, priority: 0 })) });
    doc.clients.push({ username: id, clientid: id, textname: 'scanbox box', roles: [{ rolename }], password: dynsecPasswordHash(secret, salt), salt: salt.toString('base64'), iterations: ITERATIONS });
  }
  writeFileSync(file, JSON.stringify(doc));
}
