import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests that run dist/ (the CLI, the goldens) see the sources as they are now.
    globalSetup: ['test/setup/build.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests that start real servers and tcpdump share ports and interfaces: run files one at a time.
    fileParallelism: false,
  },
});
