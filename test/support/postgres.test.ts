import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { findPostgresBinDir, startPostgres } from './postgres.js';

/** The throwaway PostgreSQL of the store's tests: found or named, on loopback only, gone afterwards. */
describe('test PostgreSQL', () => {
  it('without server binaries it fails naming the Debian package, never skips', () => {
    const empty = mkdtempSync(join(tmpdir(), 'no-pg-'));
    try {
      expect(() => findPostgresBinDir({ PATH: empty }, join(empty, 'postgresql'))).toThrow(/apt-get install -y --no-install-recommends postgresql/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('runs a server on a loopback port with its socket in its own temp dir, fsync off; stopping removes it', async () => {
    const cluster = await startPostgres();
    let dir = '';
    try {
      const c = new pg.Client({ connectionString: await cluster.createDatabase('probe') });
      await c.connect();
      const settings = await c.query(`SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', 'unix_socket_directories', 'fsync', 'port')`);
      await c.end();
      const s = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));
      expect(s).toMatchObject({ listen_addresses: '127.0.0.1', fsync: 'off', port: String(cluster.port) });
      dir = s.unix_socket_directories as string;
      expect(dir.startsWith(tmpdir())).toBe(true);
      expect(existsSync(join(dir, `.s.PGSQL.${cluster.port}`))).toBe(true);
    } finally {
      await cluster.stop();
    }
    expect(existsSync(dir)).toBe(false);
    const refused = new pg.Client({ connectionString: cluster.url('postgres') });
    await expect(refused.connect()).rejects.toThrow(/ECONNREFUSED/);
  });
});
