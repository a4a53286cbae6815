import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashSecret, verifyKeyed } from '../../cloud/pairing/credentials.js';
import { ServerKey } from '../../cloud/pairing/server-key.js';
import { tempDir } from './harness.js';

/** The key device secrets are hashed under: made once, 0600, and refused when exposed or damaged. */
let cleanup: () => void = () => undefined;
afterEach(() => cleanup());

function keyPath(): string {
  const t = tempDir();
  cleanup = t.remove;
  return join(t.dir, 'cloud.db.key');
}

describe('server key file', () => {
  it('is created 0600 with 32 random bytes, and the same key is loaded again', () => {
    const file = keyPath();
    const first = ServerKey.load(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
    const hash = hashSecret(first, 'a-secret');
    expect(verifyKeyed(ServerKey.load(file), 'a-secret', hash)).toBe(true);
    expect(verifyKeyed(ServerKey.random(), 'a-secret', hash)).toBe(false);
  });

  it('is refused with CONFIG_INVALID when others can read it, or when it holds no key', () => {
    const file = keyPath();
    ServerKey.load(file);
    chmodSync(file, 0o644);
    expect(() => ServerKey.load(file)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('chmod 600') }));
    writeFileSync(file, 'not a key\n', { mode: 0o600 });
    chmodSync(file, 0o600);
    expect(() => ServerKey.load(file)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('64 hex') }));
  });

  it('separates purposes: the same value under two purposes gives two different macs', () => {
    const key = ServerKey.random();
    expect(key.mac('device-secret', 'x').equals(key.mac('other', 'x'))).toBe(false);
  });
});
