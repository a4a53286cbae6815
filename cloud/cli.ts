import { randomBytes } from 'node:crypto';
import { Command, Option } from 'commander';
import QRCode from 'qrcode';
import { ATTEMPT_STATES, CloudAttemptRecord, describeIssues, ErrorCode, isProtocolError, pairingQrText, ProtocolError, type AttemptState } from '../protocol/index.js';
import { merchantId as merchantIdSchema, MerchantPatch, type Merchant } from './merchants/merchant.js';
import { walletsOf } from './gateway/channel-config.js';
import { systemClock } from '../protocol/clock.js';
import { loadConfig, type CloudConfig } from './config.js';
import { startCloud } from './index.js';
import { createLogger } from './log.js';
import { createPairingCode } from './pairing/pairing.js';
import { pairingCloudUrl, probeCloud } from './pairing/pairing-url.js';
import { PgConnection } from './store/pg-connection.js';
import { migratePostgres } from './store/pg-migrate.js';
import { storeName } from './store/open-store.js';
import type { Attempt } from './payments/transaction.js';
import type { CloudStore, DeviceCommandName, DeviceCommandRow } from './store/store.js';
import { CONFIG_HELP, DB_HELP, storeOptions, withCommandStore } from './command-store.js';
import { formatDoctorReport, waitForDoctorReport } from './fleet/doctor-reports.js';
import { registerReconcileCommand } from './reconcile/command.js';
import { checkOperatorName, checkPasswordRules, hashPassword } from './dashboard/operator-password.js';
import { readPassword } from './dashboard/password-prompt.js';
import { registerRefundCommands } from './refunds/command.js';

/**
 * scanbox-cloud: start the cloud, and the support commands that work on its store (also while it
 * runs: SQLite in WAL mode lets another process read and write alongside; PostgreSQL is shared by
 * every worker anyway). A support command opens the store `start` would (command-store.ts).
 */
const program = new Command('scanbox-cloud')
  .description('the scanbox cloud: embedded MQTT broker, pairing API, transaction service, fleet registry')
  // `devices` takes --db and so does `devices revoke`: an option belongs to the command it follows.
  .enablePositionalOptions();

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${v} is not a whole number`);
  return n;
};

function configFrom(o: { config?: string; db?: string }, extra: Record<string, unknown> = {}): CloudConfig {
  return loadConfig({ file: o.config, env: process.env, overrides: { dbPath: o.db, ...extra } });
}

interface StartFlags {
  config?: string;
  mqttPort?: number;
  httpPort?: number;
  db?: string;
  host?: string;
  gatewayUrl?: string;
  gateway?: 'instant';
  tlsCert?: string;
  tlsKey?: string;
  metricsPort?: number;
  broker?: string;
  store?: string;
  workerId?: string;
}

/** Flags override one key of a section: the rest of the section comes from the file and environment. */
function tlsFlags(o: StartFlags): Record<string, unknown> {
  if (!o.tlsCert && !o.tlsKey) return {};
  if (!o.tlsCert || !o.tlsKey) throw new ProtocolError(ErrorCode.CONFIG_INVALID, '--tls-cert and --tls-key go together');
  return { tls: { certFile: o.tlsCert, keyFile: o.tlsKey } };
}

function metricsFlags(o: StartFlags): Record<string, unknown> {
  if (o.metricsPort === undefined) return {};
  const base = loadConfig({ file: o.config, env: process.env }).metrics;
  return { metrics: { ...base, port: o.metricsPort } };
}

/** `--broker URL` replaces the URL of the config's broker section (group, accounts… stay). */
function brokerFlags(o: StartFlags): Record<string, unknown> {
  if (o.broker === undefined) return {};
  const base = loadConfig({ file: o.config, env: process.env }).broker;
  return { broker: { ...base, url: o.broker } };
}

program
  .command('start')
  .description('run the cloud: MQTT broker, pairing API, transaction service')
  .option('--config <file>', 'JSON config file')
  .option('--mqtt-port <n>', 'MQTT port (0 = any free port)', int)
  .option('--http-port <n>', 'HTTP port (0 = any free port)', int)
  .option('--db <path>', 'SQLite store')
  .option('--host <host>', 'address to listen on')
  .option('--gateway-url <url>', 'payment gateway HTTP base URL')
  .option('--tls-cert <file>', 'PEM certificate: MQTT then speaks TLS only (mqtts://) and the pairing API HTTPS only (with --tls-key)')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--metrics-port <n>', 'port of GET /metrics on the metrics listener (default 9464 on 127.0.0.1; 0 = any free port)', int)
  .option('--broker <url>', 'mqtt(s)://user:password@host:port of an external MQTT 5 broker (Mosquitto with dynamic security, EMQX): no embedded broker then; the config file or SCANBOX_CLOUD_BROKER keeps the password off the command line')
  .option('--store <url>', 'postgres://user@host:port/db: PostgreSQL instead of the SQLite --db, for several workers on one database (scanbox-cloud migrate first; password from PGPASSWORD or ~/.pgpass)')
  .option('--worker-id <id>', "this worker's name among several on one PostgreSQL store (default: the host name; a second worker on one host needs its own)")
  .addOption(new Option('--gateway <kind>', '"instant": built-in always-success gateway, for benchmarks and smoke tests only').choices(['instant']))
  .action(async (o: StartFlags) => {
    const config = configFrom(o, { mqttPort: o.mqttPort, httpPort: o.httpPort, host: o.host, gatewayUrl: o.gatewayUrl, gateway: o.gateway, store: o.store, workerId: o.workerId, ...tlsFlags(o), ...metricsFlags(o), ...brokerFlags(o) });
    const logger = createLogger(config.logLevel);
    // Handlers first: a supervisor may send SIGTERM the moment it reads the ready line.
    const starting = startCloud({ config, logger, processMetrics: true });
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping: no new connections; finishing store writes');
      starting.then((cloud) => cloud.close()).then(
        () => {
          logger.info('stopped');
          process.exit(0);
        },
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    await starting;
  });

program
  .command('migrate')
  .description("bring a PostgreSQL store's schema to this cloud's version (every pending step in one transaction; run before starting the workers of a new version)")
  .option('--store <url>', 'postgres://user@host:port/db (password from PGPASSWORD or ~/.pgpass); default: the config\'s store')
  .option('--config <file>', 'JSON config file')
  .action(async (o: { store?: string; config?: string }) => {
    const config = loadConfig({ file: o.config, env: process.env, overrides: { store: o.store } });
    if (config.store === undefined) throw new ProtocolError(ErrorCode.CONFIG_INVALID, 'migrate needs --store postgres://… (or store in the config): a SQLite store migrates itself when opened');
    const db = new PgConnection(config.store, { max: 1 });
    try {
      const { from, to } = await migratePostgres(db);
      console.log(from === to ? `${storeName(config)}: schema version ${to}, nothing to do` : `${storeName(config)}: schema version ${from} → ${to}`);
    } finally {
      await db.close();
    }
  });

const merchant = program.command('merchant').description("the provider's merchants and their wallet sub-accounts (a pairing code binds a box to one)");
const merchantFields = (c: Command) =>
  c
    .option('--name <name>', 'display name')
    .option('--wechat-sub-mch-id <id>', 'WeChat Pay sub_mch_id (特约商户号); "" clears it')
    .option('--alipay-app-auth-token <token>', 'Alipay app_auth_token (the merchant\'s authorisation of the provider app); "" clears it')
    .option('--db <path>', DB_HELP)
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'print JSON');
interface MerchantFlags {
  name?: string;
  wechatSubMchId?: string;
  alipayAppAuthToken?: string;
  db?: string;
  config?: string;
  json?: boolean;
}
/** An empty string clears a field; a malformed id is refused before the store is touched. */
function merchantPatch(o: MerchantFlags): MerchantPatch {
  const clear = (v: string | undefined) => (v === '' ? null : v);
  const r = MerchantPatch.safeParse({ name: clear(o.name), wechatSubMchId: clear(o.wechatSubMchId), alipayAppAuthToken: clear(o.alipayAppAuthToken) });
  if (!r.success) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `merchant fields are invalid: ${describeIssues(r.error)}`);
  return r.data;
}
function checkMerchantId(id: string): string {
  const r = merchantIdSchema.safeParse(id);
  if (!r.success) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `merchant id is invalid: ${describeIssues(r.error)}`);
  return r.data;
}
/** The app_auth_token is a credential: listings show that it is set, never its value. */
function showMerchant(m: Merchant): Record<string, unknown> {
  return { ...m, alipayAppAuthToken: m.alipayAppAuthToken === null ? null : 'set' };
}
function printMerchant(m: Merchant, json: boolean | undefined): void {
  if (json) return void console.log(JSON.stringify(showMerchant(m)));
  console.log(`${m.merchantId}\t${m.name ?? '-'}\twechat sub_mch_id ${m.wechatSubMchId ?? '-'}\talipay app_auth_token ${m.alipayAppAuthToken ? 'set' : '-'}`);
}
merchantFields(merchant.command('add <merchantId>').description('add a merchant (refused if it exists)')).action(async (id: string, o: MerchantFlags) => {
  const patch = merchantPatch(o);
  await withCommandStore(o, async (store) => printMerchant(await store.addMerchant(checkMerchantId(id), patch, Date.now()), o.json));
});
merchantFields(merchant.command('set <merchantId>').description("change a merchant's name or wallet sub-ids (refused if it does not exist)")).action(async (id: string, o: MerchantFlags) => {
  const patch = merchantPatch(o);
  await withCommandStore(o, async (store) => printMerchant(await store.updateMerchant(checkMerchantId(id), patch, Date.now()), o.json));
});
merchant
  .command('list')
  .description('every merchant with its wallet sub-ids (tokens shown as "set")')
  .option('--db <path>', DB_HELP)
  .option('--config <file>', CONFIG_HELP)
  .option('--json', 'print JSON')
  .action(async (o: { db?: string; config?: string; json?: boolean }) => {
    await withCommandStore(o, async (store) => {
      const list = await store.listMerchants();
      if (o.json) return void console.log(JSON.stringify(list.map(showMerchant)));
      for (const m of list) printMerchant(m, false);
    });
  });

const channel = program.command('channel').description("the provider accounts payments go through: health, and the operator's pins and disables");
const channelOpts = (c: Command) => storeOptions(c, `${CONFIG_HELP}; its channels`);
channelOpts(channel.command('list'))
  .description('every channel: wallets, cost, breaker state and window figures (as the running cloud last wrote them), pins and disables')
  .option('--json', 'print JSON')
  .action(async (o: { db?: string; config?: string; json?: boolean }) => {
    await withCommandStore(o, async (store, config) => {
      const rows = await channelRows(store, config);
      if (o.json) return void console.log(JSON.stringify(rows));
      console.log(['CHANNEL', 'KIND', 'WALLETS', 'COST', 'OPERATOR', 'BREAKER', 'SINCE', 'CALLS', 'FAILED', 'P50 MS'].join('\t'));
      for (const r of rows) {
        const h = r.health;
        const since = h ? new Date(h.since).toISOString() : '-';
        console.log([r.channel, r.kind, r.wallets.join(','), r.cost, r.operator ?? '-', h?.state ?? '-', since, h?.calls ?? '-', h?.failures ?? '-', h?.p50LatencyMs ?? '-'].join('\t'));
      }
    });
  });
const overrideCommand = (name: string, description: string, mode: 'pinned' | 'disabled' | null) =>
  channelOpts(channel.command(`${name} <channel>`))
    .description(description)
    .action(async (name: string, o: { db?: string; config?: string }) => {
      await withCommandStore(o, async (store, config) => {
        const c = config.channels[name];
        if (!c) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `no channel ${name} in the config (channels: ${Object.keys(config.channels).join(', ') || 'none'})`);
        await store.setChannelOverride(name, mode ? { mode, wallets: [...walletsOf(c)] } : null, Date.now());
        console.log(`${name}: ${mode ?? 'back to routing by health and cost'} (a running cloud applies it within channelPollMs)`);
      });
    });
overrideCommand('pin', "route every new payment of the channel's wallets to it, whatever its health (replaces another pin of those wallets)", 'pinned');
overrideCommand('disable', 'route no new payment to the channel (its open attempts still finish on it)', 'disabled');
overrideCommand('enable', "clear a pin or disable: routing by health and cost again", null);

async function channelRows(store: CloudStore, config: CloudConfig) {
  const overrides = new Map((await store.channelOverrides()).map((o) => [o.channel, o.mode]));
  const states = new Map((await store.channelStates()).map((r) => [r.channel, r.summary]));
  return Object.entries(config.channels).map(([name, c]) => ({
    channel: name,
    kind: c.kind,
    wallets: [...walletsOf(c)],
    cost: `${c.cost.bps} bps + ${c.cost.fixedFen} fen`,
    operator: overrides.get(name) ?? null,
    health: states.get(name) ?? null,
  }));
}

const pair = program.command('pair').description('pairing codes for field engineers');
/** Long enough for a cloud across the internet, short enough not to hold up an engineer making codes. */
const PAIRING_PROBE_MS = 3_000;
pair
  .command('create')
  .description('create a one-time pairing code for a merchant store')
  .requiredOption('--merchant <id>', 'merchant id')
  .requiredOption('--store <id>', 'store id')
  .option('--db <path>', DB_HELP)
  .option('--config <file>', CONFIG_HELP)
  .option('--cloud-url <url>', "the cloud address the box should call (default: the config's publicHttpUrl, else its HTTP(S) listener: pass the running cloud's --config)")
  .option('--json', 'print JSON')
  .action(async (o: { merchant: string; store: string; db?: string; config?: string; cloudUrl?: string; json?: boolean }) => {
    await withCommandStore(o, async (store, config) => {
      // Before the code exists: an address no box can call is refused, and nothing is created.
      const source = o.config ? `--config ${o.config}` : 'the defaults and SCANBOX_CLOUD_* environment (no --config)';
      const target = pairingCloudUrl(config, { flag: o.cloudUrl, source });
      const issued = await createPairingCode({ store, clock: systemClock, codeTtlS: config.pairingCodeTtlS }, o.merchant, o.store);
      const cloudUrl = target.url;
      const check = await probeCloud(cloudUrl, PAIRING_PROBE_MS);
      const warn = (line: string) => console.error(`scanbox-cloud: warning: ${line}`);
      if (target.loopback) warn(`${cloudUrl} is a loopback address: only a box on this machine can pair with it; ${o.config ? 'set publicHttpUrl in the config' : 'pass the running cloud\'s --config'} or --cloud-url`);
      if (!check.ok) warn(`${check.detail}: is the cloud running there? A box given this code will try ${cloudUrl}`);
      const qrText = pairingQrText({ code: issued.code, cloudUrl });
      if (o.json) return void console.log(JSON.stringify({ code: issued.code, expiresAt: issued.expiresAt, cloudUrl, cloudUrlFrom: target.from, cloudCheck: check, qrText }));
      console.log(`pairing code: ${issued.code}  (merchant ${o.merchant}, store ${o.store})`);
      console.log(`expires:      ${new Date(issued.expiresAt).toISOString()}`);
      console.log(`cloud:        ${cloudUrl}  (from ${target.from}; ${check.ok ? 'it answers' : 'NOT answering'})`);
      console.log(await QRCode.toString(qrText, { type: 'terminal', small: true }));
    });
  });

const devices = program
  .command('devices')
  .alias('device')
  .enablePositionalOptions()
  .description('list every box: merchant, store, online/stale/offline, last seen, firmware, outbox depth, pending attempts')
  .option('--db <path>', DB_HELP)
  .option('--config <file>', CONFIG_HELP)
  .option('--json', 'print JSON')
  .action(async (o: { db?: string; config?: string; json?: boolean }) => {
    await withCommandStore(o, async (store) => {
      const rows = await store.listDevices();
      if (o.json) return void console.log(JSON.stringify(rows));
      console.log(['DEVICE', 'MERCHANT', 'STORE', 'STATUS', 'CONN', 'LAST SEEN', 'FIRMWARE', 'OUTBOX', 'PENDING'].join('\t'));
      for (const d of rows) {
        const seen = d.lastSeenAt ? new Date(d.lastSeenAt).toISOString() : '-';
        console.log([d.deviceId, d.merchantId, d.storeId, d.status, d.connectivity, seen, d.firmware ?? '-', d.outboxDepth ?? '-', d.pendingAttempts ?? '-'].join('\t'));
      }
    });
  });
devices
  .command('revoke <deviceId>')
  .description('revoke a box: a running cloud disconnects it within a second and refuses it from then on')
  .option('--db <path>', DB_HELP)
  .option('--config <file>', CONFIG_HELP)
  .action(async (deviceId: string, own: { db?: string; config?: string }) => {
    const o = { ...devices.opts<{ db?: string; config?: string }>(), ...own };
    await withCommandStore(o, async (store) => {
      const done = await store.revokeDevice(deviceId, Date.now());
      if (!done) {
        const d = await store.getDevice(deviceId);
        throw d ? new ProtocolError(ErrorCode.DEVICE_REVOKED, `${deviceId} is already revoked`) : new ProtocolError(ErrorCode.NOT_PAIRED, `no device ${deviceId}`);
      }
      console.log(`revoked ${deviceId}`);
    });
  });

/** The down/command message id: the box remembers the last one it carried out and ignores a redelivery. */
function newCommandId(): string {
  return `cmd-${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

type DeviceFlags = { db?: string; config?: string; json?: boolean };

/** Queues the command (or finds the same one still open) and says so on `say`: JSON of the row, or a sentence. */
async function queueCommand(store: CloudStore, name: DeviceCommandName, deviceId: string, json: boolean | undefined, then: string, say: (line: string) => void): Promise<DeviceCommandRow> {
  const { row, created } = await store.addDeviceCommand({ id: newCommandId(), deviceId, command: name }, Date.now());
  if (json) say(JSON.stringify({ ...row, created }));
  else if (!created) say(`${name} of ${deviceId} is already queued (command ${row.id}, ${row.sentAt === null ? 'not sent yet' : `sent ${new Date(row.sentAt).toISOString()}`})`);
  else say(`${name} of ${deviceId} queued (command ${row.id}): the running cloud sends it when the box is connected; ${then}`);
  return row;
}

const deviceCommand = (name: 'reboot' | 'unpair', description: string, then: string) =>
  devices
    .command(`${name} <deviceId>`)
    .description(description)
    .option('--db <path>', DB_HELP)
    .option('--config <file>', CONFIG_HELP)
    .option('--json', 'print the queued command as JSON')
    .action(async (deviceId: string, own: DeviceFlags) => {
      const o = { ...devices.opts<DeviceFlags>(), ...own };
      await withCommandStore(o, (store) => queueCommand(store, name, deviceId, o.json, then, (line) => console.log(line)));
    });
deviceCommand(
  'reboot',
  'restart a box: it finishes its current journal write, closes its ports and cloud link, and exits 75 for systemd to start it again',
  'the box restarts and carries on with its journal',
);
deviceCommand(
  'unpair',
  'unpair a box: it takes no new sale, lets what is in flight finish (up to its unpairWaitMs, 120 s), wipes its credentials and comes back in pairing mode; the cloud then revokes it',
  'the cloud revokes it once it has left (unpairGoneMs) or at the latest unpairGraceMs after sending',
);
devices
  .command('doctor <deviceId>')
  .description("ask a box for its doctor report (its checks, run inside its agent); with --wait, print the report when it comes: exit 1 if a check fails, 2 if no report came in time")
  .option('--db <path>', DB_HELP)
  .option('--config <file>', CONFIG_HELP)
  .option('--wait <seconds>', 'wait up to this long for the report and print it (one PASS/FAIL line per check, with its fix)', int)
  .option('--json', 'print the queued command as JSON; with --wait, the report')
  .action(async (deviceId: string, own: DeviceFlags & { wait?: number }) => {
    const o = { ...devices.opts<DeviceFlags>(), ...own };
    await withCommandStore(o, async (store) => {
      const then = 'the box answers with its report (show it with --wait)';
      if (o.wait === undefined) return void (await queueCommand(store, 'doctor', deviceId, o.json, then, (line) => console.log(line)));
      // While waiting, stdout is kept for the report alone.
      const row = await queueCommand(store, 'doctor', deviceId, false, then, (line) => console.error(line));
      const report = await waitForDoctorReport(store, { deviceId, commandId: row.id, timeoutMs: o.wait * 1000 }, systemClock);
      if (!report) {
        const sent = (await store.listDeviceCommands(deviceId)).find((c) => c.id === row.id)?.sentAt ?? null;
        const why = sent === null ? 'not sent: the box is not connected, or has not announced protocol v3 (its firmware has no doctor; see `scanbox-cloud devices`)' : `sent ${new Date(sent).toISOString()}, not answered yet`;
        console.error(`scanbox-cloud: no doctor report from ${deviceId} within ${o.wait} s (command ${row.id} ${why}); it is kept as the box's latest report when it comes`);
        process.exitCode = 2;
        return;
      }
      console.log(o.json ? JSON.stringify(report) : formatDoctorReport(report));
      process.exitCode = report.checks.every((c) => c.ok) ? 0 : 1;
    });
  });
devices
  .command('commands [deviceId]')
  .description("commands queued for boxes (all, or one box's): sent or not, and how each ended")
  .option('--db <path>', DB_HELP)
  .option('--config <file>', CONFIG_HELP)
  .option('--json', 'print JSON')
  .action(async (deviceId: string | undefined, own: DeviceFlags) => {
    const o = { ...devices.opts<DeviceFlags>(), ...own };
    await withCommandStore(o, async (store) => {
      const rows = await store.listDeviceCommands(deviceId);
      if (o.json) return void console.log(JSON.stringify(rows));
      const at = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());
      console.log(['COMMAND', 'DEVICE', 'NAME', 'CREATED', 'SENT', 'DONE', 'OUTCOME'].join('\t'));
      for (const r of rows) console.log([r.id, r.deviceId, r.command, at(r.createdAt), at(r.sentAt), at(r.doneAt), r.outcome ?? '-'].join('\t'));
    });
  });

program
  .command('attempts')
  .description('payment attempts, for support: find one by outTradeNo and see its history')
  .option('--db <path>', DB_HELP)
  .option('--config <file>', CONFIG_HELP)
  .addOption(new Option('--state <state>', 'only attempts in this state').choices(ATTEMPT_STATES))
  .option('--id <outTradeNo>', 'one attempt, with its full event history')
  .option('--flagged', 'only attempts flagged for a person (amount mismatch)')
  .option('--json', 'print a JSON array of CloudAttemptRecord')
  .action(async (o: { db?: string; config?: string; state?: AttemptState; id?: string; flagged?: boolean; json?: boolean }) => {
    await withCommandStore(o, async (store) => {
      const list = await store.listAttempts({ state: o.state, outTradeNo: o.id, ...(o.flagged ? { flag: 'AMOUNT_MISMATCH' as const } : {}) });
      if (o.json) return void console.log(JSON.stringify(list.map(toRecord)));
      if (o.id && list.length === 0) throw new ProtocolError(ErrorCode.ATTEMPT_UNKNOWN, `no attempt ${o.id}`);
      for (const a of list) console.log(describe(a));
      if (o.id) {
        for (const e of await store.attemptEvents(o.id)) {
          console.log(`  ${new Date(e.at).toISOString()}  ${e.event.padEnd(28)} ${String(e.fromState ?? '-').padEnd(15)} → ${e.toState.padEnd(15)} ${e.note}`);
        }
      }
    });
  });

function toRecord(a: Attempt): CloudAttemptRecord {
  return CloudAttemptRecord.parse({ ...a });
}

function describe(a: Attempt): string {
  const amount = `${a.amount} ${a.currency}`;
  return [a.outTradeNo, a.state, a.reason ?? '-', a.saleId, amount, a.wallet ?? '-', a.channel ?? '-', a.flag ?? '-', new Date(a.updatedAt).toISOString()].join('\t');
}

const operator = program.command('operator').description('operators of the web dashboard (/dashboard): accounts with a password, hashed with scrypt');
type OperatorFlags = { db?: string; config?: string; passwordStdin?: boolean; json?: boolean };
/** Checked before the store is touched: a bad name or a short password changes nothing. */
async function newPassword(o: OperatorFlags): Promise<string> {
  const password = await readPassword(o.passwordStdin === true);
  checkPasswordRules(password);
  return hashPassword(password);
}
storeOptions(operator.command('add <name>'))
  .description('add an operator; the password is typed at the prompt (twice) or piped in with --password-stdin, never an argument')
  .option('--password-stdin', 'read the password from standard input (one line)')
  .action(async (name: string, o: OperatorFlags) => {
    checkOperatorName(name);
    const hash = await newPassword(o);
    await withCommandStore(o, async (store) => {
      await store.addOperator(name, hash, Date.now());
      console.log(`operator ${name} added: log in at /dashboard on the cloud's HTTP(S) address`);
    });
  });
storeOptions(operator.command('password <name>'))
  .description("set an operator's password (prompt, or --password-stdin); every session of the operator ends")
  .option('--password-stdin', 'read the password from standard input (one line)')
  .action(async (name: string, o: OperatorFlags) => {
    checkOperatorName(name);
    const hash = await newPassword(o);
    await withCommandStore(o, async (store) => {
      await store.setOperatorPassword(name, hash, Date.now());
      console.log(`password of ${name} changed; its sessions ended`);
    });
  });
storeOptions(operator.command('list'))
  .description('every operator (never the hashes)')
  .option('--json', 'print JSON')
  .action(async (o: OperatorFlags) => {
    await withCommandStore(o, async (store) => {
      const rows = (await store.listOperators()).map((r) => ({ name: r.name, createdAt: r.createdAt, updatedAt: r.updatedAt }));
      if (o.json) return void console.log(JSON.stringify(rows));
      for (const r of rows) console.log(`${r.name}\tadded ${new Date(r.createdAt).toISOString()}\tpassword set ${new Date(r.updatedAt).toISOString()}`);
    });
  });
storeOptions(operator.command('remove <name>'))
  .description('remove an operator and end its sessions (what it did stays in the audit trail)')
  .action(async (name: string, o: OperatorFlags) => {
    await withCommandStore(o, async (store) => {
      if (!(await store.removeOperator(name))) throw new ProtocolError(ErrorCode.OPERATOR_UNKNOWN, `no operator ${name}`);
      console.log(`operator ${name} removed; its sessions ended`);
    });
  });
registerReconcileCommand(program);
registerRefundCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(isProtocolError(err) ? `error ${err.code}: ${err.message}` : `error: ${(err as Error).message}`);
  process.exit(1);
}
