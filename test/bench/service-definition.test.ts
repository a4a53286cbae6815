import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseServiceUnit, readServiceDefinition, SERVICE_UNIT_PATH } from '../../bench/service-definition.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const unit = (service: string) => `[Unit]\nDescription=x\n\n[Service]\n${service}\n\n[Install]\nWantedBy=multi-user.target\n`;
const NODE_START = 'ExecStart=/usr/bin/node /opt/scanbox/dist/device/cli.js start --data /d';

describe('the shipped unit, deploy/systemd/scanbox-device.service', () => {
  it('is the one in deploy/systemd/ and runs the agent with the two memory settings', () => {
    expect(SERVICE_UNIT_PATH).toBe(path.join(ROOT, 'deploy/systemd/scanbox-device.service'));
    const d = readServiceDefinition();
    expect(d.env.MALLOC_ARENA_MAX).toBe('2');
    expect(d.nodeFlags).toContain('--max-semi-space-size=1');
    expect(d.script).toBe('/opt/scanbox/dist/device/cli.js');
    expect(d.args.slice(0, 1)).toEqual(['start']);
    expect(d.args.join(' ')).toContain('--data /var/lib/scanbox');
  });

  it("passes only options that the CLI's start command has", () => {
    const help = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'device/cli.ts'), 'start', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(help.status, help.stderr).toBe(0);
    const options = readServiceDefinition().args.filter((a) => a.startsWith('--'));
    expect(options.length).toBeGreaterThan(2);
    for (const o of options) expect(help.stdout, `scanbox-device start has no ${o}`).toMatch(new RegExp(`(^|\\s)${o}\\b`, 'm'));
  });

  it('keeps its data directory writable under ProtectSystem=strict', () => {
    const text = readFileSync(SERVICE_UNIT_PATH, 'utf8');
    const data = readServiceDefinition().args[readServiceDefinition().args.indexOf('--data') + 1];
    expect(text).toMatch(/^ProtectSystem=strict$/m);
    expect(text).toMatch(new RegExp(`^ReadWritePaths=.*${data}`, 'm'));
    expect(text).toMatch(/^StateDirectory=scanbox$/m);
    expect(text).not.toMatch(/^(PrivateDevices|DeviceAllow|ProtectClock)=/m); // each would close off the serial ports
  });
});

describe('parseServiceUnit', () => {
  it('reads several Environment= lines, several assignments per line, and quoted values', () => {
    const d = parseServiceUnit(
      unit(['Environment=A=1 B=two', 'Environment="C=with space" \'D=single "q"\'', 'Environment=E="mid quoted" F=a\\ b', NODE_START].join('\n')),
    );
    expect(d.env).toEqual({ A: '1', B: 'two', C: 'with space', D: 'single "q"', E: 'mid quoted', F: 'a b' });
  });

  it('takes a later assignment over an earlier one, and an empty Environment= resets the list', () => {
    expect(parseServiceUnit(unit(['Environment=A=1 B=2', 'Environment=A=3', NODE_START].join('\n'))).env).toEqual({ A: '3', B: '2' });
    expect(parseServiceUnit(unit(['Environment=A=1', 'Environment=', 'Environment=B=2', NODE_START].join('\n'))).env).toEqual({ B: '2' });
  });

  it('returns the node flags between the binary and the script, with prefixes and line continuations', () => {
    const d = parseServiceUnit(unit('ExecStart=-/usr/local/bin/node --max-semi-space-size=1 \\\n  --max-old-space-size=64 dist/device/cli.js start \\\n  --scanner /dev/s'));
    expect(d).toEqual({ env: {}, nodeFlags: ['--max-semi-space-size=1', '--max-old-space-size=64'], script: 'dist/device/cli.js', args: ['start', '--scanner', '/dev/s'] });
    expect(parseServiceUnit(unit(NODE_START)).nodeFlags).toEqual([]);
  });

  it('ignores comments and other sections', () => {
    const text = `[Unit]\nEnvironment=X=unit-section\n[Service]\n# Environment=Y=commented\n; Environment=Z=commented\n${NODE_START}\n`;
    expect(parseServiceUnit(text).env).toEqual({});
  });

  it.each([
    ['no ExecStart', unit('Environment=A=1'), 'no ExecStart= in [Service]'],
    ['ExecStart only in [Unit]', `[Unit]\n${NODE_START}\n[Service]\nUser=x\n`, 'no ExecStart= in [Service]'],
    ['two ExecStart lines', unit(`${NODE_START}\n${NODE_START}`), '2 ExecStart= lines'],
    ['a binary that is not node', unit('ExecStart=/usr/bin/python3 /opt/scanbox/dist/device/cli.js start'), 'ExecStart runs "/usr/bin/python3", not node'],
    ['node running another script', unit('ExecStart=/usr/bin/node /opt/scanbox/dist/cloud/cli.js start'), 'ExecStart runs node "/opt/scanbox/dist/cloud/cli.js", not dist/device/cli.js'],
    ['node with no script', unit('ExecStart=/usr/bin/node --version'), 'ExecStart runs node with no script, not dist/device/cli.js'],
    ['the agent without start', unit('ExecStart=/usr/bin/node dist/device/cli.js status --data /d'), 'ExecStart runs dist/device/cli.js status, not "start"'],
    ['a short node option', unit('ExecStart=/usr/bin/node -r x dist/device/cli.js start'), 'ExecStart runs node "x", not dist/device/cli.js'],
    ['a node option before the script that is not --', unit('ExecStart=/usr/bin/node -e dist/device/cli.js start'), 'ExecStart node option "-e": write node options as --name or --name=value'],
    ['an Environment word without =', unit(`Environment=JUSTANAME\n${NODE_START}`), 'Environment= assignment "JUSTANAME" is not NAME=value'],
    ['an unterminated quote', unit(`Environment="A=1\n${NODE_START}`), 'unterminated "'],
  ])('refuses %s', (_what, text, message) => {
    expect(() => parseServiceUnit(text, 'my.service')).toThrow(`my.service: ${message}`);
  });
});
