import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';
import type { AsyncWriter, SqliteWriter } from './sqlite-writer.js';

/** What crosses between the store and its commit thread. */
export type WriterCall = { id: number; method: 'writeAttempts' | 'updateFleet' | 'markStale' | 'checkpoint'; arg: unknown } | { id: number; method: 'close' };
export type WriterReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; message: string; code?: string } | { ready: true };

/**
 * The store's writes on a worker thread with its own SQLite connection (WAL lets the main
 * connection keep reading). A caller is answered only after the worker's transaction committed,
 * so "durable before any effect" holds exactly as inline; what changes is that the event loop is
 * free while the disk flushes, and the next group gathers meanwhile.
 *
 * If the thread dies, every pending and later call fails with STORE_UNAVAILABLE: a write is never
 * reported done that was not committed.
 */
export class CommitThread implements AsyncWriter {
  private readonly pending = new Map<number, { resolve: (v: never) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private dead: Error | null = null;
  private readonly exited: Promise<void>;
  /** Resolved once the thread has its connection open; rejected if it never gets there. */
  readonly ready: Promise<void>;
  private markReady!: { resolve: () => void; reject: (e: Error) => void };

  private constructor(private readonly worker: Worker) {
    this.ready = new Promise((resolve, reject) => (this.markReady = { resolve, reject }));
    this.ready.catch(() => undefined);
    worker.on('message', (r: WriterReply) => ('ready' in r ? this.markReady.resolve() : this.settle(r)));
    worker.on('error', (err) => this.fail(err));
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    void this.exited.then(() => this.fail(new Error('the commit thread exited')));
  }

  static start(dbPath: string): CommitThread {
    // From source (tsx) the worker must load the TypeScript loader itself: workers get a fresh loader.
    const here = fileURLToPath(import.meta.url);
    const entry = new URL(`./commit-thread-worker${path.extname(here)}`, import.meta.url).href;
    const load = here.endsWith('.ts')
      ? `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`
      : `import(${JSON.stringify(entry)})`;
    return new CommitThread(new Worker(load, { eval: true, workerData: { dbPath } }));
  }

  writeAttempts(writes: Parameters<AsyncWriter['writeAttempts']>[0]): ReturnType<AsyncWriter['writeAttempts']> {
    return this.call('writeAttempts', writes);
  }

  updateFleet(updates: Parameters<AsyncWriter['updateFleet']>[0]): Promise<void> {
    return this.call('updateFleet', updates);
  }

  markStale(before: number): Promise<string[]> {
    return this.call('markStale', before);
  }

  /** Copy the WAL back into the database (PASSIVE: readers and the other connection go on). */
  async checkpoint(): Promise<void> {
    await this.call('checkpoint', undefined);
  }

  /** Why the thread can take no more writes, once it has died. */
  get failure(): Error | null {
    return this.dead;
  }

  /** Something asked of the thread is not answered yet (it may hold the write lock). */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  /** After every write already asked for (the worker answers in order), close its connection. */
  async close(): Promise<void> {
    if (!this.dead) await this.call('close', undefined).catch(() => undefined);
    await this.worker.terminate();
    await this.exited;
  }

  private call<T>(method: WriterCall['method'], arg: unknown): Promise<T> {
    if (this.dead) return Promise.reject(this.dead);
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: never) => void, reject });
      this.worker.postMessage({ id, method, arg } satisfies WriterCall);
    });
  }

  private settle(r: Exclude<WriterReply, { ready: true }>): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    if (r.ok) p.resolve(r.value as never);
    else p.reject(Object.assign(new Error(r.message), r.code ? { code: r.code } : {}));
  }

  private fail(cause: Error): void {
    this.dead ??= new ProtocolError(ErrorCode.STORE_UNAVAILABLE, `cloud store commit thread stopped: ${cause.message}`);
    this.markReady.reject(this.dead);
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }
}

/** Largest group still committed on the event loop when the thread is idle; see `threadedWriter`. */
export const INLINE_GROUP_MAX = 2;
/** How often the thread checkpoints on behalf of the main connection (which never does). */
export const CHECKPOINT_EVERY_MS = 1000;

/**
 * Where a commit runs, by load. A small group (one payment at a counter on a quiet node) commits on
 * the event loop: handing it to the thread and back costs more than the fsync it would hide (latency
 * benchmark, same afternoon: the cloud's pay round trip 1.9–2.0 ms inline against 2.9 ms through
 * the thread). A larger group — the node is busy — commits on the thread, where its fsync overlaps
 * the next group's gathering. Inline only while the thread is idle, so the two connections never
 * wait on each other's write lock (GroupCommit keeps one group in flight).
 *
 * The main connection never checkpoints (that would copy the WAL back on the event loop), so the
 * thread does it for both, on a timer. While the checkpoint is in flight the thread is busy and
 * writes queue behind it instead of racing it: a checkpoint raced by a steady trickle of commits
 * never completes, and then the WAL is never restarted and grows without end.
 */
export function threadedWriter(thread: CommitThread, inline: SqliteWriter): AsyncWriter & { thread: CommitThread } {
  // Only after inline commits: the thread's own commits checkpoint themselves, and an idle node asks nothing.
  let inlineSinceCheckpoint = false;
  const timer = setInterval(() => {
    if (!inlineSinceCheckpoint) return;
    inlineSinceCheckpoint = false;
    void thread.checkpoint().catch(() => undefined);
  }, CHECKPOINT_EVERY_MS);
  timer.unref();
  return {
    thread,
    // A dead thread fails every write, inline ones too: no half-working store that stops checkpointing.
    writeAttempts: async (writes) => {
      if (writes.length > INLINE_GROUP_MAX || thread.busy || thread.failure) return thread.writeAttempts(writes);
      inlineSinceCheckpoint = true;
      return inline.writeAttempts(writes);
    },
    updateFleet: (updates) => thread.updateFleet(updates),
    markStale: (before) => thread.markStale(before),
    ready: thread.ready,
    close: () => {
      clearInterval(timer);
      return thread.close();
    },
  };
}
