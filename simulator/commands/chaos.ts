import { Option, type Command } from 'commander';
import { runChaos } from '../chaos/chaos.js';
import type { WalletMode } from '../rig.js';
import { CLOUD_STACKS, checkWorkers, DEFAULT_SCALE_OUT_WORKERS, MAX_WORKERS, type CloudStackKind } from '../stack/cloud-stack.js';
import { channelsOption, walletsOption } from './wallets-option.js';

/**
 * `scanbox-sim chaos --boxes N --minutes M --seed S [--wallets real-formats] [--channels 2]
 * [--stack mosquitto-postgres [--workers 3]] [--keep] [--settle-s S]`: exit 0 only when the money holds.
 */
export function registerChaosCommand(program: Command): void {
  program
    .command('chaos')
    .description('cloud + scripted gateway + N boxes under continuous sales while seeded faults hit them; then settle and reconcile')
    .option('--boxes <n>', 'boxes (each its own process on pseudo-terminals)', (v) => Number.parseInt(v, 10), 3)
    .option('--minutes <m>', 'how long to sell and inject faults (fractions allowed)', (v) => Number.parseFloat(v), 1)
    .option('--seed <seed>', 'seed of the fault schedule, the sales and the gateway scenarios', '1')
    .option('--settle-s <s>', 'upper bound of the settle phase after injecting stops', (v) => Number.parseInt(v, 10), 90)
    .option('--keep', 'keep the working directory (cloud.log, box-N/device.log, databases) even when the run passes')
    .addOption(walletsOption())
    .addOption(channelsOption())
    .addOption(
      new Option('--stack <stack>', 'embedded-sqlite: one cloud process, its own broker and a SQLite file; mosquitto-postgres: --workers cloud processes on a throwaway Mosquitto (dynamic security) and PostgreSQL, a cloud kill hitting one of them')
        .choices(CLOUD_STACKS)
        .default('embedded-sqlite'),
    )
    .option('--workers <n>', `cloud workers on the mosquitto-postgres stack (1–${MAX_WORKERS}; default ${DEFAULT_SCALE_OUT_WORKERS})`, (v) => Number(v))
    .action(async (opts: { boxes: number; minutes: number; seed: string; settleS: number; keep?: boolean; wallets: WalletMode; channels: 1 | 2; stack: CloudStackKind; workers?: number }) => {
      if (!Number.isInteger(opts.boxes) || opts.boxes < 1 || opts.boxes > 200) {
        console.error('scanbox-sim chaos: --boxes must be an integer from 1 to 200');
        process.exitCode = 2;
        return;
      }
      if (!(opts.minutes > 0) || opts.minutes > 24 * 60) {
        console.error('scanbox-sim chaos: --minutes must be > 0 (and at most a day)');
        process.exitCode = 2;
        return;
      }
      try {
        checkWorkers(opts.stack, opts.workers);
      } catch (err) {
        console.error(`scanbox-sim chaos: --workers: ${(err as Error).message}`);
        process.exitCode = 2;
        return;
      }
      const result = await runChaos({
        boxes: opts.boxes,
        minutes: opts.minutes,
        seed: opts.seed,
        settleMs: opts.settleS * 1000,
        keep: opts.keep ?? false,
        wallets: opts.wallets,
        channelsPerWallet: opts.channels,
        stack: opts.stack,
        ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
      });
      process.exitCode = result.ok ? 0 : 1;
    });
}
