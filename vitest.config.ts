import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Tests drive the built package (dist/), as users do: `npm test` builds it first.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/interop/**', 'test/stress/**', 'test/package/**', 'node_modules/**'],
    pool: 'forks',
    // More files at once than cores (vitest's default is one fewer): most of the time goes to
    // servers and clients waiting on timers and sockets, not to CPU. On a 2-core machine two
    // files at once left 40% of the CPU idle; three take the run from about 5.8 to 4.3 minutes.
    // Tests hold no timing to account, so the added load can slow them, never fail them.
    maxWorkers: Math.max(3, availableParallelism()),
    // The suites bound the server's resident memory (a queue held by its bytes, not per
    // chunk): what rawio holds, which garbage V8 has not collected yet inflates too. Node 24
    // gives each thread a young generation four times Node 20's, where hundreds of MiB of a
    // flood's short-lived buffers wait for a scavenge; 16 MiB semi-spaces (Node 20's and 22's
    // size) make the bound the same on every major. rawio sets no heap limits of its own.
    execArgv: ['--max-semi-space-size=16'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
