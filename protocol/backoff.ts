/**
 * One retry delay rule for every reconnect and retry in the product. Full jitter, so a fleet that
 * lost the cloud at the same instant does not come back at the same instant either.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };

/** Delay before retry number `attempt` (0-based); `random` returns [0, 1). */
export function backoffDelay(attempt: number, random: () => number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(policy.baseMs / 2 + random() * (ceiling - policy.baseMs / 2));
}
