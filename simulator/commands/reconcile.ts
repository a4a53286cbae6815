import type { Command } from 'commander';
import { reconcile } from '../reconcile/reconcile.js';
import { InputError, loadCloudAttempts, loadDeviceAttempts, loadLedger } from '../reconcile/reconcile-inputs.js';
import { formatReconcileReport } from '../reconcile/reconcile-table.js';

/**
 * `scanbox-sim reconcile --ledger FILE_OR_URL --cloud FILE --device FILE [--device FILE ...]`
 * Exit 0: everything agrees; 1: mismatches (listed); 2: an input could not be read.
 */
export function registerReconcileCommand(program: Command): void {
  program
    .command('reconcile')
    .description('check that the gateway ledger, the cloud and every box agree on every payment')
    .requiredOption('--ledger <fileOrUrl>', 'gateway ledger: a JSON file, or the gateway simulator URL')
    .requiredOption('--cloud <file>', 'output of `scanbox-cloud attempts --json`')
    .option('--device <file>', 'output of `scanbox-device attempts --json` (repeat per box)', collect, [] as string[])
    .option('--json', 'print the report as JSON instead of a table')
    .option('--max-rows <n>', 'show every attempt up to this many, else only offending ones', (v) => Number.parseInt(v, 10), 50)
    .action(async (opts: { ledger: string; cloud: string; device: string[]; json?: boolean; maxRows: number }) => {
      try {
        const [ledger, cloud, devices] = await Promise.all([loadLedger(opts.ledger), loadCloudAttempts(opts.cloud), Promise.all(opts.device.map(loadDeviceAttempts))]);
        const report = reconcile({ ledger, cloud, devices });
        console.log(opts.json ? JSON.stringify(report, null, 2) : formatReconcileReport(report, { maxRows: opts.maxRows }));
        process.exitCode = report.ok ? 0 : 1;
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        console.error(`scanbox-sim reconcile: ${err.message}`);
        process.exitCode = 2;
      }
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
