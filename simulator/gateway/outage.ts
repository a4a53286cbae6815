/**
 * A channel's outage, as a wallet simulator plays it: a share of the requests is answered HTTP 503
 * before the wallet acts on them — the front door of a degraded provider. 0 is healthy, 1 is down.
 * The refusals are spread evenly (every other request at 0.5), not drawn: a run repeats exactly, and
 * "half the calls fail" is exactly half however few calls a test makes.
 */
export class Outage {
  private share = 0;
  private debt = 0;

  set(share: number): void {
    if (!(share >= 0 && share <= 1)) throw new RangeError(`outage share must be within [0, 1], not ${share}`);
    this.share = share;
    this.debt = 0;
  }

  /** Whether this request is refused. */
  hit(): boolean {
    this.debt += this.share;
    if (this.debt < 1 - 1e-9) return false;
    this.debt -= 1;
    return true;
  }
}

export const OUTAGE_PAGE = '<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>';
