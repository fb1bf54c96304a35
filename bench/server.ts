/**
 * Servers under test run in a child process pinned to the server CPUs, so the load
 * generator (pinned to the other CPU) measures them rather than competing with them.
 * `startServer` forks bench/server-child.js, which imports a module, pins itself with
 * sys.setAffinity and calls the named start function; the child is pinned from birth
 * (taskset when installed, else born on the CPUs: tools.ts spawnOn) so that Node's helper
 * threads follow too.
 * Scenarios start every server this way: Node's own servers, rawio's models, anchors.
 * rawio's own `serve` fits as it is:
 *   startServer({ module: new URL('../src/index.js', import.meta.url).href, export: 'serve',
 *                 options: { model: 'single', protocol: 'http' }, cpus: ctx.serverCpus })
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeEnd, withinDeadline } from './lib/child-exit.js';
import { spawnOn } from './tools.js';

/** What a server module's start function returns inside the child. */
export interface ChildServer {
  port: number;
  /** Counters the scenario wants back (requests seen, bytes …); rawio's Server.stats() fits. */
  stats?(): object;
  close(): Promise<void>;
}

export type StartFunction = (options: Record<string, unknown>) => Promise<ChildServer>;

export interface PinnedServer {
  port: number;
  pid: number;
  /**
   * The child's stats() (an empty object when it has none), typed as the caller expects;
   * rejects once the child has exited (it would never answer).
   */
  stats<T extends object = Record<string, number>>(): Promise<T>;
  close(): Promise<void>;
}

export interface StartServerOptions {
  /** A module URL or absolute path exporting the start function. */
  module: string;
  export: string;
  options?: Record<string, unknown>;
  cpus: number[];
  /** Extra flags for the child's Node (e.g. --max-old-space-size). */
  execArgv?: string[];
  /** How long the child may take to say it listens before it is killed (default 60 s). */
  readyTimeoutMs?: number;
}

export type ChildMessage =
  { type: 'ready'; port: number } | { type: 'stats'; stats: object } | { type: 'error'; message: string };

const childEntry = fileURLToPath(new URL('./server-child.js', import.meta.url));

/** Starts a server in a pinned child process and resolves when it listens. */
export function startServer(o: StartServerOptions): Promise<PinnedServer> {
  const args = [o.module, o.export, JSON.stringify(o.options ?? {}), o.cpus.join(',')];
  // fork runs `execPath ...execArgv entry ...args`: under taskset, execPath is taskset and
  // node comes first among its arguments; without it the child is born on the CPUs
  const child = spawnOn(o.cpus, process.execPath, o.execArgv ?? [], (cmd, argv) =>
    cmd === process.execPath
      ? fork(childEntry, args, { execArgv: argv })
      : fork(childEntry, args, { execPath: cmd, execArgv: argv }),
  );
  const name = `server child ${o.export}`;
  const endOf = () => ({ code: child.exitCode, signal: child.signalCode });
  const ready = new Promise<number>((resolve, reject) => {
    child.once('message', (m: ChildMessage) => {
      if (m.type === 'error') reject(new Error(`${name}: ${m.message}`));
      else if (m.type !== 'ready') reject(new Error(`${name}: unexpected message ${m.type}`));
      else resolve(m.port);
    });
  });
  // A child that hangs without a word (a start function that never settles) is killed.
  return withinDeadline(child, name, 'listening', o.readyTimeoutMs ?? 60_000, ready).then((port) => ({
    port,
    pid: child.pid!,
    stats: <T extends object>() =>
      new Promise<T>((res, rej) => {
        const gone = () => new Error(`${name} (pid ${child.pid}) ${describeEnd(endOf())} before its stats`);
        // A child already gone answers nothing, and its 'exit' will not come again.
        if (child.exitCode !== null || child.signalCode !== null) return rej(gone());
        const onGone = () => rej(gone());
        child.once('exit', onGone);
        child.once('message', (s: ChildMessage) => {
          child.off('exit', onGone);
          res((s.type === 'stats' ? s.stats : {}) as T);
        });
        child.send({ type: 'stats' }, (e) => e && rej(e)); // gone meanwhile: its channel is closed
      }),
    close: () =>
      new Promise((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res(); // gone: 'exit' will not come again
        child.once('exit', () => res());
        child.send({ type: 'close' });
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  }));
}
