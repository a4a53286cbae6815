import { createRandom, hashSeed, type Random } from '../random.js';

/**
 * The chaos runner's fault schedule: a pure function of (seed, boxes, minutes), so a failing run is
 * replayed with the same faults at the same offsets. Every fault ends (its box restarted, its link
 * healed, its clock put back) before the run's injecting phase ends, and never two faults of the
 * same target overlap: box faults are spread over the boxes, the cloud is killed at most once at a time.
 */
export const FAULT_KINDS = [
  /** SIGKILL one box's agent (power cut); restart it after `pauseMs`. */
  'box_kill',
  /** SIGKILL the cloud; restart it on the same ports and store after `pauseMs`. */
  'cloud_kill',
  /** Every box ↔ broker connection reset at once (router reboot). */
  'link_drop',
  /** Nothing passes either way for `durationMs` (half-open link). */
  'black_hole',
  /** One box cut off and its reconnects refused for `durationMs`. */
  'box_cut',
  /** For `durationMs` every new code is bound to a gateway `hang` (the pay never answers; charged or not). */
  'gateway_hang',
  /** For `durationMs` every new code is bound to `gateway_error` (SYSTEMERROR/BANKERROR, then the truth). */
  'gateway_errors',
  /** For `durationMs` a share `rate` of MQTT PUBLISH packets is delivered twice, both ways. */
  'duplicates',
  /** One box's wall clock jumps forward by `forwardS`, then back to `backS` behind real time, then is put right. */
  'clock_jump',
  /**
   * For `durationMs` a share `rate` of a primary channel's calls is refused by its provider (HTTP 503):
   * its breaker opens, new payments move to the backup, and come back once it heals. Only with two
   * channels per wallet.
   */
  'channel_outage',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ScheduledFault {
  /** Offset from the start of the run. */
  atMs: number;
  kind: FaultKind;
  /** How long the fault lasts (0 for an instant one such as a link drop). */
  durationMs: number;
  /** Box index for box_kill, box_cut and clock_jump. */
  box?: number;
  /** duplicates: share of PUBLISH packets sent twice; channel_outage: share of the channel's calls refused. */
  rate?: number;
  /** clock_jump: seconds ahead of real time during the first half, then behind during the second. */
  forwardS?: number;
  backS?: number;
}

export interface ScheduleOptions {
  seed: number | string;
  boxes: number;
  minutes: number;
  /** Kinds to leave out (e.g. clock_jump where libfaketime is missing). */
  exclude?: readonly FaultKind[];
}

/** No fault in the first seconds (boxes are warming up) and a quiet tail before the settle phase. */
export const WARMUP_MS = 5_000;
export const QUIET_TAIL_MS = 5_000;
const MIN_GAP_MS = 2_500;
const MAX_GAP_MS = 9_000;

const DURATION: Record<FaultKind, [number, number]> = {
  box_kill: [1_000, 6_000],
  // Up to past the boxes' payment deadline in the chaos config (10 s): cancels pile up in outboxes.
  cloud_kill: [1_000, 15_000],
  link_drop: [0, 0],
  // Up to past the boxes' PUBACK stall (15 s) and keepalive.
  black_hole: [2_000, 20_000],
  box_cut: [2_000, 20_000],
  gateway_hang: [3_000, 12_000],
  gateway_errors: [3_000, 12_000],
  duplicates: [5_000, 20_000],
  clock_jump: [6_000, 20_000],
  channel_outage: [8_000, 20_000],
};

/** Relative weights once every kind has appeared once. */
const WEIGHT: Record<FaultKind, number> = {
  box_kill: 3,
  cloud_kill: 1,
  link_drop: 2,
  black_hole: 2,
  box_cut: 2,
  gateway_hang: 2,
  gateway_errors: 2,
  duplicates: 1,
  clock_jump: 2,
  channel_outage: 2,
};

const BOX_KINDS: ReadonlySet<FaultKind> = new Set(['box_kill', 'box_cut', 'clock_jump']);

export function chaosSchedule(opts: ScheduleOptions): ScheduledFault[] {
  if (!Number.isInteger(opts.boxes) || opts.boxes < 1) throw new Error('boxes must be a positive integer');
  if (!(opts.minutes > 0)) throw new Error('minutes must be positive');
  const random = createRandom(hashSeed('chaos-schedule', opts.seed, opts.boxes, opts.minutes));
  const kinds = FAULT_KINDS.filter((k) => !opts.exclude?.includes(k));
  if (kinds.length === 0) return [];
  const runMs = Math.round(opts.minutes * 60_000);
  const endMs = runMs - QUIET_TAIL_MS;
  // Every kind once, in a seeded order, then a weighted draw: a run long enough for |kinds| faults
  // sees every kind.
  const firstRound = shuffle(random, [...kinds]);
  const boxFreeAt = new Array<number>(opts.boxes).fill(0);
  const kindFreeAt = new Map<FaultKind, number>();
  const faults: ScheduledFault[] = [];
  let at = WARMUP_MS;
  for (let n = 0; ; n++) {
    at += n === 0 ? random.int(0, MIN_GAP_MS) : random.int(MIN_GAP_MS, MAX_GAP_MS);
    if (at >= endMs) break;
    const wanted = n < firstRound.length ? firstRound[n]! : weighted(random, kinds);
    const fault = place(random, wanted, at, endMs, boxFreeAt, kindFreeAt);
    if (fault) faults.push(fault);
  }
  return faults;
}

function place(
  random: Random,
  kind: FaultKind,
  at: number,
  endMs: number,
  boxFreeAt: number[],
  kindFreeAt: Map<FaultKind, number>,
): ScheduledFault | undefined {
  const [min, max] = DURATION[kind];
  const durationMs = Math.min(random.int(min, max), endMs - at);
  if (durationMs < min) return undefined;
  // A fault of a kind that is still in force (a window, a dead cloud) is not stacked on itself.
  if ((kindFreeAt.get(kind) ?? 0) > at) return undefined;
  const fault: ScheduledFault = { atMs: at, kind, durationMs };
  if (BOX_KINDS.has(kind)) {
    const free = boxFreeAt.map((t, i) => ({ t, i })).filter(({ t }) => t <= at);
    if (free.length === 0) return undefined;
    const box = random.pick(free).i;
    fault.box = box;
    // A killed box also needs time to start again before its next fault.
    boxFreeAt[box] = at + durationMs + (kind === 'box_kill' ? 3_000 : 500);
  } else if (kind !== 'link_drop' && kind !== 'black_hole') {
    kindFreeAt.set(kind, at + durationMs + (kind === 'cloud_kill' ? 5_000 : 0));
  }
  if (kind === 'duplicates') fault.rate = random.int(10, 50) / 100;
  // Half the calls (the degraded channel) or all of them (down).
  if (kind === 'channel_outage') fault.rate = random.pick([0.5, 1]);
  if (kind === 'clock_jump') {
    fault.forwardS = random.int(30, 900);
    fault.backS = random.int(10, 300);
  }
  return fault;
}

function weighted(random: Random, kinds: readonly FaultKind[]): FaultKind {
  const total = kinds.reduce((s, k) => s + WEIGHT[k], 0);
  let roll = random.next() * total;
  for (const k of kinds) {
    roll -= WEIGHT[k];
    if (roll < 0) return k;
  }
  return kinds[kinds.length - 1]!;
}

function shuffle<T>(random: Random, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Faults per kind, every kind listed (zero included), in FAULT_KINDS order. */
export function countByKind(faults: ReadonlyArray<{ kind: FaultKind }>): Record<FaultKind, number> {
  const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  for (const f of faults) counts[f.kind] += 1;
  return counts;
}
