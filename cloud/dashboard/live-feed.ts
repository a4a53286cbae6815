import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { CloudStore, DeviceRow } from '../store/store.js';
import { boxRow, countsOf, fleetCounts, rowSignature, type DoctorSummary } from './boxes-page.js';
import { abnormalChart, paymentsChart } from './charts.js';
import type { SafeHtml } from './html.js';
import type { TrafficSeries } from './traffic-series.js';

/**
 * The dashboards' live stream (server-sent events): one stream per open dashboard page, and one
 * computation per push for all of them. Every `intervalMs` (2 s) the feed samples the payment
 * counters into the store's minutes when payments moved (traffic-series.ts: watched or not, so a
 * dashboard on another worker charts them), and — only while a dashboard is open — reads the fleet
 * and the last hour's minutes once, diffs the fleet against the previous push, renders the changed
 * box rows, the fleet counts and the two charts once, and writes the same bytes to every stream.
 * Nothing is computed per client: twenty dashboards cost twenty socket writes more than one.
 *
 * Events: `fleet` (counts), `chart-payments`, `chart-abnormal` (each sent when it changed), `boxes`
 * (changed rows, swapped in place by id: hx-swap-oob) and `boxes-reload` (boxes came or went, or
 * this stream missed a push: the table fetches itself again). A page is drawn at a boxes `version`
 * and opens its stream with it; a stream opened after a newer version is told to reload at once.
 *
 * A stream is not use of its session, but it ends with it: when the session's end passes, the feed
 * asks the store once whether it is still live (another page may have used it since).
 */
export interface LiveFeedDeps {
  store: CloudStore;
  series: TrafficSeries;
  clock: Clock;
  logger: Logger;
  intervalMs: number;
  maxStreams: number;
  /** The session's end if it is still live (sessions.ts `stillLive`). */
  sessionLive: (idHash: string) => Promise<{ expiresAt: number } | undefined>;
  /** Doctor summaries for the boxes table, when the cloud keeps doctor reports. */
  doctors?: () => Promise<ReadonlyMap<string, DoctorSummary>>;
}

interface Stream {
  res: ServerResponse;
  idHash: string;
  expiresAt: number;
  /** A push was skipped while its socket was full: its table must reload once it drains. */
  missed: boolean;
}

/** Comment lines keep idle proxies from closing the stream. */
const KEEPALIVE_MS = 15_000;

export function sseFrame(event: string, data: SafeHtml | string): string {
  const text = typeof data === 'string' ? data : data.text;
  return `event: ${event}\n${text.split('\n').map((l) => `data: ${l}`).join('\n')}\n\n`;
}

export class LiveFeed {
  private readonly streams = new Set<Stream>();
  private snapshot: Map<string, string> | undefined;
  private last = new Map<string, string>();
  private boxesVersion = 0;
  private timer: unknown;
  private running: Promise<void> | undefined;
  private lastWriteAt = 0;
  private closed = false;
  /** What the pushes made for watchers cost the event loop so far (the dashboards benchmark reads it). */
  readonly stats = { pushes: 0, ms: 0, bytesWritten: 0 };

  constructor(private readonly deps: LiveFeedDeps) {}

  /** The boxes version a page drawn now is current with. */
  get version(): number {
    return this.boxesVersion;
  }

  get size(): number {
    return this.streams.size;
  }

  start(): void {
    this.schedule();
  }

  /** Takes over the response as an event stream; false (nothing written) when too many are open. */
  attach(req: IncomingMessage, res: ServerResponse, session: { idHash: string; expiresAt: number }, since: number, headers: Record<string, string>): boolean {
    if (this.streams.size >= this.deps.maxStreams || this.closed) return false;
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.socket?.setNoDelay(true);
    const stream: Stream = { res, idHash: session.idHash, expiresAt: session.expiresAt, missed: false };
    this.streams.add(stream);
    res.write(`retry: 5000\n\n${since !== this.boxesVersion ? sseFrame('boxes-reload', '') : ''}`);
    req.on('close', () => this.streams.delete(stream));
    return true;
  }

  /** Ends the streams of a session (log out). */
  endSession(idHash: string): void {
    for (const s of this.streams) if (s.idHash === idHash) this.end(s);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.deps.clock.clearTimeout(this.timer);
    await this.running;
    for (const s of this.streams) this.end(s);
  }

  /** One push now (the timer calls this; tests may too). */
  tick(): Promise<void> {
    this.running ??= this.push()
      .catch((err: unknown) => this.deps.logger.error({ err: (err as Error).message }, 'dashboard live push failed'))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.deps.clock.setTimeout(() => void this.tick().then(() => this.schedule()), this.deps.intervalMs);
  }

  private async push(): Promise<void> {
    const now = this.deps.clock.now();
    await this.deps.series.sample(now);
    if (this.streams.size === 0) {
      // Nobody watches: nothing is read. The next watcher's first push starts from a fresh snapshot.
      this.snapshot = undefined;
      this.last.clear();
      return;
    }
    const t0 = performance.now();
    try {
      await this.pushToWatchers(now);
    } finally {
      this.stats.pushes++;
      this.stats.ms += performance.now() - t0;
    }
  }

  private async pushToWatchers(now: number): Promise<void> {
    await this.checkSessions(now);
    const [devices, doctors, buckets] = await Promise.all([this.deps.store.listDevices(), this.deps.doctors?.() ?? new Map<string, DoctorSummary>(), this.deps.series.window(now)]);
    const boxes = this.boxFrames(devices, doctors);
    const parts = [boxes, this.ifChanged('fleet', fleetCounts(countsOf(devices))), this.ifChanged('chart-payments', paymentsChart(buckets)), this.ifChanged('chart-abnormal', abnormalChart(buckets))];
    let payload = parts.join('');
    if (!payload && now - this.lastWriteAt >= KEEPALIVE_MS) payload = ': keep-alive\n\n';
    if (!payload) return;
    this.lastWriteAt = now;
    for (const s of this.streams) this.write(s, payload, boxes !== '');
    this.stats.bytesWritten += payload.length * this.streams.size;
  }

  /** Rows whose signature changed since the last push, as out-of-band swaps; a reload when the set of boxes changed. */
  private boxFrames(devices: readonly DeviceRow[], doctors: ReadonlyMap<string, DoctorSummary>): string {
    const next = new Map(devices.map((d) => [d.deviceId, rowSignature(d, doctors.get(d.deviceId))]));
    const before = this.snapshot;
    this.snapshot = next;
    // No snapshot to diff against (the first watcher since nobody watched): whatever changed while
    // nobody watched is unknown, so every table reloads once.
    const sameSet = before !== undefined && before.size === next.size && [...next.keys()].every((id) => before.has(id));
    if (!before || !sameSet) {
      this.boxesVersion++;
      return sseFrame('boxes-reload', '');
    }
    const changed = devices.filter((d) => before.get(d.deviceId) !== next.get(d.deviceId));
    if (changed.length === 0) return '';
    this.boxesVersion++;
    return sseFrame('boxes', changed.map((d) => boxRow(d, doctors.get(d.deviceId), true).text).join(''));
  }

  private ifChanged(event: string, html: SafeHtml): string {
    if (this.last.get(event) === html.text) return '';
    this.last.set(event, html.text);
    return sseFrame(event, html);
  }

  /** A stream whose socket is still full misses this push: it reloads its table when it has drained. */
  private write(s: Stream, payload: string, hadBoxes: boolean): void {
    if (s.res.writableNeedDrain) {
      s.missed ||= hadBoxes;
      return;
    }
    if (s.missed) {
      s.missed = false;
      s.res.write(sseFrame('boxes-reload', ''));
    }
    s.res.write(payload);
  }

  private async checkSessions(now: number): Promise<void> {
    for (const s of [...this.streams].filter((x) => now >= x.expiresAt)) {
      const live = await this.deps.sessionLive(s.idHash);
      if (live) s.expiresAt = live.expiresAt;
      else this.end(s);
    }
  }

  private end(s: Stream): void {
    this.streams.delete(s);
    s.res.end();
  }
}
