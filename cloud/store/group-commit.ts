import type { AttemptWrite, CloudStore, WriteResult } from './store.js';

/**
 * Group commit: attempt writes requested in the same event-loop turn go to the store as one
 * transaction (one fsync), and each caller is answered only after that commit. With
 * synchronous=FULL a commit costs a disk flush, so throughput comes from batching, never from
 * answering before the data is durable.
 */
export class GroupCommit {
  private queue: { write: AttemptWrite; resolve: (r: WriteResult) => void; reject: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;
  private scheduled = false;

  constructor(private readonly store: CloudStore) {}

  write(write: AttemptWrite): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) await this.flushing;
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    this.flushing = (async () => {
      try {
        const results = await this.store.writeAttempts(batch.map((b) => b.write));
        batch.forEach((b, i) => b.resolve(results[i]!));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    })();
    await this.flushing;
    this.flushing = null;
  }
}
