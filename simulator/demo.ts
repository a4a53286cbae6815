import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatAmount, type EcrOutbound, type Wallet } from '../protocol/index.js';
import { validCode } from './devices/codes.js';
import { chooseSerialMode, type SerialModeRequest } from './devices/serial-line.js';
import { createRandom } from './random.js';
import { reconcile, type ReconcileReport } from './reconcile/reconcile.js';
import { formatReconcileReport } from './reconcile/reconcile-table.js';
import { FAST_CLOUD_CONFIG, FAST_DEVICE_CONFIG, Rig, type Box, type WalletMode } from './rig.js';
import type { ScenarioInput } from './gateway/scenario.js';

/**
 * `npm run demo`: one cloud, one box, a short day at the counter with every abnormal flow the
 * product exists for, then the reconciliation of gateway ledger, cloud and box. On the rig's
 * shortened timings (seconds instead of a minute), so the story fits in well under a minute.
 */
interface Chapter {
  title: string;
  /** The cash register's reference of this chapter's sale. */
  ref: string;
  run(ctx: Ctx): Promise<void>;
}

interface Ctx {
  rig: Rig;
  box: Box;
  /** A line printed under the chapter's title. */
  note(line: string): void;
  /** A fresh code for `wallet`, bound to `scenario` at the gateway. */
  code(wallet: Wallet, scenario: ScenarioInput): string;
}

const SECOND = 1_000;

const CHAPTERS: Chapter[] = [
  {
    ref: 'R-001',
    title: 'A plain WeChat payment (the customer has a 0.34 coupon: the receipt shows it)',
    async run({ box, code }) {
      await sale(box, 'R-001', 1234);
      await box.scanner.scan(code('wechat', { name: 'success', discount: 34 }));
      await box.ecr.resultFor('R-001', 10 * SECOND);
    },
  },
  {
    ref: 'R-002',
    title: 'The customer must type the password (USERPAYING), then pays',
    async run({ box, code }) {
      await sale(box, 'R-002', 5600);
      await box.scanner.scan(code('alipay', { name: 'user_paying', confirmAfterMs: 2_000 }));
      await box.ecr.waitFor((m) => m.type === 'progress' && m.ref === 'R-002' && m.stage === 'WAITING_PASSWORD', 10 * SECOND);
      await box.ecr.resultFor('R-002', 15 * SECOND);
    },
  },
  {
    ref: 'R-003',
    title: 'The gateway never answers: the cloud reverses, the cashier closes the sale unpaid',
    async run({ box, code }) {
      await sale(box, 'R-003', 880);
      const mark = box.ecr.mark();
      await box.scanner.scan(code('wechat', { name: 'hang', charged: false }));
      await box.ecr.waitFor((m) => m.type === 'progress' && m.ref === 'R-003' && m.stage === 'ATTEMPT_FAILED', 20 * SECOND, mark);
      await box.ecr.cancel('R-003');
      await box.ecr.resultFor('R-003', 15 * SECOND);
    },
  },
  {
    ref: 'R-004',
    title: 'The first code is charged late, after its reverse; the customer pays again: one is refunded',
    async run({ box, code }) {
      await sale(box, 'R-004', 2300);
      const mark = box.ecr.mark();
      await box.scanner.scan(code('wechat', { name: 'late_success', landAfterMs: 200 }));
      await box.ecr.waitFor((m) => m.type === 'progress' && m.ref === 'R-004' && m.stage === 'ATTEMPT_FAILED', 20 * SECOND, mark);
      await box.scanner.scan(code('alipay', { name: 'success' }));
      await box.ecr.resultFor('R-004', 10 * SECOND);
    },
  },
  {
    ref: 'R-005',
    title: 'The cashier cancels while the customer is still deciding',
    async run({ box, code }) {
      await sale(box, 'R-005', 9900);
      await box.scanner.scan(code('unionpay', { name: 'user_gives_up', giveUpAfterMs: 60_000 }));
      await box.ecr.waitFor((m) => m.type === 'progress' && m.ref === 'R-005' && m.stage === 'WAITING_PASSWORD', 10 * SECOND);
      await box.ecr.cancel('R-005');
      await box.ecr.resultFor('R-005', 15 * SECOND);
    },
  },
  {
    ref: 'R-006',
    title: 'The shop Wi-Fi drops: the box refuses the sale at once; back online the customer pays',
    async run({ rig, box, code }) {
      const offline = box.proc.mark();
      rig.proxy.cut(box.deviceId, 2_500);
      await box.proc.waitForMsg('cloud link closed; reconnecting', 10 * SECOND, offline);
      const mark = box.ecr.mark();
      await box.ecr.sale('R-006', 1500);
      await box.ecr.waitFor((m) => m.type === 'error' && m.code === 'OFFLINE', 10 * SECOND, mark);
      await box.waitOnline(15 * SECOND, offline);
      await sale(box, 'R-006', 1500);
      await box.scanner.scan(code('wechat', { name: 'success' }));
      await box.ecr.resultFor('R-006', 10 * SECOND);
    },
  },
  {
    ref: 'R-007',
    title: 'The wallet charges 13 fen short: never PAID — the register hears it at once, the charge is undone and flagged',
    async run({ rig, box, code }) {
      await sale(box, 'R-007', 4200);
      await box.scanner.scan(code('alipay', { name: 'success', chargeDelta: -13 }));
      const result = await box.ecr.resultFor('R-007', 10 * SECOND);
      // The register is told at once; the undo follows at the wallet's pace. The chapter ends when it is done.
      if (result.outTradeNo) await rig.waitUndone(result.outTradeNo, 20 * SECOND);
    },
  },
  {
    ref: 'R-008',
    title: "The primary WeChat channel goes down: its breaker opens, the next sale goes through the backup, and payments come back once it heals",
    async run({ rig, box, code, note }) {
      const primaries = rig.primaryChannels();
      const marks = rig.logMarks();
      primaries.forEach((c) => rig.outage(c, 1));
      await sale(box, 'R-008', 3000);
      await box.scanner.scan(code('wechat', { name: 'success' }));
      await rig.waitChannelTransition(primaries[0]!, 'open', marks, 20 * SECOND);
      note(`${primaries[0]} breaker OPEN after its calls failed; the cashier cancels R-008 (undone once the channel is back)`);
      await box.ecr.cancel('R-008');
      await sale(box, 'R-009', 3000);
      await box.scanner.scan(code('wechat', { name: 'success' }));
      await box.ecr.resultFor('R-009', 10 * SECOND);
      note(`R-009 went through ${await channelOf(rig, 'R-009')}`);
      primaries.forEach((c) => rig.outage(c, 0));
      await box.ecr.resultFor('R-008', 30 * SECOND);
      await until(async () => (await rig.channelStates())[primaries[0]!] !== 'open', 20 * SECOND);
      await sale(box, 'R-010', 3000);
      await box.scanner.scan(code('wechat', { name: 'success' }));
      await box.ecr.resultFor('R-010', 10 * SECOND);
      note(`healed: R-010 probed ${await channelOf(rig, 'R-010')}, which is ${(await rig.channelStates())[primaries[0]!]} again`);
    },
  },
  {
    // Refunds show no screen: no sale's screens belong under this chapter.
    ref: 'RF-001',
    title: 'The customer brings part of R-001 back, then the rest: two partial refunds from the register; one fen more is refused at the box',
    async run({ box }) {
      for (const [refundRef, amount] of [['RF-001-1', 500], ['RF-001-2', 734]] as const) {
        await box.ecr.refund({ ref: 'R-001', refundRef, amount });
        const done = await box.ecr.refundResultFor(refundRef, 15 * SECOND);
        if (done.outcome !== 'REFUNDED') throw new Error(`refund ${refundRef} ended ${done.outcome} (${done.reason ?? 'no reason'})`);
      }
      const mark = box.ecr.mark();
      await box.ecr.refund({ ref: 'R-001', refundRef: 'RF-001-3', amount: 1 });
      await box.ecr.waitFor((m) => m.type === 'error' && m.code === 'REFUND_EXCEEDS_REMAINING', 5 * SECOND, mark);
    },
  },
];

/** The channel the paid attempt of a sale went through, from the cloud's records. */
async function channelOf(rig: Rig, ref: string): Promise<string> {
  const { cloud, devices } = await rig.snapshot();
  const outTradeNos = new Set(devices.flat().filter((d) => d.saleRef === ref).map((d) => d.outTradeNo));
  const paid = cloud.find((a) => outTradeNos.has(a.outTradeNo) && a.state === 'SUCCESS');
  return paid?.channel ?? '(not paid)';
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`demo: condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function sale(box: Box, ref: string, amount: number): Promise<void> {
  const mark = box.ecr.mark();
  await box.ecr.sale(ref, amount);
  await box.ecr.waitFor((m) => m.type === 'progress' && m.ref === ref && m.stage === 'WAITING_CODE', 10 * SECOND, mark);
}

function describeEcr(m: EcrOutbound): string {
  switch (m.type) {
    case 'progress':
      return `progress ${m.stage}: ${m.message}`;
    case 'result':
      return `RESULT ${m.outcome} ${formatAmount(m.amount, m.currency)}${m.reason ? ` (${m.reason})` : ''}${m.outTradeNo ? ` ${m.outTradeNo}` : ''}${receiptOf(m)}`;
    case 'error':
      return `error ${m.code}: ${m.message}`;
    case 'hello':
      return `hello ${m.firmware} v${m.v ?? 1}: ${m.capabilities.join(' ')}`;
    case 'refund_progress':
      return `refund ${m.refundRef} ${formatAmount(m.amount, m.currency)}: ${m.message}`;
    case 'refund_result':
      return `REFUND ${m.outcome} ${formatAmount(m.amount, m.currency)}${m.reason ? ` (${m.reason})` : ''}${m.remaining !== undefined ? `; ${formatAmount(m.remaining, m.currency)} remains refundable` : ''}`;
    case 'totals':
      return `TOTALS ${m.date}${m.confirmed ? '' : ' (unconfirmed: from the box journal)'}: ${m.wallets.map((w) => `${w.wallet} ${w.paidCount} paid ${formatAmount(w.paidAmount, m.currency)}, ${w.refundCount} refunds ${formatAmount(w.refundAmount, m.currency)}, net ${formatAmount(w.net, m.currency)}`).join('; ') || 'no sales'}`;
  }
}

export interface DemoOptions {
  seed: number | string;
  /** `real-formats`: WeChat and Alipay through the cloud's real adapters and the wire-faithful simulators. */
  wallets?: WalletMode;
  keep?: boolean;
  out?: (line: string) => void;
  /** How the box's serial lines are made: `auto` (pseudo-terminals when socat is installed, else the mock binding), `pty` or `mock`. */
  serial?: SerialModeRequest;
  /** Only the first n chapters (a quick look; the reconciliation still covers every sale made). */
  chapters?: number;
}

export async function runDemo(opts: DemoOptions): Promise<ReconcileReport> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'scanbox-demo-'));
  const random = createRandom(opts.seed);
  out(`scanbox demo — working in ${dir}`);
  const wallets = opts.wallets ?? 'scripted';
  const chapters = CHAPTERS.slice(0, opts.chapters ?? CHAPTERS.length);
  const serial = chooseSerialMode(opts.serial ?? 'auto');
  out(`box serial lines: ${serial.why}`);
  const rig = await Rig.start({ dir, seed: opts.seed, wallets, channelsPerWallet: 2, cloudConfig: FAST_CLOUD_CONFIG, deviceConfig: FAST_DEVICE_CONFIG, serial: serial.mode });
  try {
    out(`cloud up: ${rig.httpUrl} (MQTT through the fault proxy on port ${rig.proxy.port}); gateway simulator at ${rig.gatewayUrl}`);
    if (wallets === 'real-formats') out(`WeChat Pay and Alipay through the cloud's adapters: signed XML / RSA2 over HTTPS to ${rig.walletUrls().join(' and ')}`);
    const box = await rig.addBox('box-1');
    out(`box paired through POST /v1/pair as ${box.deviceId}, connected\n`);
    const notes: string[][] = chapters.map(() => []);
    let current = 0;
    const ctx: Ctx = {
      rig,
      box,
      note: (line) => notes[current]!.push(line),
      code: (wallet, scenario) => {
        const c = validCode(random, wallet);
        rig.gateway.bind(c, scenario);
        return c;
      },
    };
    const marks: Array<{ screens: number; ecr: number; seconds: number }> = [];
    for (const [i, chapter] of chapters.entries()) {
      current = i;
      const started = Date.now();
      marks.push({ screens: box.proc.mark(), ecr: box.ecr.mark(), seconds: 0 });
      await chapter.run(ctx);
      marks[marks.length - 1]!.seconds = (Date.now() - started) / 1000;
    }
    out('letting every attempt settle…\n');
    const snapshot = await rig.settle(30 * SECOND);
    // Closing time: the register asks for the day's takings once everything has settled.
    const totalsMark = box.ecr.mark();
    await box.ecr.totals();
    // Printed after the fact, so each chapter shows its screens even when one lands after the ECR line.
    for (const [i, chapter] of chapters.entries()) {
      const { screens, ecr, seconds } = marks[i]!;
      const next = marks[i + 1];
      out(`${i + 1}. ${chapter.title}  (${seconds.toFixed(1)} s)`);
      for (const n of notes[i]!) out(`     channel: ${n}`);
      for (const sc of dedupe(box.screens(chapter.ref, screens, next?.screens))) out(`     screen: ${sc}`);
      for (const m of box.ecr.received.slice(ecr, next?.ecr ?? totalsMark)) out(`     ECR ← ${describeEcr(m)}`);
    }
    out(`${chapters.length + 1}. Closing time: the register asks for the day's totals`);
    for (const m of box.ecr.received.slice(totalsMark)) out(`     ECR ← ${describeEcr(m)}`);
    const report = reconcile(snapshot);
    out('');
    out(formatReconcileReport(report, { maxRows: 50 }));
    return report;
  } finally {
    await rig.stop();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** What the register can print on the customer's receipt: the wallet's transaction id, and a discount. */
function receiptOf(m: Extract<EcrOutbound, { type: 'result' }>): string {
  if (!m.walletTradeNo) return '';
  return `, wallet transaction ${m.walletTradeNo}${m.discount ? `, discount ${formatAmount(m.discount, m.currency)}` : ''}`;
}

function dedupe(lines: string[]): string[] {
  return lines.filter((l, i) => l !== lines[i - 1]);
}
