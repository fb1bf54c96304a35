/**
 * The bench's waits on its child processes and its readings of them: a wait on the sink
 * process settles when the sink dies, rejects on a failed read and when a later wait
 * supersedes it; a process tree's CPU counts a child exactly once
 * while it is reaped under the reading; strace counts what runs after it has attached,
 * however long attaching takes, and says why when it cannot attach.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ended, printed, unlessEnded, withinDeadline } from '../dist/bench/lib/child-exit.js';
import { startBareServer, straceDuring, ticksPerSecond, treeCpuTicks } from '../dist/bench/lib/external.js';
import { Sink, SinkReadError } from '../dist/bench/lib/sink-client.js';
import { startServer } from '../dist/bench/server.js';
import { constants, sys } from './helpers/rawio.js';
import { childrenOf, exited, processState } from './helpers/procs.js';
import { eventually } from './helpers/wait.js';

/** The child's stdout so far, and a wait for a line matching `re` that fails if the child ends first. */
function output(child: ChildProcess) {
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  return {
    text: () => out,
    line: async (re: RegExp): Promise<RegExpMatchArray> => {
      await eventually(() => {
        if (re.test(out)) return true;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`ended before ${re}: ${out}`);
        return false;
      });
      const m = re.exec(out);
      if (!m) throw new Error(`no ${re} in: ${out}`);
      return m;
    },
  };
}

/** Writes all of `data` to the non-blocking `fd` (waiting out its connect); returns `fd`. */
function writeAll(fd: number, data: Buffer): number {
  for (let at = 0; at < data.length;) {
    const r = sys.write(fd, data.subarray(at));
    if (r > 0) at += r;
    else if (r !== -constants.EAGAIN!) throw new Error(`write: ${r}`);
  }
  return fd;
}

/** Runs `fn` with a fresh sink, stopped afterwards whatever `fn` did. */
async function withSink(fn: (s: Sink) => Promise<void>): Promise<void> {
  const s = await Sink.start();
  try {
    await fn(s);
  } finally {
    s.stop();
  }
}

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

  it('a read that failed in the sink rejects with its error and the bytes before it, not a short count', () =>
    withSink(async (s) => {
      const closed = s.closed();
      const fd = s.connect();
      const data = Buffer.alloc(1000, 7);
      expect(await eventually(() => sys.write(fd, data) === data.length)).toBe(true); // once connected
      sys.setLingerZero(fd); // the close resets the connection: the sink's read fails
      sys.close(fd);
      const e = await closed.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(SinkReadError);
      expect((e as Error).message).toMatch(/tcp-sink \(pid \d+\) read failed with ECONNRESET after \d+ bytes/);
      expect((e as SinkReadError).bytes).toBeLessThanOrEqual(data.length);
      expect((e as Error).cause).toMatchObject({ code: 'ECONNRESET', syscall: 'read' });
      // the sink goes on: the next connection's count is whole
      expect(await s.finish(writeAll(s.connect(), data))).toBe(data.length);
    }));

  it('a wait on the sink still pending when another begins rejects, saying so; the count goes to the latest', () =>
    withSink(async (s) => {
      const first = s.closed();
      const second = s.closed();
      await expect(first).rejects.toThrow(/superseded by a later wait/);
      expect(await s.finish(writeAll(s.connect(), Buffer.alloc(10)))).toBe(10);
      await expect(second).rejects.toThrow(/superseded by a later wait/);
    }));

  it('a round whose writes throw closes its connection: no socket is left open behind it', () =>
    withSink(async (s) => {
      const fds = () => readdirSync('/proc/self/fd').length;
      const before = fds();
      let held = -1;
      const failed = s.send(async (fd) => {
        held = fd;
        writeAll(fd, Buffer.alloc(10));
        throw new Error('the transfer failed');
      });
      await expect(failed).rejects.toThrow('the transfer failed');
      expect(held).toBeGreaterThan(2);
      expect(fds()).toBe(before);
      // the failed round's count (10) is not taken for the next round's
      expect(await s.send(async (fd) => void writeAll(fd, Buffer.alloc(20)))).toBe(20);
      expect(fds()).toBe(before);
    }));

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

  it('a child that cannot be started rejects the wait with its spawn error, not an uncaught error event', async () => {
    const child = spawn(join(tmpdir(), 'rawio-no-such-program'), [], { stdio: 'ignore' });
    const e = await withinDeadline(child, 'missing server', 'listening', 60_000, new Promise(() => {})).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(e?.message).toMatch(/^missing server: spawn .*rawio-no-such-program ENOENT/);
    expect(e?.cause).toMatchObject({ code: 'ENOENT' });
  });

  it('a server killed before it listens is reported as killed, at once', async () => {
    const kill = 'process.kill(process.pid, "SIGKILL")';
    await expect(startBareServer('suicide', process.execPath, ['-e', kill], [])).rejects.toThrow(
      /suicide: killed by SIGKILL/,
    );
  });
});

describe('a bench child that never says it is ready', () => {
  /** A server module for bench/server.ts's child: `hang` never listens, `die` kills itself first. */
  function fakeServers(): { dir: string; module: string } {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-fake-server-'));
    const module = join(dir, 'servers.mjs');
    writeFileSync(
      module,
      `export const hang = () => new Promise(() => setInterval(() => {}, 1000));
       export const die = () => { process.kill(process.pid, 'SIGKILL'); return new Promise(() => {}); };`,
    );
    return { dir, module };
  }

  it('startServer kills a server child that never reports ready, and says so', async () => {
    const { dir, module } = fakeServers();
    try {
      const e = (await startServer({ module, export: 'hang', cpus: [], readyTimeoutMs: 1500 }).then(
        () => undefined,
        (err: unknown) => err,
      )) as Error;
      expect(e.message).toMatch(/^server child hang \(pid \d+\) still not listening after 1\.5 s: killed$/);
      const pid = Number(/pid (\d+)/.exec(e.message)![1]);
      expect(await eventually(() => processState(pid) === undefined || processState(pid) === 'Z')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('startServer names the signal that killed a server child before it listened', async () => {
    const { dir, module } = fakeServers();
    try {
      await expect(startServer({ module, export: 'die', cpus: [] })).rejects.toThrow(
        /^server child die \(pid \d+\) killed by SIGKILL before listening$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('withinDeadline kills a child that stays silent; printed finds a text split across two writes', async () => {
    const silent = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await expect(
      withinDeadline(silent, 'silent', 'listening', 1000, printed(silent, 'bench agent on')),
    ).rejects.toThrow(/^silent \(pid \d+\) still not listening after 1 s: killed$/);
    await exited(silent);
    expect(silent.signalCode).toBe('SIGKILL');

    // The second half is written only once the parent has read the first: two chunks for sure.
    const code = `process.stdout.write('bench ag');
      process.stdin.once('data', () => process.stdout.write('ent on 127.0.0.1:9100\\n'));`;
    const split = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'ignore'] });
    const out = output(split);
    const ready = withinDeadline(split, 'split', 'listening', 30_000, printed(split, 'bench agent on'));
    await out.line(/bench ag/);
    expect(out.text()).toBe('bench ag');
    split.stdin!.end('go');
    await ready;
    expect(await exited(split)).toBe(0);
  });

  it('withinDeadline names the signal that killed a child before it was ready', async () => {
    const child = spawn(process.execPath, ['-e', "process.kill(process.pid, 'SIGTERM'); setInterval(() => {}, 1000)"], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await expect(withinDeadline(child, 'victim', 'listening', 30_000, printed(child, 'ready'))).rejects.toThrow(
      /^victim \(pid \d+\) killed by SIGTERM before listening$/,
    );
    await exited(child);
  });
});

describe("a process tree's CPU while a child is reaped", () => {
  // A parent with many idle children (a long tree to read) that, on each line, starts one
  // more child last in its list, which burns 0.2 s of CPU, prints its own CPU µs
  // (getrusage, before it exits) and exits; the parent reaps it at once and says so. The
  // test reads the tree back to back meanwhile, so the reap lands inside a reading.
  const IDLE = 100;
  const burn =
    'for (;;) { const u = process.cpuUsage(); if (u.user + u.system > 200000) { console.log("burnt " + (u.user + u.system)); break; } }';
  const parent = `
    const { spawn } = require('node:child_process');
    for (let i = 0; i < ${IDLE}; i++) spawn('sleep', ['60'], { stdio: 'ignore' });
    let round = 0;
    process.stdin.on('data', () => {
      const r = ++round;
      const c = spawn(process.execPath, ['-e', ${JSON.stringify(burn)}], { stdio: ['ignore', 'inherit', 'ignore'] });
      process.stdout.write('burner ' + r + ' ' + c.pid + '\\n');
      c.on('exit', () => process.stdout.write('reaped ' + r + '\\n'));
    });
    process.stdout.write('ready\\n');`;

  it('counts the child exactly once, alive, exited or reaped: never less than before, and all it burnt', async () => {
    const p = spawn(process.execPath, ['-e', parent], { stdio: ['pipe', 'pipe', 'inherit'] });
    const out = output(p);
    const tick = 1e6 / ticksPerSecond();
    try {
      await out.line(/ready/);
      expect(await eventually(() => childrenOf(p.pid!).length === IDLE)).toBe(true);
      let previous = treeCpuTicks(p.pid!);
      for (let round = 1; round <= 3; round++) {
        const before = treeCpuTicks(p.pid!);
        expect(before).toBeGreaterThanOrEqual(previous);
        previous = before;
        p.stdin!.write('go\n');
        const burner = Number((await out.line(new RegExp(`burner ${round} (\\d+)`)))[1]);
        const exitedAt: number[] = []; // readings begun once the burner had exited
        const readings: number[] = [];
        let after = 0; // readings after the parent said it reaped the burner
        while (after < 3) {
          if (new RegExp(`reaped ${round}`).test(out.text())) after++;
          if (p.exitCode !== null || p.signalCode !== null) throw new Error(`the parent ended: ${out.text()}`);
          const state = processState(burner); // Z: exited, not yet reaped; undefined: reaped
          const now = treeCpuTicks(p.pid!);
          // CPU time of a tree (reaped children included) never goes down
          expect(now, `reading ${readings.length} of round ${round}`).toBeGreaterThanOrEqual(previous);
          previous = now;
          readings.push(now);
          if (state === undefined || state === 'Z') exitedAt.push(now);
          await new Promise((r) => setImmediate(r));
        }
        const burntUs = Number((await out.line(new RegExp(`burnt (\\d+)[\\s\\S]*reaped ${round}`)))[1]);
        expect(burntUs).toBeGreaterThan(200000);
        expect(exitedAt.length).toBeGreaterThanOrEqual(3);
        // each reading after the burner exited holds what it burnt, less the rounding of its
        // two fields to clock ticks
        for (const r of exitedAt) expect((r - before) * tick).toBeGreaterThanOrEqual(burntUs - 2 * tick);
      }
    } finally {
      for (const pid of childrenOf(p.pid!)) process.kill(pid, 'SIGKILL');
      p.kill('SIGKILL');
      await exited(p);
    }
  });
});

describe('strace attached to a running process', () => {
  // A process that, on a line "N", asks for its parent's pid N times (getppid(2), which
  // Node does not cache and calls nowhere else) and then prints "done".
  const target = `
    process.stdin.on('data', (d) => {
      let x = 0;
      for (let i = 0; i < Number(d); i++) x += process.ppid;
      process.stdout.write('done ' + x + '\\n');
    });
    process.stdout.write('ready\\n');`;
  const strace = spawnSync('sh', ['-c', 'command -v strace'], { encoding: 'utf8' }).stdout.trim();

  it('counts the syscalls of fn however long strace takes to attach', async (ctx) => {
    if (!strace) ctx.skip('strace is not installed: nothing to attach');
    const dir = mkdtempSync(join(tmpdir(), 'rawio-strace-'));
    // strace slow to start, as on a loaded machine: attaching takes seconds, not 500 ms
    const slow = join(dir, 'slow-strace');
    writeFileSync(slow, `#!/bin/sh\nsleep 2\nexec ${strace} "$@"\n`);
    chmodSync(slow, 0o755);
    const t = spawn(process.execPath, ['-e', target], { stdio: ['pipe', 'pipe', 'inherit'] });
    const out = output(t);
    try {
      await out.line(/ready/);
      const run = await straceDuring(
        t.pid!,
        dir,
        async () => {
          t.stdin!.write('1000\n');
          return (await out.line(/done \d+/))[0];
        },
        { strace: slow },
      );
      expect(run.error).toBeUndefined();
      expect(run.result).toMatch(/^done \d+/);
      expect(run.counts!.bySyscall.getppid).toBeGreaterThanOrEqual(1000);
    } finally {
      t.kill('SIGKILL');
      await exited(t);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says why there are no counts when strace cannot attach, and runs fn all the same', async (ctx) => {
    if (!strace) ctx.skip('strace is not installed: nothing to attach');
    const dir = mkdtempSync(join(tmpdir(), 'rawio-strace-'));
    try {
      const gone = 0x7ffffff0; // no such process
      const run = await straceDuring(gone, dir, () => Promise.resolve(42));
      expect(run.result).toBe(42);
      expect(run.counts).toBeNull();
      expect(run.error).toMatch(new RegExp(`strace -p ${gone}: exit code 1 before attaching: .*No such process`));
      const missing = await straceDuring(process.pid, dir, () => Promise.resolve(7), {
        strace: join(dir, 'no-strace-here'),
      });
      expect(missing).toMatchObject({ result: 7, counts: null, error: expect.stringMatching(/ENOENT/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says why when strace's stderr stays open after it failed, without waiting for the pipe to close", async () => {
    // A wrapper whose own child keeps strace's stderr open after the wrapper has failed: its
    // reason is read as far as it came. No strace needed: the wrapper fails on its own.
    const dir = mkdtempSync(join(tmpdir(), 'rawio-strace-'));
    try {
      const holder = join(dir, 'holder.pid');
      const wrapper = join(dir, 'wrapped-strace');
      writeFileSync(
        wrapper,
        `#!/bin/sh\necho "strace: attach: ptrace(PTRACE_SEIZE): Operation not permitted" >&2\n` +
          `sleep 600 &\necho $! > ${holder}\nexit 1\n`,
      );
      chmodSync(wrapper, 0o755);
      try {
        const held = await straceDuring(process.pid, dir, () => Promise.resolve(5), { strace: wrapper });
        expect(held).toMatchObject({ result: 5, counts: null });
        expect(held.error).toMatch(/exit code 1 before attaching: strace: attach: .*Operation not permitted/);
      } finally {
        process.kill(Number(readFileSync(holder, 'utf8')), 'SIGKILL');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
