/**
 * The layering rule of docs/ARCHITECTURE.md, checked on the source: every import in src/
 * and bench/ points to its own layer or one below it; the layers that stand side by side
 * (loop, transfer, protocols) do not import each other; and the raw binding
 * (src/sys/native.js) is imported outside src/sys only by the files listed here. A new
 * file that needs a syscall goes through src/sys's checked wrappers, or is added to the
 * list in the same change that explains why. Then the facts that have one home each: errno
 * values, io_uring entries, thread messages and the HTTP frame prefix are read and written
 * only through their own modules.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Each layer and the layers it may import (besides itself). */
const MAY_IMPORT: Record<string, readonly string[]> = {
  'src/sys': [],
  'src/loop': ['src/sys'],
  'src/transfer': ['src/sys'],
  'src/protocols': ['src/sys'],
  'src/models': ['src/sys', 'src/loop', 'src/transfer', 'src/protocols'],
  // the load generator: its own addon, found beside rawio.node
  'src/loadgen': ['src/sys'],
  // (src/loadgen-cli.ts, the command, is the one src file that imports src/loadgen)
  src: ['src/sys', 'src/loop', 'src/transfer', 'src/protocols', 'src/models', 'src/loadgen'],
  bench: ['src', 'src/sys', 'src/loop', 'src/transfer', 'src/protocols', 'src/models', 'src/loadgen'],
  // the command on top: `rawio bench` loads the bench on demand
  'src/cli.ts': ['src', 'src/sys', 'src/loop', 'src/transfer', 'src/protocols', 'src/models', 'src/loadgen', 'bench'],
};

/**
 * The files above src/sys that call the raw binding directly: hot paths that pass fds and
 * buffers they have already checked (close, read, write, accept on their own sockets),
 * the native pollers' wrappers, and the load generator's addon loader (packageRoot).
 */
const RAW_BINDING_USERS = [
  'bench/lib/tcp-sink.ts',
  'bench/main.ts',
  'src/loop/backends/epoll.ts',
  'src/loop/backends/poll.ts',
  'src/loop/backends/select.ts',
  'src/loop/connection.ts',
  'src/loop/proactor.ts',
  'src/loop/reactor.ts',
  'src/loop/write-batch.ts',
  'src/loop/recv-buffers.ts',
  'src/models/accept-backoff.ts',
  'src/models/acceptor-thread.ts',
  'src/models/blocking-session.ts',
  'src/models/blocking-start.ts',
  'src/models/blocking-threads.ts',
  'src/models/channel.ts',
  'src/models/conn-contract.ts', // inputWaiting: poll(2) on a connection's own socket as a drain begins
  'src/models/drain.ts', // takeQueued: accept4 on the server's own listening socket as a drain begins
  'src/models/iterative.ts',
  'src/models/multi-proactor.ts',
  'src/models/multi-process.ts',
  'src/models/pool-thread.ts',
  'src/models/proactor-thread.ts',
  'src/models/proactor.ts',
  'src/models/process-entry.ts',
  'src/models/reactor-group.ts',
  'src/models/reactor-thread.ts',
  'src/models/stats.ts', // peerAddress of each accepted fd, under maxConnectionsPerClient
  'src/models/tpc-acceptor.ts',
  'src/transfer/direct.ts',
  'src/transfer/mmap-cache.ts', // fstat into a reused Float64Array when no transfer lent its own
  'src/transfer/mmap.ts',
  'src/transfer/pipes.ts',
  'src/transfer/readwrite.ts',
  'src/transfer/sendfile.ts',
  'src/transfer/splice.ts',
  'src/transfer/stat.ts', // fstat into a reused Float64Array: the file's size and kind, per transfer
  'src/transfer/wait.ts',
  'src/loadgen/addon.ts',
];

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return sources(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The layer a repository path belongs to: the longest key of MAY_IMPORT it lies under. */
function layerOf(path: string): string | undefined {
  const keys = Object.keys(MAY_IMPORT).filter((k) => path === k || path.startsWith(`${k}/`));
  return keys.sort((a, b) => b.length - a.length)[0];
}

/** The repository paths a file imports (static, type-only and dynamic), relative ones only. */
function imports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => relative(root, resolve(root, dirname(file), s)).replace(/\.js$/, '.ts'));
}

const files = [...sources('src'), ...sources('bench')];

describe('layering', () => {
  it('finds the source it checks', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files).toContain('src/sys/native.ts');
  });

  it('every import points to its own layer or one it may import', () => {
    const bad: string[] = [];
    for (const file of files) {
      const from = layerOf(file)!;
      for (const target of imports(file)) {
        const to = layerOf(target);
        if (to === undefined || to === from || MAY_IMPORT[from]!.includes(to)) continue;
        bad.push(`${file} (${from}) imports ${target} (${to})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('only the listed files call the raw binding outside src/sys', () => {
    const users = files.filter((f) => !f.startsWith('src/sys/') && imports(f).some((t) => t === 'src/sys/native.ts'));
    expect(users.sort()).toEqual([...RAW_BINDING_USERS].sort());
  });
});

/** A file's code without its comments (a JSDoc example may show the public constants). */
function code(file: string): string {
  return readFileSync(join(root, file), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*(\*|\/\/|\/\*)/.test(l))
    .join('\n');
}

/** The files of src/ outside `home` whose code matches `pattern`. */
function outside(home: string, pattern: RegExp): string[] {
  return files.filter((f) => f.startsWith('src/') && f !== home && pattern.test(code(f)));
}

describe('one home per fact', () => {
  it('errno values come from src/sys/errno.ts', () => {
    // not from node:os (`os.errno`, `constants.errno`) nor from the addon's constants
    expect(outside('src/sys/errno.ts', /\bos\.errno\b|constants\.errno\b|constants\.E(?!POLL)[A-Z]+\b/)).toEqual([]);
  });

  it('io_uring entries are filled only by src/sys/uring-prep.ts', () => {
    expect(outside('src/sys/uring-prep.ts', /\.prep(?:Rw|Sock)?\((?:[^(),]*,){4}/)).toEqual([]);
  });

  it('thread messages are written only by src/models/messages.ts', () => {
    expect(outside('src/models/messages.ts', /\.push\(\s*MSG\./)).toEqual([]);
  });

  it('the HTTP frame prefix is read and written only by src/protocols/http-frame.ts', () => {
    expect(outside('src/protocols/http-frame.ts', /\bframe\[\s*\d+\s*\]|\bf\[\s*1[0-5]\s*\]/)).toEqual([]);
  });
});
