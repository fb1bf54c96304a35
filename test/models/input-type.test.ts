/**
 * A server started from a script Node was told the module type of: `node --input-type=module
 * -e …`, a script piped to `node --input-type=module`, or `--input-type` in NODE_OPTIONS.
 * Threads and processes inherit the option, and Node refuses it for an entry that is a file
 * (ERR_INPUT_TYPE_NOT_ALLOWED), so rawio starts its model threads through an import from code
 * there and takes the option out of its worker processes' NODE_OPTIONS: every model starts
 * and answers.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { workerNodeOptions } from '../../dist/src/models/worker-argv.js';
import { Ring } from '../helpers/rawio.js';
import { exited } from '../helpers/procs.js';

const index = fileURLToPath(new URL('../../dist/src/index.js', import.meta.url));

/** The script: serve `model`, GET / once, close; prints `{ status, body }`. */
const script = (model: string) =>
  `const { serve } = await import(${JSON.stringify(index)});` +
  `const s = await serve({ model: ${JSON.stringify(model)}, protocol: 'http', workers: 2 });` +
  `try { const r = await fetch('http://127.0.0.1:' + s.port + '/');` +
  `console.log(JSON.stringify({ status: r.status, body: await r.text() })); } finally { await s.close(); }`;

/** Runs node with `args`, `stdin` piped in, NODE_OPTIONS as given; resolves with its output. */
function node(args: string[], stdin: string, nodeOptions?: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    if (nodeOptions === undefined) delete env.NODE_OPTIONS;
    else env.NODE_OPTIONS = nodeOptions;
    const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // Bounded whatever happens: a server that never starts is killed.
    const kill = setTimeout(() => child.kill('SIGKILL'), 30_000);
    // 'close', not 'exit': the output is judged, and 'exit' may come before the last of it.
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, out });
    });
    child.stdin.end(stdin);
  });
}

const threadModels = ['single', 'multi-reactor', 'worker-pool', 'thread-per-connection', 'iterative'];
if (Ring.supported()) threadModels.push('proactor');
const answered = { status: 200, body: 'Hello, World!' };

describe('a server started by node --input-type=module', () => {
  it.each(threadModels)('%s, from -e', async (model) => {
    const r = await node(['--input-type=module', '-e', script(model)], '');
    expect(r.out).toContain(JSON.stringify(answered));
    expect(r.code, r.out).toBe(0);
  });

  it('multi-reactor, from a script on stdin', async () => {
    const r = await node(['--input-type=module'], script('multi-reactor'));
    expect(r.out).toContain(JSON.stringify(answered));
    expect(r.code, r.out).toBe(0);
  });

  it.each(['multi-reactor', 'multi-process'])('%s, with --input-type=module in NODE_OPTIONS', async (model) => {
    const r = await node(['-e', script(model)], '', '--input-type=module --no-warnings');
    expect(r.out).toContain(JSON.stringify(answered));
    expect(r.code, r.out).toBe(0);
  });
});

describe('workerNodeOptions', () => {
  it.each([
    [undefined, undefined],
    ['', ''],
    ['--no-warnings --max-old-space-size=64', '--no-warnings --max-old-space-size=64'],
    ['--require "a b.cjs"', '--require "a b.cjs"'],
    ['--input-type=module', ''],
    ['--input-type module --no-warnings', '--no-warnings'],
    ['--no-warnings  --input-type=commonjs --enable-source-maps', '--no-warnings --enable-source-maps'],
    ['--inspect', ''],
    ['--inspect-brk=127.0.0.1:0 --no-warnings', '--no-warnings'],
    ['--inspect-wait --inspect-port 9230 --max-old-space-size=64', '--max-old-space-size=64'],
    ['--inspect-publish-uid=http --inspect-port=0 --enable-source-maps', '--enable-source-maps'],
  ])('%j → %j', (given, want) => {
    expect(workerNodeOptions(given)).toBe(want);
  });
});

describe('multi-process under a debugger', () => {
  // The program's NODE_OPTIONS asks every Node process to wait for a debugger at its first
  // line (set by the program itself, so that it does not wait): the workers must not
  // inherit it, or serve() waits for them for ever. Killed with its process group whatever
  // happens, the workers that would wait included.
  it('--inspect-brk in NODE_OPTIONS: the workers start without it', async () => {
    const code =
      `process.env.NODE_OPTIONS = '--inspect-brk=127.0.0.1:0';` +
      `const { serve } = await import(${JSON.stringify(index)});` +
      `const s = await serve({ model: 'multi-process', protocol: 'http', workers: 2 });` +
      `try { const r = await fetch('http://127.0.0.1:' + s.port + '/');` +
      `console.log(JSON.stringify({ status: r.status, body: await r.text() })); } finally { await s.close(); }`;
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const kill = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 20_000);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exit = await exited(child);
    clearTimeout(kill);
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // the group is gone
    }
    expect(out).toContain(JSON.stringify(answered));
    expect(exit).toBe(0);
  }, 60_000);
});
