#!/usr/bin/env bash
# `npm run test:sanitize`: rawio's addon built with AddressSanitizer + UndefinedBehavior-
# Sanitizer into build-asan/ (cmake-js, the same sources and flags as binding.gyp plus the
# sanitizers), then the native-heavy test files run against it (RAWIO_ADDON) with libasan
# preloaded into node (node itself is not instrumented; the runtime must come first).
# Any report fails the run: reports are written to build-asan/reports/ and the script
# fails if one exists, whether or not the test process noticed.
#
# detect_leaks=0: V8 and Node allocate for the life of the process and never free (the
# isolate, the snapshot, code space), so LeakSanitizer at exit reports thousands of
# "leaks" that are not rawio's. fd leaks are checked by the tests themselves.
# -fno-sanitize=vptr: the addon is built without RTTI, as node-gyp builds it.
set -euo pipefail
cd "$(dirname "$0")/.."

FLAGS="-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
if [ "${RAWIO_ASAN_SKIP_BUILD:-}" != 1 ]; then
  mkdir -p build-asan
  npx cmake-js build --out build-asan --parallel 2 \
    --CDCMAKE_CXX_FLAGS="$FLAGS" --CDCMAKE_CXX_FLAGS_RELEASE="-O1" --CDCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >build-asan/build.log 2>&1 ||
    { tail -40 build-asan/build.log; exit 1; }
fi
# dist/ (compiled unless it is current); the addon is the sanitized one, RAWIO_ADDON's below.
RAWIO_ADDON="$PWD/build-asan/Release/rawio.node" node scripts/ensure-built.mjs >/dev/null

LIBASAN="$(gcc -print-file-name=libasan.so)"
LIBUBSAN="$(gcc -print-file-name=libubsan.so)"
REPORTS="$PWD/build-asan/reports"
rm -rf "$REPORTS" && mkdir -p "$REPORTS"

# The test files that exercise native code most, in two groups that run side by side, one
# file at a time in each: under the sanitizers every test runs several times slower, and
# more at once on a 2-core machine starve the loops whose turns the Reactor and Proactor
# tests count. The second group's servers mostly wait on their clients. On a 2-core VM the
# first group takes about 200 s and the second about 250 s (130 s, then the proactor model's
# 120 s), where one after the other they would take 450 s.
# In-process: multiplexers, sockets, files and transfers, the ring and the Proactor, the
# load generator, the keyspace, and the server models end to end: single (epoll on the
# caller's thread) here and proactor (io_uring) in the second group; multi-reactor makes the same native calls as
# single and worker-pool, so it is left to the plain run.
IN_PROCESS=(test/epoll.test.ts test/socket.test.ts test/file.test.ts test/direct.test.ts test/transfer.test.ts
  test/zerocopy.test.ts test/reactor.test.ts test/loop test/protocols/keyspace.test.ts test/protocols/static.test.ts
  test/loadgen.test.ts test/models/single.test.ts)
for f in test/uring*.test.ts test/proactor*.test.ts; do
  [ -e "$f" ] && IN_PROCESS+=("$f")
done
# Beside them, what serves from child processes and threads: the hostile clients and fd
# exhaustion (servers in children, each sanitized too: they inherit LD_PRELOAD), and
# worker-pool (the addon in worker threads), without the wire contract suite
# (RAWIO_WIRE_SUITE=0): single's and proactor's runs of it cover the Connection's and the
# ring's native paths.
BESIDE=(test/hostile test/models/worker-pool.test.ts)
# The proactor model's file (its whole wire suite, the longest of the in-process files) runs
# after them in the second group, so that the two take about as long as each other: with it
# in the first, that group ran alone for minutes after the second had finished.
AFTER_BESIDE=(test/models/proactor.test.ts)

sanitized() {
  RAWIO_ADDON="$PWD/build-asan/Release/rawio.node" \
    LD_PRELOAD="$LIBASAN $LIBUBSAN" \
    ASAN_OPTIONS="detect_leaks=0:log_path=$REPORTS/asan:abort_on_error=1:detect_odr_violation=0" \
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORTS/ubsan" \
    npx vitest run --maxWorkers=1 "$@"
}
# The second group's output is held and printed after the first's, so the two do not interleave.
BESIDE_LOG="$(mktemp)"
trap 'rm -f "$BESIDE_LOG"' EXIT
{
  rc=0
  RAWIO_WIRE_SUITE=0 sanitized "${BESIDE[@]}" || rc=$?
  sanitized "${AFTER_BESIDE[@]}" || rc=$?
  exit "$rc"
} >"$BESIDE_LOG" 2>&1 &
beside=$!
status=0
sanitized "${IN_PROCESS[@]}" || status=$?
wait "$beside" || status=$?
cat "$BESIDE_LOG"

if compgen -G "$REPORTS/*" >/dev/null; then
  echo "sanitizer reports:" >&2
  cat "$REPORTS"/* >&2
  exit 1
fi
exit "$status"
