import type { DownMessage, RefundState, UpMessage } from '../../protocol/index.js';
import { envelope, payMsg, type TestBox } from './harness.js';

/** Refund retries on the harness's scale: a wallet that did not answer is asked again within 50–200 ms. */
export const REFUND_FAST = { refundRetryMs: 50, refundRetryMaxMs: 200 } as const;

/** A v3 box's envelope: refunds and totals exist only in protocol v3. */
export function v3() {
  return { ...envelope(), v: 3 };
}

/** The box announces v3 (its heartbeat), so the cloud may push down/refund to it. */
export async function announceV3(box: TestBox): Promise<void> {
  await box.send('heartbeat', { ...v3(), status: { firmware: '0.3.0', uptimeS: 1, outboxDepth: 0, pendingAttempts: 0, scanner: 'open', ecr: 'open' } });
}

/** A sale paid through the cloud (`extra` may script the wallet, amount, code); resolves with its result. */
export async function pay(box: TestBox, seq: number, extra: Partial<UpMessage<'pay'>> = {}): Promise<DownMessage<'result'>> {
  await box.send('pay', { ...payMsg(box.deviceId, seq, extra), v: 3 });
  return box.next('result', (m) => m.outTradeNo === `${box.deviceId}-${seq}`);
}

export function refundMsg(box: TestBox, seq: number, outTradeNo: string, amount: number): UpMessage<'refund'> {
  return { ...v3(), refundId: `${box.deviceId}-r${seq}`, refundRef: `RF${seq}`, outTradeNo, amount, currency: 'CNY' };
}

/** The next down/refund about `refundId` (in `state`, when given). */
export function refundAnswer(box: TestBox, refundId: string, state?: RefundState, timeoutMs = 5_000): Promise<DownMessage<'refund'>> {
  return box.next('refund', (m) => m.refundId === refundId && (state === undefined || m.state === state), timeoutMs);
}
