import { describe, expect, it } from 'vitest';
import { runPart } from '../../simulator/processes.js';

describe('scanbox-sim fleet', () => {
  it('pairs boxes for real, rings up every sale, summarises and reconciles', async () => {
    const r = await runPart('sim', ['fleet', '--boxes', '2', '--sales', '4', '--seed', 'ci'], 120_000);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/fleet: 2 boxes paired and online/);
    const m = /boxes 2, sales 8 \((\d+) paid, (\d+) not paid\)/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1]) + Number(m![2])).toBe(8);
    expect(r.stdout).toMatch(/attempts by final state: SUCCESS \d+/);
    expect(r.stdout).not.toContain('NOT FINAL');
    expect(r.stdout).toMatch(/scan → ECR result \(ms\): p50 [\d.]+, p90 [\d.]+, p99 [\d.]+/);
    expect(r.stdout).toContain('RECONCILED');
    expect(r.stderr).toMatch(/8\/8 sales/);
  }, 150_000);
});
