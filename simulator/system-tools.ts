import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Whether a program is on this machine's PATH, found the way a shell's `command -v` finds it,
 * without running it: the demo and the test setup ask before they need socat, not after.
 */
export function onPath(program: string, pathEnv: string | undefined = process.env.PATH): boolean {
  return (pathEnv ?? '').split(delimiter).some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
