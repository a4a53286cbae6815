import { describe, expect, it } from 'vitest';
import { runPart } from '../../simulator/processes.js';

/**
 * A short chaos run as its own process, the way `npm run chaos` runs a long one: 3 boxes selling for
 * a minute while the seeded schedule kills boxes and the cloud, drops, black-holes and cuts links,
 * hangs and errs the gateway, duplicates MQTT deliveries and jumps a box's clock. Exit 0 means every
 * attempt ended final everywhere and gateway, cloud, boxes and cash registers agree. Once on the
 * scripted JSON gateway with three cloud workers behind Mosquitto on PostgreSQL (a cloud kill is a
 * worker's: the others go on and take its attempts over), once on the embedded broker and SQLite with
 * WeChat and Alipay through the cloud's real adapters and the wire-faithful HTTPS simulators and a
 * primary and a backup channel per wallet, with channel outages in the schedule (the same faults
 * reach the wallet behind them).
 */
describe.each([
  ['scripted', '1', 'mosquitto-postgres'],
  ['real-formats', '2', 'embedded-sqlite'],
])('scanbox-sim chaos (3 boxes, 1 min, seed 1, wallets %s, %s channel(s) per wallet, %s)', (wallets, channels, stack) => {
  it('injects faults of several kinds and still reconciles', async () => {
    const r = await runPart('sim', ['chaos', '--boxes', '3', '--minutes', '1', '--seed', '1', '--settle-s', '60', '--wallets', wallets, '--channels', channels, '--stack', stack], 230_000);
    const out = r.stdout;
    expect(r.code, `${out}\n${r.stderr}`).toBe(0);
    const injected = [...out.matchAll(/^ {2}([a-z_]+) +(\d+) +\(\d+\)$/gm)].filter((m) => m[1] !== 'total' && Number(m[2]) > 0).map((m) => m[1]);
    expect(injected.length).toBeGreaterThanOrEqual(5);
    expect(injected).toEqual(expect.arrayContaining(['box_kill', 'cloud_kill', 'link_drop']));
    expect(out).toMatch(/attempts by final state — cloud: .*SUCCESS \d+/);
    expect(out).toMatch(/attempts \d+, sales \d+ \(\d+ paid\), successful sales [\d.]+(, register refunds \d+ \(\d+ refunded, [\d.]+\))?, gateway net charged [\d.]+/);
    // Refunds are in the sales mix: none made twice, none lost.
    expect(out).toMatch(/refunds asked \d+: .*; double refunds 0, refunds lost or disagreeing 0/);
    expect(out).toContain('RECONCILED: gateway, cloud and boxes agree');
    expect(out).toContain('ECR: every result line matches the money');
    expect(out).toContain('CHAOS PASSED');
  }, 240_000);
});
