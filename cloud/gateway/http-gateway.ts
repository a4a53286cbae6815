import { GATEWAY_CALLS, type CallOptions, type Gateway, type GatewayCall } from './gateway.js';

/** A Gateway that talks to `<baseUrl>/v1/<call>` (see gateway.ts for the wire format). */
export function httpGateway(baseUrl: string): Gateway {
  async function call<C extends GatewayCall>(name: C, req: unknown, opts: CallOptions) {
    const { outcome } = GATEWAY_CALLS[name];
    let res: Response;
    try {
      res = await fetch(`${baseUrl}/v1/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(req),
        signal: opts.signal,
      });
    } catch (err) {
      const timedOut = opts.signal.aborted;
      return { kind: 'unknown', code: timedOut ? 'TIMEOUT' : 'OTHER', message: timedOut ? `${name} timed out` : `${name}: ${(err as Error).message}` } as const;
    }
    if (res.status >= 500) return { kind: 'unknown', code: 'HTTP_5XX', message: `${name}: HTTP ${res.status}` } as const;
    const parsed = outcome.safeParse(await res.json().catch(() => undefined));
    // An answer we cannot read is no answer at all: the money state is unknown, not failed.
    return parsed.success ? parsed.data : ({ kind: 'unknown', code: 'BAD_SIGNATURE', message: `${name}: unreadable gateway answer (HTTP ${res.status})` } as const);
  }
  return {
    pay: (req, opts) => call('pay', req, opts) as ReturnType<Gateway['pay']>,
    query: (req, opts) => call('query', req, opts) as ReturnType<Gateway['query']>,
    reverse: (req, opts) => call('reverse', req, opts) as ReturnType<Gateway['reverse']>,
    refund: (req, opts) => call('refund', req, opts) as ReturnType<Gateway['refund']>,
  };
}
