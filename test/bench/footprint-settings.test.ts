import { describe, expect, it } from 'vitest';
import { agentSettings, FOOTPRINT_DEFAULTS, FOOTPRINT_SMOKE } from '../../bench/footprint.js';
import { readServiceDefinition } from '../../bench/service-definition.js';

describe('footprint benchmark: which settings the agent runs with', () => {
  it('by default (and in the smoke) exactly those of the shipped unit', () => {
    const shipped = readServiceDefinition();
    for (const p of [FOOTPRINT_DEFAULTS, FOOTPRINT_SMOKE]) {
      expect(agentSettings(p)).toEqual({ nodeFlags: shipped.nodeFlags, env: shipped.env, from: { nodeFlags: 'deploy/systemd/scanbox-device.service', env: 'deploy/systemd/scanbox-device.service' } });
    }
  });

  it('"none" runs plain node; anything else replaces that part only', () => {
    expect(agentSettings({ agentNodeFlags: 'none', agentEnv: 'none' })).toEqual({ nodeFlags: [], env: {}, from: { nodeFlags: 'none', env: 'none' } });
    const s = agentSettings({ agentNodeFlags: '--max-semi-space-size=4 --trace-gc', agentEnv: 'shipped' });
    expect(s.nodeFlags).toEqual(['--max-semi-space-size=4', '--trace-gc']);
    expect(s.env).toEqual(readServiceDefinition().env);
    expect(s.from.nodeFlags).toBe('override (--agentNodeFlags)');
    expect(agentSettings({ agentNodeFlags: 'shipped', agentEnv: 'MALLOC_ARENA_MAX=1 X=a=b' }).env).toEqual({ MALLOC_ARENA_MAX: '1', X: 'a=b' });
    expect(() => agentSettings({ agentNodeFlags: 'none', agentEnv: 'NOEQUALS' })).toThrow('--agentEnv: "NOEQUALS" is not K=V');
  });
});
