import { Command, Option } from 'commander';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { ErrorCode, formatAmount, isProtocolError } from '../protocol/index.js';
import { startAgent } from './agent.js';
import { systemClock } from '../protocol/clock.js';
import { loadConfig, readCaFile } from './config.js';
import { ConsoleDisplay } from './display.js';
import { formatChecks, procJournalHolders, realHttpDate, realStatfs, runDoctor } from './doctor.js';
import { awaitPairingScan } from './pairing-scan.js';
import { Journal } from './journal.js';
import { pairBox } from './pairing.js';
import { openRealSerial } from './serial-port.js';
import { readStatus } from './status.js';

/**
 * `scanbox-device`: start the box agent, pair it, and look into its journal. A known failure prints
 * `scanbox-device: CODE: message` on stderr and exits 1 (2 for a bad config); it never prints a stack
 * to a field engineer, nor a secret to anyone.
 */
const program = new Command('scanbox-device')
  .description('the scanbox box agent: scanner and cash-register serial links, durable journal, MQTT link')
  .showHelpAfterError();

program
  .command('start')
  .description('run the box: open the journal, the scanner and cash-register ports, and the cloud link')
  .requiredOption('--scanner <path>', 'serial port of the payment-code scanner (e.g. /dev/serial/by-id/…)')
  .requiredOption('--ecr <path>', 'serial port of the cash register (JSON lines, see device/README.md)')
  .requiredOption('--data <dir>', 'data directory holding journal.db')
  .option('--config <file>', 'JSON config file (also SCANBOX_DEVICE_* environment variables)')
  .addOption(new Option('--baud-rate <n>', 'scanner baud rate').argParser(Number))
  .option('--ca <file>', "PEM certificate of a private CA the cloud's HTTPS and mqtts:// certificates chain to (config caFile)")
  .option('--wait-for-pairing', 'when not paired yet, wait for a pairing QR scanned with the box scanner instead of exiting')
  .addOption(new Option('--serial <binding>', 'serial binding: "real" ports, or "mock" for a simulated box (serialport\'s mock binding; --scanner and --ecr are then the simulator\'s Unix sockets)').choices(['real', 'mock']).default('real'))
  .action(async (o: { scanner: string; ecr: string; data: string; config?: string; baudRate?: number; ca?: string; waitForPairing?: boolean; serial: 'real' | 'mock' }) => {
    const config = loadConfig({ file: o.config, env: process.env, flags: { scannerPath: o.scanner, ecrPath: o.ecr, dataDir: o.data, baudRate: o.baudRate, caFile: o.ca } });
    // A CA path that cannot be read is a config error now, not after the engineer scanned the QR.
    if (config.caFile) readCaFile(config.caFile);
    const logger = pino({ level: config.logLevel, base: { pid: process.pid } });
    // Loaded only when asked for: a real box never loads the mock binding.
    const openSerial = o.serial === 'mock' ? (await import('./mock-serial-port.js')).openMockSerial : openRealSerial;
    if (o.serial === 'mock') logger.warn({ scanner: config.scannerPath, ecr: config.ecrPath }, "serial ports on serialport's mock binding, their far ends on the simulator's Unix sockets: a simulated box");
    const io = { clock: systemClock, random: Math.random, openSerial, logger };
    if (o.waitForPairing && !readStatus(config.dataDir).paired) {
      logger.info('not paired: waiting for a pairing QR on the scanner');
      await awaitPairingScan(config, { ...io, display: new ConsoleDisplay(logger) });
    }
    // Handlers first: a supervisor may send SIGTERM the moment it reads the ready line.
    // After a cloud `reboot` (75) or `unpair` (76) the agent has stopped cleanly; the supervisor starts it again (commands.ts).
    const starting = startAgent(config, { ...io, connectMqtt: mqtt.connect, exit: (status) => process.exit(status) });
    const shutdown = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      void starting.then((agent) => agent.stop()).then(() => process.exit(0));
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
    await starting;
  });

program
  .command('pair')
  .description("exchange a one-time pairing code for this box's device id and secret (POST /v1/pair)")
  .requiredOption('--code <code>', 'pairing code from `scanbox-cloud pair create`')
  .requiredOption('--cloud <url>', 'cloud address, e.g. https://cloud.example.com (plain http:// only to loopback)')
  .requiredOption('--data <dir>', 'data directory holding journal.db')
  .option('--reset', 'pair again although the box is already paired (its old credentials stop working)')
  .option('--hardware-id <id>', 'hardware id to report (default: one made once and kept in the journal)')
  .option('--ca <file>', "PEM certificate of a private CA the cloud's certificate chains to")
  .option('--insecure', 'allow plain http:// to a host that is not loopback (the device secret then crosses the network unencrypted)')
  .option('--json', 'print the result as JSON')
  .action(async (o: { code: string; cloud: string; data: string; reset?: boolean; hardwareId?: string; ca?: string; insecure?: boolean; json?: boolean }) => {
    const res = await pairBox({
      code: o.code,
      cloudUrl: o.cloud,
      dataDir: o.data,
      reset: o.reset ?? false,
      insecure: o.insecure ?? false,
      warn: (message) => console.error(`scanbox-device: warning: ${message}`),
      ...(o.hardwareId ? { hardwareId: o.hardwareId } : {}),
      ...(o.ca ? { ca: readCaFile(o.ca) } : {}),
    });
    if (o.json) console.log(JSON.stringify(res));
    else console.log(`paired as ${res.deviceId} (merchant ${res.merchantId}, store ${res.storeId}); broker ${res.mqttUrl}`);
  });

program
  .command('status')
  .description('paired or not, online or offline and since when, payments in flight, outbox depth, last contact with the cloud (never the secret)')
  .requiredOption('--data <dir>', 'data directory holding journal.db')
  .option('--json', 'print JSON')
  .action((o: { data: string; json?: boolean }) => {
    const s = readStatus(o.data, { now: Date.now, journalHolders: (path) => procJournalHolders(path) });
    if (o.json) return console.log(JSON.stringify(s));
    const at = (t: number | null) => (t === null ? 'never' : new Date(t).toISOString());
    console.log(s.paired ? `paired as ${s.deviceId} (merchant ${s.merchantId}, store ${s.storeId}), broker ${s.mqttUrl}` : 'not paired');
    const agent = s.agentRunning === null ? 'agent: could not look (run as root or the scanbox user)' : s.agentRunning ? 'agent running' : 'agent NOT running';
    console.log(`${s.online ? 'ONLINE' : 'OFFLINE'}${s.since === null ? '' : ` since ${at(s.since)}`} (${agent})`);
    console.log(`payments in flight: ${s.pendingAttempts}; outbox: ${s.outboxDepth}`);
    console.log(`last contact: ${at(s.lastContact)}`);
  });

program
  .command('register')
  .description('the cash-register line version this box writes (v2 once a register showed it reads v2, kept across restarts)')
  .requiredOption('--data <dir>', 'data directory holding journal.db')
  .option('--forget', 'write v1 lines again from the agent\'s next start: for a register integrated before v2 that replaced a v2 one')
  .action((o: { data: string; forget?: boolean }) => {
    const journal = Journal.open(o.data, { readonly: !o.forget });
    try {
      if (o.forget) journal.setRegisterVersion(1);
      console.log(`cash register: v${journal.registerVersion()} lines${o.forget ? ' from the agent\'s next start (restart it: systemctl restart scanbox-device)' : ''}`);
    } finally {
      journal.close();
    }
  });

program
  .command('attempts')
  .description('payment attempts in the journal (works while the agent runs)')
  .requiredOption('--data <dir>', 'data directory holding journal.db')
  .option('--json', 'print a JSON array of DeviceAttemptRecord (protocol/records.ts)')
  .action((o: { data: string; json?: boolean }) => {
    const journal = Journal.open(o.data, { readonly: true });
    try {
      const records = journal.attemptRecords();
      if (o.json) return console.log(JSON.stringify(records));
      for (const r of records) console.log(`${r.outTradeNo}  ${r.state.padEnd(15)} ${formatAmount(r.amount).padStart(12)}  sale ${r.saleRef}  ${r.reason ?? ''}`);
    } finally {
      journal.close();
    }
  });

program
  .command('refunds')
  .description('refunds the cash register asked for, as the journal has them (works while the agent runs)')
  .requiredOption('--data <dir>', 'data directory holding journal.db')
  .option('--json', 'print a JSON array of DeviceRefundRecord (protocol/records.ts)')
  .action((o: { data: string; json?: boolean }) => {
    const journal = Journal.open(o.data, { readonly: true });
    try {
      const records = journal.refundRecords();
      if (o.json) return console.log(JSON.stringify(records));
      for (const r of records) console.log(`${r.refundId}  ${r.state.padEnd(13)} ${formatAmount(r.amount).padStart(12)}  ${r.outTradeNo}  ref ${r.refundRef}  ${r.reason ?? ''}`);
    } finally {
      journal.close();
    }
  });

program
  .command('doctor')
  .description('check the box for a field engineer: serial ports, pairing, broker, login, clock, journal, disk, outbox (works while the agent runs)')
  .option('--scanner <path>', 'serial port of the payment-code scanner (or config scannerPath)')
  .option('--ecr <path>', 'serial port of the cash register (or config ecrPath)')
  .option('--data <dir>', 'data directory holding journal.db (or config dataDir)')
  .option('--config <file>', 'JSON config file (also SCANBOX_DEVICE_* environment variables)')
  .addOption(new Option('--baud-rate <n>', 'scanner baud rate').argParser(Number))
  .option('--ca <file>', "PEM certificate of a private CA the cloud's HTTPS and mqtts:// certificates chain to (config caFile)")
  .option('--scan-test', 'also wait up to 30 s for a payment code scanned with the box scanner (stop the agent first)')
  .option('--json', 'print a JSON array of {name, ok, detail, fix?}')
  .action(async (o: { scanner?: string; ecr?: string; data?: string; config?: string; baudRate?: number; ca?: string; scanTest?: boolean; json?: boolean }) => {
    const config = loadConfig({ file: o.config, env: process.env, flags: { scannerPath: o.scanner, ecrPath: o.ecr, dataDir: o.data, baudRate: o.baudRate, caFile: o.ca } });
    const checks = await runDoctor(
      { config, scanTest: o.scanTest ?? false },
      {
        openSerial: openRealSerial,
        clock: systemClock,
        connectMqtt: mqtt.connect,
        statfs: realStatfs,
        httpDate: realHttpDate,
        journalHolders: (path) => procJournalHolders(path),
        say: (line) => console.error(line),
      },
    );
    console.log(o.json ? JSON.stringify(checks) : formatChecks(checks));
    process.exitCode = checks.every((c) => c.ok) ? 0 : 1;
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (!isProtocolError(err)) throw err;
  console.error(`scanbox-device: ${err.code}: ${err.message}`);
  process.exit(err.code === ErrorCode.CONFIG_INVALID ? 2 : 1);
}
