import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpGateway } from '../../cloud/gateway/http-gateway.js';
import { fetchLedger } from '../../simulator/gateway/gateway-control.js';
import { PartProcess, runPart } from '../../simulator/processes.js';

/** `scanbox-sim gateway` as its own process: ready line, the mix file, and a clean stop on SIGTERM. */
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'scanbox-gwcli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('scanbox-sim gateway', () => {
  it('logs ready with its URL, uses the mix file, and stops on SIGTERM', async () => {
    const mix = join(dir, 'mix.json');
    writeFileSync(mix, JSON.stringify({ scenarios: [{ weight: 1, scenario: { name: 'failure', reason: 'CODE_EXPIRED' } }] }));
    const sim = PartProcess.start('sim', ['gateway', '--port', '0', '--seed', '3', '--mix', mix]);
    const ready = await sim.waitForMsg('ready', 15_000);
    try {
      expect(ready.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const url = ready.url as string;
      const outcome = await httpGateway(url).pay({ outTradeNo: 'bx-1', amount: 10, currency: 'CNY', code: '254567890123456789', wallet: 'alipay', merchant: 'M1', channel: 'alipay' }, { signal: AbortSignal.timeout(5_000) });
      expect(outcome).toMatchObject({ kind: 'failed', reason: 'CODE_EXPIRED' });
      expect(await fetchLedger(url)).toEqual([]);
    } finally {
      expect(await sim.stop()).toBe(0);
    }
  });

  it('refuses an invalid mix file with exit 2', async () => {
    const mix = join(dir, 'bad-mix.json');
    writeFileSync(mix, JSON.stringify({ scenarios: [{ weight: 1, scenario: { name: 'teleport' } }] }));
    const res = await runPart('sim', ['gateway', '--mix', mix]);
    expect(res.stderr).toMatch(/not a valid scenario mix/);
    expect(res.code).toBe(2);
  });
});
