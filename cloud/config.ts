import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { describeIssues, ErrorCode, ProtocolError } from '../protocol/index.js';
import { DEFAULT_MQTT_LIMITS } from './broker/mqtt-edge.js';
import { ChannelHealthConfig, ChannelsConfig, DEFAULT_CHANNEL_HEALTH, RoutesConfig } from './gateway/channel-config.js';
import { WALLET_RULES } from './gateway/wallet-rules.js';
import { BrokerConfig } from './broker/broker-config.js';
import { DashboardConfig } from './dashboard/dashboard-config.js';

/**
 * The cloud's configuration: defaults < JSON file < SCANBOX_CLOUD_* environment < CLI flags.
 * Timings are configurable so tests and the demo can run a 45-second wallet deadline in seconds.
 */
const ms = z.number().int().nonnegative();
const port = z.number().int().min(0).max(65535);

type WalletNumber = 'pollDeadlineMs' | 'reverseMinDelayMs';
function defaults(key: WalletNumber) {
  return { wechat: WALLET_RULES.wechat[key], alipay: WALLET_RULES.alipay[key], unionpay: WALLET_RULES.unionpay[key] };
}
/** One number per wallet, defaulting to the wallet's published rule. */
function perWallet(key: WalletNumber) {
  const d = defaults(key);
  return z.strictObject({ wechat: ms.default(d.wechat), alipay: ms.default(d.alipay), unionpay: ms.default(d.unionpay) }).default(d);
}

export const CloudConfig = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  mqttPort: port.default(1883),
  httpPort: port.default(8080),
  dbPath: z.string().min(1).default('scanbox-cloud.db'),
  /**
   * PostgreSQL instead of the SQLite file (store/open-store.ts): several workers on one database.
   * `postgres://user@host:port/db`; the password from PGPASSWORD or ~/.pgpass, not the string.
   */
  store: z.string().regex(/^postgres(ql)?:\/\/\S+$/, 'a postgres:// connection string').optional(),
  /**
   * Several workers on one PostgreSQL store: how long a worker's hold on an attempt or refund lasts
   * unrenewed (payments/lease-keeper.ts). A dead worker's work is taken over within about 4/3 of it;
   * a worker stalled longer than it may see its call repeated by another (idempotent at the wallet).
   */
  workerLeaseMs: z.number().int().min(1_000).default(30_000),
  /** This worker's name among several on one PostgreSQL store (its leases); default: the host name (a second worker on one host needs its own). */
  workerId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - (at most 64)').optional(),
  /** Addresses handed to boxes (QR code, pair response) when they differ from host:port (NAT, proxy). */
  publicHttpUrl: z.string().url().optional(),
  publicMqttUrl: z.string().regex(/^mqtts?:\/\/\S+$/).optional(),
  /** PEM files; when set the MQTT listener speaks TLS only (mqtts://) and the HTTP API HTTPS only. */
  tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  /** The server key (server-key.ts) device secrets are hashed under; created 0600 if missing. Default: `<dbPath>.key`. */
  secretKeyFile: z.string().min(1).optional(),
  /** Prometheus text on its own listener (loopback by default); with a token also on the public port as `Authorization: Bearer <token>`. */
  metrics: z
    .strictObject({ host: z.string().min(1).default('127.0.0.1'), port: port.default(9464), token: z.string().min(16).optional() })
    .default({ host: '127.0.0.1', port: 9464 }),
  /** Refused MQTT logins are answered after a delay growing per device id and per address; a right secret never waits. */
  loginBackoff: z
    .strictObject({ baseMs: ms.default(250), maxMs: ms.default(5_000), windowMs: ms.default(60_000) })
    .default({ baseMs: 250, maxMs: 5_000, windowMs: 60_000 }),
  /** The generic JSON gateway (the simulator's; UnionPay's): serves every wallet no `routes` entry or same-named channel serves. */
  gatewayUrl: z.string().url().optional(),
  /** 'instant' = built-in always-success gateway for benchmarks and smoke tests, never production. */
  gateway: z.enum(['http', 'instant']).default('http'),
  /** Provider accounts by name (channel-config.ts): WeChat Pay, Alipay, generic HTTP. */
  channels: ChannelsConfig.default({}),
  /** A standing pin: the only channel a wallet's new attempts start on (the operator's `channel pin` overrides it). */
  routes: RoutesConfig.default({}),
  /** Each channel's circuit breaker (channel-config.ts ChannelHealthConfig). */
  channelHealth: ChannelHealthConfig.default(DEFAULT_CHANNEL_HEALTH),
  /** How often a running cloud reads the operator's channel pins and disables (`scanbox-cloud channel`), and writes the channels' health for `channel list`. */
  channelPollMs: z.number().int().positive().default(1_000),
  gatewayCallTimeoutMs: ms.default(10_000),
  /** Gateway calls in flight at once per channel (today: per wallet); more wait their turn, in order. */
  gatewayConcurrency: z.number().int().min(1).default(64),
  /**
   * After a restart the first gateway call of each resumed attempt starts at a random moment within
   * min(resumeSpreadMs, n / resumeRatePerS) of the resume, n being the resumed attempts of its channel.
   */
  resumeSpreadMs: ms.default(10_000),
  resumeRatePerS: z.number().positive().default(500),
  queryFirstDelayMs: ms.default(5_000),
  queryIntervalMs: ms.default(5_000),
  pollDeadlineMs: perWallet('pollDeadlineMs'),
  /**
   * Least time from the pay's answer (or timeout) to a reverse, per wallet (wallet-rules.ts): WeChat
   * forbids one within 15 s (+1 s margin), Alipay cancels right away. A single number applies to all.
   */
  reverseMinDelayMs: z.union([ms.transform((n) => ({ wechat: n, alipay: n, unionpay: n })), perWallet('reverseMinDelayMs')]).default(defaults('reverseMinDelayMs')),
  reverseRetryMs: ms.default(2_000),
  reverseRetryMaxMs: ms.default(60_000),
  reverseFastRetries: z.number().int().min(1).default(3),
  lateCheckDelayMs: ms.default(60_000),
  lateCheckTries: z.number().int().min(1).default(3),
  /**
   * A cashier's refund (cloud/refunds/) the wallet answered with unknown or retry_later is asked again
   * with the same refund number after refundRetryMs, doubling (full jitter) up to refundRetryMaxMs, forever…
   */
  refundRetryMs: z.number().int().positive().default(5_000),
  refundRetryMaxMs: z.number().int().positive().default(60_000),
  /** …and one still PENDING this long after it was taken is flagged for an operator (an error line, `scanbox-cloud refunds --flagged`). */
  refundFlagAfterMs: z.number().int().positive().default(600_000),
  heartbeatIntervalS: z.number().positive().default(30),
  pairingCodeTtlS: z.number().int().positive().default(600),
  pairRateLimit: z
    .strictObject({ max: z.number().int().positive().default(10), windowS: z.number().positive().default(60) })
    .default({ max: 10, windowS: 60 }),
  /** One frozen box must not stall delivery to the others. */
  drainTimeoutMs: ms.default(10_000),
  /** The broker's front door (mqtt-edge.ts): packet sizes, bytes and time before login, logins pending per address. */
  mqttLimits: z
    .strictObject({
      maxPacketBytes: z.number().int().positive().max(268_435_455).default(DEFAULT_MQTT_LIMITS.maxPacketBytes),
      maxConnectBytes: z.number().int().positive().max(268_435_455).default(DEFAULT_MQTT_LIMITS.maxConnectBytes),
      preAuthBytes: z.number().int().positive().default(DEFAULT_MQTT_LIMITS.preAuthBytes),
      connectTimeoutMs: z.number().int().positive().default(DEFAULT_MQTT_LIMITS.connectTimeoutMs),
      preAuthPerAddress: z.number().int().positive().default(DEFAULT_MQTT_LIMITS.preAuthPerAddress),
    })
    .default({ ...DEFAULT_MQTT_LIMITS }),
  /** How often a running cloud looks for boxes revoked from the CLI (must be ≤ 500 for the 1 s promise). */
  revocationPollMs: z.number().int().positive().max(500).default(500),
  /**
   * A box sent `unpair` (`scanbox-cloud devices unpair`) is revoked once it has been disconnected this
   * long (it wiped its credentials and left; a box that only dropped its link or restarted is back
   * sooner, and is sent the unpair again)…
   */
  unpairGoneMs: ms.default(15_000),
  /** …or this long after the unpair was first sent, whatever the box is doing: more than the boxes' `unpairWaitMs` (120 s by default). */
  unpairGraceMs: ms.default(300_000),
  /** The operators' web dashboard at /dashboard on the HTTP(S) listener (dashboard/dashboard-config.ts). */
  dashboard: DashboardConfig.prefault({}),
  /** An external MQTT 5 broker (broker/broker-config.ts); absent: the embedded broker. */
  broker: BrokerConfig.optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type CloudConfig = z.infer<typeof CloudConfig>;

/** Several workers on PostgreSQL must hash device secrets under one key: there it is named, never made up per machine. */
export function secretKeyFileOf(c: Pick<CloudConfig, 'secretKeyFile' | 'dbPath'> & { store?: string }): string {
  if (c.secretKeyFile === undefined && c.store !== undefined) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, 'with a PostgreSQL store set secretKeyFile: every worker needs a copy of the same server key (0600), or a box paired through one worker is refused by the others');
  }
  return c.secretKeyFile ?? `${c.dbPath}.key`;
}
export type CloudConfigInput = z.input<typeof CloudConfig>;

const ENV_PREFIX = 'SCANBOX_CLOUD_';

/** SCANBOX_CLOUD_QUERY_FIRST_DELAY_MS=1000 → { queryFirstDelayMs: 1000 }; values are JSON when they parse. */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(env)) {
    if (!key.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const name = key
      .slice(ENV_PREFIX.length)
      .toLowerCase()
      .replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    out[name] = parseEnvValue(raw);
  }
  return out;
}

function parseEnvValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new ProtocolError(ErrorCode.CONFIG_INVALID, `config file ${file} is not valid JSON`);
  }
}

export function parseConfig(input: unknown, source = 'config'): CloudConfig {
  const res = CloudConfig.safeParse(input);
  if (!res.success) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${source} is invalid: ${describeIssues(res.error)}`);
  return res.data;
}

export function loadConfig(opts: { file?: string; env?: NodeJS.ProcessEnv; overrides?: Record<string, unknown> }): CloudConfig {
  const fromFile = opts.file ? readConfigFile(opts.file) : {};
  const defined = Object.fromEntries(Object.entries(opts.overrides ?? {}).filter(([, v]) => v !== undefined));
  return parseConfig({ ...fromFile, ...configFromEnv(opts.env ?? {}), ...defined }, opts.file ? `config (${opts.file} + environment + flags)` : 'config');
}
