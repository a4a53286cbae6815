import type { DeviceAttemptRecord } from '../../protocol/index.js';
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
 *  stop → clean DISCONNECT of every box, exit.
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
  for (const id of s.ids) boxes.push(new PayingBox(id, s.secret, host, port, { keepaliveS: s.keepaliveS }));
  timers.push(setInterval(flushSamples, 250));
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < boxes.length) {
      const b = boxes[next++]!;
      try {
        await b.connect();
        b.client.onClose = () => {
          if (!stopping) disconnects++;
        };
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
