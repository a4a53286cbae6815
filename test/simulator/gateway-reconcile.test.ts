import { describe, expect, it } from 'vitest';
import type { CloudAttemptRecord } from '../../protocol/index.js';
import { FakeClock } from '../support/fake-clock.js';
import { validCode } from '../../simulator/devices/codes.js';
import { ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { createRandom } from '../../simulator/random.js';
import { reconcile } from '../../simulator/reconcile/reconcile.js';
import { SCENARIO_NAMES, type ScenarioInput } from '../../simulator/gateway/scenario.js';
import { converse } from './reference-conversation.js';

/**
 * Every scenario, run through a minimal reference conversation on fake time, ends in a state the
 * ledger agrees with: the scripted gateway and reconcile speak the same money language.
 */
const SCRIPTS: Array<[ScenarioInput, string]> = [
  [{ name: 'success' }, 'SUCCESS'],
  [{ name: 'failure', reason: 'INSUFFICIENT_FUNDS' }, 'FAILED'],
  [{ name: 'failure', reason: 'CODE_EXPIRED' }, 'FAILED'],
  [{ name: 'user_paying', confirmAfterMs: 12_000 }, 'SUCCESS'],
  [{ name: 'user_gives_up', giveUpAfterMs: 20_000 }, 'FAILED'],
  [{ name: 'user_gives_up', giveUpAfterMs: 600_000 }, 'REVERSED'],
  [{ name: 'gateway_error', code: 'SYSTEMERROR', then: 'success' }, 'SUCCESS'],
  [{ name: 'gateway_error', code: 'BANKERROR', then: 'failure' }, 'FAILED'],
  [{ name: 'hang', charged: true }, 'SUCCESS'],
  [{ name: 'hang', charged: false }, 'REVERSED'],
  [{ name: 'query_flaps', flaps: 4, then: 'success' }, 'SUCCESS'],
  [{ name: 'reverse_retry', times: 3 }, 'REVERSED'],
  [{ name: 'late_success', landAfterMs: 1_000 }, 'REFUNDED'],
];

describe('scripted gateway + reference conversation + reconcile', () => {
  it('covers every scenario name', () => {
    expect(new Set(SCRIPTS.map(([s]) => s.name))).toEqual(new Set(SCENARIO_NAMES));
  });

  it('each scenario ends in its expected state and the whole run reconciles', async () => {
    const clock = new FakeClock();
    const gateway = new ScriptedGateway({ clock, timers: clock, seed: 11 });
    const random = createRandom(11);
    const cloud: CloudAttemptRecord[] = [];
    for (const [i, [scenario, expected]] of SCRIPTS.entries()) {
      const code = validCode(random, 'wechat');
      gateway.bind(code, scenario);
      const record = await converse(gateway, clock, { outTradeNo: `boxR-${i + 1}`, saleId: `boxR-s${i + 1}`, amount: 100 * (i + 1), code, wallet: 'wechat' });
      expect(record.state, JSON.stringify(scenario)).toBe(expected);
      cloud.push(record);
    }
    gateway.stop();
    const devices = [cloud.map((c) => ({ outTradeNo: c.outTradeNo, saleId: c.saleId, saleRef: 'R', amount: c.amount, currency: c.currency, state: c.state, reason: null, createdAt: c.createdAt, updatedAt: c.updatedAt }))];
    const report = reconcile({ ledger: gateway.ledger.entries(), cloud, devices });
    expect(report.mismatches).toEqual([]);
    expect(report.totals.ledgerNet).toBe(report.totals.paidSalesAmount);
    // A late success shows on the ledger as reverse 0, then the charge, then its refund.
    expect(gateway.ledger.entries().filter((e) => e.outTradeNo === 'boxR-13').map((e) => `${e.kind}:${e.amount}`)).toEqual(['reverse:0', 'charge:1300', 'refund:1300']);
  });

  it('a conversation that stops after the reverse (no late check) is caught by reconcile', async () => {
    const clock = new FakeClock();
    const gateway = new ScriptedGateway({ clock, timers: clock });
    const code = validCode(createRandom(2), 'alipay');
    gateway.bind(code, { name: 'late_success', landAfterMs: 1_000 });
    const record = await converse(gateway, clock, { outTradeNo: 'boxL-1', saleId: 'boxL-s1', amount: 700, code, wallet: 'alipay' }, { callTimeoutMs: 10_000, queryIntervalMs: 5_000, pollDeadlineMs: 30_000, lateCheckDelayMs: 0 });
    expect(record.state).toBe('REVERSED');
    await clock.advance(1_000);
    const report = reconcile({ ledger: gateway.ledger.entries(), cloud: [record], devices: [] });
    expect(report.mismatches.map((m) => [m.kind, m.outTradeNo])).toEqual([
      ['LEDGER_DISAGREES', 'boxL-1'],
      ['TOTAL_DISAGREES', undefined],
    ]);
  });
});
