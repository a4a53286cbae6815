import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FaultKind } from './chaos-schedule.js';

/**
 * What the logs of a chaos run may say. The run passes only when money and agreement hold and
 * nothing happened but the injected faults, and log levels say what happened, so every line of
 * cloud.log and box-N/device.log is judged by one rule:
 *
 * 1. A line at error level or above (pino ≥ 50) on the cloud or a box is a defect, unless
 *    EXPLAINED_BY_FAULT names its message for that party together with the fault kinds that cause
 *    it, and an injected fault of such a kind reached that party at that time: from the fault's
 *    start to FAULT_GRACE_MS after its end. A fault with a box (box_kill, box_cut, clock_jump)
 *    reaches that box and the cloud; the others reach everything. A box's log times come from its
 *    own (faked) clock, so its windows widen by the largest clock jump injected into it.
 * 2. Two warnings are defects too, because no injected fault can cause them: the cloud refusing a
 *    box's message ("message refused": the chaos boxes are paired, healthy and speak the cloud's
 *    protocol; any code is a bug on one side) and a box dropping a cloud message it cannot read.
 * 3. Nothing else is judged: a fault's ordinary consequences (a link closed, a subscribe cut short,
 *    a publish retried) log at warn or below.
 *
 * Every defect is reported with its own text; explained lines are listed with the fault that
 * explains them.
 */

/** After a fault ends, its consequences (reconnects with backoff, a PUBACK stall noticed) settle within this. */
export const FAULT_GRACE_MS = 10_000;

/** 'cloud', or a box's name (box-1 …). */
export type Party = string;

export interface Explanation {
  party: 'cloud' | 'box';
  msg: string;
  faults: readonly FaultKind[];
  why: string;
}

/**
 * Error-level lines a fault can cause. Almost every condition a fault causes logs at warn (a
 * subscribe cut short by a dropped connection is a warning since device/link.ts tells it from a
 * broker's refusal); what stays here is an operator's signal that a fault is *meant* to raise. An
 * entry needs the fault kinds that cause it and is waved through only inside such a fault's window
 * on that party.
 */
export const EXPLAINED_BY_FAULT: readonly Explanation[] = [
  {
    party: 'cloud',
    msg: 'REFUND STUCK: still PENDING after refundFlagAfterMs; flagged for an operator (scanbox-cloud refunds --flagged), still retried',
    faults: ['channel_outage', 'cloud_kill'],
    why: "a refund stays on its sale's channel (no failover), so a provider refusing it, or a cloud down, for longer than refundFlagAfterMs (10 s in the chaos config) must flag it for an operator",
  },
];

/** One injected fault as it happened: real (runner) time, and the box it hit, if any. */
export interface InjectedFault {
  kind: FaultKind;
  box?: string;
  startMs: number;
  endMs: number;
  /** clock_jump: the largest offset (s) set on the box's clock. */
  clockSkewS?: number;
}

export interface LogLine {
  level?: unknown;
  time?: unknown;
  msg?: unknown;
  code?: unknown;
  [k: string]: unknown;
}

export type Verdict = { kind: 'defect'; why: string } | { kind: 'explained'; by: InjectedFault; why: string } | { kind: 'fine' };

function reaches(f: InjectedFault, party: Party): boolean {
  if (f.box === undefined) return true;
  return party === 'cloud' || party === f.box;
}

/** The largest clock offset injected into this party (0 for the cloud), in ms. */
export function skewOf(party: Party, faults: readonly InjectedFault[]): number {
  if (party === 'cloud') return 0;
  return Math.max(0, ...faults.filter((f) => f.box === party && f.clockSkewS !== undefined).map((f) => Math.abs(f.clockSkewS!) * 1000));
}

/** Judge one log line of `party` (rule above). */
export function judgeLine(party: Party, line: LogLine, faults: readonly InjectedFault[], explained: readonly Explanation[] = EXPLAINED_BY_FAULT): Verdict {
  const msg = String(line.msg ?? '');
  const code = line.code === undefined ? '' : ` (${String(line.code)})`;
  if (party === 'cloud' && msg === 'message refused') return { kind: 'defect', why: `cloud refused a box message${code}` };
  if (party !== 'cloud' && msg === 'bad message from the cloud; ignored') return { kind: 'defect', why: `box dropped a cloud message it cannot read${code}` };
  const level = typeof line.level === 'number' ? line.level : 0;
  if (level < 50) return { kind: 'fine' };
  const what = `${party === 'cloud' ? 'cloud' : 'box'} error: ${msg}${code}`;
  const time = typeof line.time === 'number' ? line.time : Number.NaN;
  const skew = skewOf(party, faults);
  const kind = party === 'cloud' ? 'cloud' : 'box';
  for (const e of explained) {
    if (e.party !== kind || e.msg !== msg) continue;
    const by = faults.find((f) => e.faults.includes(f.kind) && reaches(f, party) && time >= f.startMs - skew && time <= f.endMs + FAULT_GRACE_MS + skew);
    if (by) return { kind: 'explained', by, why: `${what} — ${e.why}` };
  }
  return { kind: 'defect', why: what };
}

export interface LogFindings {
  /** Report lines: defects with their text, then explained lines with their fault. */
  lines: string[];
  /** How many defect lines. */
  bad: number;
}

const MAX_EXAMPLES = 5;

/** Judge every line of the run's logs in `dir` (cloud.log, <box>/device.log). */
export function logFindings(dir: string, boxes: readonly string[], faults: readonly InjectedFault[] = [], explained: readonly Explanation[] = EXPLAINED_BY_FAULT): LogFindings {
  const defects = new Map<string, string[]>();
  const explainedBy = new Map<string, number>();
  const judgeFile = (file: string, party: Party) => {
    if (!existsSync(file)) return;
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      if (!raw.startsWith('{')) continue;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        continue; // not a log line
      }
      const v = judgeLine(party, line, faults, explained);
      if (v.kind === 'defect') defects.set(`${party}: ${v.why}`, [...(defects.get(`${party}: ${v.why}`) ?? []), raw]);
      else if (v.kind === 'explained') {
        const key = `${party}: ${v.why} (by ${v.by.kind}${v.by.box ? ` ${v.by.box}` : ''} at ${new Date(v.by.startMs).toISOString()})`;
        explainedBy.set(key, (explainedBy.get(key) ?? 0) + 1);
      }
    }
  };
  judgeFile(path.join(dir, 'cloud.log'), 'cloud');
  for (const name of boxes) judgeFile(path.join(dir, name, 'device.log'), name);
  const lines: string[] = [];
  for (const [key, raws] of defects) {
    lines.push(`DEFECT ${key} ×${raws.length}`);
    for (const raw of raws.slice(0, MAX_EXAMPLES)) lines.push(`    ${raw.slice(0, 400)}`);
    if (raws.length > MAX_EXAMPLES) lines.push(`    … and ${raws.length - MAX_EXAMPLES} more`);
  }
  for (const [key, n] of explainedBy) lines.push(`explained ${key} ×${n}`);
  return { lines, bad: [...defects.values()].reduce((s, r) => s + r.length, 0) };
}
