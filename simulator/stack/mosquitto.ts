import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chownSync, constants, copyFileSync, createWriteStream, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freeLoopbackPort } from './free-port.js';
import { cleanupOnExit } from './watchdog.js';

/**
 * A throwaway Mosquitto 2 (Debian's `mosquitto`) for a test file or a simulator run (the rig's
 * mosquitto-postgres stack): a generated config with one loopback listener, no anonymous logins,
 * and the dynamic-security plugin on a JSON file made by `mosquitto_ctrl dynsec init` with a random
 * admin password (the account the cloud uses). Its log (every type, to stderr) is kept in memory,
 * and in `logFile` when given: a refused publish or login is a log line, and that is how the tests
 * see the broker's refusals. Mosquitto started as root drops to the `mosquitto` system user, so the
 * temp dir is handed to that user first.
 */
export interface MosquittoBroker {
  readonly port: number;
  /** `mqtt://127.0.0.1:<port>` (`mqtts://` with `tls`): where boxes connect. */
  readonly url: string;
  readonly admin: { username: string; password: string };
  /** `url` with the admin's credentials: the cloud's `--broker`. */
  readonly adminUrl: string;
  /** Log lines so far, without their timestamps. */
  lines(): readonly string[];
  /** Log lines matching `re` so far. */
  count(re: RegExp): number;
  /** The first line matching `re` at index `from` or later, waiting for it up to `timeoutMs`. */
  waitForLine(re: RegExp, timeoutMs: number, from?: number): Promise<string>;
  /** SIGTERM (SIGKILL if it lingers), then the temp dir goes. */
  stop(): Promise<void>;
}

export interface MosquittoOptions {
  /** Asks for a free loopback port; a port taken in between is retried with the next answer. */
  freePort?: () => Promise<number>;
  /** The system user Mosquitto runs as when this process is root (it refuses to stay root). */
  runAs?: string;
  /** More config lines (e.g. `max_keepalive 5`). */
  extraConfig?: string[];
  /** A TLS listener with this certificate (copied for Mosquitto's user to read) instead of a plain one. */
  tls?: { certFile: string; keyFile: string };
  /**
   * The listener and security lines instead of the generated ones (the deploy example's test), given
   * what to use; the log lines are added after them.
   */
  config?: (at: ConfigPaths) => string;
  /** Every log line is also appended to this file (a simulator run kept for diagnosis). */
  logFile?: string;
}

export interface ConfigPaths {
  port: number;
  plugin: string;
  dynsecFile: string;
  certFile?: string;
  keyFile?: string;
}

const PACKAGE_HINT = 'install it from Debian: sudo apt-get install -y --no-install-recommends mosquitto';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `mosquitto` lives in /usr/sbin, which an ordinary user's PATH may lack. */
function findProgram(name: string, extraDirs: string[]): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extraDirs];
  const found = dirs.map((d) => join(d, name)).find(executable);
  if (!found) throw new Error(`a throwaway Mosquitto needs ${name} (Mosquitto 2.0 or later), not found on PATH or in ${extraDirs.join(', ')} — ${PACKAGE_HINT}`);
  return found;
}

export function findDynsecPlugin(libRoot = '/usr/lib'): string {
  const candidates = [join(libRoot, 'mosquitto_dynamic_security.so')];
  try {
    for (const d of readdirSync(libRoot)) if (d.endsWith('-linux-gnu')) candidates.unshift(join(libRoot, d, 'mosquitto_dynamic_security.so'));
  } catch {
    // no such root: the error below names the package
  }
  const found = candidates.find((p) => {
    try {
      accessSync(p, constants.R_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!found) throw new Error(`a throwaway Mosquitto needs its dynamic-security plugin (mosquitto_dynamic_security.so), not found under ${libRoot} — ${PACKAGE_HINT}`);
  return found;
}

function owner(runAs: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    return { uid: Number(execFileSync('id', ['-u', runAs], { encoding: 'utf8' }).trim()), gid: Number(execFileSync('id', ['-g', runAs], { encoding: 'utf8' }).trim()) };
  } catch {
    throw new Error(`this runs as root and Mosquitto drops root for the system user ${runAs}, which does not exist — ${PACKAGE_HINT} (it creates that user), or run as an ordinary user`);
  }
}

function generatedConfig(at: ConfigPaths): string {
  return [
    // One set of security settings for the whole broker: the plugin applies to every listener.
    'per_listener_settings false',
    'allow_anonymous false',
    `listener ${at.port} 127.0.0.1`,
    ...(at.certFile ? [`certfile ${at.certFile}`, `keyfile ${at.keyFile}`] : []),
    `plugin ${at.plugin}`,
    `plugin_opt_config_file ${at.dynsecFile}`,
    // Nagle + delayed ACK cost ~40 ms a hop (STACK-NOTES.md).
    'set_tcp_nodelay true',
    'persistence false',
  ].join('\n');
}

function configText(at: ConfigPaths, build: (at: ConfigPaths) => string, extra: string[]): string {
  // Refused publishes are logged at debug level only.
  return [build(at), 'log_dest stderr', 'log_type all', 'connection_messages true', ...extra, ''].join('\n');
}

interface Started {
  child: ChildProcess;
  lines: string[];
  waiters: Set<() => void>;
}

/** Resolves once Mosquitto says it is running; rejects with its output if it exits first. */
function launch(program: string, configFile: string, logFile: string | undefined): Promise<Started> {
  const child = spawn(program, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const file = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
  child.once('exit', () => file?.end());
  let partial = '';
  const take = (d: Buffer) => {
    const parts = (partial + d.toString()).split('\n');
    partial = parts.pop()!;
    for (const p of parts) lines.push(p.replace(/^\d+: /, ''));
    if (parts.length) file?.write(`${parts.join('\n')}\n`);
    for (const w of [...waiters]) w();
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`mosquitto did not report running within ${START_TIMEOUT_MS} ms: ${lines.join(' | ').slice(-800)}`)), START_TIMEOUT_MS);
    const check = () => {
      if (!lines.some((l) => / running$/.test(l))) return;
      clearTimeout(timer);
      waiters.delete(check);
      child.off('exit', exited);
      resolve({ child, lines, waiters });
    };
    const fail = (err: Error) => {
      clearTimeout(timer);
      waiters.delete(check);
      child.kill('SIGKILL');
      reject(err);
    };
    const exited = (code: number | null) => fail(Object.assign(new Error(`mosquitto exited (${code}) before running: ${[...lines, partial].join(' | ').slice(-800)}`), { output: [...lines, partial].join('\n') }));
    child.once('exit', exited);
    child.once('error', (err) => fail(err));
    waiters.add(check);
  });
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<MosquittoBroker> {
  const mosquitto = findProgram('mosquitto', ['/usr/sbin', '/usr/local/sbin']);
  const ctrl = findProgram('mosquitto_ctrl', ['/usr/bin', '/usr/local/bin']);
  const plugin = findDynsecPlugin();
  const own = owner(opts.runAs ?? 'mosquitto');
  const dir = mkdtempSync(join(tmpdir(), 'scanbox-mosquitto-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const dynsecFile = join(dir, 'dynamic-security.json');
  const configFile = join(dir, 'mosquitto.conf');
  const tlsFiles = opts.tls ? { certFile: join(dir, 'broker.pem'), keyFile: join(dir, 'broker.key') } : {};
  const admin = { username: 'scanbox-cloud', password: randomBytes(18).toString('base64url') };

  let started: Started | undefined;
  let port = 0;
  try {
    execFileSync(ctrl, ['dynsec', 'init', dynsecFile, admin.username, admin.password], { stdio: 'pipe' });
    if (opts.tls) {
      copyFileSync(opts.tls.certFile, tlsFiles.certFile!);
      copyFileSync(opts.tls.keyFile, tlsFiles.keyFile!);
    }
    // The plugin rewrites its file on every change, as the user Mosquitto runs as.
    if (own) for (const p of [dir, dynsecFile, ...Object.values(tlsFiles)]) chownSync(p, own.uid, own.gid);
    for (let attempt = 0; ; attempt++) {
      port = await (opts.freePort ?? freeLoopbackPort)();
      writeFileSync(configFile, configText({ port, plugin, dynsecFile, ...tlsFiles }, opts.config ?? generatedConfig, opts.extraConfig ?? []));
      try {
        started = await launch(mosquitto, configFile, opts.logFile);
        break;
      } catch (err) {
        // The port may have been taken between asking and binding: another one, a few times.
        if (attempt < 4 && /address already in use/i.test((err as { output?: string }).output ?? '')) continue;
        throw err;
      }
    }
  } catch (err) {
    remove();
    throw err;
  }

  const { child, lines, waiters } = started;
  const watchdog = cleanupOnExit(`kill ${child.pid}; rm -rf ${dir}`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const scheme = opts.tls ? 'mqtts' : 'mqtt';
  const url = `${scheme}://127.0.0.1:${port}`;
  let stopped = false;

  return {
    port,
    url,
    admin,
    adminUrl: `${scheme}://${encodeURIComponent(admin.username)}:${encodeURIComponent(admin.password)}@127.0.0.1:${port}`,
    lines: () => lines,
    count: (re) => lines.filter((l) => re.test(l)).length,
    waitForLine(re, timeoutMs, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.slice(from).find((l) => re.test(l));
          if (hit === undefined) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no mosquitto log line matching ${re} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
          await exited;
          clearTimeout(timer);
        }
      } finally {
        watchdog.disarm();
        remove();
      }
    },
  };
}
