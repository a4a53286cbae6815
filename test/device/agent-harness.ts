import mqtt from 'mqtt';
import { pino } from 'pino';
import { SerialPortMock } from 'serialport';
import type { EcrOutbound } from '../../protocol/index.js';
import { startAgent, type Agent, type AgentDeps } from '../../device/agent.js';
import { systemClock, type Clock } from '../../protocol/clock.js';
import { loadConfig, type DeviceConfigInput } from '../../device/config.js';
import { Journal, type Credentials } from '../../device/journal.js';
import type { SerialLike } from '../../device/serial-port.js';
import { Collector } from './collector.js';

export type LogLine = Record<string, unknown> & { msg: string };

export const SECRET = 'test-secret-0123456789abcdefghijklmnopqrstuvwxyz';

export function writeCredentials(dataDir: string, deviceId: string, mqttUrl: string): void {
  const j = Journal.open(dataDir);
  const creds: Credentials = { deviceId, secret: SECRET, mqttUrl, merchantId: 'm1', storeId: 's1', cloudUrl: 'http://127.0.0.1:9', pairedAt: Date.now() };
  j.saveCredentials(creds);
  j.close();
}

let portSeq = 0;

/**
 * One agent in this process on serialport's mock binding: the test writes scanner and ECR bytes,
 * and collects the ECR lines, log lines and screens the agent produces.
 */
export class AgentHarness {
  readonly ecrOut = new Collector<EcrOutbound>();
  readonly logs = new Collector<LogLine>();
  readonly ports = new Map<string, SerialPortMock>();
  readonly scannerPath = `/dev/mock-scanner-${process.pid}-${++portSeq}`;
  readonly ecrPath = `/dev/mock-ecr-${process.pid}-${portSeq}`;
  agent!: Agent;
  /** The agent's clock (set before `start`): a test may step its wall clock. */
  clock: Clock = systemClock;

  constructor(
    readonly dataDir: string,
    private readonly config: Partial<DeviceConfigInput> = {},
    /** What the agent calls when it leaves after a cloud command (the CLI exits the process). */
    private readonly extra: Pick<AgentDeps, 'exit'> = {},
  ) {
    SerialPortMock.binding.createPort(this.scannerPath, { echo: false, record: true });
    SerialPortMock.binding.createPort(this.ecrPath, { echo: false, record: true });
  }

  async start(): Promise<Agent> {
    const logger = pino({ level: 'info' }, { write: (s: string) => this.logs.push(JSON.parse(s) as LogLine) });
    const config = loadConfig({ flags: { scannerPath: this.scannerPath, ecrPath: this.ecrPath, dataDir: this.dataDir, ...this.config } as never });
    this.agent = await startAgent(config, {
      clock: this.clock,
      random: Math.random,
      openSerial: (o) => this.open(o.path, o.baudRate),
      connectMqtt: mqtt.connect,
      logger,
      ...this.extra,
    });
    await this.logs.find((l) => l.msg === 'port state' && l.port === 'ecr' && l.state === 'open', 'ECR port open');
    await this.logs.find((l) => l.msg === 'port state' && l.port === 'scanner' && l.state === 'open', 'scanner port open');
    return this.agent;
  }

  private open(path: string, baudRate: number): SerialLike {
    const p = new SerialPortMock({ path, baudRate, autoOpen: false });
    this.ports.set(path, p);
    if (path === this.ecrPath) {
      const write = p.write.bind(p) as (d: string | Buffer) => boolean;
      (p as unknown as SerialLike).write = (data: string | Buffer) => {
        for (const line of data.toString().split('\n').filter(Boolean)) this.ecrOut.push(JSON.parse(line) as EcrOutbound);
        return write(data);
      };
    }
    return p as unknown as SerialLike;
  }

  scan(text: string): void {
    this.ports.get(this.scannerPath)!.port!.emitData(Buffer.from(text, 'latin1'));
  }

  ecr(line: object | string): void {
    this.ports.get(this.ecrPath)!.port!.emitData(`${typeof line === 'string' ? line : JSON.stringify(line)}\n`);
  }

  sale(ref: string, amount: number): void {
    this.ecr({ type: 'sale', ref, amount, currency: 'CNY' });
  }

  screens(): string[] {
    return this.logs.filter((l) => l.msg === 'display').map((l) => String(l.screen));
  }

  async stop(): Promise<void> {
    await this.agent?.stop();
  }
}
