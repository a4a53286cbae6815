import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FAULT_KINDS, type FaultKind } from '../../simulator/chaos/chaos-schedule.js';
import { EXPLAINED_BY_FAULT, FAULT_GRACE_MS, judgeLine, logFindings, type Explanation, type InjectedFault } from '../../simulator/chaos/log-verdict.js';

/**
 * The chaos runner's log rule (simulator/chaos/log-verdict.ts): an error line is a defect unless a
 * deliberate entry explains it by an injected fault of that party at that time.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const T = 1_800_000_000_000;
const BOX_FAULTS: ReadonlySet<FaultKind> = new Set(['box_kill', 'box_cut', 'clock_jump']);

/** One fault of every kind, all in force at T (box faults on box-1). */
const EVERY_FAULT_NOW: InjectedFault[] = FAULT_KINDS.map((kind) => ({
  kind,
  ...(BOX_FAULTS.has(kind) ? { box: 'box-1' } : {}),
  startMs: T - 1_000,
  endMs: T + 1_000,
  ...(kind === 'clock_jump' ? { clockSkewS: 60 } : {}),
}));

/** Every message the device and the cloud log at error or fatal level, read from their sources. */
function errorMessagesInSources(): string[] {
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.ts') ? [path.join(d, e.name)] : []));
  const re = /\.(?:error|fatal)\(\s*(?:\{(?:[^{}]|\{[^{}]*\})*\}\s*,\s*)?(['`])((?:(?!\1).)+)\1|\blog\(\s*'(?:error|fatal)'\s*,\s*'([^']+)'/g;
  const found = new Set<string>();
  for (const f of [...walk(path.join(ROOT, 'device')), ...walk(path.join(ROOT, 'cloud'))]) {
    for (const m of readFileSync(f, 'utf8').matchAll(re)) {
      const msg = m[2] ?? m[3]!;
      if (!msg.includes('${')) found.add(msg); // console.error with a template: not a log line
    }
  }
  return [...found].sort();
}

/** Entries this test knows were added on purpose (each with the fault that causes it). */
const DELIBERATE: readonly string[] = ['REFUND STUCK: still PENDING after refundFlagAfterMs; flagged for an operator (scanbox-cloud refunds --flagged), still retried'];

describe('chaos log verdict', () => {
  it('the explained list holds only deliberate entries', () => {
    expect(EXPLAINED_BY_FAULT.map((e) => e.msg)).toEqual(DELIBERATE);
  });

  it('every error-level message of the device and the cloud is a defect, even while every kind of fault is in force', () => {
    const messages = errorMessagesInSources();
    // The scan finds the known ones (guards the scan itself).
    expect(messages).toEqual(expect.arrayContaining(['broker refused the down/ subscription; reconnecting', 'result does not match the journaled attempt; ignored', 'message handling failed', 'tick failed']));
    const wavedThrough: string[] = [];
    for (const msg of messages.filter((m) => !DELIBERATE.includes(m))) {
      for (const party of ['cloud', 'box-1', 'box-2']) {
        for (const level of [50, 60]) {
          const v = judgeLine(party, { level, time: T, msg, code: 'X' }, EVERY_FAULT_NOW);
          if (v.kind !== 'defect') wavedThrough.push(`${party} ${level} ${msg}: ${v.kind}`);
        }
      }
    }
    expect(wavedThrough).toEqual([]);
  });

  it('a refund flagged for an operator is explained by a channel outage or a cloud kill in force, and by nothing else', () => {
    const msg = DELIBERATE[0]!;
    const at = (kind: FaultKind) => judgeLine('cloud', { level: 50, time: T + 2_000, msg }, [{ kind, startMs: T - 20_000, endMs: T }]).kind;
    expect(at('channel_outage')).toBe('explained');
    expect(at('cloud_kill')).toBe('explained');
    for (const kind of FAULT_KINDS.filter((k) => k !== 'channel_outage' && k !== 'cloud_kill')) expect(at(kind), kind).toBe('defect');
    expect(judgeLine('cloud', { level: 50, time: T, msg }, []).kind).toBe('defect');
    expect(judgeLine('box-1', { level: 50, time: T, msg }, EVERY_FAULT_NOW).kind).toBe('defect');
  });

  it('levels decide: a subscribe cut short (warn) is no defect, a broker refusal (error) is one, link faults or not', () => {
    const dropped = [{ kind: 'link_drop' as const, startMs: T, endMs: T }];
    expect(judgeLine('box-1', { level: 40, time: T + 10, msg: 'subscribe to down/ cut short by a dropped connection; reconnecting' }, dropped)).toEqual({ kind: 'fine' });
    expect(judgeLine('box-1', { level: 50, time: T + 10, msg: 'broker refused the down/ subscription; reconnecting' }, dropped)).toMatchObject({ kind: 'defect' });
    // The line that failed a chaos run whose money all reconciled, as it was logged then: an error is an error.
    expect(judgeLine('box-1', { level: 50, time: T + 10, msg: 'subscribe to down/ refused; reconnecting' }, dropped)).toMatchObject({ kind: 'defect' });
  });

  it('warnings no injected fault can cause are defects: the cloud refusing a box message (any code), a box dropping an unreadable cloud message', () => {
    for (const code of ['SCHEMA_INVALID', 'FORBIDDEN', 'BAD_JSON', 'UNAUTHORIZED']) {
      expect(judgeLine('cloud', { level: 40, time: T, msg: 'message refused', code }, EVERY_FAULT_NOW)).toEqual({ kind: 'defect', why: `cloud refused a box message (${code})` });
    }
    expect(judgeLine('box-1', { level: 40, time: T, msg: 'bad message from the cloud; ignored', code: 'SCHEMA_INVALID' }, EVERY_FAULT_NOW)).toMatchObject({ kind: 'defect' });
    expect(judgeLine('cloud', { level: 40, time: T, msg: 'publish to device failed' }, [])).toEqual({ kind: 'fine' });
    expect(judgeLine('box-1', { level: 30, time: T, msg: 'cloud link closed; reconnecting' }, [])).toEqual({ kind: 'fine' });
  });

  describe('an explanation waves a line through only inside its fault window, on a party the fault reached', () => {
    const entry: Explanation = { party: 'box', msg: 'link trouble', faults: ['box_cut', 'link_drop'], why: 'test entry' };
    const cut: InjectedFault = { kind: 'box_cut', box: 'box-1', startMs: T, endMs: T + 5_000 };
    const at = (party: string, time: number, faults: InjectedFault[] = [cut], msg = 'link trouble') => judgeLine(party, { level: 50, time, msg }, faults, [entry]).kind;

    it('inside the window, up to the grace after its end', () => {
      expect(at('box-1', T)).toBe('explained');
      expect(at('box-1', T + 5_000 + FAULT_GRACE_MS)).toBe('explained');
    });
    it('before the fault, or after its grace: defect', () => {
      expect(at('box-1', T - 1)).toBe('defect');
      expect(at('box-1', T + 5_000 + FAULT_GRACE_MS + 1)).toBe('defect');
    });
    it('another box than the one cut, another message, another party, another fault kind, no time: defect', () => {
      expect(at('box-2', T + 10)).toBe('defect');
      expect(at('box-1', T + 10, [cut], 'another message')).toBe('defect');
      expect(at('cloud', T + 10)).toBe('defect');
      expect(at('box-1', T + 10, [{ ...cut, kind: 'clock_jump' }])).toBe('defect');
      expect(judgeLine('box-1', { level: 50, msg: 'link trouble' }, [cut], [entry]).kind).toBe('defect');
    });
    it('a fault without a box reaches every box', () => {
      expect(at('box-2', T + 10, [{ kind: 'link_drop', startMs: T, endMs: T }])).toBe('explained');
    });
    it("a box's own clock jump widens its windows by the jump, and only its own", () => {
      const jump: InjectedFault = { kind: 'clock_jump', box: 'box-1', startMs: T - 60_000, endMs: T - 50_000, clockSkewS: 60 };
      const late = T + 5_000 + FAULT_GRACE_MS + 30_000; // the box's clock ran 30 s ahead
      expect(at('box-1', late, [cut, jump])).toBe('explained');
      expect(at('box-1', late, [cut])).toBe('defect');
      expect(at('box-2', late, [{ ...cut, box: 'box-2' }, jump])).toBe('defect');
    });
  });

  describe('over a run directory', () => {
    let dir: string;
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('counts every defect line and reports each with its own text; nothing else is bad', () => {
      dir = mkdtempSync(path.join(tmpdir(), 'scanbox-log-verdict-'));
      mkdirSync(path.join(dir, 'box-1'));
      const line = (o: object) => JSON.stringify({ time: T, ...o });
      writeFileSync(
        path.join(dir, 'cloud.log'),
        [line({ level: 30, msg: 'ready' }), line({ level: 50, msg: 'tick failed', err: 'disk full' }), line({ level: 40, msg: 'message refused', code: 'FORBIDDEN' }), 'not json', ''].join('\n'),
      );
      writeFileSync(
        path.join(dir, 'box-1', 'device.log'),
        [line({ level: 40, msg: 'subscribe to down/ cut short by a dropped connection; reconnecting' }), line({ level: 50, msg: 'effect failed after commit', err: 'EIO' }), line({ level: 50, msg: 'effect failed after commit', err: 'EPIPE' })].join('\n'),
      );
      const f = logFindings(dir, ['box-1', 'box-2'], EVERY_FAULT_NOW);
      expect(f.bad).toBe(4);
      const text = f.lines.join('\n');
      expect(text).toContain('DEFECT cloud: cloud error: tick failed ×1');
      expect(text).toContain('"err":"disk full"');
      expect(text).toContain('DEFECT cloud: cloud refused a box message (FORBIDDEN) ×1');
      expect(text).toContain('DEFECT box-1: box error: effect failed after commit ×2');
      expect(text).toContain('"err":"EIO"');
      expect(text).toContain('"err":"EPIPE"');
      expect(text).not.toContain('cut short');
    });
  });
});
