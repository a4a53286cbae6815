import Database from 'better-sqlite3';
import { SerialPortMock } from 'serialport';
import { expect } from 'vitest';
import { AgentHarness, writeCredentials, type LogLine } from '../device/agent-harness.js';
import { TestBroker } from '../device/broker.js';
import { FakeCloud, type PayScript } from '../device/fake-cloud.js';
import { JOURNAL_FILE } from '../../device/journal.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Shared by the two device-side fuzz suites (scanner-lines, ecr-lines): one real agent in this
 * process (journal in a temp dir, serialport's mock binding) against an in-process aedes broker and
 * the scripted fake cloud from test/device, a read-only view of its journal, and a reference model
 * of the serial line framing that the fuzz oracles use.
 */
export const CODES = {
  /** Paid by the fake cloud. */
  success: '134567890123450001',
  success2: '281234567890120005',
  /** Never answered: an attempt stays in flight until it is cancelled. */
  silence: '134567890123450004',
} as const;
const SCRIPTS: Record<string, PayScript> = { [CODES.success]: 'success', [CODES.success2]: 'success', [CODES.silence]: 'silence' };

export interface FuzzBox {
  broker: TestBroker;
  cloud: FakeCloud;
  box: AgentHarness;
  db: Database.Database;
  close(): Promise<void>;
}

/** The box's journal lives in its own temp dir for the whole suite (removed by `close`), not a per-test one. */
export async function startFuzzBox(config: Record<string, unknown> = {}): Promise<FuzzBox> {
  const dataDir = mkdtempSync(join(tmpdir(), 'scanbox-fuzz-'));
  const broker = await TestBroker.start();
  const cloud = await FakeCloud.start(broker.url, SCRIPTS);
  writeCredentials(dataDir, 'fz1', broker.url);
  const box = new AgentHarness(dataDir, { paymentDeadlineMs: 60_000, recheckMs: 600_000, ...config });
  await box.start();
  await box.logs.find((l) => l.msg === 'cloud link up; querying every attempt in flight', 'link up');
  const db = new Database(join(dataDir, JOURNAL_FILE), { readonly: true, fileMustExist: true });
  return {
    broker,
    cloud,
    box,
    db,
    async close() {
      db.close();
      await box.stop();
      await cloud.close();
      await broker.close();
      SerialPortMock.binding.reset();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Every money row in the journal, read from disk (not the agent's memory): sales, attempts, outbox. */
export function moneyRows(db: Database.Database): { sales: unknown[]; attempts: unknown[]; outbox: unknown[] } {
  return {
    sales: db.prepare('SELECT sale_id, ref, amount, currency, state, end_reason, paid_by, updated_at FROM sales ORDER BY sale_id').all(),
    attempts: db.prepare('SELECT out_trade_no, sale_id, amount, state, updated_at FROM attempts ORDER BY out_trade_no').all(),
    outbox: db.prepare("SELECT kind, out_trade_no FROM outbox WHERE kind IN ('pay', 'cancel') ORDER BY id").all(),
  };
}

/**
 * Write raw bytes on a mock port, one read per chunk: the mock binding concatenates whatever is
 * queued, so before the next chunk we wait (bounded, turn by turn) until the agent has read the last.
 */
export async function emitChunks(box: AgentHarness, path: string, chunks: readonly Uint8Array[]): Promise<void> {
  const binding = box.ports.get(path)!.port! as unknown as { emitData(b: Buffer): void; port: { data: Buffer } };
  for (const [i, c] of chunks.entries()) {
    if (c.length === 0) continue;
    binding.emitData(Buffer.from(c));
    if (i === chunks.length - 1) break;
    for (let turns = 0; binding.port.data.length > 0; turns++) {
      if (turns > 10_000) throw new Error(`the agent never read ${binding.port.data.length} bytes from ${path}`);
      await new Promise((r) => setImmediate(r));
    }
  }
}

/** Resolves on the `n`-th log line (from `from` on) matching `pred`. */
export function nthLog(box: AgentHarness, pred: (l: LogLine) => boolean, n: number, what: string, from: number, timeoutMs = 5_000): Promise<LogLine> {
  let seen = 0;
  return box.logs.find((l) => pred(l) && ++seen === n, what, timeoutMs, from);
}

export type RefItem = { kind: 'line'; text: string } | { kind: 'tooLong' };

/**
 * The documented framing of both serial links, written independently of device/line-splitter.ts:
 * CR, LF and CRLF end a line (an LF right after a CR is part of the same line end, whichever read it
 * came in); a line over `maxBytes` bytes is reported once as too long and dropped up to its line end.
 */
export class ReferenceLines {
  private line: number[] = [];
  private over = false;
  private prevCr = false;

  constructor(
    private readonly maxBytes: number,
    private readonly encoding: BufferEncoding,
  ) {}

  feed(bytes: Uint8Array): RefItem[] {
    const out: RefItem[] = [];
    for (const b of bytes) {
      if (b === 0x0a && this.prevCr) {
        this.prevCr = false;
        continue;
      }
      this.prevCr = b === 0x0d;
      if (b === 0x0a || b === 0x0d) {
        if (!this.over) out.push({ kind: 'line', text: Buffer.from(this.line).toString(this.encoding) });
        this.line = [];
        this.over = false;
      } else if (!this.over) {
        this.line.push(b);
        if (this.line.length > this.maxBytes) {
          out.push({ kind: 'tooLong' });
          this.line = [];
          this.over = true;
        }
      }
    }
    return out;
  }

  /** True when no partial line is pending (the next byte starts a fresh line). */
  get idle(): boolean {
    return this.line.length === 0 && !this.over;
  }

  /** True while the rest of an overlong line is being dropped. */
  get discarding(): boolean {
    return this.over;
  }
}

/** Split `bytes` into pieces at the given cut points (fractions of the length, deduplicated). */
export function cut(bytes: Uint8Array, points: readonly number[]): Uint8Array[] {
  const at = [...new Set(points.map((p) => Math.floor(p * bytes.length)))].filter((i) => i > 0 && i < bytes.length).sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const i of [...at, bytes.length]) {
    out.push(bytes.subarray(prev, i));
    prev = i;
  }
  return out;
}

/** The agent is still healthy: both ports open the whole time, nothing logged at error level, no port errors. */
export function expectHealthy(box: AgentHarness, from = 0): void {
  const bad = box.logs.items
    .slice(from)
    .filter((l) => (l.level as number) >= 50 || l.msg === 'serial port error' || l.msg === 'serial port unavailable; reopening');
  expect(bad).toEqual([]);
  const s = box.agent.status();
  expect({ scanner: s.scanner, ecr: s.ecr, online: s.online }).toEqual({ scanner: 'open', ecr: 'open', online: true });
}

export function tally<K>(m: Map<K, number>, k: K, n = 1): void {
  m.set(k, (m.get(k) ?? 0) + n);
}
export const show = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
