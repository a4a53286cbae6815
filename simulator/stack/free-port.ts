import { createServer } from 'node:net';

/**
 * A loopback TCP port free at the moment of asking. Another process may take it before the caller
 * binds: callers that start a server on it retry with a new answer when the bind fails.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
