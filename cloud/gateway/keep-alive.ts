import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * One keep-alive pool per channel, as both wallet adapters use it (undici). How long an idle pooled
 * connection is kept when the wallet's server gives no Keep-Alive hint: undici's default is 4 s, so a
 * shop quiet for five seconds would pay a TLS handshake on its next pay. A server's own hint wins.
 */
export const POOL_IDLE = { keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 } as const;

/**
 * undici frees a keep-alive socket only "a full event loop cycle" after its answer
 * (lib/dispatcher/client-h1.js): a call sent sooner makes the pool open a second connection.
 */
export function socketFreed(keepAlive: boolean): Promise<void> {
  return keepAlive ? nextTurn() : Promise.resolve();
}
