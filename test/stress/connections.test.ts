/**
 * 10 000 concurrent connections held open and served by multi-reactor (and proactor, once
 * it exists): a client process (its own fd table) opens them all, each gets a reply, all
 * are held at once (the server's count says 10 000), then each is served again — zero
 * errors, nothing closed early, and no fd left behind by close().
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { constants as c, serve, sys } from '../helpers/rawio.js';
import { titled, why } from '../helpers/skips.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { exited } from '../helpers/procs.js';

const N = Number(process.env.RAWIO_STRESS_CONNECTIONS ?? 10_000);
const fixture = fileURLToPath(new URL('./fixtures/hold-clients.mjs', import.meta.url));
type Msg = Record<string, number>;

function raiseNofile(want: number): void {
  const cur = sys.getrlimit(c.RLIMIT_NOFILE as number);
  if (Number(cur.soft) >= want) return;
  // root may raise the hard limit too; others get what the hard limit allows.
  const hard = Math.max(Number(cur.hard), process.getuid?.() === 0 ? want : 0);
  sys.setrlimit(c.RLIMIT_NOFILE as number, { soft: Math.min(want, hard), hard });
}

describe.each(['multi-reactor', 'proactor'] as const)(`%s holds ${N} connections`, (model) => {
  // The proactor needs io_uring; without it serve() fails with the kernel's reason.
  const needs = model === 'proactor' ? why.ring : undefined;
  it.skipIf(needs)(
    titled(`serves them all with zero errors`, needs),
    async () => {
      raiseNofile(N + 2000);
      const before = openFds();
      const server = await serve({ model, protocol: 'http', workers: availableParallelism(), backlog: 4096 });
      try {
        const child = fork(fixture, [String(server.port), String(N), 'http'], { stdio: 'inherit' });
        const next = () => new Promise<Msg>((resolve) => child.once('message', (m) => resolve(m as Msg)));
        const held = await next();
        expect(held).toEqual({ held: N, first: N, errors: 0 });
        expect(server.stats().connections).toBe(N);
        child.send('again');
        const done = await next();
        expect(done).toEqual({ served: N, stillOpen: N, errors: 0, closedEarly: 0 });
        await exited(child);
        const end = Date.now() + 10_000;
        while (server.stats().connections > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        expect(server.stats().connections).toBe(0);
        expect(server.stats().requests).toBe(2 * N);
        console.log(`${model}: held ${N} connections, served ${2 * N} requests`);
      } finally {
        await server.close();
      }
      expect(leakedSince(before)).toEqual([]);
    },
    180_000,
  );
});
