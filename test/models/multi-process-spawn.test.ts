/**
 * How multi-process starts and replaces its workers. They run rawio's own entry, so a
 * server started from `node -e`, `--eval`, `-p` or `--print` has exactly `workers`
 * processes (the parent's `-e` script is not run again in each worker, which would spawn
 * without end); a worker that keeps crashing is respawned with a back-off and given up
 * after a bounded number of crashes: serve() rejects while starting, the Server emits
 * 'error' after. Every process count is bounded: a child that misbehaves is killed with
 * its whole process group.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { serve, type Server, type WorkerCrashError } from '../helpers/rawio.js';
import { childrenOf, exited, processState } from '../helpers/procs.js';
import { eventually } from '../helpers/wait.js';
import { workerExecArgv } from '../../dist/src/models/worker-argv.js';
import { decodeSettings, encodeSettings, type ProcessWorkerSettings } from '../../dist/src/models/process-board.js';

const index = fileURLToPath(new URL('../../dist/src/index.js', import.meta.url));
const crasher = fileURLToPath(new URL('../fixtures/crashing-worker.cjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rawio-mp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('workerExecArgv', () => {
  it.each([
    [['-e', 'code'], []],
    [['--eval', 'code', '--no-warnings'], ['--no-warnings']],
    [['--eval=code'], []],
    [['-p', 'x'], []],
    [['--print', 'x'], []],
    [['-pe', 'x', '--max-old-space-size=64'], ['--max-old-space-size=64']],
    [['--inspect', '--inspect-brk=0', '--inspect-port', '9229', '--inspect-wait'], []],
    [['--test', '--test-name-pattern', 'x', '--test-reporter=tap', '--experimental-test-coverage'], []],
    [['--watch', '--watch-path', 'src'], []],
    [['-i', '-c', '-h', '--version', '--prof-process'], []],
    [['--input-type=module', '-e', 'x'], []],
    [['--input-type', 'commonjs', '--run', 'build'], []],
    [
      ['--require', 'a.cjs', '--import', 'b.mjs', '-r', 'c.cjs', '--conditions=x'],
      ['--require', 'a.cjs', '--import', 'b.mjs', '-r', 'c.cjs', '--conditions=x'],
    ],
  ])('%j → %j', (argv, want) => {
    expect(workerExecArgv(argv)).toEqual(want);
  });
});

/** Runs `node <flags> <script>` that starts multi-process; resolves with its report line. */
function fromCommandLine(flags: string[], script: string): Promise<{ workers: number; descendants: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, script], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    // Bounded whatever happens: a fork bomb is stopped with its whole process group.
    const kill = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', () => {
      clearTimeout(kill);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    });
    // The report is read once stdout has ended ('exit' may come before the last of it), which
    // is once the group is gone too (a worker left running would hold the pipe open).
    child.on('close', () => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line === undefined) reject(new Error(`no report; stdout: ${out.slice(0, 500)}`));
      else resolve(JSON.parse(line) as { workers: number; descendants: number });
    });
  });
}

describe('multi-process started from node -e / -p', () => {
  // Counts this process's children, and theirs, once the server is up and a moment later.
  const script =
    `import(${JSON.stringify(index)}).then(async ({ serve }) => {` +
    `const fs = await import('node:fs');` +
    `const kids = (pid) => fs.readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).filter((d) => {` +
    `try { const s = fs.readFileSync('/proc/' + d + '/stat', 'utf8'); return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid; } catch { return false; } }).map(Number);` +
    `const s = await serve({ model: 'multi-process', protocol: 'echo', workers: 2 });` +
    `await new Promise((r) => setTimeout(r, 500));` +
    `const direct = kids(process.pid);` +
    `const descendants = direct.length + direct.flatMap((p) => kids(p)).length;` +
    `console.log(JSON.stringify({ workers: direct.length, descendants }));` +
    `await s.close(); })`;

  it.each([[['-e']], [['--eval']], [['-p']], [['--print']], [['-pe']], [['--input-type=commonjs', '-e']]])(
    '%j: exactly `workers` processes',
    async (flags) => {
      const r = await fromCommandLine(flags, script);
      expect(r).toEqual({ workers: 2, descendants: 2 });
    },
  );
});

describe('a worker that keeps crashing', () => {
  let server: Server | undefined;
  const log = join(dir, 'spawns.log');
  afterEach(async () => {
    await server?.close();
    server = undefined;
    delete process.env.RAWIO_TEST_SPAWN_LOG;
    delete process.env.RAWIO_TEST_CRASH_MARK;
  });
  const spawns = () => readFileSync(log, 'utf8').trim().split('\n').length;

  it('while starting: serve() rejects with its exit code after a bounded number of spawns', async () => {
    writeFileSync(log, '');
    process.env.RAWIO_TEST_SPAWN_LOG = log;
    const err = await serve({
      model: 'multi-process',
      protocol: 'echo',
      workers: 2,
      execArgv: ['--require', crasher],
    }).then(
      () => undefined,
      (e: unknown) => e as WorkerCrashError,
    );
    expect(err).toMatchObject({ code: 'ERR_RAWIO_WORKER_CRASHED', exitCode: 7, signal: null });
    // 2 workers, then one respawn per crash until the 6th crash (5 allowed in the window).
    expect(spawns()).toBeGreaterThanOrEqual(6);
    expect(spawns()).toBeLessThanOrEqual(7);
    expect(childrenOf(process.pid)).toEqual([]); // nothing left behind
  });

  it("after starting: the Server emits 'error' with the exit reason, and stops respawning", async () => {
    writeFileSync(log, '');
    process.env.RAWIO_TEST_SPAWN_LOG = log;
    // The workers crash once this file exists, written when the server has started: a crash
    // timed from the worker's own start came before its ready on a loaded machine, and serve()
    // rejected instead (the case above).
    const mark = join(dir, 'crash-now');
    rmSync(mark, { force: true });
    process.env.RAWIO_TEST_CRASH_MARK = mark;
    server = await serve({ model: 'multi-process', protocol: 'echo', workers: 1, execArgv: ['--require', crasher] });
    const crashed = new Promise<WorkerCrashError>((resolve) =>
      server!.once('error', (e) => resolve(e as WorkerCrashError)),
    );
    writeFileSync(mark, '');
    const err = await crashed;
    expect(err).toMatchObject({ code: 'ERR_RAWIO_WORKER_CRASHED', exitCode: 7, signal: null });
    expect(spawns()).toBe(6);
    await new Promise((r) => setTimeout(r, 300));
    expect(spawns()).toBe(6); // given up: no more processes
    expect(childrenOf(process.pid)).toEqual([]);
  });

  it('an execArgv that is not an array of strings is a TypeError', async () => {
    await expect(serve({ model: 'multi-process', protocol: 'echo', execArgv: 'x' as never })).rejects.toThrow(
      TypeError,
    );
    await expect(serve({ model: 'multi-process', protocol: 'echo', execArgv: ['a\0b'] })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARG_VALUE',
    });
  });
});

describe('a master that dies without close()', () => {
  const stuck = fileURLToPath(new URL('../fixtures/user/stuck.mjs', import.meta.url));
  // Starts a server whose one worker will not read its control pipe again (blocked in a
  // handler, or stopped), then prints the port and the worker's pid.
  const script = (accept: string, how: 'stuck' | 'stopped', mark: string) =>
    `import(${JSON.stringify(index)}).then(async ({ serve }) => {` +
    `const net = await import('node:net'); const fs = await import('node:fs');` +
    `const s = await serve({ model: 'multi-process', protocol: { module: ${JSON.stringify(stuck)}, options: {} }, workers: 1, accept: '${accept}' });` +
    `const pid = s.workerPids()[0];` +
    (how === 'stopped'
      ? `process.kill(pid, 'SIGSTOP');`
      : `const c = net.connect(s.port, '127.0.0.1', () => c.write('STUCK ${mark}\\n'));` +
        `while (!fs.existsSync(${JSON.stringify(mark)})) await new Promise((r) => setTimeout(r, 20));`) +
    `console.log(JSON.stringify({ port: s.port, pid })); setInterval(() => undefined, 1000); })`;

  /** The inodes of the sockets `pid` holds (its listening socket among them). */
  const socketsOf = (pid: number) =>
    readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? [];
      } catch {
        return []; // closed meanwhile
      }
    });
  /** The inodes of every TCP socket on this machine (the port itself may be another server's by now). */
  const tcpInodes = () =>
    new Set(
      ['/proc/net/tcp', '/proc/net/tcp6'].flatMap((f) =>
        readFileSync(f, 'utf8')
          .trim()
          .split('\n')
          .slice(1)
          .map((l) => l.trim().split(/\s+/)[9]!),
      ),
    );

  it.each([
    ['reuseport', 'stuck'],
    ['exclusive', 'stopped'],
  ] as const)(
    'accept %s, its worker %s (never reading the hang-up): the kernel ends it, and the port is free',
    async (accept, how) => {
      const mark = join(dir, `stuck-${accept}`);
      const master = spawn(process.execPath, ['-e', script(accept, how, mark)], {
        detached: true,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let worker = 0;
      try {
        let out = '';
        master.stdout.on('data', (d: Buffer) => (out += d.toString()));
        expect(await eventually(() => out.includes('\n'), 20_000)).toBe(true);
        const { pid } = JSON.parse(out) as { pid: number };
        worker = pid;
        const sockets = socketsOf(pid);
        expect(sockets.length).toBeGreaterThan(0);
        process.kill(master.pid!, 'SIGKILL');
        // The worker never reads the hang-up of its control pipe: only the kernel can end it.
        const gone = () => [undefined, 'Z'].includes(processState(pid));
        expect(await eventually(gone, 20_000)).toBe(true);
        // And its sockets, the listening one included, are closed: nothing holds the port (once
        // its last thread is gone too: the group's leader shows Z before the others end).
        const closed = () => {
          const left = tcpInodes();
          return sockets.every((i) => !left.has(i));
        };
        expect(await eventually(closed, 20_000)).toBe(true);
      } finally {
        for (const [pid, sig] of [
          [-master.pid!, 'SIGKILL'],
          [worker, 'SIGKILL'],
        ] as const) {
          try {
            if (pid !== 0) process.kill(pid, sig);
          } catch {
            // gone already
          }
        }
      }
    },
    60_000,
  );
});

describe('a master out of fds', () => {
  const sysProcess = fileURLToPath(new URL('../../dist/src/sys/process.js', import.meta.url));
  // The master's fd table is kept full while a worker is respawned: each try fails in the
  // master itself (pipe2 or the fork's pipes: EMFILE), which must count as that worker's
  // crash, with its back-off and limit, not throw from the respawn timer as the program's
  // uncaught exception.
  const script =
    `import(${JSON.stringify(index)}).then(async ({ serve, constants }) => {` +
    `const fs = await import('node:fs');` +
    `const { getrlimit, setrlimit } = await import(${JSON.stringify(sysProcess)});` +
    `process.on('uncaughtException', (e) => { console.log(JSON.stringify({ uncaught: String(e) })); process.exit(1); });` +
    `const s = await serve({ model: 'multi-process', protocol: 'echo', workers: 1, accept: 'exclusive' });` +
    `const n = fs.readdirSync('/proc/self/fd').length + 8;` +
    `setrlimit(constants.RLIMIT_NOFILE, { soft: n, hard: getrlimit(constants.RLIMIT_NOFILE).hard });` +
    `const held = []; const fill = () => { try { for (;;) held.push(fs.openSync('/dev/null', 'r')); } catch {} };` +
    `fill(); const keep = setInterval(fill, 1);` +
    `const err = new Promise((r) => s.once('error', r));` +
    `process.kill(s.workerPids()[0], 'SIGKILL');` +
    `const e = await err; clearInterval(keep); for (const fd of held) fs.closeSync(fd);` +
    `await s.close();` +
    `console.log(JSON.stringify({ code: e.code, exitCode: e.exitCode, signal: e.signal, cause: e.cause?.code })); })`;

  it("each failed try is a crash: the Server emits 'error' with the cause, the program goes on", async () => {
    const child = spawn(process.execPath, ['-e', script], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    const kill = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await exited(child);
    clearTimeout(kill);
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({
      code: 'ERR_RAWIO_WORKER_CRASHED',
      exitCode: null,
      signal: null,
      cause: 'EMFILE',
    });
    expect(code).toBe(0);
  }, 60_000);
});

describe("a worker's working directory and environment", () => {
  const handler = fileURLToPath(new URL('../fixtures/user/cwd.mjs', import.meta.url));
  // serve() in `dir`, then the program moves to / and changes its environment, and a worker
  // is replaced: the new one runs where and as the others do, not as the program is now.
  const script =
    `import(${JSON.stringify(index)}).then(async ({ serve }) => {` +
    `process.chdir(${JSON.stringify(dir)});` +
    `const s = await serve({ model: 'multi-process', protocol: 'http', handler: ${JSON.stringify(handler)}, workers: 1, accept: 'exclusive' });` +
    `const get = () => fetch('http://127.0.0.1:' + s.port + '/').then((r) => r.text());` +
    `const before = await get(); process.chdir('/'); process.env.RAWIO_TEST_MARK = 'later';` +
    `const pid = s.workerPids()[0]; process.kill(pid, 'SIGKILL');` +
    `while (s.workerPids()[0] === 0 || s.workerPids()[0] === pid) await new Promise((r) => setTimeout(r, 20));` +
    `const after = await get(); await s.close();` +
    `console.log(JSON.stringify({ before, after })); })`;

  it('are those serve() was called with, for a respawned worker too', async () => {
    const child = spawn(process.execPath, ['-e', script], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
    const kill = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await exited(child);
    clearTimeout(kill);
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({
      before: `${realpathSync(dir)} -`,
      after: `${realpathSync(dir)} -`,
    });
  }, 60_000);
});

describe('the settings a worker process reads', () => {
  it('keep every number JSON cannot hold (a limit of Infinity is none, not null)', () => {
    const settings = {
      index: 1,
      thread: { limits: { minRequestRate: Infinity, headerTimeout: 10_000, odd: [-Infinity, NaN, 0, -0.5] } },
      nested: { text: 'x'.repeat(200_000), keep: 1 }, // more than the environment would take
    } as unknown as ProcessWorkerSettings;
    const back = decodeSettings(encodeSettings(settings)) as unknown as typeof settings & Record<string, unknown>;
    expect(back).toEqual(settings);
    expect((back as unknown as { thread: { limits: { minRequestRate: number } } }).thread.limits.minRequestRate).toBe(
      Infinity,
    );
  });
});
