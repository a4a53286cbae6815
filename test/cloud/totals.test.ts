import { afterEach, beforeEach, expect, it } from 'vitest';
import { businessDateOf, type Wallet, type WalletTotals } from '../../protocol/index.js';
import type { RunningCloud } from '../../cloud/index.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import type { LedgerEntry } from '../../simulator/gateway/ledger.js';
import { pairBox, startTestCloud, TestBox } from './harness.js';
import { announceV3, pay, REFUND_FAST, refundAnswer, refundMsg, v3 } from './refund-kit.js';

/**
 * A box's end-of-day totals (up/totals → down/totals) against the scripted gateway's ledger: what
 * the wallet charged and gave back for this box's orders is what the cloud counts.
 */
let gw: ScriptedGateway;
let cloud: RunningCloud;
let box: TestBox;
let other: TestBox;

beforeEach(async () => {
  gw = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  cloud = await startTestCloud(gw, { ...REFUND_FAST, pollDeadlineMs: { wechat: 300, alipay: 300, unionpay: 300 } });
  box = await TestBox.of(cloud, await pairBox(cloud));
  other = await TestBox.of(cloud, await pairBox(cloud));
  await announceV3(box);
});
afterEach(async () => {
  await other?.close();
  await box?.close();
  await cloud?.close();
  gw?.stop();
});

const ALIPAY_CODE = '281234567890123456';

/** The oracle: the box's orders in the ledger, per wallet — charges that stayed charges, and refunds. */
function fromLedger(entries: readonly LedgerEntry[], walletOf: ReadonlyMap<string, Wallet>): WalletTotals[] {
  const reversed = new Set(entries.filter((e) => e.kind === 'reverse').map((e) => e.outTradeNo));
  const by = new Map<Wallet, WalletTotals>();
  for (const e of entries) {
    const wallet = walletOf.get(e.outTradeNo);
    if (!wallet || reversed.has(e.outTradeNo)) continue;
    const t = by.get(wallet) ?? { wallet, paidCount: 0, paidAmount: 0, refundCount: 0, refundAmount: 0 };
    if (e.kind === 'charge') (t.paidCount++, (t.paidAmount += e.amount));
    if (e.kind === 'refund') (t.refundCount++, (t.refundAmount += e.amount));
    by.set(wallet, t);
  }
  return [...by.values()].sort((a, b) => a.wallet.localeCompare(b.wallet));
}

it("totals of today agree with the wallet's ledger for the box: paid sales and refunds per wallet, nothing of another box", async () => {
  const date = businessDateOf(Date.now());
  const walletOf = new Map<string, Wallet>();
  const sale = async (seq: number, amount: number, wallet: Wallet, script?: 'declined' | 'userpaying') => {
    if (script) gw.pays.push(script);
    const r = await pay(box, seq, { amount, wallet, ...(wallet === 'alipay' ? { code: ALIPAY_CODE } : {}) });
    walletOf.set(r.outTradeNo, wallet);
    return r;
  };
  expect((await sale(1, 1_000, 'wechat')).state).toBe('SUCCESS');
  expect((await sale(2, 2_500, 'wechat')).state).toBe('SUCCESS');
  expect((await sale(3, 800, 'alipay')).state).toBe('SUCCESS');
  expect((await sale(4, 900, 'wechat', 'declined')).state).toBe('FAILED');
  expect((await sale(5, 700, 'alipay', 'userpaying')).state).toBe('REVERSED');
  await pay(other, 1, { amount: 9_999 });
  for (const [seq, otn, amount] of [[1, `${box.deviceId}-1`, 1_000], [2, `${box.deviceId}-2`, 500], [3, `${box.deviceId}-3`, 300]] as const) {
    await box.send('refund', refundMsg(box, seq, otn, amount));
    await refundAnswer(box, `${box.deviceId}-r${seq}`, 'REFUNDED');
  }
  // A refused one moves nothing and counts nothing.
  await box.send('refund', refundMsg(box, 4, `${box.deviceId}-2`, 9_000));
  await refundAnswer(box, `${box.deviceId}-r4`, 'REFUSED');

  const ask = { ...v3(), date };
  await box.send('totals', ask);
  const totals = await box.next('totals');
  expect(totals).toMatchObject({ refId: ask.id, date, currency: 'CNY', asOf: expect.any(Number) });
  expect([...totals.wallets].sort((a, b) => a.wallet.localeCompare(b.wallet))).toEqual(fromLedger(gw.ledger.entries(), walletOf));
  expect(totals.wallets).toEqual([
    { wallet: 'wechat', paidCount: 2, paidAmount: 3_500, refundCount: 2, refundAmount: 1_500 },
    { wallet: 'alipay', paidCount: 1, paidAmount: 800, refundCount: 1, refundAmount: 300 },
  ]);

  // Another day has nothing; the other box has only its own sale.
  const yesterday = { ...v3(), date: businessDateOf(Date.now() - 86_400_000) };
  await box.send('totals', yesterday);
  expect(await box.next('totals', (m) => m.refId === yesterday.id)).toMatchObject({ wallets: [] });
  const theirs = { ...v3(), date };
  await other.send('totals', theirs);
  expect((await other.next('totals', (m) => m.refId === theirs.id)).wallets).toEqual([{ wallet: 'wechat', paidCount: 1, paidAmount: 9_999, refundCount: 0, refundAmount: 0 }]);
}, 60_000);

it('a totals request for a day that is not a calendar day is refused with an error, and answered with nothing', async () => {
  const bad = { ...v3(), date: '2026-02-30' };
  await box.send('totals', bad);
  expect(await box.next('error')).toMatchObject({ code: 'SCHEMA_INVALID', refId: bad.id });
  expect(box.received.filter((r) => r.kind === 'totals')).toEqual([]);
});
