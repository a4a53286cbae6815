import { checkTools } from './support/system-tools.js';

/**
 * Before any suite: the Debian programs the tests run are all there, or the run stops now with one
 * line naming the apt-get command (vitest.config.ts globalSetup).
 */
export default function setup(): void {
  const { fatal, notice } = checkTools();
  if (notice) console.warn(notice);
  if (!fatal) return;
  // One line, not a stack trace: this is the machine's setup, not a failing test.
  console.error(fatal);
  process.exit(1);
}
