import { describe, expect, it } from 'vitest';
import { reconcile, type MismatchKind, type ReconcileReport } from '../../simulator/reconcile/reconcile.js';
import { formatReconcileReport } from '../../simulator/reconcile/reconcile-table.js';
import { cleanWorld, cloudRecord, deviceRecord, ledgerOf } from './reconcile-fixtures.js';

const kinds = (r: ReconcileReport, outTradeNo?: string): MismatchKind[] =>
  [...new Set(r.mismatches.filter((m) => outTradeNo === undefined || m.outTradeNo === outTradeNo).map((m) => m.kind))].sort();

describe('reconcile', () => {
  it('clean data passes, with the not-charged state difference as a note', () => {
    const report = reconcile(cleanWorld());
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.notes).toEqual([{ outTradeNo: 'boxB-1', detail: expect.stringMatching(/cloud REFUNDED, box REVERSED/) }]);
    expect(report.totals).toEqual({ attempts: 8, sales: 6, paidSales: 3, paidSalesAmount: 4700, ledgerNet: 4700, refunds: 0, refunded: 0, refundedAmount: 0 });
    const table = formatReconcileReport(report);
    expect(table).toMatch(/RECONCILED/);
    expect(table).toMatch(/boxA-4\s+boxA-s3\s+30\.00\s+30\.00\s+SUCCESS\s+SUCCESS\s+ok/);
  });

  it('catches a planted double charge: one sale charged twice', () => {
    const w = cleanWorld();
    // boxB-3 was the duplicate; plant it as not refunded anywhere.
    w.ledger = w.ledger.filter((e) => !(e.outTradeNo === 'boxB-3' && e.kind === 'refund'));
    w.cloud = w.cloud.map((c) => (c.outTradeNo === 'boxB-3' ? { ...c, state: 'SUCCESS' } : c));
    w.devices[1] = w.devices[1]!.map((d) => (d.outTradeNo === 'boxB-3' ? { ...d, state: 'SUCCESS' } : d));
    const report = reconcile(w);
    expect(report.ok).toBe(false);
    expect(kinds(report, 'boxB-3')).toEqual(['DOUBLE_PAYMENT']);
    expect(kinds(report, 'boxB-2')).toEqual(['DOUBLE_PAYMENT']);
    expect(report.mismatches.find((m) => m.kind === 'DOUBLE_PAYMENT')).toMatchObject({ saleId: 'boxB-s2' });
    expect(kinds(report)).toEqual(['DOUBLE_PAYMENT', 'TOTAL_DISAGREES']);
    expect(formatReconcileReport(report)).toMatch(/DOUBLE_PAYMENT\s+boxB-3/);
  });

  it('catches a double charge hidden from the cloud: the ledger charged one attempt twice', () => {
    const w = cleanWorld();
    w.ledger = [...w.ledger, ...ledgerOf([['boxA-1', 'charge', 1000]]).map((e) => ({ ...e, seq: 99 }))];
    const report = reconcile(w);
    expect(kinds(report, 'boxA-1')).toEqual(['LEDGER_DISAGREES']);
    expect(kinds(report)).toEqual(['LEDGER_DISAGREES', 'TOTAL_DISAGREES']);
  });

  it('catches a planted lost attempt: money moved at the gateway for an attempt the cloud does not know', () => {
    const w = cleanWorld();
    w.cloud = w.cloud.filter((c) => c.outTradeNo !== 'boxA-1');
    w.devices[0] = w.devices[0]!.filter((d) => d.outTradeNo !== 'boxA-1');
    const report = reconcile(w);
    expect(kinds(report, 'boxA-1')).toEqual(['LOST_ATTEMPT']);
    expect(kinds(report)).toEqual(['LOST_ATTEMPT', 'TOTAL_DISAGREES']);
  });

  it('catches a planted disagreement: the box says paid, the cloud says reversed', () => {
    const w = cleanWorld();
    w.devices[0] = w.devices[0]!.map((d) => (d.outTradeNo === 'boxA-3' ? { ...d, state: 'SUCCESS' } : d));
    const report = reconcile(w);
    expect(report.mismatches).toEqual([{ kind: 'OUTCOME_DISAGREES', outTradeNo: 'boxA-3', saleId: 'boxA-s3', detail: 'cloud REVERSED, box SUCCESS' }]);
    expect(report.rows.find((r) => r.outTradeNo === 'boxA-3')?.problems).toEqual(['OUTCOME_DISAGREES']);
  });

  it('flags attempts not final on either side, and the ledger disagreeing with the cloud', () => {
    const w = cleanWorld();
    w.cloud = w.cloud.map((c) => (c.outTradeNo === 'boxB-4' ? { ...c, state: 'REVERSE_PENDING' } : c));
    w.devices[0] = w.devices[0]!.map((d) => (d.outTradeNo === 'boxA-2' ? { ...d, state: 'PAYING' } : d));
    w.ledger = [...w.ledger, ...ledgerOf([['boxA-2', 'charge', 2000]]).map((e) => ({ ...e, seq: 50 }))];
    const report = reconcile(w);
    expect(kinds(report, 'boxB-4')).toEqual(['NOT_FINAL_CLOUD']);
    expect(kinds(report, 'boxA-2')).toEqual(['LEDGER_DISAGREES', 'NOT_FINAL_DEVICE']);
  });

  it('flags attempts missing from the cloud or from a supplied journal, and amount disagreements', () => {
    const w = cleanWorld();
    w.devices[0] = [...w.devices[0]!.filter((d) => d.outTradeNo !== 'boxA-2'), deviceRecord(cloudRecord('boxA-9', 'boxA-s9', 10, 'CANCELLED'))];
    w.devices[1] = w.devices[1]!.map((d) => (d.outTradeNo === 'boxB-4' ? { ...d, amount: 901 } : d));
    const report = reconcile(w);
    expect(kinds(report, 'boxA-9')).toEqual(['UNKNOWN_TO_CLOUD']);
    expect(kinds(report, 'boxA-2')).toEqual(['MISSING_ON_DEVICE']);
    expect(kinds(report, 'boxB-4')).toEqual(['AMOUNT_DISAGREES']);
  });

  it('a box whose journal was not supplied is a note, not a failure', () => {
    const w = cleanWorld();
    const report = reconcile({ ...w, devices: [w.devices[0]!] });
    expect(report.ok).toBe(true);
    expect(report.notes.filter((n) => /no journal supplied for box boxB/.test(n.detail))).toHaveLength(4);
  });

  it('lists only offending rows when there are many attempts', () => {
    const w = cleanWorld();
    w.devices[0] = w.devices[0]!.map((d) => (d.outTradeNo === 'boxA-3' ? { ...d, state: 'SUCCESS' } : d));
    const text = formatReconcileReport(reconcile(w), { maxRows: 2 });
    expect(text.split('\n').filter((l) => /^box/.test(l))).toHaveLength(1);
    expect(text).toMatch(/7 matching attempts not shown/);
    expect(text).toMatch(/NOT RECONCILED: 1 mismatch/);
  });
});
