import { onPath } from '../../simulator/system-tools.js';

/**
 * The programs from Debian packages the test suites run, checked before any suite starts
 * (test/global-setup.ts), so that a machine without one fails at once with the command that
 * installs it, instead of minutes later in a timeout deep inside one test.
 */
export interface SystemTool {
  program: string;
  debianPackage: string;
  /** What needs it, in a few words. */
  neededBy: string;
  /** Optional tools only narrow what is tested; their absence is said, not fatal. */
  required: boolean;
}

export const TEST_TOOLS: readonly SystemTool[] = [
  { program: 'socat', debianPackage: 'socat', neededBy: 'pseudo-terminal serial lines', required: true },
  { program: 'openssl', debianPackage: 'openssl', neededBy: 'test certificates made at run time', required: true },
  { program: 'systemd-analyze', debianPackage: 'systemd', neededBy: 'checking the systemd units', required: true },
  { program: 'promtool', debianPackage: 'prometheus', neededBy: 'checking the Prometheus alert rules', required: true },
  // mosquitto_ctrl: in /usr/bin, where mosquitto itself (/usr/sbin) may be off an ordinary user's PATH.
  { program: 'mosquitto_ctrl', debianPackage: 'mosquitto', neededBy: 'the external-broker tests (Mosquitto with dynamic security)', required: true },
  { program: 'faketime', debianPackage: 'faketime', neededBy: "the chaos test's clock jumps", required: false },
];

export interface ToolCheck {
  /** One line for the person at the terminal, or null when nothing required is missing. */
  fatal: string | null;
  /** One line about missing optional tools, or null. */
  notice: string | null;
}

export function checkTools(tools: readonly SystemTool[] = TEST_TOOLS, present: (program: string) => boolean = (p) => onPath(p)): ToolCheck {
  const missing = tools.filter((t) => !present(t.program));
  const line = (list: SystemTool[]) => `${list.map((t) => `${t.program} (${t.neededBy})`).join(', ')}: sudo apt-get install -y ${[...new Set(list.map((t) => t.debianPackage))].join(' ')}`;
  const required = missing.filter((t) => t.required);
  const optional = missing.filter((t) => !t.required);
  return {
    fatal: required.length ? `scanbox tests need programs this machine lacks — ${line(required)}` : null,
    notice: optional.length ? `scanbox tests: running without ${line(optional)}` : null,
  };
}
