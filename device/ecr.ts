import {
  EcrInbound,
  EcrOutbound,
  ErrorCode,
  MAX_ECR_LINE_BYTES,
  ProtocolError,
  describeIssues,
  isProtocolError,
  type EcrError,
  type PortState,
} from '../protocol/index.js';
import { LineSplitter } from './line-splitter.js';
import { ReopeningPort, type ReopeningPortOptions } from './serial-port.js';

/**
 * Parse one line from the cash register. Pure: every way a line can be wrong becomes a
 * ProtocolError whose message names the problem, so the ECR's programmer can fix their side.
 */
export function parseEcrLine(text: string): EcrInbound {
  const line = text.trim();
  if (line.length === 0) throw new ProtocolError(ErrorCode.BAD_JSON, 'empty line; send one JSON object per line');
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new ProtocolError(ErrorCode.BAD_JSON, 'line is not valid JSON; send one JSON object per line');
  }
  const res = EcrInbound.safeParse(json);
  if (!res.success) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, `line is invalid: ${describeIssues(res.error)}`);
  return res.data;
}

/** The error line the box answers with; carries the sale ref when the bad line had a readable one. */
export function ecrErrorLine(err: ProtocolError, ref?: string): EcrError {
  const line: EcrError = { type: 'error', code: err.code, message: err.message.slice(0, 200) };
  return ref === undefined ? line : { ...line, ref };
}

function salvageRef(text: string): string | undefined {
  try {
    const ref = (JSON.parse(text) as { ref?: unknown }).ref;
    return typeof ref === 'string' && /^[\x21-\x7e]{1,64}$/.test(ref) ? ref : undefined;
  } catch {
    return undefined;
  }
}

export interface EcrHandlers {
  onMessage(msg: EcrInbound): void;
  onBadLine(err: ProtocolError): void;
  onState(state: PortState): void;
}

export interface EcrOptions extends Omit<ReopeningPortOptions, 'name'> {
  handlers: EcrHandlers;
}

/** The cash-register link: JSON lines both ways over the second serial port. */
export class EcrLink {
  readonly port: ReopeningPort;
  private readonly splitter = new LineSplitter(MAX_ECR_LINE_BYTES, 'utf8');

  constructor(private readonly opts: EcrOptions) {
    this.port = new ReopeningPort({ ...opts, name: 'ecr' });
    this.port.on('data', (chunk: Buffer) => this.onData(chunk));
    this.port.on('state', (s: PortState) => opts.handlers.onState(s));
  }

  start(): void {
    this.port.start();
  }

  stop(): Promise<void> {
    return this.port.stop();
  }

  /** Returns false when the port is down and the line could not be written. */
  send(line: EcrOutbound): boolean {
    return this.port.write(`${JSON.stringify(EcrOutbound.parse(line))}\n`);
  }

  private onData(chunk: Buffer): void {
    for (const item of this.splitter.push(chunk)) {
      if (item.kind === 'tooLong') {
        this.reject(new ProtocolError(ErrorCode.LINE_TOO_LONG, `line is over ${MAX_ECR_LINE_BYTES} bytes; discarded`));
      } else if (item.text.trim().length > 0) {
        this.handleLine(item.text);
      }
    }
  }

  private handleLine(text: string): void {
    let msg: EcrInbound;
    try {
      msg = parseEcrLine(text);
    } catch (err) {
      if (!isProtocolError(err)) throw err;
      return this.reject(err, salvageRef(text));
    }
    this.opts.handlers.onMessage(msg);
  }

  private reject(err: ProtocolError, ref?: string): void {
    this.send(ecrErrorLine(err, ref));
    this.opts.handlers.onBadLine(err);
  }
}
