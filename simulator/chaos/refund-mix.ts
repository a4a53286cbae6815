import type { EcrOutbound, EcrRefundResult } from '../../protocol/index.js';
import type { Random } from '../random.js';
import type { Box, Snapshot } from '../rig.js';

/**
 * Refunds in the chaos run's sales mix: now and then a customer comes back for part or all of a
 * paid sale, while the faults go on. The register does what protocol/ECR.md tells it to: a refund
 * line it got no `refund_result` for is sent again, unchanged, once the run is over (it is answered,
 * never made twice). The money is judged by reconciliation; the register's lines by `problems`.
 */
export interface RefundAsk {
  box: Box;
  ref: string;
  refundRef: string;
  amount: number;
}

type Answer = (box: Box, predicate: (m: EcrOutbound) => boolean, timeoutMs: number, since: number) => Promise<EcrOutbound | undefined>;

export interface RefundStats {
  asked: number;
  refunded: number;
  notRefunded: number;
  /** Refused by the box before anything was sent (offline, over what remains). */
  refusedAtBox: number;
  /** No answer during the run: sent again at the end. */
  resent: number;
}

/** Share of paid sales the customer brings back. */
const REFUND_SHARE = 0.25;
const ANSWER_MS = 40_000;

export class RefundMix {
  readonly stats: RefundStats = { asked: 0, refunded: 0, notRefunded: 0, refusedAtBox: 0, resent: 0 };
  private readonly open = new Map<string, RefundAsk>();
  /** Customers who come back later (minutes into the faults), per box. */
  private readonly later = new Map<Box, RefundAsk[][]>();

  constructor(
    private readonly random: Random,
    private readonly answer: Answer,
  ) {}

  /** After a PAID result: maybe a full refund, maybe two partials (the second may be refused: the first may not be final yet). */
  async afterPaid(box: Box, ref: string, amount: number): Promise<void> {
    if (this.random.next() >= REFUND_SHARE) return;
    const first = amount > 1 && this.random.next() < 0.5 ? this.random.int(1, amount - 1) : amount;
    const parts = first === amount ? [amount] : [first, amount - first];
    const asks = parts.map((part, i) => ({ box, ref, refundRef: `${ref}-R${i + 1}`, amount: part }));
    // Half come back at once, half later, when the faults have moved on (a box killed, the cloud down).
    if (this.random.next() < 0.5) return void this.later.set(box, [...(this.later.get(box) ?? []), asks]);
    await this.askAll(asks);
  }

  /** Between sales: now and then a customer from earlier comes back. */
  async comeBack(box: Box): Promise<void> {
    const queue = this.later.get(box);
    if (!queue?.length || this.random.next() >= 0.3) return;
    await this.askAll(queue.shift()!);
  }

  private async askAll(asks: RefundAsk[]): Promise<void> {
    for (const a of asks) await this.ask(a);
  }

  private async ask(req: RefundAsk): Promise<void> {
    this.stats.asked++;
    const mark = req.box.ecr.mark();
    await req.box.ecr.refund({ ref: req.ref, refundRef: req.refundRef, amount: req.amount });
    const m = await this.answer(req.box, (x) => (x.type === 'refund_result' && x.refundRef === req.refundRef) || (x.type === 'error' && x.ref === req.ref), ANSWER_MS, mark);
    if (!m) return void this.open.set(`${req.box.name}\u0000${req.refundRef}`, req);
    this.count(m);
  }

  private count(m: EcrOutbound): void {
    if (m.type === 'refund_result') {
      if (m.outcome === 'REFUNDED') this.stats.refunded++;
      else this.stats.notRefunded++;
    } else this.stats.refusedAtBox++;
  }

  /** The register's recovery: every refund line without an answer is sent again; each must now be answered. */
  async recover(): Promise<string[]> {
    const problems: string[] = [];
    await Promise.all([...this.later.values()].map(async (queue) => {
      for (const asks of queue.splice(0)) await this.askAll(asks);
    }));
    await Promise.all(
      [...this.open.values()].map(async (req) => {
        this.stats.resent++;
        const mark = req.box.ecr.mark();
        await req.box.ecr.refund({ ref: req.ref, refundRef: req.refundRef, amount: req.amount });
        const m = await req.box.ecr
          .waitFor((x) => (x.type === 'refund_result' && x.refundRef === req.refundRef) || (x.type === 'error' && x.ref === req.ref), 60_000, mark)
          .catch(() => undefined);
        if (m) this.count(m);
        else problems.push(`${req.box.name} refund ${req.refundRef}: no answer even to the same line sent again`);
      }),
    );
    this.open.clear();
    return problems;
  }
}

/**
 * The register's refund lines must match the money: REFUNDED ⇔ the cloud has the refund REFUNDED;
 * one outcome per refund; every refund the cloud knows for a box reached its register.
 */
export function refundLineProblems(boxes: Box[], snap: Snapshot): string[] {
  const problems: string[] = [];
  const cloud = new Map(snap.cloudRefunds.map((r) => [r.refundId, r]));
  for (const box of boxes) {
    const results = box.ecr.received.filter((m): m is EcrRefundResult => m.type === 'refund_result');
    const byRef = new Map<string, EcrRefundResult[]>();
    for (const r of results) byRef.set(r.refundRef, [...(byRef.get(r.refundRef) ?? []), r]);
    for (const [refundRef, rs] of byRef) {
      if (new Set(rs.map((r) => r.outcome)).size > 1) problems.push(`${box.name} refund ${refundRef}: the ECR was told both REFUNDED and NOT_REFUNDED`);
      const r = rs[0]!;
      const c = r.refundId ? cloud.get(r.refundId) : undefined;
      if (r.outcome === 'REFUNDED' && c?.state !== 'REFUNDED') problems.push(`${box.name} refund ${refundRef}: ECR told REFUNDED, the cloud has ${c?.state ?? 'nothing'}`);
      if (r.outcome === 'NOT_REFUNDED' && c?.state === 'REFUNDED') problems.push(`${box.name} refund ${refundRef}: ECR told NOT_REFUNDED, the cloud REFUNDED it`);
    }
    for (const c of snap.cloudRefunds) {
      if (c.deviceId === box.deviceId && (c.state === 'REFUNDED' || c.state === 'FAILED') && !results.some((r) => r.refundId === c.refundId)) {
        problems.push(`${box.name} refund ${c.refundRef}: the cloud has it ${c.state}, the ECR never heard`);
      }
    }
  }
  return problems;
}
