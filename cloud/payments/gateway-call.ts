import type { Clock } from '../../protocol/clock.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Metrics } from '../metrics.js';
import type { GatewayEffect } from './transaction.js';

type OutcomeOf<E extends GatewayEffect> = Awaited<ReturnType<Gateway[E['call']]>>;

export interface GatewayCallOptions {
  timeoutMs: number;
  /** Where the call's latency and outcome are recorded (gateway_call_duration_seconds). */
  metrics: Metrics;
  /** Times the call: its monotonic time when it has one, so a clock step is not a latency. */
  clock: Clock;
}

/**
 * One gateway call with the per-call timeout. A timeout, an abort, or an exception from an
 * adapter all mean the same thing for money: the answer is unknown (never "failed").
 */
export async function callGateway<E extends GatewayEffect>(gateway: Gateway, effect: E, opts: GatewayCallOptions): Promise<OutcomeOf<E>> {
  const elapsed = stopwatch(opts.clock);
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<OutcomeOf<E>>((resolve) => {
    timer = setTimeout(() => {
      ac.abort();
      resolve({ kind: 'unknown', code: 'TIMEOUT', message: `${effect.call} timed out after ${opts.timeoutMs} ms` } as OutcomeOf<E>);
    }, opts.timeoutMs);
  });
  const fn = gateway[effect.call] as (req: unknown, opts: { signal: AbortSignal }) => Promise<OutcomeOf<E>>;
  const answered = fn
    .call(gateway, effect.req, { signal: ac.signal })
    .catch((err: unknown) => ({ kind: 'unknown', code: ac.signal.aborted ? 'TIMEOUT' : 'OTHER', message: `${effect.call}: ${(err as Error)?.message ?? String(err)}`.slice(0, 200) }) as OutcomeOf<E>);
  try {
    const outcome = await Promise.race([answered, timedOut]);
    const code = outcome.kind === 'unknown' ? { code: outcome.code } : {};
    opts.metrics.observe('gateway_call_duration_seconds', { call: effect.call, channel: effect.req.channel, outcome: outcome.kind, ...code }, elapsed());
    return outcome;
  } finally {
    clearTimeout(timer);
  }
}

/** Seconds since it was made. */
function stopwatch(clock: Clock): () => number {
  const read = () => clock.monotonic?.() ?? clock.now();
  const start = read();
  return () => Math.max(0, read() - start) / 1000;
}
