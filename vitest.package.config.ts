import { defineConfig } from 'vitest/config';

// The packaging tests (test/package/): they pack and install the package, so they run apart from
// `npm test`, through `npm run test:package`, after the build and the prebuild.
export default defineConfig({
  test: {
    include: ['test/package/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});
