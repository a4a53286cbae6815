import { ensureMerchant } from '../cloud/merchants/merchant.js';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createPairingCode, SqliteStore, startCloud, type Attempt, type RunningCloud } from '../cloud/index.js';
import { systemClock } from '../protocol/clock.js';
import { createLogger } from '../cloud/log.js';
import { Journal, pairBox } from '../device/index.js';
import type { Attempt as BoxAttempt, Sale } from '../device/payment.js';
import { CancelMessage, deviceDownFilter, PROTOCOL_VERSION, downTopic, FINAL_STATES, upTopic, type ResultMessage } from '../protocol/index.js';
import { validCode } from '../simulator/devices/codes.js';
import { PartProcess } from '../simulator/processes.js';
import { PtyPair } from '../simulator/devices/pty.js';
import { createRandom } from '../simulator/random.js';
import { reconcile } from '../simulator/reconcile/reconcile.js';
import type { SerialEnd } from '../simulator/devices/serial-end.js';
import { VirtualEcr } from '../simulator/devices/virtual-ecr.js';
import { cloudRecords, instantScriptedGateway } from './cloud-kit.js';
import { LiteClient, hostPort } from './lite-mqtt.js';
import type { BenchResult } from './result.js';
import { fmt, scratch, sleep, until } from './harness.js';

/**
 * 4. recovery — two restarts, the scripted gateway with instant success.
 *
 * Box: a box (real agent process on socat ptys, paired through POST /v1/pair) whose journal holds
 * `boxAttempts` sales the cashier cancelled while their payments were in flight — each attempt
 * CANCELLING with its `cancel` still in the outbox (power cut before it left). For half of them the
 * pay had reached the cloud, which charged it (SUCCESS, result never acknowledged); the other half
 * never left the box. The journal is written through device/journal.ts (Journal.persist, the same
 * effects the state machine emits); the landed pays are published as the box over MQTT before the
 * agent starts. Then the agent is started: time until every attempt in its journal is final, and
 * the reconciliation of ledger, cloud and journal (expected: half SUCCESS → sale PAID, half CANCELLED
 * tombstones → sale NOT_PAID, one result line per sale on the cash register).
 *
 * Cloud: a store seeded (through SqliteStore.writeAttempts) with `cloudAttempts` attempts in PAYING
 * with the pay in flight at the crash: 80% had been charged at the gateway (a query finds success),
 * 20% never reached it and their poll deadline passed while the cloud was down (reverse → REVERSED).
 * Then `startCloud`: time until every attempt is final, and reconciliation with the gateway ledger.
 */
export interface RecoveryParams {
  boxAttempts: number;
  cloudAttempts: number;
  seed: string;
}

export const RECOVERY_DEFAULTS: RecoveryParams = { boxAttempts: 1000, cloudAttempts: 10_000, seed: 'bench-recovery' };
export const RECOVERY_SMOKE: RecoveryParams = { boxAttempts: 20, cloudAttempts: 50, seed: 'bench-recovery' };

const FINAL_SQL = `(${FINAL_STATES.map((s) => `'${s}'`).join(',')})`;

export async function recovery(p: RecoveryParams): Promise<BenchResult> {
  const box = await boxRecovery(p);
  const cloud = await cloudRecovery(p);
  const boxS = box.finalMs / 1000;
  const cloudS = cloud.finalMs / 1000;
  return {
    name: 'recovery',
    params: { ...p },
    figures: {
      'box: attempts': p.boxAttempts,
      'box: spawn → ready ms': Math.round(box.readyMs),
      'box: spawn → cloud link up ms': Math.round(box.onlineMs),
      'box: spawn → all final s': round2(boxS),
      'box: link up → all final s': round2((box.finalMs - box.onlineMs) / 1000),
      'box: ECR result lines': box.ecrResults,
      'box: reconciled': box.reconciled,
      'cloud: attempts': p.cloudAttempts,
      'cloud: start → ready (resumed) s': round2(cloud.readyMs / 1000),
      'cloud: start → all final s': round2(cloudS),
      'cloud: reconciled': cloud.reconciled,
    },
    targets: [
      { what: `${p.boxAttempts} box attempts final`, target: '< 10 s', actual: `${fmt(boxS)} s`, met: boxS < 10 },
      { what: `${p.cloudAttempts} cloud attempts resumed and final`, target: '< 60 s', actual: `${fmt(cloudS)} s`, met: cloudS < 60 },
      { what: 'reconciliation', target: 'ok', actual: box.reconciled && cloud.reconciled ? 'ok' : `box ${box.reconciled}, cloud ${cloud.reconciled}`, met: box.reconciled && cloud.reconciled },
    ],
    raw: { box, cloud },
  };
}

// ── the box ─────────────────────────────────────────────────────────────────────────────────────

async function boxRecovery(p: RecoveryParams) {
  const tmp = scratch('recovery-box');
  const random = createRandom(`${p.seed}/box`);
  const gateway = instantScriptedGateway(p.seed);
  let cloud: RunningCloud | undefined;
  let agent: PartProcess | undefined;
  const ptys: PtyPair[] = [];
  const ends: SerialEnd[] = [];
  try {
    cloud = await startCloud({ gateway, dbPath: path.join(tmp.dir, 'cloud.db'), mqttPort: 0, httpPort: 0, metricsPort: 0, config: { logLevel: 'warn' }, logger: createLogger('warn') });
    const dataDir = path.join(tmp.dir, 'box');
    await ensureMerchant(cloud.store, 'M-BENCH');
    const { code } = await createPairingCode({ store: cloud.store, clock: systemClock, codeTtlS: 600 }, 'M-BENCH', 'S-1');
    const { deviceId } = await pairBox({ code, cloudUrl: cloud.httpUrl, dataDir, hardwareId: 'bench-recovery-box' });

    // The journal a power cut left behind.
    const journal = Journal.open(dataDir);
    const creds = journal.credentials()!;
    const now = Date.now() - 5_000;
    const landed: { outTradeNo: string; saleId: string; saleRef: string; amount: number }[] = [];
    journal.transaction(() => {
      for (let i = 1; i <= p.boxAttempts; i++) {
        const saleId = `${deviceId}-s${i}`;
        const outTradeNo = `${deviceId}-${i}`;
        const ref = `RC-${i}`;
        const amount = random.int(1, 99_999);
        const sale: Sale = { saleId, ref, amount, currency: 'CNY', state: 'CANCELLING', endReason: 'CASHIER_CANCEL', paidBy: null, createdAt: now, updatedAt: now, deadline: now + 300_000, reported: false };
        const attempt: BoxAttempt = { outTradeNo, saleId, saleRef: ref, amount, currency: 'CNY', wallet: 'wechat', state: 'CANCELLING', reason: null, createdAt: now, updatedAt: now, deadline: now + 60_000, nextCheckAt: now };
        journal.persist({ kind: 'saveSale', sale, from: null, cause: 'bench: ecr sale, then cashier cancel' });
        journal.persist({ kind: 'saveAttempt', attempt, from: null, cause: 'bench: scanned, then cancelled' });
        const cancel = CancelMessage.parse({ v: PROTOCOL_VERSION, id: `cancel-${outTradeNo}`, ts: now, outTradeNo, saleId, amount, currency: 'CNY', reason: 'CASHIER_CANCEL' });
        journal.sql('INSERT INTO outbox (kind, out_trade_no, payload, created_at) VALUES (?, ?, ?, ?)').run('cancel', outTradeNo, JSON.stringify(cancel), now);
        if (i % 2 === 1) landed.push({ outTradeNo, saleId, saleRef: ref, amount });
      }
      journal.persist({ kind: 'saveSeq', nextAttemptSeq: p.boxAttempts + 1, nextSaleSeq: p.boxAttempts + 1 });
    });
    journal.close();

    // The pays that did reach the cloud before the power cut: charged, results never acknowledged.
    const { host, port } = hostPort(cloud.mqttUrl);
    const asBox = new LiteClient({ host, port, clientId: deviceId, username: deviceId, password: creds.secret, clean: true });
    await asBox.connect();
    await asBox.subscribe(deviceDownFilter(deviceId));
    const results = new Set<string>();
    asBox.onMessage = (topic, payload) => {
      if (topic === downTopic(deviceId, 'result')) results.add((JSON.parse(payload.toString()) as ResultMessage).outTradeNo);
    };
    for (const l of landed) {
      const pay = { v: 1, id: `pay-${l.outTradeNo}`, ts: now, outTradeNo: l.outTradeNo, saleId: l.saleId, saleRef: l.saleRef, amount: l.amount, currency: 'CNY', code: validCode(random, 'wechat'), wallet: 'wechat' };
      await asBox.publish(upTopic(deviceId, 'pay'), JSON.stringify(pay), 1);
    }
    await until(() => (results.size === landed.length ? true : undefined), 60_000, 20, 'the landed pays to be charged');
    await asBox.end();

    // Restart the box.
    const scanner = await PtyPair.create({ dir: tmp.dir, names: ['scanner-box', 'scanner-sim'] });
    const ecrPty = await PtyPair.create({ dir: tmp.dir, names: ['ecr-box', 'ecr-sim'] });
    ptys.push(scanner, ecrPty);
    const [scannerEnd, ecrEnd] = await Promise.all([scanner.openEnd('b'), ecrPty.openEnd('b')]);
    ends.push(scannerEnd, ecrEnd);
    const ecr = new VirtualEcr({ end: ecrEnd });
    const t0 = performance.now();
    agent = PartProcess.start('device', ['start', '--scanner', scanner.a, '--ecr', ecrPty.a, '--data', dataDir], path.join(tmp.dir, 'device.log'));
    let readyMs = NaN;
    let onlineMs = NaN;
    void agent.waitForMsg('ready', 60_000).then(() => (readyMs = performance.now() - t0), () => undefined);
    void agent.waitForMsg('cloud link up; querying every attempt in flight', 60_000).then(() => (onlineMs = performance.now() - t0), () => undefined);
    const reader = await until(() => {
      try {
        return Journal.open(dataDir, { readonly: true });
      } catch {
        return undefined;
      }
    }, 30_000, 20, 'the journal to open read-only');
    let finalMs: number;
    try {
      await until(() => (reader.pendingAttempts() === 0 ? true : undefined), 120_000, 10, 'every box attempt to be final');
      finalMs = performance.now() - t0;
    } finally {
      reader.close();
    }
    await until(() => (ecr.results().length >= p.boxAttempts ? true : undefined), 30_000, 20, 'one result line per sale').catch(() => undefined);

    const check = async () => {
      const j = Journal.open(dataDir, { readonly: true });
      try {
        const device = j.attemptRecords();
        const cloudSide = cloudRecords(await cloud!.store.listAttempts({ deviceId }));
        return { report: reconcile({ ledger: gateway.ledger.entries(), cloud: cloudSide, devices: [device] }), device, cloudSide };
      } finally {
        j.close();
      }
    };
    let r = await check();
    // The cloud's write of an ack may trail the box by a moment; never the money state.
    for (let i = 0; i < 20 && !r.report.ok; i++) {
      await sleep(100);
      r = await check();
    }
    const byState = (list: { state: string }[]) => list.reduce<Record<string, number>>((m, a) => ((m[a.state] = (m[a.state] ?? 0) + 1), m), {});
    const ecrResults = ecr.results();
    return {
      readyMs,
      onlineMs,
      finalMs,
      ecrResults: ecrResults.length,
      ecrPaid: ecrResults.filter((x) => x.outcome === 'PAID').length,
      deviceStates: byState(r.device),
      cloudStates: byState(r.cloudSide),
      reconciled: r.report.ok && ecrResults.length === p.boxAttempts,
      mismatches: r.report.mismatches.slice(0, 10),
    };
  } finally {
    await agent?.stop();
    await Promise.all(ends.map((e) => e.close()));
    await Promise.all(ptys.map((x) => x.close()));
    await cloud?.close();
    gateway.stop();
    tmp.remove();
  }
}

// ── the cloud ───────────────────────────────────────────────────────────────────────────────────

async function cloudRecovery(p: RecoveryParams) {
  const tmp = scratch('recovery-cloud');
  const random = createRandom(`${p.seed}/cloud`);
  const gateway = instantScriptedGateway(p.seed);
  const dbPath = path.join(tmp.dir, 'cloud.db');
  let cloud: RunningCloud | undefined;
  let db: Database.Database | undefined;
  try {
    const store = new SqliteStore(dbPath);
    const now = Date.now();
    const signal = new AbortController().signal;
    let batch: Parameters<SqliteStore['writeAttempts']>[0] = [];
    let landed = 0;
    for (let i = 1; i <= p.cloudAttempts; i++) {
      const deviceId = `sbBENCH${String(i % 100).padStart(5, '0')}`;
      const outTradeNo = `${deviceId}-${i}`;
      const amount = random.int(1, 99_999);
      const charged = i % 5 !== 0;
      // Charged: the pay was answered at the gateway just before the crash. Not charged: it never got
      // there, and the cloud was down past the attempt's poll deadline.
      const payAt = charged ? now - 1_000 : now - 120_000;
      if (charged) {
        landed++;
        await gateway.pay({ outTradeNo, amount, currency: 'CNY', code: validCode(random, 'wechat'), wallet: 'wechat', merchant: 'M1', channel: 'wechat' }, { signal });
      }
      const attempt: Attempt = {
        outTradeNo, deviceId, saleId: `${deviceId}-s${i}`, saleRef: `R${i}`, amount, currency: 'CNY', wallet: 'wechat',
        state: 'PAYING', reason: null, createdAt: payAt, updatedAt: payAt, payAt, deadlineAt: payAt + 45_000, nextAt: null,
        step: 'pay', inFlight: 'pay', callSeq: 1, tries: 0, cancelReason: null, gatewayTradeNo: null, ackedState: null, version: 0,
        merchantId: 'M1', channel: null, charged: null, walletPaidAt: null, buyerPaid: null, discount: null, flag: null,
      };
      batch.push({ attempt, expectedVersion: 0, event: 'pay', fromState: null, note: 'bench: recorded; pay sent; then the cloud died', claimSale: false });
      if (batch.length === 1000 || i === p.cloudAttempts) {
        await store.writeAttempts(batch);
        batch = [];
      }
    }
    await store.close();

    const t0 = performance.now();
    // The instant gateway has no rate limit to spare: no resume spread, no per-wallet bound (all
    // 10,000 are WeChat), so the figure is the cloud's own recovery, not a wallet's pacing.
    const limits = { resumeSpreadMs: 0, gatewayConcurrency: p.cloudAttempts };
    cloud = await startCloud({ gateway, dbPath, mqttPort: 0, httpPort: 0, metricsPort: 0, config: { logLevel: 'warn', ...limits }, logger: createLogger('warn') });
    const readyMs = performance.now() - t0;
    db = new Database(dbPath, { readonly: true, fileMustExist: true });
    const open = db.prepare(`SELECT count(*) AS n FROM attempts WHERE state NOT IN ${FINAL_SQL}`).pluck();
    await until(() => ((open.get() as number) === 0 ? true : undefined), 300_000, 20, 'every cloud attempt to be final');
    const finalMs = performance.now() - t0;
    const records = cloudRecords(await cloud.store.listAttempts({}));
    const report = reconcile({ ledger: gateway.ledger.entries(), cloud: records, devices: [] });
    const states = records.reduce<Record<string, number>>((m, a) => ((m[a.state] = (m[a.state] ?? 0) + 1), m), {});
    const expected = states.SUCCESS === landed && (states.REVERSED ?? 0) === p.cloudAttempts - landed;
    return { readyMs, finalMs, states, charged: landed, reconciled: report.ok && expected, mismatches: report.mismatches.slice(0, 10) };
  } finally {
    db?.close();
    await cloud?.close();
    gateway.stop();
    tmp.remove();
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
