import { Command } from 'commander';

const program = new Command('scanbox-sim').description('the scanbox simulator: virtual scanner and cash register, scripted gateway, reconciliation, fleet and demo');

await program.parseAsync(process.argv);
