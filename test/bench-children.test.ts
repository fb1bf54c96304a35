/**
 * The bench's waits on its child processes: a wait on the sink process settles when the
 * sink dies.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ended, unlessEnded } from '../dist/bench/lib/child-exit.js';
import { startBareServer } from '../dist/bench/lib/external.js';
import { Sink } from '../dist/bench/lib/sink-client.js';
import { childrenOf, exited } from './helpers/procs.js';

describe('waits on a bench child process', () => {
  it('a wait on the sink rejects once the sink process dies, naming it and how it ended', async () => {
    const others = new Set(childrenOf(process.pid));
    const s = await Sink.start();
    const sink = childrenOf(process.pid).find((pid) => !others.has(pid))!;
    try {
      const closed = s.closed();
      process.kill(sink, 'SIGKILL');
      await expect(closed).rejects.toThrow(new RegExp(`tcp-sink \\(pid ${sink}\\) killed by SIGKILL`));
      // later waits reject at once; stop() has nothing left to stop
      await expect(s.closed()).rejects.toThrow(/killed by SIGKILL/);
      await expect(s.finish(s.connect())).rejects.toThrow(/killed by SIGKILL/);
    } finally {
      s.stop();
    }
  });

  it('a wait on a message rejects when the child ends first, with its exit code', async () => {
    const child = spawn(process.execPath, ['-e', 'process.exit(3)'], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    const message = new Promise((resolve) => child.once('message', resolve));
    await expect(unlessEnded(child, 'quitter', 'its message', message)).rejects.toThrow(
      /quitter \(pid \d+\) exit code 3 before its message/,
    );
    // an ended child: ended() resolves at once, unlessEnded rejects at once
    expect(await ended(child)).toEqual({ code: 3, signal: null });
    await expect(unlessEnded(child, 'quitter', 'more', new Promise(() => {}))).rejects.toThrow(/exit code 3/);
    await exited(child);
  });

  it('a server killed before it listens is reported as killed, at once', async () => {
    const kill = 'process.kill(process.pid, "SIGKILL")';
    await expect(startBareServer('suicide', process.execPath, ['-e', kill], [])).rejects.toThrow(
      /suicide: killed by SIGKILL/,
    );
  });
});
