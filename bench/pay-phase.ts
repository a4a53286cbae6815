import type { ChildProcess } from 'node:child_process';
import type { CloudAttemptRecord } from '../protocol/index.js';
import type { LedgerEntry } from '../simulator/gateway/ledger.js';
import { reconcile, type ReconcileReport } from '../simulator/reconcile/reconcile.js';
import { nextMessage, sleep } from './harness.js';
import type { PayingBox } from './pay-client.js';

/**
 * What the closed-loop payment benchmarks (throughput, dashboards) share: every box paying as fast
 * as its results come back for a while, and the reconciliation of what the boxes saw with the cloud
 * process's attempts and its gateway's ledger afterwards.
 */
export interface LoopPhase {
  /** Payments completed before the phase ended. */
  count: number;
  /** Seconds the phase lasted. */
  elapsed: number;
  /** Resolves once every box's last payment (started before the end) has come back. */
  settled: Promise<void>;
}

/** Runs for `seconds`; returns at the end with the count (the caller samples CPU then), the loops still settling. */
export async function closedLoop(boxes: readonly PayingBox[], seconds: number, latencies?: number[]): Promise<LoopPhase> {
  let running = true;
  let count = 0;
  const t0 = performance.now();
  const loops = boxes.map(async (b) => {
    while (running) {
      const a = performance.now();
      await b.pay();
      if (!running) break;
      count++;
      latencies?.push(performance.now() - a);
    }
  });
  await sleep(seconds * 1000);
  running = false;
  const elapsed = (performance.now() - t0) / 1000;
  return { count, elapsed, settled: Promise.all(loops).then(() => undefined) };
}

export interface RunReconciliation {
  report: ReconcileReport;
  /** Attempts the cloud recorded. */
  recorded: number;
  /** Results no box was waiting for. */
  unexpected: number;
  /** Of those, final results received again for an attempt already seen final in that state. */
  duplicates: number;
  /** Every attempt SUCCESS, one per payment a box saw paid, no result nobody waited for. */
  allSuccess: boolean;
  reconciled: boolean;
}

export interface CloudSnapshot {
  /** What the gateway charged (with several workers: every worker's ledger, concatenated). */
  ledger: LedgerEntry[];
  /** The store's attempts. */
  cloud: CloudAttemptRecord[];
}

/** The cloud process's gateway ledger and its store's attempts (IPC `snapshot`). */
export async function cloudSnapshot(cloud: ChildProcess): Promise<CloudSnapshot> {
  cloud.send({ type: 'snapshot' });
  const snap = await nextMessage<{ type: 'snapshot'; ledger: LedgerEntry[]; cloud: CloudAttemptRecord[] }>(cloud, 'snapshot', 60_000);
  return { ledger: snap.ledger, cloud: snap.cloud };
}

/** After the last acks land: the cloud process's snapshot (IPC) against what the boxes saw. */
export async function reconcileRun(cloud: ChildProcess, boxes: readonly PayingBox[]): Promise<RunReconciliation> {
  await sleep(300); // last acks land
  return reconcileSeen(await cloudSnapshot(cloud), boxes);
}

/**
 * A snapshot against what the boxes saw: every attempt SUCCESS, one per payment seen paid, nothing
 * unexpected, and no result twice unless `duplicatesAllowed` (the scale-out: a worker that joins sends
 * the unacknowledged results again, by design).
 */
export function reconcileSeen(snap: CloudSnapshot, boxes: readonly PayingBox[], opts: { duplicatesAllowed?: boolean } = {}): RunReconciliation {
  const devices = boxes.map((b) => b.seen);
  const report = reconcile({ ledger: snap.ledger, cloud: snap.cloud, devices });
  const paid = devices.reduce((n, d) => n + d.filter((x) => x.state === 'SUCCESS').length, 0);
  const unexpected = boxes.reduce((n, b) => n + b.unexpected, 0);
  const duplicates = boxes.reduce((n, b) => n + b.duplicates, 0);
  const stray = opts.duplicatesAllowed ? unexpected - duplicates : unexpected;
  const allSuccess = snap.cloud.every((a) => a.state === 'SUCCESS') && snap.cloud.length === paid && stray === 0;
  return { report, recorded: snap.cloud.length, unexpected, duplicates, allSuccess, reconciled: report.ok && allSuccess };
}
