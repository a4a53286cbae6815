import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isFinal, WALLETS } from '../../protocol/index.js';
import { logFindings, type InjectedFault } from '../../simulator/chaos/log-verdict.js';
import { validCode } from '../../simulator/devices/codes.js';
import { DEFAULT_MIX } from '../../simulator/gateway/scenario.js';
import { createRandom } from '../../simulator/random.js';
import { reconcile } from '../../simulator/reconcile/reconcile.js';
import type { LogLine } from '../../simulator/processes.js';
import { FAST_CLOUD_CONFIG, FAST_DEVICE_CONFIG, Rig, type Box } from '../../simulator/rig.js';

/**
 * Three cloud workers behind Mosquitto on one PostgreSQL (the rig's mosquitto-postgres stack),
 * three boxes selling continuously. Worker w2 is SIGKILLed just after it sent a pay the customer is
 * still confirming on the phone; it stays down 10 s. While it is down the other workers take over
 * its attempt (its lease runs out: workerLeaseMs 3 s in the rig) and the boxes keep getting paid;
 * then it comes back. Afterwards every attempt is final everywhere and the gateway's ledger, the
 * cloud and the boxes reconcile.
 */
const BOXES = 3;
const KILLED = 1; // w2
const DOWN_MS = 10_000;
/** The customer confirms on the phone this long after the pay: w2 dies holding an open attempt. */
const CONFIRM_MS = 2_500;

interface Sale {
  ref: string;
  box: Box;
  rungAt: number;
  resultAt?: number;
  outcome?: 'PAID' | 'NOT_PAID';
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'scanbox-scale-out-'));
let rig: Rig | undefined;
let stopping = false;
let loops: Promise<void>[] = [];
let passed = false;
afterAll(async () => {
  // A failed expectation leaves the cashiers selling: they stop with the rig.
  stopping = true;
  await rig?.stop();
  await Promise.allSettled(loops);
  if (passed) rmSync(dir, { recursive: true, force: true });
  else console.error(`scale-out: logs kept in ${dir} (w1/cloud.log … w3/cloud.log, mosquitto.log, box-N/device.log)`);
});

describe('three workers behind Mosquitto on PostgreSQL (rig stack mosquitto-postgres)', () => {
  it('a worker SIGKILLed mid-payment: its attempt is taken over, payments go on while it is down, and everything settles and reconciles', async () => {
    rig = await Rig.start({
      dir,
      seed: 'scale-out',
      stack: 'mosquitto-postgres',
      workers: 3,
      mix: { scenarios: [{ weight: 1, scenario: { name: 'success' } }], latency: DEFAULT_MIX.latency },
      // The wallet's poll deadline outlasts the takeover (lease 3 s + a claim round): the attempt of
      // the killed worker is queried to its SUCCESS by another, not given up and reversed.
      cloudConfig: { ...FAST_CLOUD_CONFIG, pollDeadlineMs: { wechat: 8_000, alipay: 8_000, unionpay: 8_000 } },
      deviceConfig: FAST_DEVICE_CONFIG,
    });
    const r = rig;
    expect(r.workerNames).toEqual(['w1', 'w2', 'w3']);
    const boxes = await Promise.all(Array.from({ length: BOXES }, (_, i) => r.addBox(`box-${i + 1}`, 'M-SCALE', `S-${i + 1}`)));

    const random = createRandom('scale-out-sales');
    const sales: Sale[] = [];
    let killedAt = Number.POSITIVE_INFINITY;
    const sell = async (box: Box) => {
      for (let n = 1; !stopping; n++) {
        const sale: Sale = { ref: `${box.name}-${n}`, box, rungAt: Date.now() };
        sales.push(sale);
        const mark = box.ecr.mark();
        await box.ecr.sale(sale.ref, random.int(100, 9_999));
        const open = await box.ecr.waitFor((m) => m.ref === sale.ref && (m.type === 'error' || (m.type === 'progress' && m.stage === 'WAITING_CODE')), 8_000, mark).catch(() => undefined);
        if (open?.type === 'progress') {
          const code = validCode(random, random.pick(WALLETS));
          // Until the kill every customer confirms on the phone, so w2 dies holding a payment.
          if (Date.now() < killedAt) r.gateway.bind(code, { name: 'user_paying', confirmAfterMs: CONFIRM_MS });
          await box.scanner.scan(code);
          await box.ecr.waitFor((m) => m.ref === sale.ref && (m.type === 'result' || (m.type === 'progress' && m.stage === 'ATTEMPT_FAILED')), 15_000, mark).catch(() => undefined);
        }
        // Not paid, refused or silent: the cashier cancels, so no sale is left open for the next one.
        if (box.ecr.results(sale.ref).length === 0) {
          await box.ecr.cancel(sale.ref);
          await box.ecr.waitFor((m) => m.ref === sale.ref && (m.type === 'result' || (m.type === 'error' && m.code === 'SALE_UNKNOWN')), 30_000, mark).catch(() => undefined);
        }
        const result = box.ecr.results(sale.ref)[0];
        if (result) Object.assign(sale, { resultAt: Date.now(), outcome: result.outcome });
      }
    };
    const w2 = r.workers[KILLED]!;
    loops = boxes.map(sell);

    // w2 sent a pay and the wallet said the customer is confirming: that attempt is w2's, and open.
    const held = await w2.waitForLog((l) => l.msg === 'gateway answered' && l.call === 'pay' && l.outcome === 'in_progress', 30_000);
    await r.killWorker(KILLED);
    killedAt = Date.now();
    const heldId = String(held.outTradeNo);

    // Another worker must bring w2's attempt to its end while w2 is down (the store's word on it is read after settling).
    const restartAt = killedAt + DOWN_MS;
    const others = r.workers.filter((_, i) => i !== KILLED);
    const ended = (l: LogLine) => l.msg === 'attempt transition' && l.outTradeNo === heldId && l.to === 'SUCCESS';
    const takeover = await Promise.any(others.map((w) => w.waitForLog(ended, restartAt - Date.now()))).catch(() => undefined);
    expect(takeover, `${heldId}, the attempt w2 died holding, paid by another worker while w2 is down`).toBeDefined();
    // The rest of the outage: the boxes keep selling on two workers.
    await new Promise((resolve) => setTimeout(resolve, restartAt - Date.now()));
    expect(w2.running).toBe(false);
    await r.restartWorker(KILLED);
    const restartedAt = Date.now();

    stopping = true;
    await Promise.all(loops);
    const snap = await r.settle(30_000);
    const notFinal = [...snap.cloud, ...snap.devices.flat()].filter((a) => !isFinal(a.state)).map((a) => `${a.outTradeNo} ${a.state}`);
    expect(notFinal).toEqual([]);
    const report = reconcile(snap);
    expect(report.mismatches).toEqual([]);
    expect(report.ok).toBe(true);

    // Sales rung up after the kill and paid before w2 was back: the other two carried the boxes.
    const duringOutage = sales.filter((s) => s.rungAt > killedAt && s.outcome === 'PAID' && s.resultAt! < restartedAt);
    expect(duringOutage.length).toBeGreaterThan(0);
    const cloud = new Map(snap.cloud.map((a) => [a.outTradeNo, a.state]));
    expect(cloud.get(heldId)).toBe('SUCCESS');
    for (const s of duringOutage) {
      const attempts = snap.devices[r.boxes.indexOf(s.box)]!.filter((a) => a.saleRef === s.ref);
      expect(attempts.map((a) => cloud.get(a.outTradeNo)), s.ref).toContain('SUCCESS');
    }

    const kill: InjectedFault[] = [{ kind: 'cloud_kill', startMs: killedAt, endMs: restartedAt }];
    const findings = [logFindings(dir, boxes.map((b) => b.name), kill), ...r.workerLogDirs().map((w) => logFindings(w.dir, [], kill))];
    expect(findings.flatMap((f) => f.lines.filter((l) => l.startsWith('DEFECT')))).toEqual([]);
    passed = true;
  }, 150_000);
});
