import type { Logger } from '../log.js';
import type { CloudStore } from '../store/store.js';

/**
 * `scanbox-cloud devices revoke` runs in another process and only writes the store; the running
 * cloud polls for revocations (every ≤ 500 ms) and disconnects those boxes, so a revoked box is
 * off within a second. Reconnecting is refused at authentication (status is read on every connect).
 */
export function watchRevocations(deps: { store: CloudStore; logger: Logger; pollMs: number; since: number; disconnect: (deviceId: string) => void }): () => void {
  let since = deps.since;
  let busy = false;
  // Two revocations can share a millisecond: re-read the last one and skip what was handled.
  const handled = new Set<string>();
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      for (const r of await deps.store.revokedSince(since - 1)) {
        since = Math.max(since, r.revokedAt);
        if (handled.has(r.deviceId)) continue;
        handled.add(r.deviceId);
        deps.logger.warn({ deviceId: r.deviceId }, 'device revoked: disconnecting');
        deps.disconnect(r.deviceId);
      }
    } catch (err) {
      deps.logger.error({ err: (err as Error).message }, 'revocation poll failed');
    } finally {
      busy = false;
    }
  }, deps.pollMs);
  timer.unref();
  return () => clearInterval(timer);
}
