import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyPassword } from '../../cloud/dashboard/operator-password.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { tempDir } from '../cloud/harness.js';

/**
 * `scanbox-cloud operator add|password|list|remove`, as an administrator runs them: the password from
 * standard input (`--password-stdin`) or a prompt, never from the command line, stored as a scrypt hash.
 * Each command is its own process (about a second each here, more on a loaded machine).
 */
let dir: string;
let remove: () => void;
let db: string;
beforeEach(() => {
  ({ dir, remove } = tempDir());
  db = join(dir, 'cloud.db');
});
afterEach(() => remove());

function cli(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/scanbox-cloud.js', ...args, '--db', db], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

async function withStore<T>(fn: (s: SqliteStore) => Promise<T>): Promise<T> {
  const s = new SqliteStore(db);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

describe('scanbox-cloud operator', { timeout: 90_000 }, () => {
  it('adds an operator with the password from standard input, kept only as a scrypt hash; lists it without the hash', async () => {
    const added = await cli(['operator', 'add', 'alice', '--password-stdin'], 'correct horse battery staple\n');
    expect(added.code, added.stderr).toBe(0);
    const row = await withStore((s) => s.getOperator('alice'));
    expect(row?.passwordHash).toMatch(/^scrypt\$15\$8\$1\$/);
    expect(await verifyPassword('correct horse battery staple', row!.passwordHash)).toBe(true);
    const listed = await cli(['operator', 'list', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual([{ name: 'alice', createdAt: row!.createdAt, updatedAt: row!.updatedAt }]);
    expect(listed.stdout).not.toContain('scrypt');
    const again = await cli(['operator', 'add', 'alice', '--password-stdin'], 'another long password\n');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('OPERATOR_EXISTS');
  });

  it('never takes the password from the command line, nor without a terminal unless told to read standard input; refuses short ones and bad names — adding nothing', async () => {
    const argv = await cli(['operator', 'add', 'bob', '--password', 'correct horse battery staple']);
    expect(argv.code).toBe(1);
    expect(argv.stderr).toMatch(/unknown option '--password'/);
    const noTty = await cli(['operator', 'add', 'bob'], 'correct horse battery staple\n');
    expect(noTty.code).toBe(1);
    expect(noTty.stderr).toContain('--password-stdin');
    const short = await cli(['operator', 'add', 'bob', '--password-stdin'], 'too short\n');
    expect(short.stderr).toContain('at least 12 characters');
    const name = await cli(['operator', 'add', 'Bob Smith', '--password-stdin'], 'correct horse battery staple\n');
    expect(name.stderr).toContain('SCHEMA_INVALID');
    expect(await withStore((s) => s.listOperators())).toEqual([]);
  });

  it("a new password replaces the hash and ends the operator's sessions; remove ends them too", async () => {
    expect((await cli(['operator', 'add', 'carol', '--password-stdin'], 'first long password\n')).code).toBe(0);
    await withStore((s) => s.createOperatorSession({ idHash: 'h1', operator: 'carol', csrfToken: 't', createdAt: 1, lastSeenAt: 1 }));
    expect((await cli(['operator', 'password', 'carol', '--password-stdin'], 'second long password\n')).code).toBe(0);
    await withStore(async (s) => {
      expect(await verifyPassword('second long password', (await s.getOperator('carol'))!.passwordHash)).toBe(true);
      expect(await s.getOperatorSession('h1')).toBeUndefined();
      await s.createOperatorSession({ idHash: 'h2', operator: 'carol', csrfToken: 't', createdAt: 1, lastSeenAt: 1 });
    });
    expect((await cli(['operator', 'remove', 'carol'])).code).toBe(0);
    await withStore(async (s) => {
      expect(await s.getOperator('carol')).toBeUndefined();
      expect(await s.getOperatorSession('h2')).toBeUndefined();
    });
    const gone = await cli(['operator', 'remove', 'carol']);
    expect(gone.stderr).toContain('OPERATOR_UNKNOWN');
  });
});
