import { Command } from 'commander';
import { registerChaosCommand } from './commands/chaos.js';
import { registerCounterCommand } from './commands/counter.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerFleetCommand } from './commands/fleet.js';
import { registerGatewayCommand } from './commands/gateway.js';
import { registerReconcileCommand } from './commands/reconcile.js';

/** The `scanbox-sim` command tree; each subcommand lives in commands/<name>.ts (fleet, demo, chaos and counter join here). */
export function buildProgram(): Command {
  const program = new Command('scanbox-sim').description(
    'the scanbox simulator: virtual scanner and cash register, scripted gateway, reconciliation, fleet and demo',
  );
  registerGatewayCommand(program);
  registerReconcileCommand(program);
  registerDemoCommand(program);
  registerChaosCommand(program);
  registerFleetCommand(program);
  registerCounterCommand(program);
  return program;
}
