import { execFileSync, spawn } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import pg from 'pg';
import { freeLoopbackPort } from './free-port.js';
import { cleanupOnExit } from './watchdog.js';

/**
 * A throwaway PostgreSQL cluster for a test file or a simulator run (the rig's mosquitto-postgres
 * stack): initdb into a fresh temp dir, a postmaster on a loopback TCP port (its unix socket in that
 * dir, never /var/run), fsync off, trust for the one role `scanbox` (no password anywhere), stopped
 * and removed at the end. PostgreSQL refuses to run as root, so when the caller does (CI,
 * containers) its programs run as the `postgres` system user that Debian's `postgresql` package
 * creates.
 *
 * Tests start one per file (test/support/postgres.ts usePostgres, in a beforeAll), not once per run
 * in vitest's globalSetup: only the files that need PostgreSQL pay its ~2.5 s, and no state is
 * shared between the forked workers. Each caller asks for as many databases as it needs.
 */
export interface PostgresCluster {
  /** The connection string of one database of this cluster (it need not exist yet). */
  url(database: string): string;
  /** A new, empty database; its connection string. Names are made up unless given. */
  createDatabase(name?: string): Promise<string>;
  /**
   * A new, empty schema in `database` (created if missing) and a connection string whose sessions
   * see only it (search_path): a fresh store in ~10 ms, where a database takes ~150 ms.
   */
  createSchema(database: string): Promise<string>;
  /** Fast stop (the data is thrown away), then the temp dir goes. */
  stop(): Promise<void>;
  readonly port: number;
}

export interface PostgresOptions {
  /** Where initdb, pg_ctl and postgres are: default the newest /usr/lib/postgresql/N/bin, else the one of `initdb` on PATH. */
  binDir?: string;
  /** The system user the server runs as when this process is root. */
  runAs?: string;
  /** Asks for a free loopback port; a port taken in between is retried with the next answer. */
  freePort?: () => Promise<number>;
  /** Keep fsync and synchronous commit on (a benchmark's figures); tests leave them off for speed. */
  durable?: boolean;
}

const PACKAGE_HINT = 'install the PostgreSQL server from Debian: sudo apt-get install -y --no-install-recommends postgresql';
const ROLE = 'scanbox';
const PROGRAMS = ['initdb', 'pg_ctl', 'postgres'] as const;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The newest packaged server first; PATH (a symlinked initdb resolved to its real dir) after. */
export function findPostgresBinDir(env: NodeJS.ProcessEnv = process.env, root = '/usr/lib/postgresql'): string {
  const complete = (dir: string) => PROGRAMS.every((p) => executable(join(dir, p)));
  let versions: string[] = [];
  try {
    versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  } catch {
    // no packaged server: PATH may still have one
  }
  for (const v of versions) if (complete(join(root, v, 'bin'))) return join(root, v, 'bin');
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, 'initdb'))) {
      const real = dirname(realpathSync(join(dir, 'initdb')));
      if (complete(real)) return real;
    }
  }
  throw new Error(`a throwaway PostgreSQL needs initdb, pg_ctl and postgres (PostgreSQL 13 or later), found neither in ${root}/*/bin nor on PATH — ${PACKAGE_HINT}`);
}

/** How a server program is run: directly, or as `runAs` when this process is root (postgres refuses root). */
function runner(runAs: string): { prefix: string[]; owner?: { uid: number; gid: number } } {
  if (process.getuid?.() !== 0) return { prefix: [] };
  let uid: number;
  let gid: number;
  try {
    uid = Number(execFileSync('id', ['-u', runAs], { encoding: 'utf8' }).trim());
    gid = Number(execFileSync('id', ['-g', runAs], { encoding: 'utf8' }).trim());
  } catch {
    throw new Error(`this runs as root and PostgreSQL refuses root: it runs it as the system user ${runAs}, which does not exist — ${PACKAGE_HINT} (it creates that user), or run as an ordinary user`);
  }
  return { prefix: ['runuser', '-u', runAs, '--'], owner: { uid, gid } };
}

function run(prefix: string[], program: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const [cmd, ...rest] = [...prefix, program, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<PostgresCluster> {
  const bin = opts.binDir ?? findPostgresBinDir();
  const { prefix, owner } = runner(opts.runAs ?? 'postgres');
  const dir = mkdtempSync(join(tmpdir(), 'scanbox-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const pgCtl = (...args: string[]) => run(prefix, join(bin, 'pg_ctl'), ['-D', data, ...args]);

  const init = await run(prefix, join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', ROLE, '-E', 'UTF8', '--locale=C.UTF-8', '-N']);
  if (init.code !== 0) {
    remove();
    throw new Error(`initdb failed (${init.code}): ${init.output.trim().slice(-800)}`);
  }

  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await (opts.freePort ?? freeLoopbackPort)();
    const fast = opts.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off'];
    const server = [`-p ${port}`, `-k ${dir}`, '-c listen_addresses=127.0.0.1', ...fast, '-c max_connections=200'];
    const started = await pgCtl('-o', server.join(' '), '-l', log, '-w', '-t', '30', 'start');
    if (started.code === 0) break;
    const why = readLog(log);
    // The port may have been taken between asking and binding: another one, a few times.
    if (attempt < 4 && /could not (bind|create listen socket)/i.test(why)) continue;
    remove();
    throw new Error(`PostgreSQL did not start (pg_ctl ${started.code}): ${started.output.trim()} ${why.trim().slice(-800)}`);
  }

  const watchdog = cleanupOnExit(`${[...prefix, join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop'].join(' ')}; rm -rf ${dir}`);

  const url = (database: string) => `postgres://${ROLE}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  const sql = async (database: string, statement: string) => {
    const client = new pg.Client({ connectionString: url(database) });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  const made = new Set<string>();
  let names = 0;
  const checked = (name: string) => {
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`name ${name}: lower-case letters, digits and _ only`);
    return name;
  };
  let stopped = false;
  const cluster: PostgresCluster = {
    port,
    url,
    async createDatabase(name = `db${++names}`) {
      await sql('postgres', `CREATE DATABASE ${checked(name)}`);
      made.add(name);
      return url(name);
    },
    async createSchema(database) {
      if (!made.has(database)) await cluster.createDatabase(database);
      const schema = checked(`s${++names}`);
      await sql(database, `CREATE SCHEMA ${schema}`);
      return `${url(database)}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        const res = await pgCtl('-m', 'immediate', '-w', 'stop');
        if (res.code !== 0) throw new Error(`pg_ctl stop failed (${res.code}): ${res.output.trim()}`);
      } finally {
        watchdog.disarm();
        remove();
      }
    },
  };
  return cluster;
}
