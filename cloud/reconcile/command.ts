import type { Command } from 'commander';
import { pino, type Logger } from 'pino';
import { isProtocolError } from '../../protocol/index.js';
import { systemClock } from '../../protocol/clock.js';
import type { CloudConfig } from '../config.js';
import { commandConfig, CONFIG_HELP, DB_HELP, openCommandStore } from '../command-store.js';
import { alipayGatewayFromConfig } from '../gateway/alipay/adapter.js';
import { channelsFromConfig, type ChannelRouter } from '../gateway/channels.js';
import { wechatGatewayFromConfig } from '../gateway/wechat/adapter.js';
import type { CloudStore } from '../store/store.js';
import { dayOf, reconcile, ReconcileUsageError, type ReconcileChannel } from './reconcile.js';
import { formatReconcileReport } from './report.js';

/**
 * `scanbox-cloud reconcile --date D [--channel C] [--apply] [--json]`: the morning comparison of
 * the wallets' bills with the store (reconcile.ts). Exit 0: nothing needs a person; 1: something
 * does; 2: it could not run — a usage or config error, or a bill that could not be fetched or read.
 */
const USAGE_ERROR = 2;
/** A provider's bill of a busy day is megabytes: longer than a payment call may take. */
const BILL_TIMEOUT_MS = 60_000;

interface ReconcileFlags {
  date: string;
  channel?: string;
  apply?: boolean;
  json?: boolean;
  db?: string;
  config?: string;
}

export function registerReconcileCommand(program: Command): void {
  program
    .command('reconcile')
    .description("compare a day's wallet bills with the store: find charges nobody kept, successes nobody charged, mismatches; --apply refunds the one-sided charges")
    .requiredOption('--date <yyyy-MM-dd>', 'the business day (Beijing time) the bills are for')
    .option('--channel <name>', 'only this WeChat or Alipay channel (default: every one)')
    .option('--apply', 'refund charges nobody kept, query the rest, and record the findings (default: report only)')
    .option('--json', 'print the report as JSON')
    .option('--db <path>', DB_HELP)
    .option('--config <file>', `${CONFIG_HELP}; its channels`)
    // 1 means "a person must look" here, so commander's own usage errors (a missing --date) exit 2; help stays 0.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : USAGE_ERROR))
    .action(async (o: ReconcileFlags) => {
      process.exitCode = await runReconcile(o);
    });
}

async function runReconcile(o: ReconcileFlags): Promise<number> {
  // stderr, warnings only: stdout is the report (JSON for a script), and an adapter's per-call lines are noise here.
  const logger = pino({ level: 'warn', base: { svc: 'scanbox-cloud', cmd: 'reconcile' } }, pino.destination({ dest: 2, sync: true }));
  let store: CloudStore | undefined;
  let opened: OpenedChannels | undefined;
  try {
    dayOf(o.date);
    const config = commandConfig(o);
    checkChannel(config, o.channel);
    // A mistyped --db must not create an empty store and report every charge of the day as nobody's.
    const s = (store = await openCommandStore(config, { mustExist: true }));
    // `random` only spreads a routing choice, and reconcile routes nothing new.
    opened = openReconcileChannels(config, { merchants: (id) => s.getMerchant(id), clock: systemClock, random: Math.random, logger });
    const deps = { store: s, gateway: opened.gateway, channels: opened.channels, clock: systemClock, callTimeoutMs: config.gatewayCallTimeoutMs, billTimeoutMs: BILL_TIMEOUT_MS };
    const report = await reconcile(deps, { date: o.date, channel: o.channel, apply: o.apply === true });
    console.log(o.json ? JSON.stringify(report) : formatReconcileReport(report));
    return report.exitCode;
  } catch (err) {
    // Whatever kept the run from finishing, it did not finish: never 1, which says it did and found something.
    console.error(isProtocolError(err) ? `error ${err.code}: ${err.message}` : `error: ${(err as Error).message}`);
    return USAGE_ERROR;
  } finally {
    await opened?.close();
    await store?.close();
  }
}

/** A channel that is configured but has no wallet bill (the generic JSON gateway, instant) is said so by name. */
function checkChannel(config: CloudConfig, name: string | undefined): void {
  const c = name === undefined ? undefined : config.channels[name];
  if (c && c.kind !== 'wechat' && c.kind !== 'alipay') throw new ReconcileUsageError(`channel ${name} is a ${c.kind} channel: it has no wallet bill to reconcile`);
}

export interface OpenedChannels {
  /** Every WeChat and Alipay channel of the config, with its bill download. */
  channels: ReconcileChannel[];
  /** The cloud's router over every configured channel: refunds and queries take the channel's own way. */
  gateway: ChannelRouter;
  close(): Promise<void>;
}

/**
 * The channels as the cloud builds them (channelsFromConfig), for the refunds and queries; and the
 * WeChat and Alipay adapters once more for their bill downloads, which the router does not carry.
 * Credentials are read as `start` reads them: a missing or loose file is CONFIG_INVALID, by name.
 */
export function openReconcileChannels(config: Parameters<typeof channelsFromConfig>[0], deps: Parameters<typeof channelsFromConfig>[1]): OpenedChannels {
  const gateway = channelsFromConfig(config, deps);
  const channels: ReconcileChannel[] = [];
  const pools: { close(): Promise<void> }[] = [gateway];
  const close = async () => void (await Promise.all(pools.map((p) => p.close())));
  try {
    for (const [name, c] of Object.entries(config.channels)) {
      const logger: Logger = deps.logger.child({ channel: name });
      if (c.kind === 'wechat') {
        const bills = wechatGatewayFromConfig(name, c, { merchants: deps.merchants, logger });
        pools.push(bills);
        channels.push({ name, wallet: 'wechat', bills });
      }
      if (c.kind === 'alipay') {
        const bills = alipayGatewayFromConfig(name, c, { merchants: deps.merchants, clock: deps.clock, logger });
        pools.push(bills);
        channels.push({ name, wallet: 'alipay', bills });
      }
    }
  } catch (err) {
    void close();
    throw err;
  }
  return { channels, gateway, close };
}
