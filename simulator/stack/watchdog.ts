import { spawn } from 'node:child_process';

/**
 * Should this process die without stopping a server it started (a killed test worker or runner), a
 * detached shell runs `cleanup` (stop the server, remove its directory) once this process is gone.
 * `disarm` ends that shell when the server was stopped the ordinary way.
 */
export function cleanupOnExit(cleanup: string): { disarm(): void } {
  const watchdog = spawn('sh', ['-c', `tail --pid=${process.pid} -f /dev/null; ${cleanup}`], { detached: true, stdio: 'ignore' });
  watchdog.unref();
  return {
    disarm() {
      if (watchdog.pid === undefined) return;
      try {
        process.kill(-watchdog.pid);
      } catch {
        // already gone
      }
    },
  };
}
