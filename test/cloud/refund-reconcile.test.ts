import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../cloud/config.js';
import type { PayOutcome } from '../../cloud/gateway/gateway.js';
import type { Attempt } from '../../cloud/payments/transaction.js';
import type { BillRow } from '../../cloud/reconcile/bill-rows.js';
import { openReconcileChannels, type OpenedChannels } from '../../cloud/reconcile/command.js';
import { compare, type Finding } from '../../cloud/reconcile/compare.js';
import { businessDay } from '../../cloud/reconcile/day.js';
import { reconcile, type ReconcileReport } from '../../cloud/reconcile/reconcile.js';
import type { Refund } from '../../cloud/refunds/refund-machine.js';
import { SqliteStore } from '../../cloud/store/sqlite-store.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { startWalletSimulators, type WalletSimulators } from '../../simulator/gateway/wallet-simulators.js';
import { FakeClock } from '../support/fake-clock.js';
import { tempDir } from './harness.js';

/**
 * The cashier's refunds in the morning reconciliation: a bill refund whose number is a refund id
 * here is matched against it (REFUNDED, the same amount), a REFUNDED one missing from the bill is a
 * finding, and a bill refund nobody here made stays refund_only_there.
 */
const DAY = businessDay('2026-01-01')!;
const NEXT = businessDay('2026-01-02')!;
const HOUR = 3_600_000;
const NOON = DAY.start + 12 * HOUR;

describe('compare: cashier refunds on hand-built rows', () => {
  const CH = 'wechat';
  const row = (kind: BillRow['kind'], outTradeNo: string, amount: number, patch: Partial<BillRow> = {}): BillRow => ({
    channel: CH, wallet: 'wechat', outTradeNo, walletTradeNo: `wx-${outTradeNo}`, kind, amount, at: NOON, merchantId: 'M1', ...patch,
  });
  const att = (outTradeNo: string, patch: Partial<Attempt> = {}): Attempt => ({
    outTradeNo, deviceId: 'sbA', merchantId: 'M1', channel: CH, saleId: `sale-${outTradeNo}`, saleRef: null, amount: 1000, currency: 'CNY', wallet: 'wechat',
    state: 'SUCCESS', reason: 'PAID', createdAt: NOON - 5_000, updatedAt: NOON, payAt: NOON, deadlineAt: null, nextAt: null, step: null, inFlight: null,
    callSeq: 1, tries: 0, cancelReason: null, gatewayTradeNo: `wx-${outTradeNo}`, charged: 1000, walletPaidAt: NOON, buyerPaid: 1000, discount: 0, flag: null,
    ackedState: 'SUCCESS', version: 3, ...patch,
  });
  const refund = (refundId: string, outTradeNo: string, amount: number, patch: Partial<Refund> = {}): Refund => ({
    refundId, deviceId: 'sbA', merchantId: 'M1', storeId: 'S1', outTradeNo, refundRef: 'RF', wallet: 'wechat', channel: CH, amount, saleTotal: 1000, currency: 'CNY',
    state: 'REFUNDED', reason: null, message: null, createdAt: NOON, updatedAt: NOON, finalAt: NOON + 1_000, tries: 0, nextAt: null, inFlight: false, callSeq: 1,
    flagged: false, version: 3, ...patch,
  });
  const run = (rows: BillRow[], attempts: Attempt[], refunds: Refund[]) => compare({ channel: CH, day: DAY, rows, attempts, refunds });
  const brief = (f: Finding) => ({ kind: f.kind, outTradeNo: f.outTradeNo, amount: f.amount });

  it('a sale refunded in part twice on its day, each refund in the bill as made here: ok', () => {
    const rows = [row('charge', 'sbA-1', 1000), row('refund', 'sbA-1', 300, { refundNo: 'sbA-r1' }), row('refund', 'sbA-1', 200, { refundNo: 'sbA-r2' })];
    expect(run(rows, [att('sbA-1')], [refund('sbA-r1', 'sbA-1', 300), refund('sbA-r2', 'sbA-1', 200)])).toEqual({ findings: [], ok: 1 });
  });

  it('a sale refunded in full: the bill nets it to nothing, and it is ok', () => {
    const rows = [row('charge', 'sbA-1', 1000), row('refund', 'sbA-1', 1000, { refundNo: 'sbA-r1' })];
    expect(run(rows, [att('sbA-1')], [refund('sbA-r1', 'sbA-1', 1000)])).toEqual({ findings: [], ok: 1 });
  });

  it("a refund today of another day's sale: only the refund row, matched, ok", () => {
    const earlier = att('sbA-1', { createdAt: DAY.start - 20 * HOUR, walletPaidAt: DAY.start - 20 * HOUR });
    expect(run([row('refund', 'sbA-1', 400, { refundNo: 'sbA-r1' })], [earlier], [refund('sbA-r1', 'sbA-1', 400)])).toEqual({ findings: [], ok: 1 });
  });

  it('REFUNDED here on the day, not in the bill: customer_refund_not_in_bill (the sale itself is fine)', () => {
    const r = run([row('charge', 'sbA-1', 1000)], [att('sbA-1')], [refund('sbA-r1', 'sbA-1', 300), refund('sbA-r2', 'sbA-1', 100)]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'customer_refund_not_in_bill', outTradeNo: 'sbA-1', amount: 400 }]);
    expect(r.findings[0]!.detail).toContain('sbA-r1 3.00, sbA-r2 1.00');
  });

  it('REFUNDED here after the day is the next bill’s: not expected in this one', () => {
    expect(run([row('charge', 'sbA-1', 1000)], [att('sbA-1')], [refund('sbA-r1', 'sbA-1', 300, { finalAt: DAY.end })])).toEqual({ findings: [], ok: 1 });
  });

  it('in the bill for another amount, or not REFUNDED here: customer_refund_mismatch, for what the bill gave back', () => {
    const rows = [row('charge', 'sbA-1', 1000), row('refund', 'sbA-1', 300, { refundNo: 'sbA-r1' }), row('refund', 'sbA-1', 200, { refundNo: 'sbA-r2' })];
    const r = run(rows, [att('sbA-1')], [refund('sbA-r1', 'sbA-1', 250), refund('sbA-r2', 'sbA-1', 200, { state: 'PENDING', finalAt: null })]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'customer_refund_mismatch', outTradeNo: 'sbA-1', amount: 500 }]);
    expect(r.findings[0]!.detail).toContain('sbA-r1 3.00 (here REFUNDED 2.50), sbA-r2 2.00 (here PENDING 2.00)');
  });

  it('a bill refund whose number no refund here has stays refund_only_there, beside the matched ones', () => {
    const rows = [row('charge', 'sbA-1', 1000), row('refund', 'sbA-1', 300, { refundNo: 'sbA-r1' }), row('refund', 'sbA-1', 100, { refundNo: 'sbA-r9' })];
    const r = run(rows, [att('sbA-1')], [refund('sbA-r1', 'sbA-1', 300)]);
    expect(r.findings.map(brief)).toEqual([{ kind: 'refund_only_there', outTradeNo: 'sbA-1', amount: 100 }]);
  });

  it("another channel's refunds are none of this channel's business", () => {
    const r = run([row('charge', 'sbA-1', 1000)], [att('sbA-1')], [refund('sbA-r1', 'sbA-1', 300, { channel: 'wechat-backup' })]);
    expect(r).toEqual({ findings: [], ok: 1 });
  });
});

describe('reconcile: cashier refunds through the real adapters and the wallet simulators', () => {
  const M = 'M1';
  let dir: string;
  let removeDir: () => void;
  let clock: FakeClock;
  let wallet: ScriptedGateway;
  let sims: WalletSimulators;
  let store: SqliteStore;
  let opened: OpenedChannels;
  let codes = 0;
  const call = () => ({ signal: AbortSignal.timeout(10_000) });
  const P: Record<string, string> = {};

  async function box(deviceId: string): Promise<void> {
    const code = `RECON${String(++codes).padStart(5, '0')}`;
    await store.createPairingCode({ code, merchantId: M, storeId: 'S1', createdAt: clock.now(), expiresAt: clock.now() + 10 * 86_400_000 });
    await store.redeemPairingCode(code, `hw-${deviceId}`, clock.now(), { deviceId, secretHash: 'h', firmware: '1.0.0' });
  }

  /** Paid at the wallet and SUCCESS here, as the cloud would have written it. */
  async function paid(channel: 'wechat' | 'alipay', outTradeNo: string, amount: number): Promise<void> {
    codes += 1;
    const code = channel === 'wechat' ? `13${String(4_567_890_123_456_000 + codes).padStart(16, '0')}` : `28${String(codes).padStart(16, '0')}`;
    const o: PayOutcome = await opened.gateway.pay({ outTradeNo, wallet: channel, merchant: M, channel, amount, currency: 'CNY', code }, call());
    if (o.kind !== 'success') throw new Error(`the wallet answered ${o.kind}`);
    const a: Attempt = {
      outTradeNo, deviceId: outTradeNo.slice(0, outTradeNo.lastIndexOf('-')), merchantId: M, channel, saleId: `sale-${outTradeNo}`, saleRef: null, amount,
      currency: 'CNY', wallet: channel, state: 'SUCCESS', reason: 'PAID', createdAt: clock.now(), updatedAt: clock.now(), payAt: clock.now(), deadlineAt: null,
      nextAt: null, step: null, inFlight: null, callSeq: 1, tries: 0, cancelReason: null, ackedState: null, version: 0, flag: null,
      gatewayTradeNo: o.gatewayTradeNo, charged: o.amount, walletPaidAt: o.paidAt ?? null, buyerPaid: o.buyerPaid ?? null, discount: o.discount ?? null,
    };
    expect(await store.writeAttempts([{ attempt: a, expectedVersion: 0, event: 'test', fromState: null, note: 'planted', claimSale: false }])).toEqual([{ ok: true, version: 1 }]);
  }

  /** A cashier's refund taken here; `wallet`: made at the wallet; `here`: the state the cloud recorded. */
  async function refunded(refundId: string, outTradeNo: string, amount: number, o: { wallet: boolean; here: 'REFUNDED' | 'PENDING' }): Promise<void> {
    const deviceId = refundId.slice(0, refundId.lastIndexOf('-r'));
    const taken = await store.requestRefund({ refundId, deviceId, refundRef: `RF-${refundId}`, outTradeNo, amount, currency: 'CNY', at: clock.now() });
    expect(taken.refund.state).toBe('PENDING');
    if (o.wallet) {
      const a = (await store.getAttempt(outTradeNo))!;
      const r = await opened.gateway.refund({ outTradeNo, wallet: a.wallet!, merchant: M, channel: a.channel!, refundNo: refundId, amount, total: a.charged!, currency: 'CNY' }, call());
      expect(r.kind).toBe('refunded');
    }
    if (o.here === 'REFUNDED') expect(await store.writeRefund({ ...taken.refund, state: 'REFUNDED', finalAt: clock.now(), updatedAt: clock.now() }, 1)).toMatchObject({ ok: true });
  }

  beforeAll(async () => {
    ({ dir, remove: removeDir } = tempDir());
    clock = new FakeClock(DAY.start + 9 * HOUR);
    wallet = new ScriptedGateway({ clock, mix: EVERY_CODE_SUCCEEDS });
    sims = await startWalletSimulators(wallet, join(dir, 'wallets'));
    const config = parseConfig({ dbPath: join(dir, 'cloud.db'), channels: sims.channels });
    store = new SqliteStore(config.dbPath);
    await store.addMerchant(M, { wechatSubMchId: sims.merchantFlags['--wechat-sub-mch-id']!, alipayAppAuthToken: sims.merchantFlags['--alipay-app-auth-token']! }, clock.now());
    opened = openReconcileChannels(config, { merchants: (id) => store.getMerchant(id), clock, random: () => 0.5, logger: pino({ level: 'silent' }) });
    await box('sbW');
    await box('sbL');

    // The day: two partial refunds and a full one, matched; one REFUNDED here the wallet never made;
    // one the wallet made that the cloud still has PENDING; one made in the wallet portal.
    for (const [otn, amount] of [['sbW-1', 1000], ['sbW-2', 1000], ['sbW-3', 800], ['sbW-4', 900], ['sbW-5', 700]] as const) await paid('wechat', otn, amount);
    await paid('alipay', 'sbL-1', 1100);
    clock.advanceSync(HOUR);
    await refunded('sbW-r1', 'sbW-1', 300, { wallet: true, here: 'REFUNDED' });
    await refunded('sbW-r2', 'sbW-1', 200, { wallet: true, here: 'REFUNDED' });
    await refunded('sbW-r3', 'sbW-2', 1000, { wallet: true, here: 'REFUNDED' });
    await refunded('sbW-r4', 'sbW-3', 200, { wallet: false, here: 'REFUNDED' });
    await refunded('sbW-r5', 'sbW-4', 400, { wallet: true, here: 'PENDING' });
    expect((await opened.gateway.refund({ outTradeNo: 'sbW-5', wallet: 'wechat', merchant: M, channel: 'wechat', refundNo: 'PORTAL-1', amount: 100, total: 700, currency: 'CNY' }, call())).kind).toBe('refunded');
    await refunded('sbL-r1', 'sbL-1', 100, { wallet: true, here: 'REFUNDED' });
    // The next day: the rest of sbW-1 is given back.
    clock.advanceSync(NEXT.start + 10 * HOUR - clock.now());
    await refunded('sbW-r6', 'sbW-1', 500, { wallet: true, here: 'REFUNDED' });
    // The morning after that: both days' bills are there.
    clock.advanceSync(NEXT.end + 8 * HOUR - clock.now());
  });

  afterAll(async () => {
    await opened?.close();
    await store?.close();
    wallet?.stop();
    await sims?.close();
    removeDir?.();
  });

  const run = (date: string) => reconcile({ store, gateway: opened.gateway, channels: opened.channels, clock, callTimeoutMs: 10_000, billTimeoutMs: 30_000 }, { date, apply: false });
  const found = (r: ReconcileReport) => r.channels.flatMap((c) => c.findings.map((f) => `${c.channel}:${f.kind}:${f.outTradeNo}:${f.amount}`)).sort();

  it('the day: matched refunds say nothing; one missing from the bill, one not REFUNDED here and one nobody here made are found', async () => {
    const r = await run(DAY.date);
    expect(found(r)).toEqual(['wechat:customer_refund_mismatch:sbW-4:400', 'wechat:customer_refund_not_in_bill:sbW-3:200', 'wechat:refund_only_there:sbW-5:100']);
    expect(r.channels.map((c) => [c.channel, c.errors, c.ok])).toEqual([
      ['wechat', [], 2],
      ['alipay', [], 1],
    ]);
    expect(r.exitCode).toBe(1);
  });

  it("the next day: a refund of the day before's sale is matched, nothing to say", async () => {
    const r = await run(NEXT.date);
    expect(found(r)).toEqual([]);
    expect(r.channels.find((c) => c.channel === 'wechat')).toMatchObject({ billRows: 1, ok: 1 });
    expect(r.exitCode).toBe(0);
  });
});
