import { Command } from 'commander';

const program = new Command('scanbox-cloud').description('the scanbox cloud: embedded MQTT broker, pairing API, transaction service, fleet registry');

await program.parseAsync(process.argv);
