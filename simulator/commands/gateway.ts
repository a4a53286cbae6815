import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { pino } from 'pino';
import { describeIssues } from '../../protocol/index.js';
import { ScriptedGateway } from '../gateway/scripted-gateway.js';
import { startGatewayServer } from '../gateway/gateway-server.js';
import { INSTANT, ScenarioMix } from '../gateway/scenario.js';

/** `scanbox-sim gateway --port N [--mix FILE] [--seed S] [--instant]`: the scripted gateway over HTTP. */
export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description('run the scripted payment gateway as an HTTP service on loopback')
    .option('--port <n>', 'port (0 picks a free one)', (v) => Number.parseInt(v, 10), 0)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--mix <file>', 'scenario mix JSON ({"scenarios":[{"weight":..,"scenario":{..}}],"latency":{..}})')
    .option('--seed <seed>', 'seed for scenario picks and latencies', '1')
    .option('--instant', 'answer without any latency (benchmarks)')
    .action(async (opts: { port: number; host: string; mix?: string; seed: string; instant?: boolean }) => {
      const logger = pino({ name: 'scanbox-sim-gateway' });
      const mix = opts.mix ? await readMix(opts.mix) : undefined;
      const gateway = new ScriptedGateway({ seed: opts.seed, mix, latency: opts.instant ? INSTANT : undefined, logger });
      const server = await startGatewayServer({ gateway, host: opts.host, port: opts.port, logger });
      logger.info({ url: server.url, port: server.port, seed: opts.seed }, 'ready');
      const shutdown = async () => {
        gateway.stop();
        await server.close();
        logger.info('stopped');
      };
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
    });
}

async function readMix(file: string): Promise<ScenarioMix> {
  const fail = (why: string): never => {
    console.error(`scanbox-sim gateway: ${file}: ${why}`);
    process.exit(2);
  };
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    fail(`cannot read a JSON scenario mix (${(err as Error).message})`);
  }
  const parsed = ScenarioMix.safeParse(json);
  return parsed.success ? parsed.data : fail(`not a valid scenario mix: ${describeIssues(parsed.error)}`);
}
