import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ChannelConfig, DEFAULT_CHANNEL_HEALTH } from '../../cloud/gateway/channel-config.js';
import { ChannelRouter, type ChannelEntry } from '../../cloud/gateway/channels.js';
import type { Gateway } from '../../cloud/gateway/gateway.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { FakeClock } from '../support/fake-clock.js';

/** The router's own rules, below routing: a call goes only to the channel it names, and is counted on it. */
function router() {
  const wallet = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  const clock = new FakeClock(1_000);
  const r = new ChannelRouter(new Map<string, ChannelEntry>([['wx-a', { config: ChannelConfig.parse({ kind: 'http', url: 'http://unused.invalid/', wallets: ['wechat'] }), gateway: wallet as Gateway }]]), {
    clock,
    random: () => 0.5,
    health: DEFAULT_CHANNEL_HEALTH,
    logger: pino({ level: 'silent' }),
  });
  return { wallet, r };
}
const open = () => ({ signal: new AbortController().signal });
const route = { wallet: 'wechat', merchant: 'M1' } as const;

describe('ChannelRouter', () => {
  it('a pay naming a channel this cloud does not have is refused unsent; a later call on it is unknown (retried), never guessed elsewhere', async () => {
    const { wallet, r } = router();
    expect(await r.pay({ outTradeNo: 'sbA-1', amount: 100, currency: 'CNY', code: '134567890123456789', channel: 'wx-gone', ...route }, open())).toMatchObject({ kind: 'failed', reason: 'DECLINED' });
    expect(await r.query({ outTradeNo: 'sbA-1', channel: 'wx-gone', ...route }, open())).toMatchObject({ kind: 'unknown', code: 'OTHER' });
    expect(await r.reverse({ outTradeNo: 'sbA-1', channel: 'wx-gone', ...route }, open())).toMatchObject({ kind: 'unknown' });
    expect(wallet.calls).toEqual([]);
  });

  it("every call's result is counted on its own channel", async () => {
    const { wallet, r } = router();
    await r.pay({ outTradeNo: 'sbA-2', amount: 100, currency: 'CNY', code: '134567890123456789', channel: 'wx-a', ...route }, open());
    await r.query({ outTradeNo: 'sbA-3', channel: 'wx-a', ...route }, open());
    expect(wallet.count('pay')).toBe(1);
    expect(r.summaries()['wx-a']).toMatchObject({ state: 'closed', calls: 2, failures: 0 });
  });
});
