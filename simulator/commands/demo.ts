import type { Command } from 'commander';
import { runDemo } from '../demo.js';
import type { WalletMode } from '../rig.js';
import { walletsOption } from './wallets-option.js';

/** `scanbox-sim demo [--seed S] [--keep]`: exit 0 only when the reconciliation holds. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('cloud + one box + simulated scanner, cash register and gateway: a short day of sales, then reconciliation')
    .option('--seed <seed>', 'seed for codes and scenarios', 'demo')
    .option('--keep', 'keep the working directory (databases, journals, logs) for a look afterwards')
    .addOption(walletsOption())
    .action(async (opts: { seed: string; keep?: boolean; wallets: WalletMode }) => {
      const report = await runDemo({ seed: opts.seed, keep: opts.keep ?? false, wallets: opts.wallets });
      process.exitCode = report.ok ? 0 : 1;
    });
}
