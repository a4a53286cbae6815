import { describe, expect, it } from 'vitest';
import { INLINE_GROUP_MAX, threadedWriter, type CommitThread } from '../../cloud/store/commit-thread.js';
import type { SqliteWriter } from '../../cloud/store/sqlite-writer.js';
import type { AttemptWrite } from '../../cloud/store/store.js';

/** Where a group commits: the routing rule alone, with a fake thread and a fake inline writer. */
function rig(thread: { busy: boolean; failure: Error | null }) {
  const went: string[] = [];
  const fakeThread = {
    ...thread,
    ready: Promise.resolve(),
    writeAttempts: async (w: AttemptWrite[]) => (went.push(`thread:${w.length}`), w.map(() => ({ ok: true as const, version: 1 }))),
    updateFleet: async () => void went.push('thread:fleet'),
    markStale: async () => (went.push('thread:stale'), []),
    close: async () => undefined,
  } as unknown as CommitThread;
  const inline = { writeAttempts: (w: AttemptWrite[]) => (went.push(`inline:${w.length}`), w.map(() => ({ ok: true as const, version: 1 }))) } as unknown as SqliteWriter;
  return { writer: threadedWriter(fakeThread, inline), went };
}
const group = (n: number) => Array.from({ length: n }, () => ({}) as AttemptWrite);

describe('threadedWriter', () => {
  it('commits a small group inline while the thread is idle, a larger one on the thread', async () => {
    const { writer, went } = rig({ busy: false, failure: null });
    await writer.writeAttempts(group(1));
    await writer.writeAttempts(group(INLINE_GROUP_MAX));
    await writer.writeAttempts(group(INLINE_GROUP_MAX + 1));
    expect(went).toEqual(['inline:1', `inline:${INLINE_GROUP_MAX}`, `thread:${INLINE_GROUP_MAX + 1}`]);
  });

  it('sends even a lone write to the thread while it has work in flight (the two connections never wait on each other)', async () => {
    const { writer, went } = rig({ busy: true, failure: null });
    await writer.writeAttempts(group(1));
    expect(went).toEqual(['thread:1']);
  });

  it('once the thread has died, nothing commits inline either', async () => {
    const { writer, went } = rig({ busy: false, failure: new Error('dead') });
    await writer.writeAttempts(group(1));
    expect(went).toEqual(['thread:1']);
  });

  it('fleet updates always go to the thread', async () => {
    const { writer, went } = rig({ busy: false, failure: null });
    await writer.updateFleet([]);
    await writer.markStale(1);
    expect(went).toEqual(['thread:fleet', 'thread:stale']);
  });
});
