import { formatAmount, type Currency } from '../../protocol/index.js';
import type { LogLine, PartProcess } from '../processes.js';

/**
 * What `scanbox-sim counter` tells the vendor while their POS talks to the box: one line per thing
 * that happened, read from the box's and the cloud's JSON logs and from the scripted wallet's
 * ledger. Log lines that tell nothing new at the counter give `undefined`.
 */
export type EventSource = 'box' | 'cloud' | 'wallet' | 'sim';

const WARN_LEVEL = 40;
const ERROR_LEVEL = 50;

function money(line: LogLine): string {
  return typeof line.amount === 'number' ? formatAmount(line.amount, (line.currency as Currency | undefined) ?? 'CNY') : '';
}

function because(reason: unknown): string {
  return typeof reason === 'string' && reason !== '' ? ` (${reason})` : '';
}

/** The box's agent: the register's lines as the box took them, the scans, and each sale's end. */
export function describeBoxLine(l: LogLine): string | undefined {
  switch (l.msg) {
    case 'cash register said hello':
      return `POS said hello (ECR v${String(l.registerVersion)}${typeof l.name === 'string' ? `, ${l.name}` : ''})`;
    case 'bad line from the cash register':
      return `refused a line from the POS: ${String(l.code)}: ${String(l.reason)}`;
    case 'sale opened':
      return `sale ${String(l.saleRef)} ${money(l)} opened by the POS; the box asks for a payment code`;
    case 'sale line for a ref already closed NOT_PAID; answered with its outcome, not reopened':
      return `sale ${String(l.saleRef)}: this ref already ended NOT_PAID; answered with that outcome, not reopened`;
    case 'attempt created':
      return `code scanned (${String(l.wallet)} ${String(l.masked)}): payment ${String(l.outTradeNo)} sent to the cloud`;
    case 'cloud progress':
      return `payment ${String(l.outTradeNo)}: ${String(l.stage)}`;
    case 'attempt final':
      return `payment ${String(l.outTradeNo)} final: ${String(l.state)}${because(l.reason)}`;
    case 'final result changed':
      return `payment ${String(l.outTradeNo)} final result changed: ${String(l.from)} → ${String(l.to)}${because(l.reason)}`;
    case 'sale paid':
      return `sale ${String(l.saleRef)} PAID ${money(l)}`;
    case 'sale not paid':
      return `sale ${String(l.saleRef)} NOT_PAID${because(l.reason)}`;
    case 'code scanned but no sale is waiting':
      return 'a code was scanned but no sale is open: ring one up on the POS first';
    case 'code scanned while a payment of this sale is in flight':
      return `sale ${String(l.saleRef)}: a code was scanned while a payment is in flight; ignored`;
    case 'payment refused: box offline':
      return `sale ${String(l.saleRef)}: refused, the box is offline`;
    case 'cash register port is down; its result line is sent when it is back':
      return `sale ${String(l.saleRef)}: the ECR port is down; its result line is written when it is back`;
    default:
      return describeOther(l);
  }
}

/**
 * Lines the counter has no words of its own for: a refund's (they name it), and any warning or
 * error — at a vendor's desk those are few and worth reading (the box offline, a refusal).
 */
function describeOther(l: LogLine): string | undefined {
  const refund = l.refundRef ?? l.refundId;
  if (typeof refund === 'string') {
    const details = [money(l), typeof l.state === 'string' ? l.state : '', typeof l.reason === 'string' ? l.reason : ''].filter((d) => d !== '');
    return `${String(l.msg)}: refund ${refund}${details.length ? ` (${details.join(', ')})` : ''}`;
  }
  if (typeof l.level !== 'number' || l.level < WARN_LEVEL) return undefined;
  return `${l.level >= ERROR_LEVEL ? 'ERROR' : 'warning'}: ${String(l.msg)}${because(l.code)}`;
}

/** The cloud: a payment arriving (the sale as the cloud first sees it) and every change of its state. */
export function describeCloudLine(l: LogLine): string | undefined {
  switch (l.msg) {
    case 'pay received':
      return `payment ${String(l.outTradeNo)} received: ${money(l)} by ${String(l.wallet)}`;
    case 'attempt transition':
      return `payment ${String(l.outTradeNo)}: ${l.from === null ? 'new' : String(l.from)} → ${String(l.to)}${because(l.reason)}`;
    default:
      if (typeof l.level === 'number' && l.level >= ERROR_LEVEL) return `ERROR ${String(l.msg)}${because(l.code)}`;
      return undefined;
  }
}

/** The scripted wallet's ledger: money actually moving (`gateway ledger charge|reverse|refund`). */
export function describeWalletLine(l: LogLine): string | undefined {
  const kind = typeof l.msg === 'string' && l.msg.startsWith('gateway ledger ') ? l.msg.slice('gateway ledger '.length) : undefined;
  if (!kind) return undefined;
  if (kind === 'reverse' && l.amount === 0) return `order ${String(l.outTradeNo)} closed; nothing had been charged`;
  const what = kind === 'charge' ? 'charged' : kind === 'reverse' ? 'charge reversed:' : 'refunded';
  return `${what} ${money(l)} (${String(l.outTradeNo)})`;
}

/**
 * Calls `onLine` with every JSON log line of `proc`, in order, as it arrives, and `onBatch` after
 * each run of lines that arrived together (one step of the box logs several); resolves once the
 * process has exited and its last lines were handed over.
 */
export async function followLog(proc: PartProcess, onLine: (line: LogLine) => void, onBatch: () => void = () => undefined): Promise<void> {
  let next = 0;
  const drain = () => {
    if (next >= proc.lines.length) return;
    while (next < proc.lines.length) onLine(proc.lines[next++]!);
    onBatch();
  };
  while (proc.running) {
    try {
      // The wait is only there to be woken by the next line; a quiet minute is not an error.
      await proc.waitForLog(() => true, 60_000, next);
    } catch {
      // timed out (quiet) or exited: the loop condition tells which
    }
    drain();
  }
  drain();
}
