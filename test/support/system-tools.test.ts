import { describe, expect, it } from 'vitest';
import { checkTools, TEST_TOOLS, type SystemTool } from './system-tools.js';
import { onPath } from '../../simulator/system-tools.js';

/** The check `npm test` runs before any suite (test/global-setup.ts). */
const tools: SystemTool[] = [
  { program: 'socat', debianPackage: 'socat', neededBy: 'ptys', required: true },
  { program: 'openssl', debianPackage: 'openssl', neededBy: 'certs', required: true },
  { program: 'faketime', debianPackage: 'faketime', neededBy: 'clock jumps', required: false },
];

describe('checkTools', () => {
  it('names every missing required program and the one apt-get line that installs them', () => {
    const r = checkTools(tools, (p) => p === 'faketime');
    expect(r.fatal).toBe('scanbox tests need programs this machine lacks — socat (ptys), openssl (certs): sudo apt-get install -y socat openssl');
    expect(r.notice).toBeNull();
  });

  it('a missing optional program is a notice, never fatal', () => {
    expect(checkTools(tools, (p) => p !== 'faketime')).toEqual({ fatal: null, notice: 'scanbox tests: running without faketime (clock jumps): sudo apt-get install -y faketime' });
  });

  it('this machine has every required tool (what the global setup found)', () => {
    expect(checkTools(TEST_TOOLS).fatal).toBeNull();
  });
});

describe('onPath', () => {
  it('finds an executable on the PATH given, and only there', () => {
    expect(onPath('node', '/nonexistent:/usr/bin')).toBe(true);
    expect(onPath('node', '/nonexistent')).toBe(false);
    expect(onPath('node', '')).toBe(false);
    // A file that is not executable does not count.
    expect(onPath('passwd', '/etc')).toBe(false);
  });
});
