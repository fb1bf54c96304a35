import { defineConfig } from 'vitest/config';

// `npm run test:stress`: the heavy load and fault tests under test/stress/, one file at a
// time (they hold thousands of fds and both cores), kept out of the default `npm test`.
export default defineConfig({
  test: {
    include: ['test/stress/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    execArgv: ['--max-semi-space-size=16'], // memory bounds the same on every major: see vitest.config.ts
    testTimeout: 300_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
