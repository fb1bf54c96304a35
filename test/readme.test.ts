/**
 * The README's echo server is a program people will paste: run it (in a child process, since
 * run() owns its thread) on a free port and check that it echoes. The TSDoc `@example`s
 * that end up in the .d.ts files are pasted too: every one must parse on the Node running
 * the tests (Node 20 has no `using`), and the self-contained ones run, each in a child
 * process with the few names it assumes (an fd, a socket) set up first.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

it('the README echo server runs and echoes', async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const code = /```js\n([\s\S]*?)```/.exec(readme)![1]!;
  expect(code).toContain("backend: 'epoll-et'");
  const program = code
    .replace("from 'rawio'", `from ${JSON.stringify(join(root, 'dist/src/index.js'))}`)
    .replace("sys.listenTcp('127.0.0.1', 7000)", "sys.listenTcp('127.0.0.1', 0)")
    .replace(/console\.log\(.*\);/, 'console.log(sys.localPort(lfd));');
  const dir = mkdtempSync(join(tmpdir(), 'rawio-readme-'));
  const file = join(dir, 'echo.mjs');
  writeFileSync(file, program);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', (c) => reject(new Error(`exited with ${c}`)));
    });
    expect(port).toBeGreaterThan(0);
    const echoed = await new Promise<string>((resolve, reject) => {
      let got = '';
      const s = net.connect(port, '127.0.0.1', () => s.end('hello, edge-triggered world\n'));
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    expect(echoed).toBe('hello, edge-triggered world\n');
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Every `@example` of the TSDoc comments under src/, by file, in order. */
function docExamples(): { file: string; index: number; code: string }[] {
  const out: { file: string; index: number; code: string }[] = [];
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    );
  for (const path of walk(join(root, 'src'))) {
    const file = path.slice(root.length);
    let index = 0;
    for (const [, body] of readFileSync(path, 'utf8').matchAll(/\/\*\*([\s\S]*?)\*\//g)) {
      for (const part of body!.split('@example').slice(1)) {
        const text = part.split(/\n\s*\*\s*@(?!example)/)[0]!;
        const code = text
          .split('\n')
          .map((l) => l.replace(/^\s*\* ?/, ''))
          .join('\n')
          .trim();
        out.push({ file, index: index++, code });
      }
    }
  }
  return out;
}

/** TypeScript to JavaScript, nothing lowered: what is left must parse on this Node. */
const strip = (code: string) =>
  ts.transpileModule(code, { compilerOptions: { target: ts.ScriptTarget.ESNext, module: ts.ModuleKind.ESNext } })
    .outputText;

const dist = JSON.stringify(join(root, 'dist/src/index.js'));
/** What an example assumes is in scope, by file and example index. */
const preludes: Record<string, string> = {
  'src/sys/ring.ts#0': `const fd = sys.open(${JSON.stringify(join(root, 'package.json'))}, constants.O_RDONLY);`,
  'src/sys/ring.ts#1': '',
  'src/sys/ring.ts#2': `const fd = sys.open(${JSON.stringify(join(root, 'package.json'))}, constants.O_RDONLY); const buf = Buffer.alloc(4096);`,
  'src/sys/keyspace.ts#0': '',
  'src/loop/poller.ts#0': "const [fd, peer] = sys.socketpair(); sys.write(peer, Buffer.from('x'));",
  'src/loop/poller.ts#1': '',
  'src/loop/backends/epoll.ts#0': "const [sock, peer] = sys.socketpair(); sys.write(peer, Buffer.from('x'));",
  'src/models/serve.ts#0': '',
  'src/transfer/index.ts#0': `writeFileSync('big.iso', Buffer.alloc(2 << 20, 7));
    const srv = net.createServer((s) => s.resume()).listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const socket = net.connect(srv.address().port, '127.0.0.1');
    await once(socket, 'connect');`,
};

describe('TSDoc examples', () => {
  const examples = docExamples();

  it('use no syntax this Node lacks (no `using` declarations)', () => {
    expect(examples.length).toBeGreaterThan(20);
    for (const ex of examples) {
      expect(ex.code, `${ex.file} example ${ex.index}`).not.toMatch(/^\s*(await\s+)?using\s+\w+\s*=/m);
      const js = strip(ex.code);
      // An async function body: examples may await at top level.
      expect(() => new Function(`return (async () => {\n${js}\n});`), `${ex.file} example ${ex.index}`).not.toThrow();
    }
  });

  it.each(Object.keys(preludes))('%s runs as written', (key) => {
    const [file, index] = key.split('#') as [string, string];
    const ex = examples.find((e) => e.file === file && e.index === Number(index));
    expect(ex, key).toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'rawio-example-'));
    try {
      const program = [
        "import net from 'node:net';",
        "import { once } from 'node:events';",
        "import { writeFileSync } from 'node:fs';",
        `import * as rawio from ${dist};`,
        'const { Ring, Keyspace, createPoller, Epoll, constants, sys, transferFile, serve } = rawio;',
        preludes[key],
        `{\n${strip(ex!.code)}\n}`,
        "console.log('example ok');",
        'process.exit(0);',
      ].join('\n');
      writeFileSync(join(dir, 'example.mjs'), program);
      const r = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
      expect(r.stderr, key).toBe('');
      expect(r.stdout, key).toContain('example ok');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
