import { readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { statfs as fsStatfs } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { IClientOptions } from 'mqtt';
import { FINAL_STATES, classifyPaymentCode, formatDoctorChecks, isProtocolError, maskPaymentCode, type PortState } from '../protocol/index.js';
import type { Clock } from '../protocol/clock.js';
import { readCaFile, type DeviceConfig } from './config.js';
import { JOURNAL_FILE, Journal, type Credentials } from './journal.js';
import { LineSplitter } from './line-splitter.js';
import type { MqttConnect } from './link.js';
import { MAX_SCAN_LINE_BYTES } from './scanner.js';
import type { SerialFactory, SerialLike } from './serial-port.js';

/**
 * `scanbox-device doctor`: what is wrong with this box and how to fix it, as plain data — one
 * `DoctorCheck` per check, in a fixed order (device/README.md "Doctor"). Every piece of I/O that a
 * test needs to fake comes in through `DoctorDeps`; the TCP/TLS probe of the broker and the HTTP
 * request for the cloud's time use the real network (tests run real servers on loopback).
 *
 * It must not disturb a running agent: the journal is opened read-only; a serial port the agent
 * holds (serialport's flock: "Cannot lock port") is reported as in use by the agent, ok; and while
 * the agent runs the doctor does not log in to the broker with the box's identity (client id =
 * device id: the broker would drop the agent's connection for it), it judges the login by the
 * agent's last contact with the cloud instead.
 *
 * The running agent runs the same checks when the cloud asks (down/command `doctor`: `runAgentDoctor`,
 * sent by device/doctor-report.ts), judging what it holds itself — its ports, its cloud link — from
 * its own state instead of probing.
 */
export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do, when not ok. */
  fix?: string;
}

export const CHECK_NAMES = ['scanner', 'scan-test', 'ecr', 'credentials', 'broker', 'login', 'clock', 'journal', 'disk', 'outbox'] as const;

export const DOCTOR_LIMITS = {
  /** `--scan-test`: how long the engineer has to scan a code. */
  scanTestMs: 30_000,
  /** Opening a serial port, connecting to the broker, asking the cloud for its time. */
  ioTimeoutMs: 10_000,
  /** Beyond this the box's wall clock is wrong enough to matter (deadlines, the cloud's checks). */
  maxClockOffsetMs: 5_000,
  /** Free space under this in the data directory fails: the journal must always be able to grow. */
  minFreeBytes: 100 * 1024 * 1024,
  /** An outbox row older than this is stuck: online, a row leaves within a second. */
  outboxStuckMs: 5 * 60_000,
  /** While the agent runs, a last contact newer than max(this, 3 heartbeats) says the broker takes its login. */
  recentContactMs: 120_000,
} as const;
export type DoctorLimits = { [K in keyof typeof DOCTOR_LIMITS]: number };

/** Pids of the other processes holding a file open; `complete` is false when some could not be looked into. */
export interface FileHolders {
  pids: number[];
  complete: boolean;
}

export interface DoctorDeps {
  openSerial: SerialFactory;
  clock: Clock;
  connectMqtt: MqttConnect;
  statfs(path: string): Promise<{ bavail: number; bsize: number }>;
  /** The `Date` header of a GET of `url` (null when none). */
  httpDate(url: string, opts: { ca?: string; timeoutMs: number }): Promise<string | null>;
  /** Who else holds `<data>/journal.db` open: the running agent. */
  journalHolders(journalPath: string): FileHolders;
  /** A line for the engineer while a check waits (the scan test); stderr in the CLI. */
  say(line: string): void;
}

export interface DoctorOptions {
  config: DeviceConfig;
  scanTest?: boolean;
  limits?: Partial<DoctorLimits>;
}

export async function runDoctor(opts: DoctorOptions, deps: DoctorDeps): Promise<DoctorCheck[]> {
  const { config } = opts;
  const limits: DoctorLimits = { ...DOCTOR_LIMITS, ...opts.limits };
  const checks: DoctorCheck[] = [];
  const journalPath = join(config.dataDir, JOURNAL_FILE);
  const agent = deps.journalHolders(journalPath);

  // 1, 2: the serial ports.
  const scanner = await checkPort('scanner', config.scannerPath, config.baudRate, agent, limits, deps);
  checks.push(scanner.check);
  if (opts.scanTest) checks.push(await scanTest(scanner, config, limits, deps));
  else await closePort(scanner.port);
  const ecr = await checkPort('ecr', config.ecrPath, config.ecrBaudRate, agent, limits, deps);
  await closePort(ecr.port);
  checks.push(ecr.check);

  // 3: the journal (read-only) and the credentials in it.
  let journal: Journal | null = null;
  let journalError: string | null = null;
  try {
    journal = Journal.open(config.dataDir, { readonly: true });
  } catch (err) {
    journalError = isProtocolError(err) ? `${err.code}: ${err.message}` : (err as Error).message;
  }
  try {
    let creds: Credentials | null = null;
    try {
      creds = journal?.credentials() ?? null;
    } catch (err) {
      journalError ??= (err as Error).message;
    }
    checks.push(credentialsCheck(creds, journal, journalError, journalPath));

    // 4, 5, 6: the cloud.
    const { ca, caError } = caOf(config);
    const mqttUrl = config.mqttUrl ?? creds?.mqttUrl;
    if (caError !== null) {
      for (const n of ['broker', 'login', 'clock']) checks.push({ name: n, ok: false, detail: `not checked: ${caError}`, fix: CA_FIX });
    } else if (!creds || !mqttUrl) {
      const fix = 'pair the box first (see the credentials check)';
      checks.push({ name: 'broker', ok: false, detail: 'not checked: no credentials, so no broker address', fix });
      checks.push({ name: 'login', ok: false, detail: 'not checked: no credentials', fix });
      checks.push({ name: 'clock', ok: false, detail: "not checked: no cloud address", fix });
    } else {
      const broker = await brokerCheck(mqttUrl, ca, config.caFile, limits);
      checks.push(broker);
      const lastContact = journal ? Number(journal.getSetting('last_contact') ?? NaN) : NaN;
      checks.push(await loginCheck(mqttUrl, creds, ca, broker.ok, agent, lastContact, config, limits, deps));
      checks.push(await clockCheck(creds.cloudUrl, ca, limits, deps));
    }

    // 7, 8, 9: the box's own state.
    checks.push(integrityCheck(journal, journalError, journalPath));
    checks.push(await diskCheck(config.dataDir, limits, deps));
    checks.push(outboxCheck(journal, journalError, limits, deps));
  } finally {
    journal?.close();
  }
  return checks;
}

/** What the running agent knows of itself when the cloud asks for its doctor (down/command `doctor`). */
export interface AgentView {
  config: DeviceConfig;
  /** The agent's own journal connection (read here, never written). */
  journal: Journal;
  ports: { scanner: PortState; ecr: PortState };
  /** The agent's cloud link is connected. */
  online: boolean;
}

/** The I/O the agent's doctor needs; the CLI's DoctorDeps has it all. */
export type AgentDoctorDeps = Pick<DoctorDeps, 'clock' | 'statfs' | 'httpDate'>;

export const AGENT_CHECK_NAMES = ['scanner', 'ecr', 'credentials', 'broker', 'clock', 'journal', 'disk', 'outbox'] as const;

/**
 * The doctor the running agent runs for the cloud: the CLI's checks, through the same functions, but
 * for those that would disturb it or need a person (the scan test; a login with the box's identity,
 * which would throw its own session off). Its ports and its link are judged by their state: the link
 * being up is the broker reachable and the login accepted. The journal gets `quick_check` on the
 * agent's connection (see JournalCheckPragma).
 */
export async function runAgentDoctor(view: AgentView, deps: AgentDoctorDeps, limitsIn: Partial<DoctorLimits> = {}): Promise<DoctorCheck[]> {
  const limits: DoctorLimits = { ...DOCTOR_LIMITS, ...limitsIn };
  const { config, journal } = view;
  const journalPath = join(config.dataDir, JOURNAL_FILE);
  const checks = [portCheck('scanner', config.scannerPath, agentPortOutcome(view.ports.scanner)), portCheck('ecr', config.ecrPath, agentPortOutcome(view.ports.ecr))];
  let creds: Credentials | null = null;
  let journalError: string | null = null;
  try {
    creds = journal.credentials();
  } catch (err) {
    journalError = (err as Error).message;
  }
  checks.push(credentialsCheck(creds, journal, journalError, journalPath));
  const mqttUrl = config.mqttUrl ?? creds?.mqttUrl;
  checks.push(linkCheck(mqttUrl, creds?.deviceId, view.online));
  const { ca, caError } = caOf(config);
  if (caError !== null) checks.push({ name: 'clock', ok: false, detail: `not checked: ${caError}`, fix: CA_FIX });
  else if (!creds) checks.push({ name: 'clock', ok: false, detail: 'not checked: no cloud address', fix: 'pair the box first (see the credentials check)' });
  else checks.push(await clockCheck(creds.cloudUrl, ca, limits, deps));
  checks.push(integrityCheck(journal, journalError, journalPath, 'quick_check'));
  checks.push(await diskCheck(config.dataDir, limits, deps));
  try {
    checks.push(outboxCheck(journal, journalError, limits, deps));
  } catch (err) {
    checks.push({ name: 'outbox', ok: false, detail: `cannot be read: ${(err as Error).message}`, fix: 'see the journal check' });
  }
  return checks;
}

const CA_FIX = "point caFile (--ca) at the PEM certificate of the CA that signed the cloud's certificate";

function caOf(config: DeviceConfig): { ca: string | undefined; caError: string | null } {
  try {
    return { ca: config.caFile ? readCaFile(config.caFile) : undefined, caError: null };
  } catch (err) {
    return { ca: undefined, caError: (err as Error).message };
  }
}

/** The broker as the running agent sees it: its link up means the broker is reachable and took its login. */
function linkCheck(mqttUrl: string | undefined, deviceId: string | undefined, online: boolean): DoctorCheck {
  const name = 'broker';
  if (!mqttUrl || !deviceId) return { name, ok: false, detail: 'not checked: no credentials, so no broker address', fix: 'pair the box first (see the credentials check)' };
  if (online) return { name, ok: true, detail: `${mqttUrl}: connected as ${deviceId} (the agent's link is up)` };
  return {
    name,
    ok: false,
    detail: `${mqttUrl}: the agent's link is down (it reconnects with backoff)`,
    fix: 'run `scanbox-device doctor` on the box for the broker\'s own check; look in journalctl -u scanbox-device for "mqtt error"',
  };
}

// ── serial ports ─────────────────────────────────────────────────────────────────────────────────

interface PortResult {
  check: DoctorCheck;
  port: SerialLike | null;
  inUse: boolean;
}

/** serialport takes an flock on open (Linux/macOS: "Cannot lock port"); its mock says "Port is locked". */
const LOCKED = /cannot lock port|port is locked|EBUSY|resource busy|resource temporarily unavailable/i;

/**
 * What opening a serial port showed, however it was learnt: the CLI opens the port; the agent knows
 * the state of the one it holds.
 */
export type PortOutcome =
  | { kind: 'opens' }
  /** In use by the agent: ok. `how` says so, after the path ("port in use by the running agent (pid 812) (ok)"). */
  | { kind: 'held'; how: string }
  /** In use by a program that is not the agent. */
  | { kind: 'busy'; message: string }
  | { kind: 'timeout'; ms: number }
  | { kind: 'failed'; message: string };

const PORT_WHAT = { scanner: 'scanner', ecr: 'cash register (ECR)' } as const;

/** The check of the scanner or ECR port from what opening it showed: the CLI's and the agent's judgement alike. */
export function portCheck(name: 'scanner' | 'ecr', path: string, outcome: PortOutcome): DoctorCheck {
  const what = PORT_WHAT[name];
  const key = `${name}Path`;
  switch (outcome.kind) {
    case 'opens':
      return { name, ok: true, detail: `${path} opens` };
    case 'held':
      return { name, ok: true, detail: `${path}: ${outcome.how}` };
    case 'busy':
      return {
        name,
        ok: false,
        detail: `${path}: port in use by another program, not the agent (${outcome.message})`,
        fix: `find it with \`fuser -v ${path}\` and stop it (ModemManager likes to grab USB serial ports), then restart the agent`,
      };
    case 'timeout':
      return { name, ok: false, detail: `${path}: open did not finish within ${outcome.ms} ms`, fix: `check the ${what}'s cable and power; replug it` };
    case 'failed': {
      const msg = outcome.message;
      let fix = `check the ${what}'s cable and that ${key} (--${name}) names its serial device`;
      if (/ENOENT|no such file/i.test(msg)) fix = `no device at ${path}: plug in the ${what} (check the cable, \`ls -l ${path}\`, the udev link) or set ${key} (--${name}) to its device`;
      else if (/EACCES|permission denied/i.test(msg)) fix = `the user may not open ${path}: run as the scanbox user, which is in group dialout (\`ls -l ${path}\`)`;
      return { name, ok: false, detail: `${path} does not open: ${msg}`, fix };
    }
  }
}

/** The agent's own port, judged by its state: open is held by this agent; anything else is a port it cannot keep open. */
export function agentPortOutcome(state: PortState): PortOutcome {
  if (state === 'open') return { kind: 'held', how: 'port held by this agent (open)' };
  if (state === 'reopening') return { kind: 'failed', message: 'the agent lost it and is reopening it (unplugged?)' };
  if (state === 'absent') return { kind: 'failed', message: 'the agent cannot open it and keeps trying' };
  return { kind: 'failed', message: 'the agent has it closed' };
}

async function checkPort(name: 'scanner' | 'ecr', path: string, baudRate: number, agent: FileHolders, limits: DoctorLimits, deps: DoctorDeps): Promise<PortResult> {
  const result = (outcome: PortOutcome, port: SerialLike | null = null): PortResult => ({ check: portCheck(name, path, outcome), port, inUse: outcome.kind === 'held' || outcome.kind === 'busy' });
  let port: SerialLike;
  try {
    port = deps.openSerial({ path, baudRate });
  } catch (err) {
    return { check: { name, ok: false, detail: `${path}: ${(err as Error).message}`, fix: `set ${name}Path (--${name}) to the ${PORT_WHAT[name]}'s serial device` }, port: null, inUse: false };
  }
  port.on('error', () => undefined);
  const err = await withTimeout(new Promise<Error | null>((resolve) => port.open((e) => resolve(e))), limits.ioTimeoutMs, deps.clock);
  if (err === 'timeout') return result({ kind: 'timeout', ms: limits.ioTimeoutMs });
  if (!err) return result({ kind: 'opens' }, port);
  const msg = err.message.replace(/^Error:\s*/, '');
  if (!LOCKED.test(msg)) return result({ kind: 'failed', message: msg });
  if (agent.pids.length > 0) return result({ kind: 'held', how: `port in use by the running agent (pid ${agent.pids.join(', ')}) (ok)` });
  if (!agent.complete) return result({ kind: 'held', how: "port in use, presumably by the running agent (ok; run the doctor as root or the agent's user to be sure)" });
  return result({ kind: 'busy', message: msg });
}

async function closePort(port: SerialLike | null): Promise<void> {
  if (!port) return;
  port.removeAllListeners();
  port.on('error', () => undefined);
  if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
}

async function scanTest(scanner: PortResult, config: DeviceConfig, limits: DoctorLimits, deps: DoctorDeps): Promise<DoctorCheck> {
  const name = 'scan-test';
  const port = scanner.port;
  if (!port) {
    if (scanner.inUse) return { name, ok: false, detail: 'not run: the scanner port is held by another process', fix: 'stop the agent (systemctl stop scanbox-device), run `doctor --scan-test` again, then start it' };
    return { name, ok: false, detail: 'not run: the scanner port does not open', fix: 'fix the scanner check first' };
  }
  const seconds = Math.round(limits.scanTestMs / 1000);
  const splitter = new LineSplitter(MAX_SCAN_LINE_BYTES);
  // Listening before the engineer is asked: a code scanned at once is not missed.
  const scanned = new Promise<string>((resolve) => {
    port.on('data', (chunk) => {
      for (const item of splitter.push(chunk)) if (item.kind === 'line' && item.text.trim() !== '') resolve(item.text);
    });
  });
  const line = withTimeout(scanned, limits.scanTestMs, deps.clock);
  deps.say(`scan a payment code within ${seconds} s…`);
  const text = await line;
  await closePort(port);
  if (text === 'timeout') {
    return {
      name,
      ok: false,
      detail: `no code read within ${seconds} s on ${config.scannerPath}`,
      fix: `set the scanner to serial (USB CDC / RS-232, not keyboard) mode with a CR or LF suffix at ${config.baudRate} baud (config baudRate), then scan again`,
    };
  }
  try {
    const code = classifyPaymentCode(text);
    return { name, ok: true, detail: `read a ${code.wallet} payment code ${maskPaymentCode(code.code)}` };
  } catch (err) {
    const why = isProtocolError(err) ? err.code : (err as Error).message;
    return {
      name,
      ok: false,
      detail: `read ${maskPaymentCode(text)} (${text.length} characters), which is not a payment code (${why})`,
      fix: "scan a customer's payment code; if it was one, reset the scanner to factory settings (no prefix, suffix CR/LF) and check baudRate",
    };
  }
}

// ── credentials, journal, outbox ─────────────────────────────────────────────────────────────────

const REPAIR = 'scanbox-device pair --code <CODE> --cloud <URL> --data <DIR> (a code from `scanbox-cloud pair create`)';

function credentialsCheck(creds: Credentials | null, journal: Journal | null, journalError: string | null, path: string): DoctorCheck {
  const name = 'credentials';
  if (!journal) return { name, ok: false, detail: `journal cannot be read: ${journalError ?? 'unknown error'}`, fix: `see the journal check; a box that was never paired needs: ${REPAIR}` };
  if (!creds) return { name, ok: false, detail: `no credentials in ${path}: the box is not paired`, fix: `pair it: ${REPAIR}` };
  return { name, ok: true, detail: `paired as ${creds.deviceId} (merchant ${creds.merchantId}, store ${creds.storeId}) on ${new Date(creds.pairedAt).toISOString()}` };
}

/**
 * `integrity_check` reads every page and checks every index against its table; `quick_check` skips
 * the index-against-table part, which is most of the time. The CLI runs the full one (the agent may
 * run beside it: a read-only connection blocks nothing); the agent, on its own connection, where the
 * check holds up every payment step until done, runs the quick one (device/README.md, "Commands from
 * the cloud", has the figures).
 */
export type JournalCheckPragma = 'integrity_check' | 'quick_check';

function integrityCheck(journal: Journal | null, journalError: string | null, path: string, pragma: JournalCheckPragma = 'integrity_check'): DoctorCheck {
  const name = 'journal';
  const fix =
    'stop the agent; move the file aside for support (mv journal.db journal.db.corrupt), reconcile its attempts with `scanbox-cloud attempts --json`, then pair the box again';
  if (!journal) {
    if (journalError?.startsWith('NOT_PAIRED')) return { name, ok: false, detail: `no journal at ${path}`, fix: `check --data; a new box makes it when paired: ${REPAIR}` };
    if (journalError?.startsWith('JOURNAL_TOO_NEW')) return { name, ok: false, detail: journalError, fix: 'install the agent version that wrote it (or start the agent once to migrate an older one); do not delete the file' };
    return { name, ok: false, detail: `cannot be opened: ${journalError ?? 'unknown error'}`, fix };
  }
  try {
    const rows = (journal.db.pragma(pragma) as Record<string, string>[]).map((r) => String(Object.values(r)[0]));
    const first = rows[0] ?? 'no answer';
    if (first === 'ok') return { name, ok: true, detail: `${pragma} ok (schema ${journal.schemaVersion()})` };
    return { name, ok: false, detail: `${pragma}: ${rows.slice(0, 3).join('; ').slice(0, 200)}`, fix };
  } catch (err) {
    return { name, ok: false, detail: `${pragma} failed: ${(err as Error).message}`, fix };
  }
}

const FINAL_SQL = FINAL_STATES.map((s) => `'${s}'`).join(',');

function outboxCheck(journal: Journal | null, journalError: string | null, limits: DoctorLimits, deps: AgentDoctorDeps): DoctorCheck {
  const name = 'outbox';
  if (!journal) return { name, ok: false, detail: `not checked: journal cannot be read (${journalError ?? 'unknown error'})`, fix: 'see the journal check' };
  const now = deps.clock.now();
  const box = journal.sql('SELECT count(*) AS n, min(created_at) AS oldest FROM outbox').get() as { n: number; oldest: number | null };
  const open = journal.sql(`SELECT count(*) AS n, min(created_at) AS oldest FROM attempts WHERE state NOT IN (${FINAL_SQL})`).get() as { n: number; oldest: number | null };
  const attempts = open.n === 0 ? 'no open attempt' : `${open.n} open attempt(s), the oldest ${age(now - open.oldest!)} old`;
  if (box.n === 0) return { name, ok: true, detail: `outbox empty; ${attempts}` };
  const oldest = now - box.oldest!;
  const detail = `outbox ${box.n} row(s), the oldest ${age(oldest)} old; ${attempts}`;
  if (oldest <= limits.outboxStuckMs) return { name, ok: true, detail };
  return {
    name,
    ok: false,
    detail: `${detail}: stuck (over ${age(limits.outboxStuckMs)})`,
    fix: 'the box is not delivering to the cloud: fix the broker/login checks above; if they pass, restart the agent (systemctl restart scanbox-device) and look for "mqtt error" in journalctl -u scanbox-device',
  };
}

async function diskCheck(dataDir: string, limits: DoctorLimits, deps: AgentDoctorDeps): Promise<DoctorCheck> {
  const name = 'disk';
  let free: number;
  try {
    const s = await deps.statfs(dataDir);
    free = s.bavail * s.bsize;
  } catch (err) {
    return { name, ok: false, detail: `cannot read the free space of ${dataDir}: ${(err as Error).message}`, fix: 'check --data (config dataDir) names the data directory' };
  }
  const detail = `${mib(free)} free in ${dataDir}`;
  if (free >= limits.minFreeBytes) return { name, ok: true, detail };
  return { name, ok: false, detail: `${detail} (under ${mib(limits.minFreeBytes)})`, fix: `free space on that file system (old logs: journalctl --vacuum-size=50M); never delete ${JOURNAL_FILE}` };
}

// ── the cloud ────────────────────────────────────────────────────────────────────────────────────

interface Endpoint {
  tls: boolean;
  host: string;
  port: number;
}

function endpoint(mqttUrl: string): Endpoint {
  const u = new URL(mqttUrl);
  const tls = u.protocol === 'mqtts:';
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return { tls, host, port: u.port ? Number(u.port) : tls ? 8883 : 1883 };
}

const UNKNOWN_CA = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_UNTRUSTED']);
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

/** What a TLS or socket error means for the engineer. Exported for tests of the cases a loopback test cannot make. */
export function explainBrokerError(code: string, message: string, url: string, caFile: string | undefined): { detail: string; fix: string } {
  const ca = caFile ? `the configured CA (${caFile})` : "the system's CAs";
  if (code === 'CERT_HAS_EXPIRED') return { detail: `${url}: the broker's TLS certificate has expired`, fix: "renew the cloud's certificate (cloud side); if it is not expired, the box's clock is wrong: fix the box's NTP" };
  if (code === 'CERT_NOT_YET_VALID') return { detail: `${url}: the broker's TLS certificate is not valid yet`, fix: "the box's clock is probably behind: fix the box's NTP (see the clock check)" };
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return { detail: `${url}: the broker's TLS certificate is for another name (${message})`, fix: 'use the broker name the certificate is for (config mqttUrl, or re-pair against the right cloud address)' };
  if (UNKNOWN_CA.has(code)) return { detail: `${url}: the broker's TLS certificate is from an unknown CA for ${ca} (${code})`, fix: "set caFile (start/doctor --ca FILE) to the PEM of the CA that signed the cloud's certificate" };
  if (UNREACHABLE.has(code) || code === 'timeout') return { detail: `${url}: broker unreachable (${code}${message && message !== code ? `: ${message}` : ''})`, fix: "check the shop's network (cable / Wi-Fi, DNS), that outbound TCP to the broker's port is allowed by the firewall, and that mqttUrl is right" };
  return { detail: `${url}: ${code || 'error'}: ${message}`, fix: "check that mqttUrl is the cloud's broker (mqtts:// for a TLS listener, mqtt:// otherwise) and the network" };
}

async function brokerCheck(mqttUrl: string, ca: string | undefined, caFile: string | undefined, limits: DoctorLimits): Promise<DoctorCheck> {
  const name = 'broker';
  const ep = endpoint(mqttUrl);
  return new Promise((resolve) => {
    let socket: Socket | TLSSocket;
    const done = (c: DoctorCheck) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(c);
    };
    const fail = (code: string, message: string) => done({ name, ok: false, ...explainBrokerError(code, message, mqttUrl, caFile) });
    const timer = setTimeout(() => fail('timeout', `no connection within ${limits.ioTimeoutMs} ms`), limits.ioTimeoutMs);
    if (ep.tls) {
      socket = tlsConnect({ host: ep.host, port: ep.port, ...(isIP(ep.host) ? {} : { servername: ep.host }), ...(ca ? { ca } : {}) }, () => {
        const cert = (socket as TLSSocket).getPeerCertificate();
        done({ name, ok: true, detail: `${mqttUrl} reachable; TLS certificate valid for ${caFile ? 'the configured CA' : "the system's CAs"} until ${new Date(cert.valid_to).toISOString()}` });
      });
    } else {
      socket = netConnect({ host: ep.host, port: ep.port }, () => done({ name, ok: true, detail: `${mqttUrl} reachable (plain mqtt://, no TLS)` }));
    }
    socket.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? '', err.message));
  });
}

/** MQTT 3.1.1 CONNACK return codes. */
const CONNACK: Record<number, string> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

async function loginCheck(
  mqttUrl: string,
  creds: Credentials,
  ca: string | undefined,
  brokerOk: boolean,
  agent: FileHolders,
  lastContact: number,
  config: DeviceConfig,
  limits: DoctorLimits,
  deps: DoctorDeps,
): Promise<DoctorCheck> {
  const name = 'login';
  if (agent.pids.length > 0) {
    // The broker takes one connection per client id: logging in would throw the agent off.
    const recent = Math.max(limits.recentContactMs, 3 * config.heartbeatIntervalS * 1000);
    const since = deps.clock.now() - lastContact;
    const who = `the running agent (pid ${agent.pids.join(', ')}) holds the box's MQTT session, so the doctor does not log in`;
    if (Number.isFinite(lastContact) && since <= recent) return { name, ok: true, detail: `${who}; its last contact with the cloud was ${age(Math.max(0, since))} ago (ok)` };
    return {
      name,
      ok: false,
      detail: `${who}; ${Number.isFinite(lastContact) ? `its last contact with the cloud was ${age(since)} ago` : 'it has never reached the cloud'}`,
      fix: 'look in journalctl -u scanbox-device for "mqtt error": "Not authorized" or "Bad username or password" means re-pair the box (scanbox-device pair --reset …); or stop the agent and run the doctor again to test the login itself',
    };
  }
  if (!brokerOk) return { name, ok: false, detail: 'not checked: the broker cannot be reached (see the broker check)', fix: 'fix the broker check first' };
  const options: IClientOptions = {
    clientId: creds.deviceId,
    username: creds.deviceId,
    password: creds.secret,
    // The box's own persistent session, as the agent opens it: clean: true would throw away what the broker keeps for the box.
    clean: false,
    protocolVersion: 4,
    connectTimeout: limits.ioTimeoutMs,
    reconnectPeriod: 0,
    ...(ca ? { ca } : {}),
  };
  const client = deps.connectMqtt(mqttUrl, options);
  // Anything the broker kept for the box (results) is never acknowledged here, so it is delivered again to the agent.
  (client as unknown as { handleMessage: (packet: unknown, cb: () => void) => void }).handleMessage = () => undefined;
  const outcome = await withTimeout(
    new Promise<{ ok: true } | { ok: false; code: number | string; message: string }>((resolve) => {
      client.once('connect', () => resolve({ ok: true }));
      client.on('error', (err: Error & { code?: number | string }) => resolve({ ok: false, code: err.code ?? '', message: err.message }));
      client.once('close', () => resolve({ ok: false, code: 'closed', message: 'connection closed before CONNACK' }));
    }),
    limits.ioTimeoutMs + 1_000,
    deps.clock,
  );
  client.end(true);
  if (outcome === 'timeout') return { name, ok: false, detail: `no CONNACK from ${mqttUrl} within ${limits.ioTimeoutMs} ms`, fix: 'the broker accepts connections but does not answer: check the cloud (scanbox-cloud logs)' };
  if (outcome.ok) return { name, ok: true, detail: `broker accepted ${creds.deviceId} (CONNACK 0)` };
  if (typeof outcome.code === 'number' && CONNACK[outcome.code]) {
    const rc = outcome.code;
    const fix =
      rc === 3
        ? 'the cloud is up but not serving boxes right now: try again in a minute; tell the cloud operator if it stays'
        : rc === 1
          ? 'the broker does not speak MQTT 3.1.1: check mqttUrl points at the scanbox cloud'
          : `the cloud refused this box's credentials (revoked or paired again elsewhere): re-pair the box: scanbox-device pair --reset --code <CODE> --cloud <URL> --data <DIR>`;
    return { name, ok: false, detail: `broker refused ${creds.deviceId}: CONNACK ${rc} (${CONNACK[rc]})`, fix };
  }
  return { name, ok: false, detail: `no CONNACK from ${mqttUrl}: ${outcome.message}`, fix: 'see the broker check; the broker closed the connection during the login' };
}

/**
 * The cloud's time: the `Date` header of `GET <cloudUrl>/healthz` on the pairing API. It needs no
 * MQTT session (so it works while the agent runs) and has no side effect. Its resolution is one
 * second, so the cloud's time is taken as the middle of that second against the middle of the
 * request: good to about ±0.5 s plus half the round trip, well inside the threshold.
 */
async function clockCheck(cloudUrl: string, ca: string | undefined, limits: DoctorLimits, deps: AgentDoctorDeps): Promise<DoctorCheck> {
  const name = 'clock';
  const url = `${cloudUrl.replace(/\/+$/, '')}/healthz`;
  const sent = deps.clock.now();
  let date: string | null;
  try {
    date = await deps.httpDate(url, { ...(ca ? { ca } : {}), timeoutMs: limits.ioTimeoutMs });
  } catch (err) {
    return { name, ok: false, detail: `cannot ask the cloud for its time (GET ${url}): ${(err as Error).message}`, fix: "check the network to the cloud's HTTPS address (the one the box was paired with)" };
  }
  const received = deps.clock.now();
  const cloud = date === null ? NaN : Date.parse(date);
  if (!Number.isFinite(cloud)) return { name, ok: false, detail: `GET ${url} answered without a usable Date header (${date ?? 'none'})`, fix: 'the cloud address is not a scanbox cloud, or a proxy strips Date' };
  const offset = Math.round(sent + (received - sent) / 2 - (cloud + 500));
  const detail = `box clock is ${Math.abs(offset) < 1000 ? 'within 1 s of' : `${(Math.abs(offset) / 1000).toFixed(1)} s ${offset > 0 ? 'ahead of' : 'behind'}`} the cloud's (${new Date(cloud).toISOString()} from ${url})`;
  if (Math.abs(offset) <= limits.maxClockOffsetMs) return { name, ok: true, detail };
  return { name, ok: false, detail: `${detail}; more than ${limits.maxClockOffsetMs / 1000} s`, fix: "fix the box's NTP (timedatectl status; systemctl restart systemd-timesyncd; allow UDP 123 out)" };
}

// ── defaults for the real box ────────────────────────────────────────────────────────────────────

export const realStatfs: DoctorDeps['statfs'] = async (path) => {
  const s = await fsStatfs(path);
  return { bavail: Number(s.bavail), bsize: Number(s.bsize) };
};

export const realHttpDate: DoctorDeps['httpDate'] = (url, opts) =>
  new Promise((resolve, reject) => {
    const https = url.startsWith('https:');
    const send = https ? httpsRequest : httpRequest;
    const req = send(url, { method: 'GET', timeout: opts.timeoutMs, ...(https && opts.ca ? { ca: opts.ca } : {}) }, (res) => {
      res.resume();
      resolve(res.headers.date ?? null);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${opts.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end();
  });

/**
 * The running agent is the process holding `journal.db` open: every other process's open files are
 * read from /proc/<pid>/fd (Linux). Processes of another user cannot be looked into unless the
 * doctor runs as root; then `complete` is false.
 */
export function procJournalHolders(journalPath: string, procDir = '/proc'): FileHolders {
  let target: string;
  try {
    target = realpathSync(journalPath);
  } catch {
    return { pids: [], complete: true };
  }
  let entries: string[];
  try {
    entries = readdirSync(procDir);
  } catch {
    return { pids: [], complete: false };
  }
  const pids: number[] = [];
  let complete = true;
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(join(procDir, e, 'fd'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') complete = false;
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(join(procDir, e, 'fd', fd)) === target) {
          pids.push(Number(e));
          break;
        }
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return { pids, complete };
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────────────

function withTimeout<T>(p: Promise<T>, ms: number, clock: Clock): Promise<T | 'timeout'> {
  let timer: unknown;
  const late = new Promise<'timeout'>((resolve) => (timer = clock.setTimeout(() => resolve('timeout'), ms)));
  return Promise.race([p, late]).finally(() => clock.clearTimeout(timer));
}

function age(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

/** One line per check for a person: PASS/FAIL, name, detail, and the fix (the cloud prints a box's report the same way). */
export const formatChecks = formatDoctorChecks;
