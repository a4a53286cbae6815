import { Option, type Command } from 'commander';
import { businessDate, businessDayRange, describeIssues, ErrorCode, formatDecimal, ProtocolError, REFUND_STATES, type RefundState } from '../../protocol/index.js';
import { storeOptions, withCommandStore, type StoreFlags } from '../command-store.js';
import { merchantId as merchantIdSchema } from '../merchants/merchant.js';
import type { CloudStore, RefundEventRow } from '../store/store.js';
import { dayReport, dayReportCsv, formatDayReport } from './day-report.js';
import type { Refund } from './refund-machine.js';

/**
 * The back office's commands about the cashier's refunds and the day's takings:
 *   scanbox-cloud report --merchant M --date yyyy-MM-dd [--csv | --json]
 *   scanbox-cloud refunds [--flagged] [--state S] [--merchant M] [--device D] [--id R (with its history)] [--json]
 *   scanbox-cloud store limit --merchant M --store S [--refund-daily FEN | --refund-daily none]
 * They work on the cloud's store (SQLite --db, or the config's PostgreSQL), also while the cloud runs:
 * a limit set here counts from the next refund asked.
 */

/** A read of a store that is not there would create an empty one and report an empty day: refused instead. */
function withExistingStore<T>(o: StoreFlags, fn: (store: CloudStore) => Promise<T>): Promise<T> {
  return withCommandStore(o, fn, { mustExist: true });
}

function checked<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: Parameters<typeof describeIssues>[0] } }, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `${what} is invalid: ${describeIssues(r.error)}`);
  return r.data;
}

async function knownMerchant(store: CloudStore, id: string): Promise<void> {
  if (!(await store.getMerchant(id))) throw new ProtocolError(ErrorCode.MERCHANT_UNKNOWN, `merchant ${id} does not exist`);
}

export function registerRefundCommands(program: Command): void {
  storeOptions(program.command('report'))
    .description("one merchant's business day (Beijing): per store and box, per wallet — paid sales, refunds, net — with store and merchant totals")
    .requiredOption('--merchant <id>', 'merchant id')
    .requiredOption('--date <yyyy-MM-dd>', 'the business day, Beijing time')
    .addOption(new Option('--csv', 'CSV for the back office (amounts in yuan)').conflicts('json'))
    .option('--json', 'the report as JSON (amounts in fen)')
    .action(async (o: StoreFlags & { merchant: string; date: string; csv?: boolean; json?: boolean }) => {
      const merchant = checked(merchantIdSchema, o.merchant, '--merchant');
      const date = checked(businessDate, o.date, '--date');
      await withExistingStore(o, async (store) => {
        await knownMerchant(store, merchant);
        const { from, to } = businessDayRange(date);
        const report = dayReport(merchant, date, await store.dayFigures({ merchantId: merchant }, from, to));
        process.stdout.write(o.csv ? dayReportCsv(report) : o.json ? `${JSON.stringify(report)}\n` : `${formatDayReport(report)}\n`);
      });
    });

  storeOptions(program.command('refunds'))
    .description("the cashier's refunds: where each stands, and the ones flagged for an operator")
    .option('--flagged', 'only refunds pending longer than refundFlagAfterMs')
    .addOption(new Option('--state <state>', 'only refunds in this state').choices(REFUND_STATES))
    .option('--merchant <id>', "only this merchant's")
    .option('--device <id>', "only this box's")
    .option('--id <refundId>', 'one refund, with its history: every wallet answer and retry')
    .option('--json', 'print JSON (amounts in fen)')
    .action(async (o: StoreFlags & { flagged?: boolean; state?: RefundState; merchant?: string; device?: string; id?: string; json?: boolean }) => {
      await withExistingStore(o, async (store) => {
        const list = await store.listRefunds({
          ...(o.flagged ? { flagged: true } : {}),
          ...(o.state ? { state: o.state } : {}),
          ...(o.merchant ? { merchantId: o.merchant } : {}),
          ...(o.device ? { deviceId: o.device } : {}),
          ...(o.id ? { refundIds: [o.id] } : {}),
        });
        if (o.json) return void console.log(JSON.stringify(list));
        if (o.id && list.length === 0) throw new ProtocolError(ErrorCode.REFUND_UNKNOWN, `no refund ${o.id}`);
        console.log(['REFUND', 'STATE', 'REASON', 'OUT_TRADE_NO', 'AMOUNT', 'WALLET', 'CHANNEL', 'MERCHANT', 'STORE', 'CREATED', 'FINAL', 'TRIES', 'FLAGGED', 'LAST ANSWER'].join('\t'));
        for (const r of list) console.log(describeRefund(r));
        if (o.id) for (const e of (await store.refundEvents(list[0]!.outTradeNo)).filter((x) => x.refundId === o.id)) console.log(historyLine(e));
      });
    });

  const store = program.command('store').description("a merchant's store: its daily refund limit");
  storeOptions(store.command('limit'))
    .description("show or set a store's daily refund limit (fen; none: no limit): refunds asked on a Beijing day beyond it are refused DAILY_LIMIT")
    .requiredOption('--merchant <id>', 'merchant id')
    .requiredOption('--store <id>', 'store id')
    .option('--refund-daily <fen|none>', 'the limit in fen (0 refuses every refund), or none')
    .action(async (o: StoreFlags & { merchant: string; store: string; refundDaily?: string }) => {
      const merchant = checked(merchantIdSchema, o.merchant, '--merchant');
      if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(o.store)) throw new ProtocolError(ErrorCode.CONFIG_INVALID, '--store must be 1–64 of A-Z a-z 0-9 _ . : - (as its pairing codes name it)');
      const limit = o.refundDaily === undefined ? undefined : limitOf(o.refundDaily);
      await withExistingStore(o, async (s) => {
        await knownMerchant(s, merchant);
        if (limit !== undefined) await s.setStoreRefundLimit(merchant, o.store, limit, Date.now());
        const now = await s.storeRefundLimit(merchant, o.store);
        if (now === undefined) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `merchant ${merchant} has no store ${o.store}`);
        console.log(`store ${o.store} of merchant ${merchant}: daily refund limit ${now === null ? 'none' : `${formatDecimal(now)} yuan (${now} fen)`}`);
      });
    });
}

/** One transition of a refund (refund_events), under its row. */
function historyLine(e: RefundEventRow): string {
  return `  ${new Date(e.at).toISOString()}  ${e.event.padEnd(8)} ${String(e.fromState ?? '-').padEnd(8)} → ${e.toState.padEnd(8)} ${e.note}`;
}

function limitOf(v: string): number | null {
  if (v === 'none') return null;
  if (!/^\d{1,15}$/.test(v)) throw new ProtocolError(ErrorCode.CONFIG_INVALID, `--refund-daily takes whole fen (e.g. 50000 for 500.00 yuan) or none, not ${JSON.stringify(v)}`);
  return Number(v);
}

function describeRefund(r: Refund): string {
  const at = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());
  return [
    r.refundId,
    r.state,
    r.reason ?? '-',
    r.outTradeNo,
    `${formatDecimal(r.amount)} ${r.currency}`,
    r.wallet ?? '-',
    r.channel ?? '-',
    r.merchantId,
    r.storeId,
    at(r.createdAt),
    at(r.finalAt),
    String(r.tries),
    r.flagged ? 'FLAGGED' : '-',
    r.message ?? '-',
  ].join('\t');
}
