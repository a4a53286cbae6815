import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedGateway } from '../../simulator/gateway/scripted-gateway.js';
import { startGatewayServer, type GatewayServer } from '../../simulator/gateway/gateway-server.js';
import { cleanWorld, type World } from './reconcile-fixtures.js';
import { runPart } from '../../simulator/processes.js';

/** `scanbox-sim reconcile` as a separate process, on files shaped like the cloud's and boxes' exports. */
let dir: string;
const run = (args: string[]) => runPart('sim', args);

function files(name: string, w: World): string[] {
  const path = (f: string) => join(dir, `${name}-${f}.json`);
  writeFileSync(path('ledger'), JSON.stringify(w.ledger));
  writeFileSync(path('cloud'), JSON.stringify(w.cloud));
  w.devices.forEach((d, i) => writeFileSync(path(`device${i}`), JSON.stringify(d)));
  return ['--ledger', path('ledger'), '--cloud', path('cloud'), ...w.devices.flatMap((_, i) => ['--device', path(`device${i}`)])];
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'scanbox-reconcile-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('scanbox-sim reconcile', () => {
  it('exits 0 and prints the table on clean data; exits 1 naming the outTradeNo on a mismatch', async () => {
    const clean = await run(['reconcile', ...files('clean', cleanWorld())]);
    expect(clean.stderr).toBe('');
    expect(clean.stdout).toMatch(/RECONCILED: gateway, cloud and boxes agree/);
    expect(clean.code).toBe(0);

    const w = cleanWorld();
    w.devices[0] = w.devices[0]!.map((d) => (d.outTradeNo === 'boxA-3' ? { ...d, state: 'SUCCESS' } : d));
    const bad = await run(['reconcile', ...files('bad', w)]);
    expect(bad.stdout).toMatch(/OUTCOME_DISAGREES\s+boxA-3/);
    expect(bad.code).toBe(1);
  });

  it('reads the ledger from a running gateway URL', async () => {
    const gateway = new ScriptedGateway({ mix: { scenarios: [{ weight: 1, scenario: { name: 'success' } }] } });
    const server: GatewayServer = await startGatewayServer({ gateway });
    try {
      await gateway.pay({ outTradeNo: 'boxA-1', amount: 1000, currency: 'CNY', code: '134567890123456789', wallet: 'wechat', merchant: 'M1', channel: 'wechat' }, { signal: new AbortController().signal });
      const w = cleanWorld();
      const args = files('url', w);
      args[1] = server.url;
      const res = await run(['reconcile', ...args, '--json']);
      // Only boxA-1 is on this gateway's ledger: every other charged attempt now disagrees.
      const report = JSON.parse(res.stdout) as { ok: boolean; mismatches: Array<{ outTradeNo?: string; kind: string }> };
      expect(report.ok).toBe(false);
      expect(report.mismatches.some((m) => m.outTradeNo === 'boxA-4' && m.kind === 'LEDGER_DISAGREES')).toBe(true);
      expect(report.mismatches.some((m) => m.outTradeNo === 'boxA-1')).toBe(false);
      expect(res.code).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('a bad input file is a clear error with exit 2', async () => {
    const args = files('badfile', cleanWorld());
    writeFileSync(args[3]!, JSON.stringify([{ outTradeNo: 'boxA-1', state: 'PAID' }]));
    const res = await run(['reconcile', ...args]);
    expect(res.stderr).toMatch(/not valid cloud attempts \(scanbox-cloud attempts --json\)/);
    expect(res.code).toBe(2);
    const missing = await run(['reconcile', '--ledger', join(dir, 'nope.json'), '--cloud', args[3]!]);
    expect(missing.stderr).toMatch(/nope\.json: cannot read gateway ledger: ENOENT/);
    expect(missing.code).toBe(2);
  });
});
