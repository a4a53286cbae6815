/**
 * For state with no event to await (a row count in SQLite): check until true, bounded. Not a sleep:
 * it returns as soon as the condition holds and fails loudly when it never does.
 */
export async function waitUntil(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
