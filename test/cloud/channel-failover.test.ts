import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isFinal } from '../../protocol/index.js';
import type { RunningCloud } from '../../cloud/index.js';
import { EVERY_CODE_SUCCEEDS, ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { startGatewayServer, type GatewayServer } from '../../simulator/gateway/gateway-server.js';
import { pairBox, payMsg, startTestCloud, TestBox, until } from './harness.js';

/**
 * Two channels for WeChat on one wallet (one ledger): `wx-a` cheap, `wx-b` dear. A fails half its
 * calls (HTTP 503 before the wallet acts), its breaker opens within its window, new payments move to
 * B; A heals, is probed after its cool-down, closes, and new payments come back to it. No attempt
 * ever calls two channels, and every attempt ends final with the money matching.
 */
let wallet: ScriptedGateway;
let a: GatewayServer;
let b: GatewayServer;
let cloud: RunningCloud & { dir: string };
let box: TestBox;
let seq = 0;

const HEALTH = { windowMs: 4_000, minCalls: 6, failureRatio: 0.3, slowCallMs: 2_000, coolDownMs: 1_500, probeShare: 0.5, maxProbes: 2, probesToClose: 2 };

beforeAll(async () => {
  wallet = new ScriptedGateway({ mix: EVERY_CODE_SUCCEEDS });
  [a, b] = await Promise.all([startGatewayServer({ gateway: wallet }), startGatewayServer({ gateway: wallet })]);
  cloud = await startTestCloud(wallet, {
    channels: {
      'wx-a': { kind: 'http', url: a.url, wallets: ['wechat'], cost: { bps: 20 } },
      'wx-b': { kind: 'http', url: b.url, wallets: ['wechat'], cost: { bps: 38 } },
    },
    channelHealth: HEALTH,
    channelPollMs: 100,
  });
  box = await TestBox.of(cloud, await pairBox(cloud));
});

afterAll(async () => {
  await box?.close();
  await cloud?.close();
  await Promise.all([a?.close(), b?.close()]);
  wallet?.stop();
});

/** One sale from the box, to its final result; returns the channel its attempt started on. */
async function sale(): Promise<string> {
  const m = payMsg(box.deviceId, ++seq, { amount: 1000 + seq });
  await box.send('pay', m);
  await box.next('result', (r) => r.outTradeNo === m.outTradeNo && isFinal(r.state), 10_000);
  return (await cloud.store.getAttempt(m.outTradeNo))!.channel!;
}

/** Sales until `want` says stop (bounded): the channels they went to. */
async function salesUntil(want: (channels: string[]) => boolean, max: number): Promise<string[]> {
  const channels: string[] = [];
  while (!want(channels)) {
    if (channels.length >= max) throw new Error(`after ${max} sales: ${channels.join(' ')}`);
    channels.push(await sale());
  }
  return channels;
}

describe('channel failover and switch-back', () => {
  it('routes to the cheaper channel, opens it when it fails half its calls, moves to the backup, and comes back once it heals', async () => {
    expect(await salesUntil((c) => c.length === 4, 4)).toEqual(['wx-a', 'wx-a', 'wx-a', 'wx-a']);

    a.outage(0.5);
    const failing = await salesUntil((c) => c.at(-1) === 'wx-b', 12);
    // Once open, every new payment goes to the backup.
    expect(await salesUntil((c) => c.length === 3, 3)).toEqual(['wx-b', 'wx-b', 'wx-b']);
    expect(failing.length).toBeGreaterThan(1);

    a.outage(0);
    // Half-open after the cool-down (as the cloud writes it for `channel list`): a share of new
    // payments probe A; enough successes close it.
    await until('wx-a half-open', async () => (await cloud.store.channelStates()).find((c) => c.channel === 'wx-a')?.summary.state === 'half_open', 5_000);
    const back = await salesUntil((c) => c.slice(-3).join() === 'wx-a,wx-a,wx-a', 40);
    expect(back).toContain('wx-a');
    expect(cloud.metrics.get('channel_transitions_total', 'wx-a:open')).toBe(1);
    expect(cloud.metrics.get('channel_transitions_total', 'wx-a:closed')).toBe(1);
  }, 60_000);

  it("the operator's pin and disable (written to the store, as `scanbox-cloud channel` does) reach the running cloud's routing", async () => {
    const states = async () => Object.fromEntries((await cloud.store.channelStates()).map((r) => [r.channel, r.summary.state]));
    await until('wx-a written as closed', async () => (await states())['wx-a'] === 'closed', 5_000);
    await cloud.store.setChannelOverride('wx-b', { mode: 'pinned', wallets: ['wechat'] }, Date.now());
    // Applied within channelPollMs: from then on every new payment takes the dearer, pinned channel.
    expect((await salesUntil((c) => c.slice(-2).join() === 'wx-b,wx-b', 20)).at(-1)).toBe('wx-b');
    await cloud.store.setChannelOverride('wx-b', null, Date.now());
    await cloud.store.setChannelOverride('wx-a', { mode: 'disabled', wallets: ['wechat'] }, Date.now());
    expect(await salesUntil((c) => c.slice(-2).join() === 'wx-b,wx-b', 20)).toContain('wx-b');
    await cloud.store.setChannelOverride('wx-a', null, Date.now());
    expect((await salesUntil((c) => c.slice(-2).join() === 'wx-a,wx-a', 20)).at(-1)).toBe('wx-a');
  }, 60_000);

  it('no attempt ever called two channels; every attempt is final; the wallet charged exactly the SUCCESS ones', async () => {
    const attempts = await until('every attempt final', async () => {
      const all = await cloud.store.listAttempts({});
      return all.every((x) => isFinal(x.state) && x.nextAt === null && x.inFlight === null) && all;
    }, 15_000);
    const seenBy = (s: GatewayServer) => new Set(s.calls.map((c) => c.outTradeNo));
    const [onA, onB] = [seenBy(a), seenBy(b)];
    for (const x of attempts) {
      expect(onA.has(x.outTradeNo) && onB.has(x.outTradeNo), `${x.outTradeNo} called both channels`).toBe(false);
      expect((x.channel === 'wx-a' ? onA : onB).has(x.outTradeNo), `${x.outTradeNo} never reached its channel ${x.channel}`).toBe(true);
      expect(wallet.net(x.outTradeNo), `${x.outTradeNo} ${x.state}`).toBe(x.state === 'SUCCESS' ? x.amount : 0);
    }
    expect(attempts.filter((x) => x.state === 'SUCCESS').length).toBeGreaterThan(10);
  }, 30_000);
});
