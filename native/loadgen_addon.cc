// The load generator as an addon of its own (rawio_loadgen.node, built beside rawio.node):
// only src/loadgen/addon.ts loads it (for rawio/loadgen, `rawio loadgen` and the bench), so
// the addon every user loads carries none of the load generator's code. Init only, as addon.cc.
#include "families.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  rawio::InitLoadgen(env, exports);
  return exports;
}

NODE_API_MODULE(rawio_loadgen, Init)
