/**
 * Every fd rawio opens is close-on-exec: with servers of several models running, a
 * reactor, a ring, sockets, pipes, an eventfd, files and a directory open, a spawned child
 * lists its own fds (/proc/self/fd) and sees none of ours.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Reactor, Ring, serve, sys } from '../helpers/rawio.js';
import { leakedSince, openFds } from '../helpers/fds.js';

describe('close-on-exec', () => {
  it('a child process inherits none of the fds rawio opened', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-cloexec-'));
    writeFileSync(join(dir, 'f'), 'x');
    const before = openFds();
    const servers = await Promise.all([
      serve({ model: 'single', protocol: 'http' }),
      serve({ model: 'multi-reactor', protocol: 'resp', workers: 2 }),
      serve({ model: 'worker-pool', protocol: 'static', root: dir, workers: 1 }),
    ]);
    const reactor = new Reactor({ backend: 'epoll' });
    const ring = Ring.supported() ? new Ring() : undefined;
    const fds = [
      ...sys.socketpair(),
      ...sys.pipe(),
      sys.eventfd(),
      sys.open(join(dir, 'f'), 0),
      sys.openDir(dir),
      sys.listenTcp('127.0.0.1', 0),
    ];
    fds.push(sys.connectTcp('127.0.0.1', servers[0]!.port));

    try {
      const ours = new Map([...openFds()].filter(([fd, target]) => before.get(fd) !== target));
      expect(ours.size).toBeGreaterThan(10);
      const out = spawnSync('/bin/ls', ['-l', '/proc/self/fd/'], { encoding: 'utf8' });
      expect(out.status).toBe(0);
      const inherited: string[] = [];
      for (const line of out.stdout.split('\n')) {
        const m = /\s(\d+) -> (.*)$/.exec(line);
        if (m && ours.get(Number(m[1])) === m[2]) inherited.push(`${m[1]} -> ${m[2]}`);
      }
      expect(inherited).toEqual([]);
    } finally {
      for (const fd of fds) if (fd >= 0) sys.close(fd);
      ring?.close();
      reactor.close();
      await Promise.all(servers.map((s) => s.close()));
      rmSync(dir, { recursive: true });
    }
    expect(leakedSince(before)).toEqual([]);
  });
});
