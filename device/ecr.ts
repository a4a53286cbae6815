import {
  EcrInbound,
  ECR_VERSION,
  EcrOutboundV2,
  ErrorCode,
  MAX_ECR_LINE_BYTES,
  ProtocolError,
  describeIssues,
  isProtocolError,
  type EcrLineBody,
  type PortState,
} from '../protocol/index.js';
import { LineSplitter } from './line-splitter.js';
import { ReopeningPort, type ReopeningPortOptions } from './serial-port.js';

/**
 * Parse one line from the cash register. Pure: every way a line can be wrong becomes a
 * ProtocolError whose message names the problem, so the ECR's programmer can fix their side.
 * Tolerant (ECR v2): fields this box does not know are dropped, a line without `v` is a v1 line.
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

type ErrorBody = Extract<EcrLineBody, { type: 'error' }>;

/** The error line the box answers with (before it is numbered); carries the sale ref when the bad line had a readable one. */
export function ecrErrorLine(err: ProtocolError, ref?: string): ErrorBody {
  const line: ErrorBody = { type: 'error', code: err.code, message: err.message.slice(0, 200) };
  return ref === undefined ? line : { ...line, ref };
}

/** The sale ref of a line that could not be read, when it has a well-formed one (echoed on the error line). */
export function salvageRef(text: string): string | undefined {
  try {
    const ref = (JSON.parse(text) as { ref?: unknown }).ref;
    return typeof ref === 'string' && /^[\x21-\x7e]{1,64}$/.test(ref) ? ref : undefined;
  } catch {
    return undefined;
  }
}

export interface EcrHandlers {
  onMessage(msg: EcrInbound): void;
  /** A line that could not be read; the handler answers it (the answer is numbered like every line). */
  onBadLine(err: ProtocolError, ref: string | undefined): void;
  onState(state: PortState): void;
  /** The register showed it reads a higher version: the shell keeps it across restarts. */
  onPeerVersion?(version: number): void;
}

export interface EcrOptions extends Omit<ReopeningPortOptions, 'name'> {
  handlers: EcrHandlers;
  /** The version the register last showed it reads (kept in the journal); 1 when it never did. */
  peerVersion?: number;
}

/** The cash-register link: JSON lines both ways over the second serial port. */
export class EcrLink {
  readonly port: ReopeningPort;
  private readonly splitter = new LineSplitter(MAX_ECR_LINE_BYTES, 'utf8');

  constructor(private readonly opts: EcrOptions) {
    this.peerVersion = Math.max(1, Math.min(opts.peerVersion ?? 1, ECR_VERSION));
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

  /**
   * The ECR version the register speaks: 1 until it shows it reads v2 (a `hello`, `lookup`, `refund`
   * or `totals`, or any line with `v` ≥ 2). Registers integrated before v2 may refuse unknown fields, so they are never
   * sent `v`, `seq` or `lookup`: the box adds them only once the register has asked for v2. It is
   * remembered across the box's restarts: a box restart is invisible to the register, whose result
   * lines after a power cut must still carry their `seq`.
   */
  private peerVersion: number;

  /** Writes exactly a v2 line (strict: a line that is not one throws), in v1's shape to a v1 register. Returns false when the port is down. */
  send(line: EcrOutboundV2): boolean {
    const checked = EcrOutboundV2.parse(line);
    // Refund and totals lines answer v2 lines only: they go out as v2 even to a register this box
    // has not heard from since it restarted (a refund result learnt after a power cut).
    const v2Only = checked.type === 'refund_progress' || checked.type === 'refund_result' || checked.type === 'totals';
    const out = this.peerVersion >= ECR_VERSION || v2Only ? checked : asV1(checked);
    return this.port.write(`${JSON.stringify(out)}\n`);
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
    // Every line type but sale and cancel is v2's.
    if (msg.type !== 'sale' && msg.type !== 'cancel') this.peerReads(ECR_VERSION);
    if ((msg.v ?? 1) >= ECR_VERSION) this.peerReads(ECR_VERSION);
    this.opts.handlers.onMessage(msg);
  }

  private peerReads(version: number): void {
    if (version <= this.peerVersion) return;
    this.peerVersion = version;
    this.opts.handlers.onPeerVersion?.(version);
  }

  private reject(err: ProtocolError, ref?: string): void {
    this.opts.handlers.onBadLine(err, ref);
  }
}

/** A line as a v1 register knows it: without the v2 numbering and lookup marks. */
function asV1(line: EcrOutboundV2): Omit<EcrOutboundV2, 'v' | 'seq'> {
  const { v: _v, seq: _seq, ...rest } = line;
  if ('lookup' in rest) delete (rest as { lookup?: true }).lookup;
  return rest;
}
