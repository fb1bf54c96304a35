#!/usr/bin/env bash
# npm run test:valgrind: runs scripts/valgrind-workload.mjs under valgrind memcheck and fails
# on any error with a frame in rawio's addon. Node and V8 themselves produce reports under
# memcheck (the JIT writes and runs its own code; V8's GC scans stacks conservatively), so
# errors are attributed by their stack: those touching rawio.node (or rawio_loadgen.node)
# count, the rest are listed as Node/V8 internals and do not fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }
node scripts/ensure-built.mjs >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --smc-check: V8 writes code onto its stack and heap; without it valgrind runs stale code.
valgrind --tool=memcheck --smc-check=all --error-limit=no --num-callers=30 \
  --log-file="$log" node --jitless scripts/valgrind-workload.mjs
node -e '
  const log = require("fs").readFileSync(process.argv[1], "utf8");
  const errors = log.split(/\n==\d+== \n/).filter((b) => /^==\d+== (Invalid|Conditional|Use of|Syscall param|Mismatched|Source and destination)/m.test(b));
  const ours = errors.filter((b) => /rawio(_loadgen)?\.node/.test(b));
  console.log(`valgrind: ${errors.length} error reports, ${ours.length} with a frame in rawio.node`);
  for (const b of ours) console.log(b);
  const summary = log.match(/ERROR SUMMARY: .*/);
  if (summary) console.log(`valgrind ${summary[0]} (all sources)`);
  process.exit(ours.length > 0 ? 1 : 0);
' "$log"
