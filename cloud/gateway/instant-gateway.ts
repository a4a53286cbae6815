import type { Gateway } from './gateway.js';

/**
 * A gateway that approves every payment at once. For benchmarks and smoke tests only: it moves no
 * money and checks nothing. `scanbox-cloud start` uses it only when `--gateway instant` is given.
 */
export function instantGateway(): Gateway {
  let n = 0;
  return {
    pay: async (req) => ({ kind: 'success', gatewayTradeNo: `instant-${++n}`, amount: req.amount }),
    query: async () => ({ kind: 'not_found' }),
    reverse: async () => ({ kind: 'reversed' }),
    refund: async (req) => ({ kind: 'refunded', refundNo: req.refundNo }),
  };
}
