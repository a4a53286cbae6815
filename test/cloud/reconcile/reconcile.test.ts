import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type CloudConfig } from '../../../cloud/config.js';
import type { PayOutcome } from '../../../cloud/gateway/gateway.js';
import type { Attempt } from '../../../cloud/payments/transaction.js';
import { openReconcileChannels, type OpenedChannels } from '../../../cloud/reconcile/command.js';
import { businessDay } from '../../../cloud/reconcile/day.js';
import { reconcile, type ReconcileReport } from '../../../cloud/reconcile/reconcile.js';
import { SqliteStore } from '../../../cloud/store/sqlite-store.js';
import type { ScenarioInput } from '../../../simulator/gateway/scenario.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../../simulator/gateway/scripted-gateway.js';
import { startWalletSimulators, type WalletSimulators } from '../../../simulator/gateway/wallet-simulators.js';
import { FakeClock } from '../../support/fake-clock.js';
import { tempDir } from '../harness.js';

/**
 * The morning reconciliation end to end: the real WeChat and Alipay adapters against the wallet
 * simulators (HTTPS, signed wire formats, the bills in each wallet's own format), a real SqliteStore.
 * Payments run through the channels directly (no cloud); the attempts are written as the cloud
 * would have written them — except for the planted ones. The oracle for money is the scripted
 * wallet's ledger, never what the reconciliation says about itself.
 */
const DAY = businessDay('2026-01-01')!;
const HOUR = 3_600_000;
const M = 'M1';

let dir: string;
let removeDir: () => void;
let clock: FakeClock;
let wallet: ScriptedGateway;
let sims: WalletSimulators;
let config: CloudConfig;
let configFile: string;
let store: SqliteStore;
let opened: OpenedChannels;

/** The planted orders, by role. */
const P = {} as Record<
  'wEarly' | 'wOk' | 'wKept' | 'wNotCharged' | 'wMismatch' | 'wPortalRefund' | 'wDup1' | 'wDup2' | 'wReversed' | 'wRefunded' | 'wDeclined' | 'wLate' | 'aOk' | 'aKept' | 'aCancelled',
  string
>;

let seq = 0;
let codes = 0;
const call = () => ({ signal: AbortSignal.timeout(10_000) });

/** A fresh payment code of the wallet, bound to a scenario. */
function codeFor(w: 'wechat' | 'alipay', scenario: ScenarioInput = { name: 'success' }): string {
  codes += 1;
  const code = w === 'wechat' ? `13${String(4_567_890_123_456_000 + codes).padStart(16, '0')}` : `28${String(codes).padStart(16, '0')}`;
  wallet.bind(code, scenario);
  return code;
}

const route = (channel: 'wechat' | 'alipay', outTradeNo: string) => ({ outTradeNo, wallet: channel, merchant: M, channel }) as const;

async function pay(channel: 'wechat' | 'alipay', outTradeNo: string, amount: number, scenario?: ScenarioInput): Promise<PayOutcome> {
  return opened.gateway.pay({ ...route(channel, outTradeNo), amount, currency: 'CNY', code: codeFor(channel, scenario) }, call());
}

/** An attempt as the cloud keeps it: its state is what the test says the cloud believed. */
function attempt(channel: 'wechat' | 'alipay', outTradeNo: string, amount: number, state: Attempt['state'], paid?: PayOutcome, patch: Partial<Attempt> = {}): Attempt {
  const success = paid?.kind === 'success' ? paid : undefined;
  return {
    outTradeNo, deviceId: outTradeNo.slice(0, outTradeNo.lastIndexOf('-')), merchantId: M, channel, saleId: `sale-${outTradeNo}`, saleRef: null,
    amount, currency: 'CNY', wallet: channel, state, reason: null, createdAt: clock.now(), updatedAt: clock.now(), payAt: clock.now(),
    deadlineAt: null, nextAt: null, step: null, inFlight: null, callSeq: 1, tries: 0, cancelReason: null, ackedState: null, version: 0, flag: null,
    gatewayTradeNo: success?.gatewayTradeNo ?? null, charged: success?.amount ?? null, walletPaidAt: success?.paidAt ?? null,
    buyerPaid: success?.buyerPaid ?? null, discount: success?.discount ?? null, ...patch,
  };
}

async function keep(...attempts: Attempt[]): Promise<void> {
  const results = await store.writeAttempts(attempts.map((a) => ({ attempt: a, expectedVersion: 0, event: 'test', fromState: null, note: 'planted', claimSale: false })));
  expect(results.every((r) => r.ok)).toBe(true);
}

const next = (device: string) => `${device}-${++seq}`;
function success(o: PayOutcome): Extract<PayOutcome, { kind: 'success' }> {
  if (o.kind !== 'success') throw new Error(`the wallet answered ${o.kind}, the plant needs a success`);
  return o;
}

/** A customer confirming on the phone: the pay answers USERPAYING, the charge lands when `confirm` says. */
async function payConfirmedLater(channel: 'wechat', outTradeNo: string, amount: number): Promise<void> {
  wallet.pays.push('userpaying');
  expect((await pay(channel, outTradeNo, amount)).kind).toBe('in_progress');
}

async function plantTheDay(): Promise<void> {
  // 23:59:59 the day before: created then, the customer confirms at 00:00:01 on the day.
  clock.advanceSync(1_000);
  P.wEarly = next('sbW');
  const earlyCreated = clock.now();
  await payConfirmedLater('wechat', P.wEarly, 1234);
  clock.advanceSync(2_000);
  wallet.confirm(P.wEarly);
  await keep(attempt('wechat', P.wEarly, 1234, 'SUCCESS', undefined, { createdAt: earlyCreated, gatewayTradeNo: 'x', charged: 1234, walletPaidAt: clock.now() }));

  clock.advanceSync(10 * HOUR);
  await plantWechat();
  await plantAlipay();

  // 23:59:59 on the day: created then, charged at 00:00:02 the next day — the next bill's, not this one's.
  clock.advanceSync(DAY.end - 1_000 - clock.now());
  P.wLate = next('sbW');
  const lateCreated = clock.now();
  await payConfirmedLater('wechat', P.wLate, 1234);
  clock.advanceSync(3_000);
  wallet.confirm(P.wLate);
  await keep(attempt('wechat', P.wLate, 1234, 'SUCCESS', undefined, { createdAt: lateCreated, gatewayTradeNo: 'y', charged: 1234, walletPaidAt: clock.now() }));

  // The morning after: the bills of the day are there.
  clock.advanceSync(DAY.end + 8 * HOUR - clock.now());
}

async function plantWechat(): Promise<void> {
  P.wOk = next('sbW');
  await keep(attempt('wechat', P.wOk, 1000, 'SUCCESS', success(await pay('wechat', P.wOk, 1000))));

  // PLANT: charged at the wallet, FAILED here (the cloud gave up on an answer that never came).
  P.wKept = next('sbW');
  success(await pay('wechat', P.wKept, 1500));
  await keep(attempt('wechat', P.wKept, 1500, 'FAILED', undefined, { reason: 'GATEWAY_ERROR' }));

  // PLANT: SUCCESS here, never sent to the wallet.
  P.wNotCharged = next('sbW');
  await keep(attempt('wechat', P.wNotCharged, 800, 'SUCCESS', undefined, { gatewayTradeNo: 'ghost', charged: 800, walletPaidAt: clock.now() }));

  // PLANT: the wallet charged 12.21 for a 12.34 sale the cloud recorded as 12.34.
  P.wMismatch = next('sbW');
  const short = success(await pay('wechat', P.wMismatch, 1234, { name: 'success', chargeDelta: -13 }));
  expect(short).toMatchObject({ amount: 1221 });
  await keep(attempt('wechat', P.wMismatch, 1234, 'SUCCESS', { ...short, amount: 1234 }));

  // PLANT: a refund made in the merchant's wallet portal, not by the cloud.
  P.wPortalRefund = next('sbW');
  await keep(attempt('wechat', P.wPortalRefund, 2000, 'SUCCESS', success(await pay('wechat', P.wPortalRefund, 2000))));
  const portal = await opened.gateway.refund({ ...route('wechat', P.wPortalRefund), refundNo: 'PORTAL-1', amount: 500, total: 2000, currency: 'CNY' }, call());
  expect(portal.kind).toBe('refunded');

  // PLANT: one sale paid twice (two attempts, both SUCCESS: the store's sale claim was bypassed).
  P.wDup1 = next('sbW');
  P.wDup2 = next('sbW');
  await keep(attempt('wechat', P.wDup1, 600, 'SUCCESS', success(await pay('wechat', P.wDup1, 600)), { saleId: 'SALE-TWICE' }));
  clock.advanceSync(1_000);
  await keep(attempt('wechat', P.wDup2, 600, 'SUCCESS', success(await pay('wechat', P.wDup2, 600)), { saleId: 'SALE-TWICE' }));

  // Not planted: reversed after it was paid (a REVOKED row), refunded by the cloud, declined.
  P.wReversed = next('sbW');
  success(await pay('wechat', P.wReversed, 700));
  expect((await opened.gateway.reverse(route('wechat', P.wReversed), call())).kind).toBe('reversed');
  await keep(attempt('wechat', P.wReversed, 700, 'REVERSED'));
  P.wRefunded = next('sbW');
  const refunded = success(await pay('wechat', P.wRefunded, 900));
  expect((await opened.gateway.refund({ ...route('wechat', P.wRefunded), refundNo: `${P.wRefunded}-R`, amount: 900, total: 900, currency: 'CNY' }, call())).kind).toBe('refunded');
  await keep(attempt('wechat', P.wRefunded, 900, 'REFUNDED', refunded));
  P.wDeclined = next('sbW');
  wallet.pays.push('declined');
  expect((await pay('wechat', P.wDeclined, 300)).kind).toBe('failed');
  await keep(attempt('wechat', P.wDeclined, 300, 'FAILED'));
}

async function plantAlipay(): Promise<void> {
  P.aOk = next('sbL');
  await keep(attempt('alipay', P.aOk, 1100, 'SUCCESS', success(await pay('alipay', P.aOk, 1100))));
  // PLANT: charged at the wallet, REVERSED here (the cancel never reached Alipay).
  P.aKept = next('sbL');
  success(await pay('alipay', P.aKept, 1300));
  await keep(attempt('alipay', P.aKept, 1300, 'REVERSED'));
  // Not planted: a paid trade cancelled the same day (Alipay refunds it: a 退款 row without a request number).
  P.aCancelled = next('sbL');
  success(await pay('alipay', P.aCancelled, 1400));
  expect(await opened.gateway.reverse(route('alipay', P.aCancelled), call())).toMatchObject({ kind: 'reversed' });
  await keep(attempt('alipay', P.aCancelled, 1400, 'REVERSED'));
}

beforeAll(async () => {
  ({ dir, remove: removeDir } = tempDir());
  clock = new FakeClock(DAY.start - 2_000);
  wallet = new ScriptedGateway({ clock, mix: EVERY_CODE_SUCCEEDS });
  sims = await startWalletSimulators(wallet, join(dir, 'wallets'));
  config = parseConfig({ dbPath: join(dir, 'cloud.db'), channels: sims.channels });
  configFile = join(dir, 'cloud.json');
  writeFileSync(configFile, JSON.stringify({ channels: sims.channels }));
  store = new SqliteStore(config.dbPath);
  await store.addMerchant(M, { name: 'Tea House', wechatSubMchId: sims.merchantFlags['--wechat-sub-mch-id']!, alipayAppAuthToken: sims.merchantFlags['--alipay-app-auth-token']! }, clock.now());
  opened = openReconcileChannels(config, { merchants: (id) => store.getMerchant(id), clock, random: () => 0.5, logger: pino({ level: 'silent' }) });
  await plantTheDay();
});

afterAll(async () => {
  await opened?.close();
  await store?.close();
  wallet?.stop();
  await sims?.close();
  removeDir?.();
});

const deps = () => ({ store, gateway: opened.gateway, channels: opened.channels, clock, callTimeoutMs: 10_000, billTimeoutMs: 30_000 });
const run = (opts: { apply: boolean; channel?: string; date?: string }) => reconcile(deps(), { date: DAY.date, ...opts });
/** channel:kind:outTradeNo:status, sorted. */
const found = (r: ReconcileReport) => r.channels.flatMap((c) => c.findings.map((f) => `${c.channel}:${f.kind}:${f.outTradeNo}:${f.status}`)).sort();
const refundsOf = (otn: string) => wallet.ledger.entries().filter((e) => e.outTradeNo === otn && e.kind === 'refund');

const run$ = promisify(execFile);
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run$(process.execPath, ['bin/scanbox-cloud.js', 'reconcile', ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('reconcile: the planted day, through the real adapters and the wallet simulators', () => {
  it('finds every planted discrepancy and nothing else; a run without --apply sends no refund or query and records nothing', async () => {
    const calls = wallet.calls.length;
    const r = await run({ apply: false });
    expect(found(r)).toEqual(
      [
        `wechat:charged_not_success:${P.wKept}:open`,
        `wechat:success_not_charged:${P.wNotCharged}:open`,
        `wechat:amount_mismatch:${P.wMismatch}:open`,
        `wechat:refund_only_there:${P.wPortalRefund}:open`,
        `wechat:duplicate:${P.wDup2}:open`,
        `alipay:charged_not_success:${P.aKept}:open`,
      ].sort(),
    );
    const byChannel = Object.fromEntries(r.channels.map((c) => [c.channel, c]));
    // wechat: early, ok, dup1, reversed, refunded, declined agree; the late one is the next day's.
    expect(byChannel.wechat).toMatchObject({ errors: [], ok: 6 });
    expect(byChannel.alipay).toMatchObject({ errors: [], ok: 2 });
    expect(byChannel.wechat!.findings.find((f) => f.outTradeNo === P.wKept)).toMatchObject({ amount: 1500, state: 'FAILED', merchantId: M });
    expect(byChannel.wechat!.findings.find((f) => f.outTradeNo === P.wMismatch)).toMatchObject({ amount: 1221, here: 1234 });
    expect(byChannel.wechat!.findings.find((f) => f.outTradeNo === P.wPortalRefund)).toMatchObject({ amount: 500 });
    expect(r.exitCode).toBe(1);
    expect(wallet.calls.slice(calls).map((c) => c.call)).toEqual([]);
    expect(await store.listReconcileFindings(DAY.date, 'wechat')).toEqual([]);
  });

  it('the CLI prints the same findings as a table and as valid JSON, exit 1, and no secret', async () => {
    const table = await cli('--date', DAY.date, '--db', config.dbPath, '--config', configFile);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^reconcile 2026-01-01 \(Beijing business day\), dry run/);
    expect(table.stdout).toMatch(/KIND\s+OUT_TRADE_NO\s+MERCHANT\s+AMOUNT\s+STATE\s+STATUS\s+DETAIL/);
    expect(table.stdout).toMatch(new RegExp(`charged_not_success\\s+${P.wKept}\\s+M1\\s+15\\.00\\s+FAILED\\s+open`));
    expect(table.stdout).toContain('NEEDS A PERSON: 6 open, 0 settled');
    const json = await cli('--date', DAY.date, '--db', config.dbPath, '--config', configFile, '--json');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as ReconcileReport;
    expect(found(report)).toEqual(found(await run({ apply: false })));
    expect(report).toMatchObject({ date: DAY.date, apply: false, open: 6, settled: 0, exitCode: 1 });
    for (const out of [table.stdout, table.stderr, json.stdout, json.stderr]) expect(out).not.toContain(sims.merchantFlags['--alipay-app-auth-token']);
  });

  it('--apply refunds the one-sided charges exactly once, for the net kept, and records every finding; the rest stays open', async () => {
    const r = await run({ apply: true });
    expect(found(r)).toEqual(
      [
        `wechat:charged_not_success:${P.wKept}:settled`,
        `wechat:success_not_charged:${P.wNotCharged}:open`,
        `wechat:amount_mismatch:${P.wMismatch}:open`,
        `wechat:refund_only_there:${P.wPortalRefund}:open`,
        `wechat:duplicate:${P.wDup2}:open`,
        `alipay:charged_not_success:${P.aKept}:settled`,
      ].sort(),
    );
    expect(r).toMatchObject({ open: 4, settled: 2, exitCode: 1 });
    for (const [otn, amount] of [[P.wKept, 1500], [P.aKept, 1300]] as const) {
      expect(refundsOf(otn).map((e) => e.amount)).toEqual([amount]);
      expect(wallet.net(otn)).toBe(0);
    }
    const kept = r.channels[0]!.findings.find((f) => f.outTradeNo === P.wKept)!;
    expect(kept.action).toBe(`refunded 15.00 as ${P.wKept}-RC`);
    // The SUCCESS the wallet never saw was asked about, and is left to a person.
    expect(wallet.count('query', P.wNotCharged)).toBe(1);
    expect(r.channels[0]!.findings.find((f) => f.outTradeNo === P.wNotCharged)!.action).toMatch(/not_found/);
    // Nothing else moved money.
    expect(wallet.count('refund')).toBe(4); // the portal refund, the cloud's own refund, and the two settled here
    const rows = await store.listReconcileFindings(DAY.date, 'wechat');
    expect(rows.map((x) => `${x.outTradeNo}:${x.kind}:${x.status}`).sort()).toEqual(
      [`${P.wKept}:charged_not_success:settled`, `${P.wNotCharged}:success_not_charged:open`, `${P.wMismatch}:amount_mismatch:open`, `${P.wPortalRefund}:refund_only_there:open`, `${P.wDup2}:duplicate:open`].sort(),
    );
    expect(rows.every((x) => x.foundAt === clock.now())).toBe(true);
  });

  it('a second --apply (through the CLI) says settled, not found, and refunds nothing', async () => {
    const refunds = wallet.count('refund');
    const queriesOfKept = wallet.count('query', P.wKept);
    const again = await cli('--date', DAY.date, '--db', config.dbPath, '--config', configFile, '--apply', '--json');
    expect(again.code).toBe(1);
    const report = JSON.parse(again.stdout) as ReconcileReport;
    const kept = report.channels.find((c) => c.channel === 'wechat')!.findings.find((f) => f.outTradeNo === P.wKept);
    expect(kept).toMatchObject({ kind: 'charged_not_success', status: 'settled', action: `refunded 15.00 as ${P.wKept}-RC` });
    expect(report).toMatchObject({ open: 4, settled: 2 });
    expect(wallet.count('refund')).toBe(refunds);
    expect(wallet.count('query', P.wKept)).toBe(queriesOfKept);
    expect(refundsOf(P.wKept)).toHaveLength(1);
    expect(refundsOf(P.aKept)).toHaveLength(1);
  });

  it('a channel with nothing left for a person exits 0, and says so', async () => {
    const r = await run({ apply: true, channel: 'alipay' });
    expect(found(r)).toEqual([`alipay:charged_not_success:${P.aKept}:settled`]);
    expect(r.exitCode).toBe(0);
    const table = await cli('--date', DAY.date, '--db', config.dbPath, '--config', configFile, '--channel', 'alipay');
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('RECONCILED: nothing needs a person (0 open, 1 settled)');
  });

  it("the next day's bill carries the reconciliation's refund and the late charge: recognised, nothing to say", async () => {
    const r = await run({ apply: false, channel: 'wechat', date: '2026-01-02' });
    expect(r.channels[0]).toMatchObject({ errors: [], findings: [], ok: 2 });
    expect(r.channels[0]!.billRows).toBe(2);
    expect(r.exitCode).toBe(0);
  });
});

describe('reconcile: exit 2 — a usage or config error, or a bill that cannot be fetched', () => {
  it('a day that is not one, an unknown channel, a channel without a bill, no store: refused in-process', async () => {
    await expect(run({ apply: false, date: '2026-02-30' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('2026-02-30') });
    await expect(run({ apply: false, channel: 'unionpay' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('unionpay') });
  });

  it('the CLI: bad date, unknown channel, missing --date, missing store → 2 with the reason, nothing printed on stdout', async () => {
    const base = ['--db', config.dbPath, '--config', configFile];
    const cases: [string[], RegExp][] = [
      [['--date', '2026-13-01', ...base], /2026-13-01/],
      [['--date', DAY.date, '--channel', 'nope', ...base], /channel nope/],
      [base, /--date/],
      [['--date', DAY.date, '--db', join(dir, 'missing.db'), '--config', configFile], /no cloud store/],
    ];
    for (const [args, why] of cases) {
      const r = await cli(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(why);
      expect(r.stdout).toBe('');
    }
  });

  it('a WeChat bill that cannot be fetched: the report says which channel and day, exit 2', async () => {
    const broken = join(dir, 'broken.json');
    const channels = { ...sims.channels, wechat: { ...sims.channels.wechat, endpoint: 'https://127.0.0.1:9/' } };
    writeFileSync(broken, JSON.stringify({ channels }));
    const r = await cli('--date', DAY.date, '--db', config.dbPath, '--config', broken, '--channel', 'wechat');
    expect(r.code).toBe(2);
    expect(r.stdout).toContain('ERROR channel wechat: the WeChat bill of 2026-01-01 cannot be fetched or read');
    expect(r.stdout).toContain('BILL MISSING');
  });
});
