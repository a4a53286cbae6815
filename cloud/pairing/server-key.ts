import { createHmac, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';

/**
 * The cloud's own secret: the key of the keyed hash under which device secrets are stored. A device
 * secret is 256 random bits, so HMAC-SHA-256 over it is as hard to reverse as scrypt and costs
 * microseconds instead of a 16 MiB, 50 ms scrypt run per login (a cloud restart reconnects a whole
 * fleet; a wrong-secret loop cannot saturate the thread pool). A stolen store without this file
 * verifies nothing offline. Every cloud process of one deployment must hold the same file.
 */
export class ServerKey {
  private constructor(private readonly key: Buffer) {}

  /** Reads the key file, creating it (32 random bytes, hex, 0600) if it does not exist yet. */
  static load(file: string): ServerKey {
    if (!exists(file)) createKeyFile(file);
    const mode = statSync(file).mode & 0o777;
    if (mode & 0o077) {
      throw new ProtocolError(ErrorCode.CONFIG_INVALID, `server key file ${file} is readable by others (mode ${mode.toString(8)}); run chmod 600 on it`, { file });
    }
    const text = readFileSync(file, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) {
      throw new ProtocolError(ErrorCode.CONFIG_INVALID, `server key file ${file} does not hold 64 hex characters; restore it from backup (every device secret is hashed under it)`, { file });
    }
    return new ServerKey(Buffer.from(text, 'hex'));
  }

  /** For tests and tools that need no file. */
  static random(): ServerKey {
    return new ServerKey(randomBytes(32));
  }

  /** HMAC-SHA-256 of `value`, separated by `purpose` so one hash can never stand in for another. */
  mac(purpose: string, value: string | Buffer): Buffer {
    return createHmac('sha256', this.key).update(purpose).update('\0').update(value).digest();
  }
}

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * temp → fsync → link (fails if another process created it first, which is then the one used) →
 * fsync the directory: a power cut never leaves a half-written key, and two processes starting at
 * once (the cloud and `pair create`) agree on one key.
 */
function createKeyFile(file: string): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${randomBytes(32).toString('hex')}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
  const dir = openSync(dirname(file), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
