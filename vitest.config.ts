import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // socat, openssl, systemd-analyze: checked once before any suite, with the apt-get line when one is missing.
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // Two cores: end-to-end suites spawn processes of their own, so keep the runner's share small.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
