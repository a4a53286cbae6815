import { Command } from 'commander';

const program = new Command('scanbox-device').description('the scanbox box agent: scanner and cash-register serial links, durable journal, MQTT link');

await program.parseAsync(process.argv);
