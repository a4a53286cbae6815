/**
 * Items that arrive over time (ECR lines, MQTT messages, log lines), and a bounded wait for the next
 * one matching a predicate — so tests await events instead of sleeping.
 */
export class Collector<T> {
  readonly items: T[] = [];
  private waiters: { pred: (t: T) => boolean; resolve: (t: T) => void }[] = [];

  push(item: T): void {
    this.items.push(item);
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred(item)) return true;
      w.resolve(item);
      return false;
    });
  }

  /** The first item (already here or still to come) matching `pred`, or a rejection naming `what`. */
  find(pred: (t: T) => boolean, what: string, timeoutMs = 10_000, from = 0): Promise<T> {
    const have = this.items.slice(from).find(pred);
    if (have !== undefined) return Promise.resolve(have);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; saw ${this.items.length} items: ${JSON.stringify(this.items.slice(-8)).slice(0, 1500)}`));
      }, timeoutMs);
      const waiter = {
        pred,
        resolve: (t: T) => {
          clearTimeout(timer);
          resolve(t);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Items from here on: pass as `from` to `find` to wait for a later occurrence. */
  mark(): number {
    return this.items.length;
  }

  filter(pred: (t: T) => boolean): T[] {
    return this.items.filter(pred);
  }
}
