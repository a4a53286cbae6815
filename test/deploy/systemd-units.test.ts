import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../cloud/config.js';

/**
 * The units in deploy/systemd/ as systemd reads them (`systemd-analyze verify`, and its offline
 * security score), and what they must say for scanbox: a user that is not root, the restart policy,
 * the data directory the program writes to, a program package.json ships, options its CLI has, and
 * for the box the serial ports of the udev rule, reachable through group dialout.
 */
const ROOT = new URL('../../', import.meta.url).pathname;
const UNITS = path.join(ROOT, 'deploy/systemd');
const INSTALL_ROOT = '/opt/scanbox/';
const scratch = mkdtempSync(path.join(tmpdir(), 'scanbox-units-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Every assignment of a section, in order (a key may repeat); comments, continuations as systemd reads them. */
function section(text: string, name: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let current = '';
  for (const raw of text.replace(/\\\r?\n/g, ' ').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) current = line;
    else if (current === `[${name}]`) out.push([line.slice(0, line.indexOf('=')).trim(), line.slice(line.indexOf('=') + 1).trim()]);
  }
  return out;
}
const one = (entries: Array<[string, string]>, key: string) => {
  const values = entries.filter(([k]) => k === key).map(([, v]) => v);
  expect(values, `exactly one ${key}=`).toHaveLength(1);
  return values[0]!;
};
const all = (entries: Array<[string, string]>, key: string) => entries.filter(([k]) => k === key).map(([, v]) => v);

/** Issues `systemd-analyze verify` prints about this file (bad values and unknown keys are only warnings: exit 0). */
function verify(file: string): { status: number | null; complaints: string[] } {
  const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
  if (r.error) throw new Error(`systemd-analyze: ${r.error.message} (apt-get install -y systemd)`);
  const name = path.basename(file);
  const complaints = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.includes(name));
  return { status: r.status, complaints };
}

function exposure(file: string): number {
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', file], { encoding: 'utf8' });
  const m = /Overall exposure level for \S+: ([\d.]+)/.exec(`${r.stdout}${r.stderr}`);
  if (!m) throw new Error(`no exposure level from systemd-analyze security:\n${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

const packageJson = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };

/** ExecStart's program: node, a script under /opt/scanbox that is the built form of one of package.json's bins, and its arguments. */
function program(execStart: string): { bin: string; part: string; args: string[] } {
  const words = execStart.split(/\s+/);
  expect(words[0]).toBe('/usr/bin/node');
  const script = words.slice(1).find((w) => !w.startsWith('--'))!;
  expect(script.startsWith(INSTALL_ROOT), `${script} is under ${INSTALL_ROOT}`).toBe(true);
  const m = /^dist\/(\w+)\/cli\.js$/.exec(script.slice(INSTALL_ROOT.length));
  expect(m, `${script} is a part's built CLI, dist/<part>/cli.js`).not.toBeNull();
  const part = m![1]!;
  const bin = `scanbox-${part}`;
  // The bin runs exactly that part's CLI (bin/launch.js: from source through tsx, else dist/<part>/cli.js).
  expect(packageJson.bin[bin], `package.json has no bin ${bin}`).toBeDefined();
  expect(readFileSync(path.join(ROOT, packageJson.bin[bin]!), 'utf8')).toContain(`launch('${part}')`);
  expect(readFileSync(path.join(ROOT, 'bin/launch.js'), 'utf8')).toContain('`../dist/${part}/cli.js`');
  return { bin, part, args: words.slice(words.indexOf(script) + 1) };
}

function optionValue(args: string[], name: string): string {
  const at = args.indexOf(name);
  expect(at, `ExecStart passes ${name}`).toBeGreaterThan(-1);
  return args[at + 1]!;
}

/** The options of `<part> start` as its --help lists them. */
function startOptions(part: string): string {
  const r = spawnSync(process.execPath, [path.join(ROOT, packageJson.bin[`scanbox-${part}`]!), 'start', '--help'], { cwd: ROOT, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

describe.each([
  ['scanbox-device.service', 'device'],
  ['scanbox-cloud.service', 'cloud'],
])('deploy/systemd/%s', (file, part) => {
  const unit = path.join(UNITS, file);
  const text = readFileSync(unit, 'utf8');
  const service = section(text, 'Service');

  it('passes systemd-analyze verify without a single complaint', () => {
    const r = verify(unit);
    expect(r.complaints).toEqual([]);
    expect(r.status).toBe(0);
  });

  it('scores OK (below 3.0) in systemd-analyze security', () => {
    // Before hardening the agent's unit scored 6.6 MEDIUM; each option removed raises the score.
    expect(exposure(unit)).toBeLessThan(3.0);
  });

  it(`runs the ${part}'s start command from the built bin, as a user that is not root, with options the CLI has`, () => {
    const exec = program(one(service, 'ExecStart'));
    expect(exec.part).toBe(part);
    expect(exec.args[0]).toBe('start');
    const user = one(service, 'User');
    expect(user).toMatch(/^scanbox(-cloud)?$/);
    expect(one(service, 'Group')).toBe(user);
    expect(one(service, 'NoNewPrivileges')).toBe('yes');
    const help = startOptions(part);
    for (const o of exec.args.filter((a) => a.startsWith('--'))) expect(help, `scanbox-${part} start has no ${o}`).toMatch(new RegExp(`(^|\\s)${o}\\b`, 'm'));
  }, 60_000);

  it('restarts after a failure, with no start limit to give up on', () => {
    expect(['always', 'on-failure']).toContain(one(service, 'Restart'));
    expect(Number(one(service, 'RestartSec'))).toBeGreaterThan(0);
    expect(one(section(text, 'Unit'), 'StartLimitIntervalSec')).toBe('0');
  });

  it('writes only to its state directory, 0700, and reads its settings from its configuration directory', () => {
    expect(one(service, 'ProtectSystem')).toBe('strict');
    const state = one(service, 'StateDirectory');
    expect(one(service, 'StateDirectoryMode')).toBe('0700');
    expect(all(service, 'ReadWritePaths')).toEqual([`/var/lib/${state}`]);
    expect(one(service, 'ConfigurationDirectory')).toBe(state);
    expect(one(service, 'UMask')).toBe('0077');
  });
});

describe('the box agent unit', () => {
  const text = readFileSync(path.join(UNITS, 'scanbox-device.service'), 'utf8');
  const service = section(text, 'Service');
  const args = program(one(service, 'ExecStart')).args;

  it('restarts on any exit but a bad config (exit 2): a cloud reboot command or a stray kill must not leave the counter without its box', () => {
    expect(one(service, 'Restart')).toBe('always');
    expect(one(service, 'RestartPreventExitStatus')).toBe('2');
  });

  it('keeps its journal in the state directory and takes optional site settings from /etc/scanbox', () => {
    expect(optionValue(args, '--data')).toBe(`/var/lib/${one(service, 'StateDirectory')}`);
    expect(one(service, 'EnvironmentFile')).toBe(`-/etc/${one(service, 'ConfigurationDirectory')}/device.env`);
  });

  it('reaches the serial ports: group dialout, and nothing that closes the device list or remaps groups', () => {
    expect(one(service, 'SupplementaryGroups')).toBe('dialout');
    for (const key of ['PrivateDevices', 'DeviceAllow', 'DevicePolicy', 'ProtectClock', 'PrivateUsers', 'DynamicUser']) {
      expect(all(service, key), `${key}= would refuse /dev/scanbox-*`).toEqual([]);
    }
  });

  it('opens the stable paths the udev rule makes, and the rule gives them to group dialout', () => {
    const rules = readFileSync(path.join(ROOT, 'deploy/udev/99-scanbox-serial.rules'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'));
    const byLink = new Map(rules.map((r) => [/SYMLINK\+="([^"]+)"/.exec(r)?.[1], r]));
    for (const [option, link] of [['--scanner', 'scanbox-scanner'], ['--ecr', 'scanbox-ecr']] as const) {
      expect(optionValue(args, option)).toBe(`/dev/${link}`);
      const rule = byLink.get(link);
      expect(rule, `a rule makes /dev/${link}`).toBeDefined();
      expect(rule).toMatch(/^SUBSYSTEM=="tty", /);
      expect(rule).toMatch(/ATTRS\{idVendor\}=="[0-9a-f]{4}", ATTRS\{idProduct\}=="[0-9a-f]{4}"/);
      expect(rule).toContain('GROUP="dialout", MODE="0660"');
    }
  });
});

describe('the cloud unit', () => {
  const service = section(readFileSync(path.join(UNITS, 'scanbox-cloud.service'), 'utf8'), 'Service');

  it('reads one config file in its configuration directory; the example config is valid and keeps the store in the state directory', () => {
    const args = program(one(service, 'ExecStart')).args;
    const configDir = `/etc/${one(service, 'ConfigurationDirectory')}/`;
    expect(optionValue(args, '--config')).toBe(`${configDir}cloud.json`);
    const example = parseConfig(JSON.parse(readFileSync(path.join(UNITS, 'cloud.example.json'), 'utf8')), 'cloud.example.json');
    expect(path.dirname(example.dbPath)).toBe(`/var/lib/${one(service, 'StateDirectory')}`);
    expect(one(service, 'WorkingDirectory')).toBe(path.dirname(example.dbPath));
    for (const f of [example.tls!.certFile, example.tls!.keyFile]) expect(f.startsWith(configDir), f).toBe(true);
    expect(example.publicHttpUrl).toMatch(/^https:/);
  });

  it('cannot reach devices or set the clock (it needs neither)', () => {
    expect(one(service, 'PrivateDevices')).toBe('yes');
    expect(one(service, 'ProtectClock')).toBe('yes');
  });
});

describe('the checks themselves', () => {
  it('systemd-analyze verify names a misspelt key and a bad value, which systemd only warns about', () => {
    const good = readFileSync(path.join(UNITS, 'scanbox-device.service'), 'utf8');
    const planted = path.join(scratch, 'scanbox-device.service');
    writeFileSync(planted, good.replace(/^UMask=/m, 'Umask=').replace(/^Restart=always$/m, 'Restart=sometimes'));
    const r = verify(planted);
    expect(r.status).toBe(0);
    expect(r.complaints.join('\n')).toMatch(/Unknown key 'Umask'/);
    expect(r.complaints.join('\n')).toMatch(/sometimes/);
  });

  it('the security score rises when hardening is taken out', () => {
    const good = readFileSync(path.join(UNITS, 'scanbox-device.service'), 'utf8');
    const planted = path.join(scratch, 'scanbox-device.service');
    writeFileSync(planted, good.replace(/^(ProtectSystem|ProtectHome|CapabilityBoundingSet|SystemCallFilter|RestrictAddressFamilies|ProtectKernel\w+)=.*$/gm, ''));
    expect(exposure(planted)).toBeGreaterThan(3.0);
  });
});
