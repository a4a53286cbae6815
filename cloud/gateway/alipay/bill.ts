import AdmZip from 'adm-zip';
import iconv from 'iconv-lite';
import { signedFenToYuan, signedYuanToFen } from './amount.js';
import { beijingTimestamp, parseBeijingTimestamp } from './requests.js';

/**
 * Alipay's trade bill (交易账单, bill_type "trade", 业务明细): the archive that the URL answered by
 * alipay.data.dataservice.bill.downloadurl.query points at. Written by the simulator, read by the adapter.
 *
 * Layout, as Alipay publishes it and as the files look (sources):
 * - [GUIDE] 对账说明 (https://docs.open.alipay.com/204/106262/): merchants/ISVs download "指定日期（当天除外）的业务明细
 *   账单文件" through the API; in ISV mode with the merchant's app_auth_token.
 * - [URL] alipay.data.dataservice.bill.downloadurl.query (requests.ts): the link is valid for 30 seconds.
 * - [FILE] The archive is `<account>_<yyyyMMdd>.csv.zip` holding two GBK-encoded CSV files, `…_业务明细.csv` and
 *   `…_业务明细(汇总).csv`, whose names are GBK too (no UTF-8 flag in the zip). Each file opens with `#` lines
 *   (`#支付宝业务明细查询` / `#支付宝业务汇总查询`, `#账号：[…]`, `#起始日期：[yyyy年MM月dd日 HH:mm:ss]   终止日期：[…]`), a
 *   `#-----…业务明细列表…-----` marker, the header row, the rows, a `…列表结束…` marker, the totals
 *   (`#交易合计：N笔，商家实收共X元，商家优惠共Y元`, `#退款合计：M笔，商家实收退款共-X元，商家优惠退款共Y元`) and
 *   `#导出时间：[…]`. The 25 detail columns, in order, are those of COLUMNS below; id-like cells end with a tab so
 *   spreadsheet programs keep them as text; refund rows carry negative amounts and the refund's request number.
 *   The summary's columns: 门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,
 *   商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）, one row per store and a 合计 row.
 *   Alipay does not publish this layout as a specification page we could find; it is read here from real files as
 *   reproduced in public reconciliation code (e.g. a bill of 2019-09-16 with trade and refund rows and both footer
 *   lines in a payment-channel test, GBK decoding of the zip in parsers that check `#支付宝业务明细查询` and
 *   `#支付宝业务汇总查询`, and the summary header quoted in parsers reading `…(汇总).csv` with `FileUtils.readLines(f,
 *   "GBK")`). Where those sources disagree (column order), the reader goes by header names, not positions.
 *
 * Amounts are exact fen (signed: refund rows are negative), times are Beijing time (UTC+8) as ms since the epoch.
 */

export type AlipayBillKind = 'trade' | 'refund';

export interface AlipayBillRow {
  /** 支付宝交易号 */
  tradeNo: string;
  /** 商户订单号 */
  outTradeNo: string;
  /** 业务类型: 交易 / 退款 */
  kind: AlipayBillKind;
  /** 商品名称 */
  subject: string;
  /** 创建时间 (ms since the epoch) */
  createdAt: number;
  /** 完成时间 (ms since the epoch) */
  completedAt: number;
  storeId: string;
  storeName: string;
  operator: string;
  terminalId: string;
  /** 对方账户 (the buyer, masked by Alipay) */
  counterparty: string;
  /** 订单金额（元）, in fen; negative on refund rows */
  orderAmount: number;
  /** 商家实收（元）, in fen; negative on refund rows */
  merchantReceived: number;
  alipayRedPacket: number;
  points: number;
  /** 支付宝优惠（元） */
  alipayDiscount: number;
  /** 商家优惠（元） */
  merchantDiscount: number;
  voucherWriteOff: number;
  voucherName: string;
  merchantRedPacket: number;
  cardConsumption: number;
  /** 退款批次号/请求号: the refund's out_request_no on refund rows, '' on trade rows */
  refundNo: string;
  serviceFee: number;
  profitShare: number;
  memo: string;
}

/** What a caller must give for a row; the columns it leaves out are written empty (text) or 0.00 (amounts). */
export type AlipayBillRowInput = Pick<AlipayBillRow, 'tradeNo' | 'outTradeNo' | 'kind' | 'createdAt' | 'completedAt' | 'orderAmount' | 'merchantReceived'> &
  Partial<AlipayBillRow>;

export interface AlipayBill {
  /** The account in `#账号：[…]` (the PID with Alipay's suffix). */
  account: string;
  /** yyyy-MM-dd (Beijing) */
  date: string;
  rows: AlipayBillRow[];
  /** The counts the files state (footer and 合计), already checked against the rows. */
  totals: { trades: number; refunds: number };
}

export class AlipayBillError extends Error {
  override readonly name = 'AlipayBillError';
}

type ColumnType = 'text' | 'kind' | 'time' | 'fen';
interface Column {
  header: string;
  key: keyof AlipayBillRow;
  type: ColumnType;
  /** The reader refuses a file without it. */
  required?: boolean;
  /** Alipay ends the cell with a tab (keeps spreadsheets from reading ids as numbers). */
  tab?: boolean;
}

/** [FILE] the 25 columns of 业务明细, in Alipay's order. */
const COLUMNS: readonly Column[] = [
  { header: '支付宝交易号', key: 'tradeNo', type: 'text', required: true, tab: true },
  { header: '商户订单号', key: 'outTradeNo', type: 'text', required: true, tab: true },
  { header: '业务类型', key: 'kind', type: 'kind', required: true, tab: true },
  { header: '商品名称', key: 'subject', type: 'text' },
  { header: '创建时间', key: 'createdAt', type: 'time', required: true },
  { header: '完成时间', key: 'completedAt', type: 'time', required: true },
  { header: '门店编号', key: 'storeId', type: 'text', tab: true },
  { header: '门店名称', key: 'storeName', type: 'text', tab: true },
  { header: '操作员', key: 'operator', type: 'text', tab: true },
  { header: '终端号', key: 'terminalId', type: 'text', tab: true },
  { header: '对方账户', key: 'counterparty', type: 'text', tab: true },
  { header: '订单金额（元）', key: 'orderAmount', type: 'fen', required: true },
  { header: '商家实收（元）', key: 'merchantReceived', type: 'fen', required: true },
  { header: '支付宝红包（元）', key: 'alipayRedPacket', type: 'fen' },
  { header: '集分宝（元）', key: 'points', type: 'fen' },
  { header: '支付宝优惠（元）', key: 'alipayDiscount', type: 'fen' },
  { header: '商家优惠（元）', key: 'merchantDiscount', type: 'fen' },
  { header: '券核销金额（元）', key: 'voucherWriteOff', type: 'fen' },
  { header: '券名称', key: 'voucherName', type: 'text' },
  { header: '商家红包消费金额（元）', key: 'merchantRedPacket', type: 'fen', tab: true },
  { header: '卡消费金额（元）', key: 'cardConsumption', type: 'fen' },
  { header: '退款批次号/请求号', key: 'refundNo', type: 'text', required: true, tab: true },
  { header: '服务费（元）', key: 'serviceFee', type: 'fen' },
  { header: '分润（元）', key: 'profitShare', type: 'fen' },
  { header: '备注', key: 'memo', type: 'text' },
];

const SUMMARY_HEADER = ['门店编号', '门店名称', '交易订单总笔数', '退款订单总笔数', '订单金额（元）', '商家实收（元）', '支付宝优惠（元）', '商家优惠（元）', '卡消费金额（元）', '服务费（元）', '分润（元）', '实收净额（元）'];
const KIND_TEXT: Readonly<Record<AlipayBillKind, string>> = { trade: '交易', refund: '退款' };
const DETAIL_TITLE = '#支付宝业务明细查询';
const SUMMARY_TITLE = '#支付宝业务汇总查询';
/** The markers exactly as Alipay draws them (dash counts included), for the writer; the reader matches the words. */
const MARKERS = {
  detailStart: `#${'-'.repeat(41)}业务明细列表${'-'.repeat(40)}`,
  detailEnd: `#${'-'.repeat(41)}业务明细列表结束${'-'.repeat(36)}`,
  summaryStart: `#${'-'.repeat(41)}业务汇总列表${'-'.repeat(40)}`,
  summaryEnd: `#${'-'.repeat(40)}业务汇总列表结束${'-'.repeat(37)}`,
} as const;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;
/** Far above any day of one merchant's trades; bounds what a hostile or broken archive can make us inflate. */
const MAX_ENTRY_BYTES = 64 * 1024 * 1024;
const MAX_ENTRIES = 16;

// ---------------------------------------------------------------------------------------------------------------
// Writing

export interface FormatOptions {
  /** `#账号：[…]`; a made-up PID-like account by default. */
  account?: string;
  /** `#导出时间：[…]`, ms since the epoch; the end of the bill's day by default. */
  exportedAt?: number;
}

/** The archive Alipay serves for `date` (yyyy-MM-dd): zip bytes holding the GBK detail and summary files. */
export function formatAlipayBill(rows: readonly AlipayBillRowInput[], date: string, opts: FormatOptions = {}): Buffer {
  const dayStart = dayStartOf(date);
  const account = opts.account ?? '20880000000000000156';
  const exportedAt = opts.exportedAt ?? dayStart + DAY_MS;
  const full = rows.map(completeRow);
  const stem = `${account}_${date.replaceAll('-', '')}`;
  const zip = new AdmZip(undefined, { decoder: GBK_NAMES });
  addEntry(zip, `${stem}_业务明细.csv`, detailText(full, account, dayStart, exportedAt), exportedAt);
  addEntry(zip, `${stem}_业务明细(汇总).csv`, summaryText(full, account, dayStart, exportedAt), exportedAt);
  return zip.toBuffer();
}

/** [FILE] entry names in GBK with the UTF-8 (EFS) flag clear, as Alipay's archives have them. */
const GBK_NAMES = { efs: false, encode: (s: string) => iconv.encode(s, 'gbk'), decode: (b: Buffer | Uint8Array) => iconv.decode(Buffer.from(b), 'gbk') };

function addEntry(zip: AdmZip, name: string, text: string, at: number): void {
  const entry = zip.addFile(name, iconv.encode(text, 'gbk'));
  entry.header.time = new Date(at);
}

function completeRow(r: AlipayBillRowInput): AlipayBillRow {
  return {
    subject: '', storeId: '', storeName: '', operator: '', terminalId: '', counterparty: '', voucherName: '', refundNo: '', memo: '',
    alipayRedPacket: 0, points: 0, alipayDiscount: 0, merchantDiscount: 0, voucherWriteOff: 0, merchantRedPacket: 0, cardConsumption: 0, serviceFee: 0, profitShare: 0,
    ...r,
  };
}

function detailText(rows: readonly AlipayBillRow[], account: string, dayStart: number, exportedAt: number): string {
  const trades = rows.filter((r) => r.kind === 'trade');
  const refunds = rows.filter((r) => r.kind === 'refund');
  const sum = (list: readonly AlipayBillRow[], key: 'merchantReceived' | 'merchantDiscount') => signedFenToYuan(list.reduce((a, r) => a + r[key], 0));
  return lines([
    DETAIL_TITLE,
    ...headLines(account, dayStart),
    MARKERS.detailStart,
    COLUMNS.map((c) => c.header).join(','),
    ...rows.map((r) => COLUMNS.map((c) => writeCell(c, r)).join(',')),
    MARKERS.detailEnd,
    `#交易合计：${trades.length}笔，商家实收共${sum(trades, 'merchantReceived')}元，商家优惠共${sum(trades, 'merchantDiscount')}元`,
    `#退款合计：${refunds.length}笔，商家实收退款共${sum(refunds, 'merchantReceived')}元，商家优惠退款共${sum(refunds, 'merchantDiscount')}元`,
    `#导出时间：[${chineseTime(exportedAt)}]`,
  ]);
}

/** One 合计 row: this writer knows no stores. Amount columns are the sums of the detail's (refunds negative). */
function summaryText(rows: readonly AlipayBillRow[], account: string, dayStart: number, exportedAt: number): string {
  const total = (key: keyof AlipayBillRow) => rows.reduce((a, r) => a + (r[key] as number), 0);
  const received = total('merchantReceived');
  const fee = total('serviceFee');
  const amounts = [total('orderAmount'), received, total('alipayDiscount'), total('merchantDiscount'), total('cardConsumption'), fee, total('profitShare'), received + fee];
  const count = (kind: AlipayBillKind) => String(rows.filter((r) => r.kind === kind).length);
  return lines([
    SUMMARY_TITLE,
    ...headLines(account, dayStart),
    MARKERS.summaryStart,
    SUMMARY_HEADER.join(','),
    ['合计', '', count('trade'), count('refund'), ...amounts.map(signedFenToYuan)].join(','),
    MARKERS.summaryEnd,
    `#导出时间：[${chineseTime(exportedAt)}]`,
  ]);
}

function headLines(account: string, dayStart: number): string[] {
  return [`#账号：[${account}]`, `#起始日期：[${chineseTime(dayStart)}]   终止日期：[${chineseTime(dayStart + DAY_MS)}]`];
}

function lines(list: readonly string[]): string {
  return `${list.join('\r\n')}\r\n`;
}

function writeCell(c: Column, r: AlipayBillRow): string {
  const v = r[c.key];
  const text = c.type === 'kind' ? KIND_TEXT[v as AlipayBillKind] : c.type === 'time' ? beijingTimestamp(v as number) : c.type === 'fen' ? signedFenToYuan(v as number) : oneLine(v as string);
  return csvQuote(c.tab ? `${text}\t` : text);
}

/** A bill row is one line: line breaks in free text (a subject) become spaces. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

function csvQuote(s: string): string {
  return /[",]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** "2019年09月16日 00:00:00" (Beijing), the form of the head and footer lines. */
function chineseTime(epochMs: number): string {
  const t = beijingTimestamp(epochMs);
  return `${t.slice(0, 4)}年${t.slice(5, 7)}月${t.slice(8, 10)}日${t.slice(10)}`;
}

function dayStartOf(date: string): number {
  const start = parseBeijingTimestamp(`${date} 00:00:00`);
  if (!DATE.test(date) || start === undefined) throw new AlipayBillError(`bill date ${JSON.stringify(date)} is not a yyyy-MM-dd day`);
  return start;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/** The rows of a downloaded trade-bill archive, checked against the counts the files themselves state. */
export function parseAlipayBill(zipBytes: Uint8Array): AlipayBill {
  const files = readArchive(zipBytes);
  const detailName = [...files.keys()].find((n) => n.endsWith('_业务明细.csv'));
  const summaryName = [...files.keys()].find((n) => n.endsWith('_业务明细(汇总).csv'));
  if (detailName === undefined) throw new AlipayBillError(`the archive has no …_业务明细.csv (entries: ${[...files.keys()].join(', ') || 'none'})`);
  const detail = parseDetail(detailName, files.get(detailName)!);
  if (summaryName !== undefined) checkSummary(summaryName, files.get(summaryName)!, detail.totals);
  return detail;
}

function readArchive(zipBytes: Uint8Array): Map<string, string> {
  let entries: AdmZip.IZipEntry[];
  try {
    entries = new AdmZip(Buffer.from(zipBytes)).getEntries();
  } catch (err) {
    throw new AlipayBillError(`the bill is not a readable zip archive (${(err as Error).message})`);
  }
  if (entries.length > MAX_ENTRIES) throw new AlipayBillError(`the archive has ${entries.length} entries; a trade bill has 2`);
  const files = new Map<string, string>();
  for (const e of entries.filter((x) => !x.isDirectory)) files.set(entryName(e), iconv.decode(entryData(e), 'gbk'));
  return files;
}

/** [FILE] GBK names unless the entry's UTF-8 flag says otherwise (an archive repacked by another tool). */
function entryName(e: AdmZip.IZipEntry): string {
  return e.header.flags_efs ? e.rawEntryName.toString('utf8') : iconv.decode(e.rawEntryName, 'gbk');
}

function entryData(e: AdmZip.IZipEntry): Buffer {
  if (e.header.size > MAX_ENTRY_BYTES) throw new AlipayBillError(`archive entry ${entryName(e)} says it inflates to ${e.header.size} bytes; refused`);
  try {
    return e.getData();
  } catch (err) {
    throw new AlipayBillError(`archive entry ${entryName(e)} cannot be read (${(err as Error).message})`);
  }
}

interface Section {
  head: string[];
  header: string[];
  rows: { line: number; cells: string[] }[];
  foot: string[];
}

/** Splits a bill file into the `#` head, the header row, the data rows and the `#` foot, by the list markers. */
function sections(file: string, text: string, list: '业务明细列表' | '业务汇总列表'): Section {
  const all = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const start = all.findIndex((l) => l.startsWith('#') && l.includes(list) && !l.includes(`${list}结束`));
  const end = all.findIndex((l) => l.startsWith('#') && l.includes(`${list}结束`));
  if (start < 0 || end < start + 1) throw new AlipayBillError(`${file}: no "${list}" … "${list}结束" markers around the rows`);
  const headerLine = all[start + 1] ?? '';
  const rows = all
    .slice(start + 2, end)
    .map((l, i) => ({ line: start + 3 + i, text: l }))
    .filter((l) => l.text.trim() !== '')
    .map((l) => ({ line: l.line, cells: splitCsv(file, l.line, l.text) }));
  return { head: all.slice(0, start), header: splitCsv(file, start + 2, headerLine), rows, foot: all.slice(end + 1) };
}

function parseDetail(file: string, text: string): AlipayBill {
  const s = sections(file, text, '业务明细列表');
  if (s.head[0] !== DETAIL_TITLE) throw new AlipayBillError(`${file}: the first line is not ${DETAIL_TITLE}`);
  const index = columnIndex(file, s.header);
  const rows = s.rows.map((r) => readRow(file, r.line, r.cells, index));
  const totals = { trades: footCount(file, s.foot, '交易合计'), refunds: footCount(file, s.foot, '退款合计') };
  const found = { trades: rows.filter((r) => r.kind === 'trade').length, refunds: rows.filter((r) => r.kind === 'refund').length };
  if (found.trades !== totals.trades || found.refunds !== totals.refunds) {
    throw new AlipayBillError(`${file}: the footer counts ${totals.trades} trades and ${totals.refunds} refunds, the rows ${found.trades} and ${found.refunds}`);
  }
  return { account: headValue(file, s.head, '账号'), date: billDate(file, s.head), rows, totals };
}

function columnIndex(file: string, header: readonly string[]): Map<keyof AlipayBillRow, number> {
  const index = new Map<keyof AlipayBillRow, number>();
  for (const c of COLUMNS) {
    const at = header.findIndex((h) => h.trim() === c.header);
    if (at >= 0) index.set(c.key, at);
    else if (c.required) throw new AlipayBillError(`${file}: the header has no column ${c.header}`);
  }
  return index;
}

function readRow(file: string, line: number, cells: readonly string[], index: ReadonlyMap<keyof AlipayBillRow, number>): AlipayBillRow {
  const row: Record<string, unknown> = {};
  for (const c of COLUMNS) {
    const at = index.get(c.key);
    const raw = at === undefined ? undefined : cells[at];
    if (at !== undefined && raw === undefined) throw new AlipayBillError(`${file} line ${line}: ${cells.length} cells, no ${c.header}`);
    row[c.key] = readCell(file, line, c, raw === undefined ? undefined : raw.replace(/\t+$/, '').trim());
  }
  return row as unknown as AlipayBillRow;
}

function readCell(file: string, line: number, c: Column, v: string | undefined): unknown {
  const bad = (why: string) => new AlipayBillError(`${file} line ${line}: ${c.header} ${JSON.stringify(v)} ${why}`);
  if (v === undefined) return c.type === 'fen' ? 0 : '';
  if (c.type === 'text') {
    if (c.required && c.key !== 'refundNo' && v === '') throw bad('is empty');
    return v;
  }
  if (c.type === 'kind') {
    const kind = (Object.keys(KIND_TEXT) as AlipayBillKind[]).find((k) => KIND_TEXT[k] === v);
    if (kind === undefined) throw bad('is not 交易 or 退款');
    return kind;
  }
  if (c.type === 'time') {
    const t = parseBeijingTimestamp(v);
    if (t === undefined) throw bad('is not a yyyy-MM-dd HH:mm:ss time');
    return t;
  }
  if (v === '' && !c.required) return 0;
  try {
    return signedYuanToFen(v);
  } catch {
    throw bad('is not an exact yuan amount');
  }
}

function footCount(file: string, foot: readonly string[], label: '交易合计' | '退款合计'): number {
  const m = foot.map((l) => new RegExp(`^#${label}：(\\d+)笔`).exec(l)).find((x) => x !== null);
  if (!m) throw new AlipayBillError(`${file}: no "#${label}：N笔" line after the rows`);
  return Number(m[1]);
}

function headValue(file: string, head: readonly string[], label: string): string {
  const m = head.map((l) => new RegExp(`^#${label}：\\[([^\\]]*)\\]`).exec(l)).find((x) => x !== null);
  if (!m) throw new AlipayBillError(`${file}: no "#${label}：[…]" line`);
  return m[1]!;
}

function billDate(file: string, head: readonly string[]): string {
  const m = head.map((l) => /^#起始日期：\[(\d{4})年(\d{2})月(\d{2})日 00:00:00\]/.exec(l)).find((x) => x !== null);
  if (!m) throw new AlipayBillError(`${file}: no "#起始日期：[yyyy年MM月dd日 00:00:00]" line`);
  return `${m[1]}-${m[2]}-${m[3]}`;
}

/** [FILE] the 合计 row's counts must be the detail's. */
function checkSummary(file: string, text: string, totals: AlipayBill['totals']): void {
  const s = sections(file, text, '业务汇总列表');
  if (s.head[0] !== SUMMARY_TITLE) throw new AlipayBillError(`${file}: the first line is not ${SUMMARY_TITLE}`);
  const at = (name: string) => s.header.findIndex((h) => h.trim() === name);
  const [tradesAt, refundsAt] = [at('交易订单总笔数'), at('退款订单总笔数')];
  if (tradesAt < 0 || refundsAt < 0) throw new AlipayBillError(`${file}: the header has no 交易订单总笔数 / 退款订单总笔数`);
  const sum = s.rows.find((r) => r.cells[0]?.trim() === '合计');
  if (!sum) throw new AlipayBillError(`${file}: no 合计 row`);
  const count = (i: number) => Number(sum.cells[i]?.replace(/\t+$/, '').trim());
  if (count(tradesAt) !== totals.trades || count(refundsAt) !== totals.refunds) {
    throw new AlipayBillError(`${file}: 合计 says ${count(tradesAt)} trades and ${count(refundsAt)} refunds, the detail ${totals.trades} and ${totals.refunds}`);
  }
}

/** One CSV line (RFC 4180 quoting; a bill row never spans lines). */
function splitCsv(file: string, line: number, text: string): string[] {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    let cell = '';
    if (text[i] === '"') {
      const close = closingQuote(text, i + 1);
      if (close < 0) throw new AlipayBillError(`${file} line ${line}: a quoted cell is not closed`);
      cell = text.slice(i + 1, close).replaceAll('""', '"');
      i = close + 1;
      if (i < text.length && text[i] !== ',') throw new AlipayBillError(`${file} line ${line}: text after a quoted cell`);
    } else {
      const comma = text.indexOf(',', i);
      cell = text.slice(i, comma < 0 ? text.length : comma);
      i = comma < 0 ? text.length : comma;
    }
    cells.push(cell);
    if (i >= text.length) return cells;
    i++; // ','
  }
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] !== '"') continue;
    if (text[i + 1] === '"') i++;
    else return i;
  }
  return -1;
}
