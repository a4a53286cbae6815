import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * How the box runs its agent, read from the shipped systemd unit (`deploy/systemd/scanbox-device.service`):
 * the environment (`Environment=` lines) and the node flags of `ExecStart=`. The footprint benchmark
 * starts the agent with these, so what is measured and what is shipped cannot drift apart.
 */
export interface ServiceDefinition {
  env: Record<string, string>;
  /** Node/V8 options between the node binary and the script, e.g. `--max-semi-space-size=1`. */
  nodeFlags: string[];
  /** The script ExecStart runs (ends with dist/device/cli.js) and its arguments (`start …`). */
  script: string;
  args: string[];
}

export const SERVICE_UNIT_NAME = 'deploy/systemd/scanbox-device.service';

const here = (rel: string) => fileURLToPath(new URL(rel, import.meta.url));
/**
 * The unit file ships in deploy/systemd/. `npm run build` (tsc) copies no .service file into dist/,
 * so from dist/bench/ the source tree's copy is used too.
 */
export const SERVICE_UNIT_PATH = [here(`../${SERVICE_UNIT_NAME}`), here(`../../${SERVICE_UNIT_NAME}`)].find((p) => existsSync(p)) ?? here(`../${SERVICE_UNIT_NAME}`);

export function readServiceDefinition(file: string = SERVICE_UNIT_PATH): ServiceDefinition {
  return parseServiceUnit(readFileSync(file, 'utf8'), file);
}

/** Parses a unit's [Service] section. Throws an Error naming the problem; `source` prefixes the message. */
export function parseServiceUnit(text: string, source = 'unit'): ServiceDefinition {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  let env: Record<string, string> = {};
  let execStart: string[] = [];
  let section = '';
  // A trailing backslash continues the line (systemd joins with a space).
  for (const raw of text.replace(/\\\r?\n/g, ' ').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) section = line;
    else if (section === '[Service]' && line.includes('=')) {
      const key = line.slice(0, line.indexOf('=')).trim();
      const value = line.slice(line.indexOf('=') + 1).trim();
      if (key === 'Environment') {
        if (!value) env = {}; // an empty assignment resets the list, as in systemd
        for (const w of words(value, fail)) {
          const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(w);
          if (!m) fail(`Environment= assignment "${w}" is not NAME=value`);
          else env[m[1]!] = m[2]!;
        }
      } else if (key === 'ExecStart') execStart = value ? [...execStart, value] : [];
    }
  }
  if (execStart.length === 0) fail('no ExecStart= in [Service]');
  if (execStart.length > 1) fail(`${execStart.length} ExecStart= lines; the agent's service runs one command`);
  // Prefixes: "-" ignore failure, "@" next word is argv[0], ":", "+", "!" privilege handling.
  const prefix = /^[-@:+!]*/.exec(execStart[0]!)![0];
  const argv = words(execStart[0]!.slice(prefix.length), fail);
  if (prefix.includes('@')) argv.splice(1, 1);
  const [bin = '', ...rest] = argv;
  if (!/^node(js)?\d*$/.test(bin.slice(bin.lastIndexOf('/') + 1))) fail(`ExecStart runs "${bin}", not node`);
  const at = rest.findIndex((w) => !w.startsWith('-'));
  const script = at < 0 ? '' : rest[at]!;
  if (!/(^|\/)dist\/device\/cli\.js$/.test(script)) fail(`ExecStart runs node ${script ? `"${script}"` : 'with no script'}, not dist/device/cli.js`);
  const nodeFlags = rest.slice(0, at);
  const bad = nodeFlags.find((f) => !f.startsWith('--'));
  if (bad) fail(`ExecStart node option "${bad}": write node options as --name or --name=value`);
  const args = rest.slice(at + 1);
  if (args[0] !== 'start') fail(`ExecStart runs dist/device/cli.js ${args[0] ?? 'with no command'}, not "start"`);
  return { env, nodeFlags, script, args };
}

/** Splits a value into words as systemd does: whitespace separates; "…" and '…' quote; \ escapes. */
function words(s: string, fail: (msg: string) => never): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else cur += c === '\\' && quote === '"' && i + 1 < s.length ? s[++i]! : c;
    } else if (/\s/.test(c)) {
      if (cur !== undefined) out.push(cur);
      cur = undefined;
    } else {
      cur ??= '';
      if (c === '"' || c === "'") quote = c;
      else cur += c === '\\' && i + 1 < s.length ? s[++i]! : c;
    }
  }
  if (quote) fail(`unterminated ${quote} in: ${s}`);
  if (cur !== undefined) out.push(cur);
  return out;
}
