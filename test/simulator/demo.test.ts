import { describe, expect, it } from 'vitest';
import { runPart } from '../../simulator/processes.js';

/** The README's first quick-start command, run as a user would, as its own process; and the same story through the real wallet adapters. */
describe.each([[[]], [['--wallets', 'real-formats']]])('npm run demo %j', (extra: string[]) => {
  it('tells the whole story and exits 0 only because reconciliation holds', async () => {
    const r = await runPart('sim', ['demo', '--seed', 'ci', ...extra], 120_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toMatch(/box paired through POST \/v1\/pair as sb\w+, connected/);
    // One result line per sale, and the outcome each chapter is about.
    const results = [...out.matchAll(/ECR ← RESULT (PAID|NOT_PAID) (¥[\d.]+)/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(results).toEqual(['PAID ¥12.34', 'PAID ¥56.00', 'NOT_PAID ¥8.80', 'PAID ¥23.00', 'NOT_PAID ¥99.00', 'PAID ¥15.00', 'NOT_PAID ¥42.00', 'PAID ¥30.00', 'NOT_PAID ¥30.00', 'PAID ¥30.00']);
    // The wallet charged 13 fen short: the register hears NOT_PAID with the reason, the charge is undone.
    expect(out).toMatch(/RESULT NOT_PAID ¥42\.00 \(AMOUNT_MISMATCH\)/);
    // Undone, whichever way: Alipay's cancel of a paid trade refunds it, and its late check may say so.
    expect(out).toMatch(/-8 +\S+ +42\.00 +0\.00 +(REVERSED|REFUNDED) +(REVERSED|REFUNDED) +ok/);
    expect(out).toContain('progress WAITING_PASSWORD');
    expect(out).toContain('error OFFLINE');
    expect(out).toMatch(/-4 +\S+ +23\.00 +0\.00 +REFUNDED +REFUNDED +ok/);
    // R-001 comes back in two partial refunds from the register; one fen more is refused at the box.
    expect([...out.matchAll(/ECR ← REFUND (REFUNDED|NOT_REFUNDED) (¥[\d.]+)/g)].map((m) => `${m[1]} ${m[2]}`)).toEqual(['REFUNDED ¥5.00', 'REFUNDED ¥7.34']);
    expect(out).toContain('error REFUND_EXCEEDS_REMAINING');
    expect(out).toContain('register refunds 2 (2 refunded, 12.34), gateway net charged 154.00');
    // Closing time: the day's totals from the cloud, net of the refunds.
    expect(out).toMatch(/ECR ← TOTALS \d{4}-\d{2}-\d{2}: .*wechat 4 paid ¥87\.34, 2 refunds ¥12\.34, net ¥75\.00/);
    // The primary channel down: its breaker opens, the backup takes the next sale, the healed primary the one after.
    expect(out).toMatch(/channel: (primary|wechat) breaker OPEN/);
    expect(out).toMatch(/channel: R-009 went through (backup|wechat-backup)\n/);
    expect(out).toMatch(/channel: healed: R-010 probed (primary|wechat), which is closed again/);
    expect(out).toContain('RECONCILED');
  }, 150_000);
});
