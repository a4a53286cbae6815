import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_BACKOFF, ErrorCode, ProtocolError } from '../protocol/index.js';

/**
 * The agent's settings: defaults, then a JSON file, then SCANBOX_DEVICE_* environment variables,
 * then command-line flags. Everything is checked by one zod schema, and a bad value stops the
 * agent with the offending field named instead of running a box with a half-understood setting.
 */
const backoff = z.strictObject({ baseMs: z.number().int().positive(), maxMs: z.number().int().positive() });
const ms = z.number().int().positive();

export const DeviceConfig = z.strictObject({
  scannerPath: z.string().min(1),
  ecrPath: z.string().min(1),
  dataDir: z.string().min(1),
  /** Scanner modules ship at 9600 or 115200; a pseudo-terminal ignores it. */
  baudRate: z.number().int().positive().default(9600),
  ecrBaudRate: z.number().int().positive().default(9600),
  /** Past this the box cancels an attempt that has no final result (DESIGN device rule 3). */
  paymentDeadlineMs: ms.default(60_000),
  /** Past this an unpaid sale is closed NOT_PAID even if the cashier never cancels. */
  saleDeadlineMs: ms.default(300_000),
  /** How often an attempt without a final result is queried again, in case a result was lost. */
  recheckMs: ms.default(15_000),
  /**
   * How long an `unpair` from the cloud waits for what is in flight to finish before the box hands
   * it over to the cloud (which owns every attempt it received) and leaves anyway.
   */
  unpairWaitMs: ms.default(120_000),
  heartbeatIntervalS: z.number().positive().default(30),
  scanDebounceMs: z.number().int().nonnegative().default(1000),
  reconnect: backoff.default(DEFAULT_BACKOFF),
  serialReopen: backoff.default({ baseMs: 250, maxMs: 5_000 }),
  connectTimeoutMs: ms.default(10_000),
  keepaliveS: z.number().int().positive().default(30),
  /** Overrides the broker address received at pairing (e.g. behind a proxy). */
  mqttUrl: z.string().regex(/^mqtts?:\/\/\S+$/, 'mqttUrl must be mqtt:// or mqtts://').optional(),
  /** PEM file of a private CA the cloud's HTTPS and mqtts:// certificates chain to (read at start). */
  caFile: z.string().min(1).optional(),
  /**
   * Let a scanned pairing QR pair over plain http:// with a host that is not loopback. Off: a QR
   * anyone can print would otherwise decide where the device secret travels in clear.
   */
  insecurePairing: z.boolean().default(false),
  /**
   * Finished, reported and acknowledged sales, attempts and refunds older than this leave the journal
   * (device/retention.ts); a ref older than this is then unknown to `lookup`.
   */
  retentionDays: z.number().int().min(1).default(30),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});
export type DeviceConfig = z.infer<typeof DeviceConfig>;
export type DeviceConfigInput = z.input<typeof DeviceConfig>;

export const ENV_PREFIX = 'SCANBOX_DEVICE_';

/** paymentDeadlineMs → SCANBOX_DEVICE_PAYMENT_DEADLINE_MS */
export function envName(key: string): string {
  return ENV_PREFIX + key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(DeviceConfig.shape)) {
    const raw = env[envName(key)];
    if (raw === undefined) continue;
    // Numbers and objects arrive as JSON text; anything that is not JSON is taken as a string.
    try {
      out[key] = JSON.parse(raw);
    } catch {
      out[key] = raw;
    }
  }
  return out;
}

function fromFile(file: string | undefined): Record<string, unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `config file ${file} cannot be read: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `config file ${file} is not valid JSON`);
  }
}

export interface ConfigSources {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Command-line flags; undefined values are ignored. */
  flags?: Partial<Record<keyof DeviceConfig, unknown>>;
}

export function loadConfig(src: ConfigSources): DeviceConfig {
  const flags = Object.fromEntries(Object.entries(src.flags ?? {}).filter(([, v]) => v !== undefined));
  const merged = { ...fromFile(src.file), ...fromEnv(src.env ?? {}), ...flags };
  const res = DeviceConfig.safeParse(merged);
  if (res.success) return res.data;
  const issue = res.error.issues[0]!;
  const field = issue.path.join('.') || '(config)';
  const where = issue.path.length ? ` (file key "${field}" or env ${envName(String(issue.path[0]))})` : '';
  throw new ProtocolError(ErrorCode.CONFIG_INVALID, `config field ${field} is invalid: ${issue.message}${where}`, { field });
}

/** The CA's PEM text; a path that cannot be read or holds no certificate stops the box at start. */
export function readCaFile(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `config field caFile is invalid: CA file ${file} cannot be read: ${(err as Error).message}`, { field: 'caFile' });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `config field caFile is invalid: CA file ${file} holds no PEM certificate`, { field: 'caFile' });
  }
  return pem;
}
