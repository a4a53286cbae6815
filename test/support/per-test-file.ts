import { afterAll, beforeAll } from 'vitest';

/**
 * A server for the calling test file: started before its first test, stopped after its last. The
 * getter is for inside tests and hooks; asking before `beforeAll` has run is a mistake, said so.
 */
export function perTestFile<T extends { stop(): Promise<void> }>(caller: string, what: string, start: () => Promise<T>, startTimeoutMs: number): () => T {
  let server: T | undefined;
  beforeAll(async () => {
    server = await start();
  }, startTimeoutMs);
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error(`${caller}: the ${what} is started in beforeAll; ask for it inside a test or hook`);
    return server;
  };
}
