#!/usr/bin/env bash
# `npm run test:cmake`: builds rawio's addons with cmake-js (CMakeLists.txt, the same sources
# and flags as binding.gyp) into build-cmake/, then runs the addon's own tests against that
# build through RAWIO_ADDON. Not the whole `npm test`: what this step proves is that the
# cmake-js build of the same sources loads and behaves, and the files that call the native
# code directly prove it (every native family, the loop and the ring over them, the native
# parts of the protocols, one model per way a model reaches the addon; the list and why is in
# vitest.addon.config.ts). The rest of the suite is TypeScript over the same calls, which
# `npm test` runs in full against the node-gyp build.
set -euo pipefail
cd "$(dirname "$0")/.."

npm run build:cmake
export RAWIO_ADDON="$PWD/build-cmake/Release/rawio.node"
node scripts/ensure-built.mjs # dist/; the addon is RAWIO_ADDON's
npx vitest run --config vitest.addon.config.ts
