/**
 * rawio's own servers as bench children: `serveRaised` raises RLIMIT_NOFILE to its hard
 * limit (setrlimit(2); the C10K scenario holds thousands of fds) and calls `serve()`;
 * `reactorEcho` is a bare echo server on one Reactor whose Poller's `wait` is wrapped with
 * a counter, so the LT/ET scenario can count wakeups without touching src/loop.
 */
import { serve } from '../../src/models/serve.js';
import type { ServeOptions } from '../../src/models/types.js';
import { Reactor } from '../../src/loop/reactor.js';
import { Connection } from '../../src/loop/connection.js';
import type { PollerName } from '../../src/loop/poller.js';
import { constants } from '../../src/sys/constants.js';
import { getrlimit, setrlimit } from '../../src/sys/process.js';
import { accept, close, listenTcp, localPort, setNoDelay } from '../../src/sys/socket.js';
import type { ChildServer } from '../server.js';

/** Soft RLIMIT_NOFILE up to the hard limit; returns the new soft limit. */
export function raiseNofile(): number {
  const res = constants.RLIMIT_NOFILE as number;
  const lim = getrlimit(res);
  const hard = Number(lim.hard);
  if (Number(lim.soft) < hard) setrlimit(res, { soft: hard, hard });
  return Number(getrlimit(res).soft);
}

export async function serveRaised(options: Record<string, unknown>): Promise<ChildServer> {
  raiseNofile();
  const s = await serve(options as unknown as ServeOptions);
  // multi-process: the worker pids ride along, for scenarios that signal a worker.
  const pids = () => (s.model === 'multi-process' ? { workerPids: s.workerPids() } : {});
  return { port: s.port, stats: () => ({ ...s.stats(), ...pids() }), close: () => s.close() };
}

export async function reactorEcho(options: Record<string, unknown>): Promise<ChildServer> {
  const reactor = new Reactor({ backend: (options.backend as PollerName | undefined) ?? 'epoll' });
  let wakeups = 0;
  let events = 0;
  const poller = reactor.poller;
  const wait = poller.wait.bind(poller);
  // Wrapping the instance's method: every wait the Reactor makes passes through here.
  poller.wait = (out: Int32Array, timeoutMs: number): number => {
    wakeups++;
    const n = wait(out, timeoutMs);
    if (n > 0) events += n;
    return n;
  };
  const listenFd = listenTcp('127.0.0.1', 0);
  const conns = new Set<Connection>();
  let bytes = 0;
  reactor.watch(listenFd, constants.EPOLLIN as number, () => {
    for (;;) {
      const fd = accept(listenFd);
      if (fd < 0) return;
      setNoDelay(fd, true);
      const c: Connection = new Connection(reactor, fd, {
        onData: (chunk) => {
          bytes += chunk.length;
          c.write(chunk);
        },
        onClose: () => conns.delete(c),
      });
      conns.add(c);
    }
  });
  reactor.attach();
  return {
    port: localPort(listenFd),
    stats: () => ({ wakeups, events, bytes }),
    close: async () => {
      for (const c of conns) c.destroy();
      reactor.unwatch(listenFd);
      close(listenFd);
      reactor.stop();
    },
  };
}
