import { InvalidArgumentError, Option, type Command } from 'commander';
import { runDemo } from '../demo.js';
import { SERIAL_MODE_REQUESTS, type SerialModeRequest } from '../devices/serial-line.js';
import type { WalletMode } from '../rig.js';
import { walletsOption } from './wallets-option.js';

/** `scanbox-sim demo [--seed S] [--keep] [--serial auto|pty|mock] [--chapters N]`: exit 0 only when the reconciliation holds. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('cloud + one box + simulated scanner, cash register and gateway: a short day of sales, then reconciliation')
    .option('--seed <seed>', 'seed for codes and scenarios', 'demo')
    .option('--keep', 'keep the working directory (databases, journals, logs) for a look afterwards')
    .addOption(walletsOption())
    .addOption(
      new Option('--serial <mode>', "the box's scanner and cash-register lines: socat pseudo-terminals (pty), serialport's mock binding (mock), or pty when socat is installed (auto)")
        .choices(SERIAL_MODE_REQUESTS)
        .default('auto'),
    )
    .addOption(new Option('--chapters <n>', 'only the first n chapters').argParser(positiveInt))
    .action(async (opts: { seed: string; keep?: boolean; wallets: WalletMode; serial: SerialModeRequest; chapters?: number }) => {
      const report = await runDemo({ seed: opts.seed, keep: opts.keep ?? false, wallets: opts.wallets, serial: opts.serial, ...(opts.chapters ? { chapters: opts.chapters } : {}) });
      process.exitCode = report.ok ? 0 : 1;
    });
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number of at least 1');
  return n;
}
