import readline from 'node:readline';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { isProtocolError, systemClock, WALLETS, type Wallet } from '../../protocol/index.js';
import { BEHAVIOUR_INFO, BEHAVIOURS, type Behaviour } from '../counter/behaviours.js';
import { Counter } from '../counter/counter.js';

interface CounterFlags {
  auto?: Behaviour;
  wallet: Wallet;
  fast?: boolean;
  ecrLink?: string;
  scanAfterMs: number;
  seed: string;
  keep?: boolean;
}

const HELP_AFTER = `
Customer behaviours (menu numbers, --auto names):
${BEHAVIOURS.map((b, i) => `  ${String(i + 1).padStart(2)} ${b.padEnd(13)} ${BEHAVIOUR_INFO[b].customer}\n${' '.repeat(19)}POS sees: ${BEHAVIOUR_INFO[b].register}`).join('\n')}

Your POS talks to the box over the printed port exactly as to a real box (protocol/ECR.md):
sale, cancel, hello and lookup work, and so do refund (of a sale paid here) and totals (the day's
takings) once the box's hello lists them in its capabilities.

Examples:
  scanbox-sim counter                          # menu: pick the customer of each sale
  scanbox-sim counter --auto pays --fast       # every sale paid at once (CI, automated POS tests)
  scanbox-sim counter --ecr-link /tmp/pos-ecr  # the same port path in every run`;

/** `scanbox-sim counter`: a box for a POS vendor's desk; its ECR port is printed, the customer is simulated. */
export function registerCounterCommand(program: Command): void {
  program
    .command('counter')
    .description("a real box, its cloud and a scripted wallet on this machine; prints the box's cash-register (ECR) port for your POS and plays the customer")
    .addOption(new Option('--auto <behaviour>', 'answer every sale with this customer, without a menu').choices(BEHAVIOURS))
    .addOption(new Option('--wallet <wallet>', "the wallet of the customer's codes").choices(WALLETS).default('wechat'))
    .option('--fast', "the demo's timings (a wallet gives up after seconds) instead of the product's own")
    .option('--ecr-link <path>', 'also make this symlink to the ECR port (a path that stays the same across runs; an old symlink there is replaced)')
    .option('--scan-after-ms <ms>', 'how long the customer takes to show the code once the box asks', parseMs, 1_000)
    .option('--seed <seed>', 'seed for the codes the customer shows', 'counter')
    .option('--keep', 'keep the working directory (cloud database, box journal, logs) after stopping')
    .addHelpText('after', HELP_AFTER)
    .action(async (flags: CounterFlags) => {
      process.exitCode = await runCounterCommand(flags);
    });
}

async function runCounterCommand(flags: CounterFlags): Promise<number> {
  const out = (line: string) => console.log(line);
  let counter: Counter;
  try {
    counter = await Counter.start(
      {
        ...(flags.auto ? { auto: flags.auto } : {}),
        wallet: flags.wallet,
        timings: flags.fast ? 'fast' : 'shop',
        seed: flags.seed,
        scanAfterMs: flags.scanAfterMs,
        ...(flags.ecrLink === undefined ? {} : { ecrLink: flags.ecrLink }),
        keep: flags.keep ?? false,
      },
      { out, clock: systemClock },
    );
  } catch (err) {
    console.error(`scanbox-sim counter: ${(err as Error).message}`);
    // A rig that failed half-way may hold servers open; its socat children are killed on exit.
    process.exit(isProtocolError(err) ? 2 : 1);
  }
  // Without --auto the vendor answers on stdin; with it stdin is left alone (CI may not have one).
  const input = flags.auto ? undefined : readline.createInterface({ input: process.stdin, terminal: false });
  input?.on('line', (line) => counter.choose(line));
  input?.on('close', () => counter.inputClosed());
  const stop = () => void counter.stop();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const code = await counter.done;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  if (input) {
    input.close();
    // A pipe or a terminal left open would keep the process alive after everything stopped.
    process.stdin.destroy();
  }
  return code;
}

function parseMs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`--scan-after-ms must be a whole number of milliseconds ≥ 0, got ${value}`);
  return n;
}
