import type { Logger } from 'pino';
import { DOCTOR_BOUNDS, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, encodeUp, upTopic, type UpToSend } from '../protocol/index.js';
import type { Clock } from '../protocol/clock.js';
import { realHttpDate, realStatfs, runAgentDoctor, type AgentDoctorDeps, type AgentView, type DoctorCheck } from './doctor.js';
import { FIRMWARE_VERSION } from './version.js';

/**
 * The doctor the cloud asks for (down/command `doctor`): the running agent runs its checks
 * (doctor.ts `runAgentDoctor`) and answers on up/doctor, QoS 1, straight on the link and not through
 * the payment outbox — a report lost with the connection is simply asked again, and it must never
 * queue behind or ahead of money.
 */

export interface ReportHead {
  id: string;
  ts: number;
  /** The command's id. */
  refId: string;
  firmware: string;
}

const CUT = '…';

/** At most `max` UTF-16 units (what zod counts), cut between characters, the cut marked. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let out = '';
  for (const ch of text) {
    if (out.length + ch.length > max - CUT.length) break;
    out += ch;
  }
  return out + CUT;
}

/**
 * The up/doctor message for these checks, within every bound of protocol/doctor.ts: at most
 * DOCTOR_BOUNDS.checks (beyond that, failing checks are kept rather than passing ones; the order
 * stays), each text
 * within its bound, and the whole under MAX_PAYLOAD_BYTES: details and fixes are shortened, longest
 * first, to the longest length at which everything fits. 32 checks fit even at one character each,
 * so there always is one.
 */
export function doctorReport(checks: readonly DoctorCheck[], head: ReportHead): UpToSend<'doctor'> {
  const room = DOCTOR_BOUNDS.checks - checks.filter((c) => !c.ok).length;
  let passing = 0;
  const kept = checks.filter((c) => !c.ok || passing++ < room).slice(0, DOCTOR_BOUNDS.checks);
  const build = (max: number): UpToSend<'doctor'> => ({
    v: PROTOCOL_VERSION,
    id: head.id,
    ts: head.ts,
    refId: head.refId,
    firmware: cut(head.firmware, 32),
    checks: kept.map((c) => ({
      name: cut(c.name, DOCTOR_BOUNDS.name),
      ok: c.ok,
      detail: cut(c.detail || '-', max),
      ...(c.fix ? { fix: cut(c.fix, max) } : {}),
    })),
  });
  const fits = (max: number) => Buffer.byteLength(JSON.stringify(build(max))) <= MAX_PAYLOAD_BYTES;
  if (fits(DOCTOR_BOUNDS.text)) return build(DOCTOR_BOUNDS.text);
  let lo = 1;
  let hi: number = DOCTOR_BOUNDS.text;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return build(lo);
}

export interface RemoteDoctorDeps {
  clock: Clock;
  log: Logger;
  deviceId: string;
  /** What the agent knows of itself, read when the checks run. */
  view: () => AgentView;
  /** QoS 1 on the cloud link (CloudLink.publish). */
  publish: (topic: string, payload: string, done: (err?: Error) => void) => void;
  /** The real ones unless a test hands in its own. */
  statfs?: AgentDoctorDeps['statfs'];
  httpDate?: AgentDoctorDeps['httpDate'];
}

/**
 * Runs the doctor for each `doctor` command and publishes its report. One run at a time: commands
 * that arrive during a run are answered together by the next one, so a flood of them costs one run
 * more, not one each. A repeat of a command (a redelivery) is answered again: the doctor changes nothing.
 */
export class RemoteDoctor {
  private readonly waiting: string[] = [];
  private running: Promise<void> | null = null;
  private seq = 0;

  constructor(private readonly deps: RemoteDoctorDeps) {}

  ask(commandId: string): void {
    if (!this.waiting.includes(commandId)) this.waiting.push(commandId);
    this.running ??= this.drain().finally(() => (this.running = null));
  }

  /** Resolves once every command asked so far has had its report published (or its publish failed). */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async drain(): Promise<void> {
    while (this.waiting.length > 0) {
      const ids = this.waiting.splice(0);
      const checks = await this.check();
      for (const refId of ids) this.send(checks, refId);
    }
  }

  private async check(): Promise<DoctorCheck[]> {
    const d = this.deps;
    try {
      return await runAgentDoctor(d.view(), { clock: d.clock, statfs: d.statfs ?? realStatfs, httpDate: d.httpDate ?? realHttpDate });
    } catch (err) {
      // A defect (or the journal closed under a stopping agent): the operator hears of it all the same.
      return [{ name: 'doctor', ok: false, detail: `the checks could not run: ${(err as Error).message}`, fix: 'run `scanbox-device doctor` on the box; look in journalctl -u scanbox-device' }];
    }
  }

  private send(checks: DoctorCheck[], refId: string): void {
    const d = this.deps;
    const now = d.clock.now();
    const failed = checks.filter((c) => !c.ok).map((c) => c.name);
    let payload: string;
    try {
      payload = encodeUp('doctor', doctorReport(checks, { id: `doctor-${now}-${++this.seq}`, ts: now, refId, firmware: FIRMWARE_VERSION }));
    } catch (err) {
      return d.log.error({ commandId: refId, err: (err as Error).message }, 'doctor report is off-contract; not sent');
    }
    d.publish(upTopic(d.deviceId, 'doctor'), payload, (err) => {
      if (err) d.log.warn({ commandId: refId, err: err.message }, 'doctor report not delivered; the cloud may ask again');
      else d.log.info({ commandId: refId, checks: checks.length, failed }, 'doctor report sent');
    });
  }
}
