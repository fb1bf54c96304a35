import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// The addon's own tests: the files that call rawio's native code most directly, for the runs
// that prove a build or a Node major other than `npm test`'s can serve (`npm run test:cmake`,
// the cmake-js build of the same sources; `npm run test:node-matrix` on Node 22 and 24). What those
// runs can get wrong is the addon (does it load, do its functions behave), not the models'
// TypeScript, which `npm test` runs in full on the same sources. So: every native family's
// file, the loop and ring layers over them, the protocols whose state is native, and one
// model test for each way a model reaches the addon, with its protocols and user code but
// not the wire contract suite (RAWIO_WIRE_SUITE=0: its cases are the connection core's
// TypeScript over the native calls the rest already make, and the longest part of these
// runs). Left out: the other model × wire combinations (models/zerocopy.test.ts alone runs
// the model suite six more times), the bench, the CLI and the documentation checks, all
// TypeScript over the same calls.
const files = [
  // Each native family (native/*.cc): constants, errors, epoll/poll/select, sockets, files,
  // O_DIRECT, MSG_ZEROCOPY, the transfer methods, io_uring (args, child processes, credentials,
  // random mixes, setup options), the Proactor over it, and the load generator's addon.
  'test/constants.test.ts',
  'test/errors.test.ts',
  'test/probe.test.ts',
  'test/epoll.test.ts',
  'test/socket.test.ts',
  'test/file.test.ts',
  'test/direct.test.ts',
  'test/zerocopy.test.ts',
  'test/send-zerocopy.test.ts',
  'test/transfer.test.ts',
  'test/transfer-uring.test.ts',
  'test/transfer-emfile.test.ts',
  'test/uring.test.ts',
  'test/uring-args.test.ts',
  'test/uring-batch-rw.test.ts',
  'test/uring-child.test.ts',
  'test/uring-credentials.test.ts',
  'test/uring-random.test.ts',
  'test/ring-options.test.ts',
  'test/proactor.test.ts',
  'test/proactor-direct.test.ts',
  'test/proactor-recv.test.ts',
  'test/loadgen.test.ts',
  // Both addons as built: their exports and symbol tables.
  'test/addon-split.test.ts',
  // The addon beside Node's own objects (net.Socket, http, ref/unref of its handles): what a
  // new Node major is most likely to change.
  'test/node-interop.test.ts',
  // What a Node major changes under rawio's TypeScript too: its text decoding (TextDecoder's
  // 'latin1' is windows-1252 from Node 22 on), its HTTP parser, which the framing
  // differential compares rawio's with, and transfers of an untransferable ArrayBuffer (the
  // slab codec frames share: a copy on Node 20, a DataCloneError from Node 21 on, and
  // ArrayBuffer.prototype.transfer, which Node 22 lets detach it).
  'test/protocols/user-code.test.ts',
  'test/protocols/http-diff.test.ts',
  'test/protocols/http.test.ts',
  // Every fd the addon opens is close-on-exec.
  'test/hostile/cloexec.test.ts',
  // The Reactor and every Poller backend, connections, timers.
  'test/reactor.test.ts',
  'test/loop/conformance.test.ts',
  'test/loop/connection.test.ts',
  'test/loop/model.test.ts',
  'test/loop/timers.test.ts',
  // Protocols whose state is native: the keyspace (RESP) and files (static).
  'test/protocols/keyspace.test.ts',
  'test/protocols/resp.test.ts',
  'test/protocols/static.test.ts',
  // One model per way to the addon: a Reactor thread (single), blocking syscalls on a thread
  // (iterative), handler threads fed through native channels (worker-pool, channel), child
  // processes that load the addon themselves (multi-process), io_uring (proactor).
  'test/models/channel.test.ts',
  'test/models/single.test.ts',
  'test/models/iterative.test.ts',
  'test/models/worker-pool.test.ts',
  'test/models/multi-process.test.ts',
  'test/models/proactor.test.ts',
];

// A renamed file must not drop out of these runs unnoticed.
const missing = files.filter((f) => !existsSync(new URL(f, import.meta.url)));
if (missing.length > 0) throw new Error(`vitest.addon.config.ts names missing test files: ${missing.join(', ')}`);

export default defineConfig({
  test: {
    include: files,
    pool: 'forks',
    maxWorkers: Math.max(3, availableParallelism()), // as vitest.config.ts: the files mostly wait
    execArgv: ['--max-semi-space-size=16'], // memory bounds the same on every major: see vitest.config.ts
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    env: { RAWIO_WIRE_SUITE: '0' },
  },
});
