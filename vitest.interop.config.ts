import { defineConfig } from 'vitest/config';

// The interop tests: rawio's servers driven by curl, redis-cli, redis-benchmark and wrk.
export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
