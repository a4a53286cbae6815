import { readFileSync, statSync } from 'node:fs';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';

/**
 * A provider credential (API key, client certificate and key, RSA private key, the wallet's public
 * key) read from the file the cloud config names, at start. Refused — the cloud does not start — when
 * the file is missing, unreadable, empty, or readable by anyone but its owner: a key another local
 * user can read is a key to the provider account. The error names the file, never its content.
 */
export function readCredentialFile(path: string, what: string): Buffer {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch (err) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { file: path });
  }
  if (mode & 0o077) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what}: ${path} is readable by others (mode ${mode.toString(8)}); run chmod 600 on it`, { file: path });
  }
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { file: path });
  }
  if (data.length === 0) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what}: ${path} is empty`, { file: path });
  return data;
}

/** The same, as text with surrounding whitespace trimmed (an API key file ends with a newline). */
export function readCredentialText(path: string, what: string): string {
  const text = readCredentialFile(path, what).toString('utf8').trim();
  if (text === '') throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what}: ${path} is empty`, { file: path });
  return text;
}

/** A CA certificate to trust (a simulator's, a private PKI's) is public: any mode will do, but a file that cannot be read stops the cloud. */
export function readCaFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { file: path });
  }
}
