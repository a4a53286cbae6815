import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ECR_CAPABILITIES, ECR_VERSION, EcrInbound, EcrOutbound, EcrOutboundV2 } from '../../protocol/index.js';

/** protocol/ECR.md and the device README show lines the schemas accept: box lines exactly v2, register lines as read. */
const docs = ['../../protocol/ECR.md', '../../device/README.md'].map((p) => [p, readFileSync(new URL(p, import.meta.url), 'utf8')] as const);

function jsonLines(md: string): Record<string, unknown>[] {
  const blocks = [...md.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split('\n').filter((l) => l.trim().startsWith('{"type"'))).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the ECR spec', () => {
  it.each(docs)('%s: every example line is valid; the box lines are exactly v2', (_p, md) => {
    const lines = jsonLines(md);
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) {
      if ('seq' in l) {
        expect(EcrOutboundV2.safeParse(l).success, JSON.stringify(l)).toBe(true);
        expect(l.v).toBe(ECR_VERSION);
      } else expect(EcrInbound.safeParse(l).success, JSON.stringify(l)).toBe(true);
    }
    expect(lines.some((l) => l.type === 'hello' && 'seq' in l && JSON.stringify(l.capabilities) === JSON.stringify(ECR_CAPABILITIES))).toBe(true);
  });

  it('writes strictly: a box line without v or seq, with another v, or with an unknown field is not a v2 line; a register still reads a v1 box', () => {
    const line = { type: 'error', v: 2, seq: 1, code: 'BAD_JSON', message: 'x' };
    expect(EcrOutboundV2.safeParse(line).success).toBe(true);
    for (const bad of [{ ...line, v: 1 }, { ...line, seq: 0 }, { ...line, seq: 1.5 }, { ...line, extra: 1 }, { type: 'error', code: 'BAD_JSON', message: 'x' }]) {
      expect(EcrOutboundV2.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(EcrOutboundV2.safeParse({ type: 'hello', v: 2, seq: 3, firmware: 'f', capabilities: ['print'] }).success).toBe(false);
    expect(EcrOutbound.safeParse({ type: 'error', code: 'BAD_JSON', message: 'x' }).success).toBe(true);
    expect(EcrOutbound.safeParse({ type: 'hello', v: 3, seq: 3, firmware: 'f', capabilities: ['refund'] }).success).toBe(true);
  });
});
