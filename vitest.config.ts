import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Tests drive the built package (dist/), as users do: `npm test` builds it first.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/interop/**', 'test/stress/**', 'test/package/**', 'node_modules/**'],
    pool: 'forks',
    // At least two files at once, even on a 2-core machine (vitest's default there is one): most of
    // the time goes to servers and clients waiting on timers and sockets, not to CPU.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
