import AdmZip from 'adm-zip';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { AlipayBillError, formatAlipayBill, parseAlipayBill, type AlipayBillRowInput } from '../../../cloud/gateway/alipay/bill.js';

/**
 * The trade bill archive (bill.ts): what the simulator writes must read back exactly, and a bill laid out like the
 * ones Alipay serves — written here by hand, byte for byte, not by formatAlipayBill — must read too.
 */
const T = Date.UTC(2024, 2, 1, 2, 20, 30); // 2024-03-01 10:20:30 Beijing

const ROWS: AlipayBillRowInput[] = [
  { tradeNo: '2024030122001400000001', outTradeNo: 'box1-1', kind: 'trade', subject: '咖啡, "大杯"', createdAt: T, completedAt: T + 5_000, orderAmount: 1234, merchantReceived: 1234, alipayDiscount: 200 },
  { tradeNo: '2024030122001400000001', outTradeNo: 'box1-1', kind: 'refund', subject: '咖啡', createdAt: T, completedAt: T + 60_000, orderAmount: -500, merchantReceived: -500, refundNo: 'box1-1-r1' },
  { tradeNo: '2024030122001400000002', outTradeNo: 'box1-2', kind: 'trade', subject: '当面付收款', createdAt: T, completedAt: T + 9_000, orderAmount: 1, merchantReceived: 1, serviceFee: -1 },
];

/** A zip with the given entries, names and contents in GBK (the UTF-8 flag clear), as Alipay packs it. */
function gbkZip(entries: Record<string, string>, opts: { utf8Names?: boolean } = {}): Buffer {
  const enc = opts.utf8Names
    ? { efs: true, encode: (s: string) => Buffer.from(s, 'utf8'), decode: (b: Buffer | Uint8Array) => Buffer.from(b).toString('utf8') }
    : { efs: false, encode: (s: string) => iconv.encode(s, 'gbk'), decode: (b: Buffer | Uint8Array) => iconv.decode(Buffer.from(b), 'gbk') };
  const zip = new AdmZip(undefined, { decoder: enc });
  for (const [name, text] of Object.entries(entries)) zip.addFile(name, iconv.encode(text, 'gbk'));
  return zip.toBuffer();
}

const HEADER =
  '支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注';
const START = `#${'-'.repeat(41)}业务明细列表${'-'.repeat(40)}`;
const END = `#${'-'.repeat(41)}业务明细列表结束${'-'.repeat(36)}`;

/** The shape of a real 业务明细 file: tab-ended ids, negative refund rows, both footer lines, \n line ends. */
function handDetail(rows: string[], footer = ['#交易合计：1笔，商家实收共0.01元，商家优惠共0.00元', '#退款合计：1笔，商家实收退款共-0.01元，商家优惠退款共0.00元']): string {
  return [
    '#支付宝业务明细查询',
    '#账号：[20880211096256330156]',
    '#起始日期：[2019年09月16日 00:00:00]   终止日期：[2019年09月17日 00:00:00]',
    START,
    HEADER,
    ...rows,
    END,
    ...footer,
    '#导出时间：[2019年09月17日 05:46:49]',
    '',
  ].join('\n');
}
const TRADE_ROW =
  '2019091622001458860515315453\t,service_1568601259302\t,交易\t,下单测试,2019-09-16 10:55:16,2019-09-16 10:55:23,alipay_store\t,alipay_store\t,alipay\t,\t,*津水(602***@qq.com)\t,0.01,0.01,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,下单测试';
const REFUND_ROW =
  '2019091622001458860515315453\t,service_1568601259302\t,退款\t,下单测试,2019-09-16 10:55:16,2019-09-16 10:56:48,alipay_store\t,alipay_store\t,alipay\t,\t,*津水(602***@qq.com)\t,-0.01,-0.01,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,re_test_1568602607356\t,0.00,0.00,下单测试';

describe('alipay trade bill', () => {
  it('reads back exactly what it writes: rows, fen, times, refund ids and Chinese text', () => {
    const bill = parseAlipayBill(formatAlipayBill(ROWS, '2024-03-01', { account: '20881234567890120156' }));
    expect(bill.account).toBe('20881234567890120156');
    expect(bill.date).toBe('2024-03-01');
    expect(bill.totals).toEqual({ trades: 2, refunds: 1 });
    expect(bill.rows.map((r) => [r.outTradeNo, r.kind, r.orderAmount, r.merchantReceived, r.refundNo, r.subject, r.completedAt])).toEqual([
      ['box1-1', 'trade', 1234, 1234, '', '咖啡, "大杯"', T + 5_000],
      ['box1-1', 'refund', -500, -500, 'box1-1-r1', '咖啡', T + 60_000],
      ['box1-2', 'trade', 1, 1, '', '当面付收款', T + 9_000],
    ]);
    expect(bill.rows[0]).toMatchObject({ tradeNo: '2024030122001400000001', createdAt: T, alipayDiscount: 200, merchantDiscount: 0 });
    expect(bill.rows[2]!.serviceFee).toBe(-1);
  });

  it('packs like Alipay: GBK file names without the UTF-8 flag, GBK contents, the # head and foot lines', () => {
    const zip = new AdmZip(formatAlipayBill(ROWS, '2024-03-01', { account: '20881234567890120156', exportedAt: T + 86_400_000 }));
    const entries = zip.getEntries();
    expect(entries.map((e) => [e.header.flags_efs, iconv.decode(e.rawEntryName, 'gbk')])).toEqual([
      [false, '20881234567890120156_20240301_业务明细.csv'],
      [false, '20881234567890120156_20240301_业务明细(汇总).csv'],
    ]);
    const detail = entries[0]!.getData();
    // GBK, not UTF-8: the first title decodes only one way.
    expect(detail.subarray(0, 4).equals(Buffer.from('#支', 'utf8').subarray(0, 4))).toBe(false);
    const lines = iconv.decode(detail, 'gbk').split('\r\n');
    expect(lines.slice(0, 5)).toEqual(['#支付宝业务明细查询', '#账号：[20881234567890120156]', '#起始日期：[2024年03月01日 00:00:00]   终止日期：[2024年03月02日 00:00:00]', START, HEADER]);
    expect(lines[5]).toBe('2024030122001400000001\t,box1-1\t,交易\t,"咖啡, ""大杯""",2024-03-01 10:20:30,2024-03-01 10:20:35,\t,\t,\t,\t,\t,12.34,12.34,0.00,0.00,2.00,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,');
    expect(lines.slice(8)).toEqual([END, '#交易合计：2笔，商家实收共12.35元，商家优惠共0.00元', '#退款合计：1笔，商家实收退款共-5.00元，商家优惠退款共0.00元', '#导出时间：[2024年03月02日 10:20:30]', '']);
    const summary = iconv.decode(entries[1]!.getData(), 'gbk').split('\r\n');
    expect(summary[0]).toBe('#支付宝业务汇总查询');
    expect(summary[4]).toBe('门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）');
    expect(summary[5]).toBe('合计,,2,1,7.35,7.35,2.00,0.00,0.00,-0.01,0.00,7.34');
  });

  it('reads a bill laid out like the published ones (hand-written bytes, tabs after ids, \\n lines)', () => {
    const zip = gbkZip({ '20880211096256330156_20190916_业务明细.csv': handDetail([TRADE_ROW, REFUND_ROW]) });
    const bill = parseAlipayBill(zip);
    expect(bill.date).toBe('2019-09-16');
    expect(bill.rows.map((r) => [r.tradeNo, r.outTradeNo, r.kind, r.orderAmount, r.merchantReceived, r.refundNo, r.storeId, r.counterparty, r.memo])).toEqual([
      ['2019091622001458860515315453', 'service_1568601259302', 'trade', 1, 1, '', 'alipay_store', '*津水(602***@qq.com)', '下单测试'],
      ['2019091622001458860515315453', 'service_1568601259302', 'refund', -1, -1, 're_test_1568602607356', 'alipay_store', '*津水(602***@qq.com)', '下单测试'],
    ]);
    expect(bill.rows[1]!.completedAt).toBe(Date.UTC(2019, 8, 16, 2, 56, 48));
  });

  it('goes by header names, and accepts an archive repacked with UTF-8 names', () => {
    const cols = HEADER.split(',');
    const swapped = [cols[1], cols[0], ...cols.slice(2)].join(',');
    const cells = TRADE_ROW.split(',');
    const row = [cells[1], cells[0], ...cells.slice(2)].join(',');
    const text = handDetail([row], ['#交易合计：1笔，商家实收共0.01元', '#退款合计：0笔']).replace(HEADER, swapped);
    const bill = parseAlipayBill(gbkZip({ 'x_20190916_业务明细.csv': text }, { utf8Names: true }));
    expect(bill.rows[0]).toMatchObject({ tradeNo: '2019091622001458860515315453', outTradeNo: 'service_1568601259302' });
  });

  it('refuses malformed bills with a message that says what is wrong', () => {
    const ok = handDetail([TRADE_ROW, REFUND_ROW]);
    const name = 'a_20190916_业务明细.csv';
    const cases: [string, Uint8Array, RegExp][] = [
      ['not a zip', Buffer.from('<html>expired</html>'), /not a readable zip/],
      ['no detail file', gbkZip({ 'a_20190916_其他.csv': ok }), /no …_业务明细\.csv/],
      ['not the detail title', gbkZip({ [name]: ok.replace('#支付宝业务明细查询', '#别的') }), /first line/],
      ['no markers', gbkZip({ [name]: ok.replace(END, '#end') }), /markers/],
      ['footer count', gbkZip({ [name]: ok.replace('#交易合计：1笔', '#交易合计：2笔') }), /footer counts 2 trades/],
      ['no footer', gbkZip({ [name]: ok.replace(/#退款合计[^\n]*\n/, '') }), /退款合计/],
      ['bad type', gbkZip({ [name]: ok.replace('交易\t,下单测试', '转账\t,下单测试') }), /业务类型 "转账" is not 交易 or 退款/],
      ['3 decimals', gbkZip({ [name]: ok.replace(',0.01,0.01,', ',0.011,0.01,') }), /订单金额（元） "0.011" is not an exact yuan amount/],
      ['bad time', gbkZip({ [name]: ok.replace('2019-09-16 10:55:23', '2019-09-16 25:55:23') }), /完成时间/],
      ['missing column', gbkZip({ [name]: ok.replace('商家实收（元）,', '') }), /no column 商家实收（元）/],
      ['short row', gbkZip({ [name]: ok.replace(TRADE_ROW, TRADE_ROW.split(',').slice(0, 10).join(',')) }), /line 6: 10 cells/],
      ['open quote', gbkZip({ [name]: ok.replace('下单测试,2019-09-16 10:55:16,2019-09-16 10:55:23', '"下单测试,2019-09-16 10:55:16,2019-09-16 10:55:23') }), /quoted cell is not closed/],
      [
        'summary disagrees',
        gbkZip({ [name]: ok, 'a_20190916_业务明细(汇总).csv': ['#支付宝业务汇总查询', `#${'-'.repeat(41)}业务汇总列表${'-'.repeat(40)}`, '门店编号,门店名称,交易订单总笔数,退款订单总笔数', '合计,,5,1', `#${'-'.repeat(40)}业务汇总列表结束${'-'.repeat(37)}`].join('\n') }),
        /合计 says 5 trades/,
      ],
    ];
    for (const [what, zip, message] of cases) {
      expect(() => parseAlipayBill(zip), what).toThrow(AlipayBillError);
      expect(() => parseAlipayBill(zip), what).toThrow(message);
    }
  });

  it('refuses an entry that says it inflates past the cap before inflating it', () => {
    const zip = new AdmZip(gbkZip({ 'a_20190916_业务明细.csv': handDetail([TRADE_ROW, REFUND_ROW]) }));
    zip.getEntries()[0]!.header.size = 65 * 1024 * 1024;
    expect(() => parseAlipayBill(zip.toBuffer())).toThrow(/inflates to 68157440 bytes; refused/);
  });

  it('refuses a bill date that is not a day', () => {
    expect(() => formatAlipayBill([], '2024-02-30')).toThrow(AlipayBillError);
    expect(() => formatAlipayBill([], '2024-03')).toThrow(AlipayBillError);
  });
});
