import { backoffDelay, DEFAULT_BACKOFF, type DeviceAttemptRecord } from '../../protocol/index.js';
import { hostPort } from '../lite-mqtt.js';
import { PayingBox } from '../pay-client.js';
import { tell, type IpcMessage } from '../harness.js';

/**
 * One fleet load process: a few thousand boxes as LiteClients. IPC:
 *  start {mqttUrl, ids, secret, heartbeatS, keepaliveS, concurrency, sample, payEveryMs}
 *    → connects every box (at most `concurrency` CONNECTs outstanding), each then subscribes and
 *      sends its first heartbeat, as the agent does; → `connected` {ms, failed}
 *    then every box heartbeats every `heartbeatS` (phase spread evenly), carrying a counter in
 *    `pendingAttempts` so the registry row shows which heartbeat it has; sampled boxes report
 *    `hb` {id, n, sentAt}; one payment from a random box every `payEveryMs`.
 *  stats → `stats` {payMs, seen, heartbeats, disconnects, unexpected}
 *  expectRestart {counterFloor?} → the cloud (or the broker) is about to be restarted: every box,
 *    once its connection drops, reconnects as the agent does (full-jitter backoff, DEFAULT_BACKOFF),
 *    subscribes and heartbeats; when every box has dropped and is back → `allUp` {at (epoch ms),
 *    reconnectTries, backAt (when each box was back, epoch ms)}. With `counterFloor`, a box's heartbeat counter continues above it once it is
 *    back, so a registry row showing more than the floor was written from a heartbeat sent after
 *    the drop.
 *  stop → clean DISCONNECT of every box, exit.
 * Four boxes share a source address in 127.0.0.0/8 (`firstIndex` numbers this process's boxes), as
 * boxes of one shop share its address: the cloud caps unauthenticated connections per address.
 */
interface Start {
  mqttUrl: string;
  ids: string[];
  secret: string;
  heartbeatS: number;
  keepaliveS: number;
  concurrency: number;
  sample: string[];
  payEveryMs: number;
  firstIndex: number;
}

const BOXES_PER_ADDRESS = 4;

/** 127.1.0.1, 127.1.0.2, …: one loopback address per `BOXES_PER_ADDRESS` boxes. */
function sourceAddress(boxIndex: number): string {
  const a = Math.floor(boxIndex / BOXES_PER_ADDRESS) + 1;
  return `127.${1 + (a >> 16)}.${(a >> 8) & 255}.${a & 255}`;
}

const boxes: PayingBox[] = [];
const counters = new Map<PayingBox, number>();
const timers: NodeJS.Timeout[] = [];
const payMs: number[] = [];
let disconnects = 0;
let hbBatch: { id: string; n: number; sentAt: number }[] = [];
let sampled = new Set<string>();
let stopping = false;

async function start(s: Start): Promise<void> {
  sampled = new Set(s.sample);
  const { host, port } = hostPort(s.mqttUrl);
  s.ids.forEach((id, i) => boxes.push(new PayingBox(id, s.secret, host, port, { keepaliveS: s.keepaliveS, localAddress: sourceAddress(s.firstIndex + i) })));
  timers.push(setInterval(flushSamples, 250));
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < boxes.length) {
      const b = boxes[next++]!;
      try {
        await b.connect();
        b.client.onClose = () => onDrop(b);
        heartbeat(b);
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(s.concurrency, boxes.length) }, worker));
  tell({ type: 'connected', ms: performance.now() - t0, failed });

  // Periodic heartbeats, phases spread over the interval like boxes that booted at random times.
  const period = s.heartbeatS * 1000;
  boxes.forEach((b, i) => {
    const first = setTimeout(() => {
      heartbeat(b);
      timers.push(setInterval(() => heartbeat(b), period));
    }, (period * i) / boxes.length);
    timers.push(first);
  });
  if (s.payEveryMs > 0) {
    timers.push(
      setInterval(() => {
        const b = boxes[Math.floor(Math.random() * boxes.length)]!;
        if (!b.client.connected) return;
        const t = performance.now();
        void b.pay().then(() => payMs.push(performance.now() - t));
      }, s.payEveryMs),
    );
  }
}

// ── restart of the cloud: reconnect like the agent ────────────────────────────────────────────
let awaitingReturn: Set<PayingBox> | null = null;
const reconnecting = new Set<PayingBox>();
let reconnectTries = 0;
let counterFloor = 0;
/** When each box was back (epoch ms), this restart. */
let backAt: number[] = [];

function onDrop(b: PayingBox): void {
  if (stopping) return;
  disconnects++;
  if (awaitingReturn && !reconnecting.has(b)) void reconnect(b);
}

async function reconnect(b: PayingBox): Promise<void> {
  reconnecting.add(b);
  for (let failures = 0; !stopping; failures++) {
    await new Promise((r) => setTimeout(r, backoffDelay(failures, Math.random, DEFAULT_BACKOFF)));
    reconnectTries++;
    try {
      await b.connect();
      break;
    } catch {
      // refused or cut: the next try waits longer
    }
  }
  reconnecting.delete(b);
  backAt.push(Date.now());
  counters.set(b, Math.max(counters.get(b) ?? 0, counterFloor));
  heartbeat(b);
  awaitingReturn?.delete(b);
  if (awaitingReturn?.size === 0) {
    awaitingReturn = null;
    tell({ type: 'allUp', at: Date.now(), reconnectTries, backAt });
  }
}

function heartbeat(b: PayingBox): void {
  if (!b.client.connected || stopping) return;
  const n = (counters.get(b) ?? 0) + 1;
  counters.set(b, n);
  const sentAt = Date.now();
  void b.heartbeat(n);
  if (sampled.has(b.deviceId)) hbBatch.push({ id: b.deviceId, n, sentAt });
}

function flushSamples(): void {
  if (hbBatch.length === 0) return;
  tell({ type: 'hb', samples: hbBatch });
  hbBatch = [];
}

process.on('message', (m: IpcMessage) => {
  if (m.type === 'start') void start(m as unknown as Start);
  else if (m.type === 'expectRestart') {
    awaitingReturn = new Set(boxes);
    reconnectTries = 0;
    backAt = [];
    counterFloor = typeof m.counterFloor === 'number' ? m.counterFloor : 0;
    tell({ type: 'expectingRestart' });
  }
  else if (m.type === 'stats') {
    flushSamples();
    const seen: DeviceAttemptRecord[] = boxes.flatMap((b) => b.seen);
    tell({
      type: 'stats',
      payMs,
      seen,
      heartbeats: boxes.reduce((n, b) => n + b.heartbeats, 0),
      connected: boxes.filter((b) => b.client.connected).length,
      disconnects,
      unexpected: boxes.reduce((n, b) => n + b.unexpected, 0),
      rssMiB: process.memoryUsage().rss / 2 ** 20,
    });
  } else if (m.type === 'stop') {
    stopping = true;
    for (const t of timers) clearTimeout(t);
    void Promise.all(boxes.map((b) => b.client.end().catch(() => undefined))).then(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
