import type { Gateway } from '../gateway/gateway.js';
import type { GatewayEffect } from './transaction.js';

type OutcomeOf<E extends GatewayEffect> = Awaited<ReturnType<Gateway[E['call']]>>;

/**
 * One gateway call with the per-call timeout. A timeout, an abort, or an exception from an
 * adapter all mean the same thing for money: the answer is unknown (never "failed").
 */
export async function callGateway<E extends GatewayEffect>(gateway: Gateway, effect: E, timeoutMs: number): Promise<OutcomeOf<E>> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<OutcomeOf<E>>((resolve) => {
    timer = setTimeout(() => {
      ac.abort();
      resolve({ kind: 'unknown', code: 'TIMEOUT', message: `${effect.call} timed out after ${timeoutMs} ms` } as OutcomeOf<E>);
    }, timeoutMs);
  });
  const fn = gateway[effect.call] as (req: unknown, opts: { signal: AbortSignal }) => Promise<OutcomeOf<E>>;
  const answered = fn
    .call(gateway, effect.req, { signal: ac.signal })
    .catch((err: unknown) => ({ kind: 'unknown', code: ac.signal.aborted ? 'TIMEOUT' : 'OTHER', message: `${effect.call}: ${(err as Error)?.message ?? String(err)}`.slice(0, 200) }) as OutcomeOf<E>);
  try {
    return await Promise.race([answered, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
