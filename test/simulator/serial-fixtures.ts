import type { SerialEnd } from '../../simulator/devices/serial-end.js';

/** Collects every byte arriving at one end and waits (bounded) until the collected text satisfies a test. */
export class ByteSink {
  private data = Buffer.alloc(0);
  readonly chunks: Buffer[] = [];
  private readonly waiters = new Set<() => void>();

  push = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.data = Buffer.concat([this.data, chunk]);
    for (const w of this.waiters) w();
  };

  get text(): string {
    return this.data.toString('latin1');
  }

  until(done: (text: string) => boolean, timeoutMs = 3_000): Promise<string> {
    if (done(this.text)) return Promise.resolve(this.text);
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done(this.text)) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(this.text);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out after ${timeoutMs} ms; got ${JSON.stringify(this.text.slice(0, 300))}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  static on(end: SerialEnd): ByteSink {
    const sink = new ByteSink();
    end.onData(sink.push);
    return sink;
  }
}
