import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { loadMix, runFleet, type OutagePlan } from '../fleet/fleet.js';
import type { WalletMode } from '../rig.js';
import { channelsOption, walletsOption } from './wallets-option.js';

/** `scanbox-sim fleet --boxes N --sales M [--mix FILE] [--seed S] [--wallets real-formats] [--channels 2 --outage AT:FOR[:SHARE]] [--keep]`: exit 0 only when reconciliation holds. */
export function registerFleetCommand(program: Command): void {
  program
    .command('fleet')
    .description('N boxes paired through the real pairing API ring up M sales each with the scenario mix, then reconcile')
    .option('--boxes <n>', 'boxes (each its own process on its own pseudo-terminals)', toInt, 20)
    .option('--sales <n>', 'sales per box', toInt, 50)
    .option('--mix <file>', 'scenario mix JSON (simulator/README.md); default: mostly success with every abnormal flow')
    .option('--seed <seed>', 'seed for codes, amounts and scenarios', 'fleet')
    .option('--keep', 'keep the working directory (databases, journals, logs)')
    .addOption(walletsOption())
    .addOption(channelsOption())
    .option('--outage <at:for[:share]>', 'the primary channels refuse a share (default 1) of their calls from AT for FOR seconds (needs --channels 2)', parseOutage)
    .action(async (o: { boxes: number; sales: number; mix?: string; seed: string; keep?: boolean; wallets: WalletMode; channels: 1 | 2; outage?: OutagePlan }) => {
      const summary = await runFleet({
        boxes: o.boxes,
        sales: o.sales,
        seed: o.seed,
        ...(o.mix ? { mix: loadMix(o.mix) } : {}),
        keep: o.keep ?? false,
        wallets: o.wallets,
        channelsPerWallet: o.channels,
        ...(o.outage ? { outage: o.outage } : {}),
        progress: progressBar(),
      });
      process.exitCode = summary.report.ok ? 0 : 1;
    });
}

function parseOutage(v: string): OutagePlan {
  const [atS, forS, share = 1] = v.split(':').map(Number);
  if (!(atS! >= 0 && forS! > 0 && share >= 0 && share <= 1)) throw new InvalidArgumentError('--outage is AT:FOR[:SHARE], seconds ≥ 0, > 0, and a share within [0, 1]');
  return { atS: atS!, forS: forS!, share };
}

function toInt(v: string): number {
  const n = Number.parseInt(v, 10);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`expected a positive whole number, got "${v}"`);
  return n;
}

/** A one-line bar on a terminal; every 10% as a plain line when stderr is a file or pipe. */
function progressBar(): (done: number, total: number, elapsedS: number) => void {
  let lastTenth = -1;
  return (done, total, elapsedS) => {
    const rate = (done / Math.max(elapsedS, 0.001)).toFixed(1);
    if (process.stderr.isTTY) {
      const width = 30;
      const filled = Math.round((done / total) * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} sales  ${rate}/s${done === total ? '\n' : ''}`);
      return;
    }
    const tenth = Math.floor((done / total) * 10);
    if (tenth === lastTenth) return;
    lastTenth = tenth;
    process.stderr.write(`${done}/${total} sales  ${rate}/s\n`);
  };
}
