// rawio's addon (rawio.node): init only. Each syscall family lives in its own file and registers
// its functions here. Node-API addons are context-aware, so this runs once per main thread and once
// per worker thread that loads rawio; no family keeps process-global JS state.
#include "families.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  rawio::InitConstants(env, exports);
  rawio::InitSocket(env, exports);
  rawio::InitSelect(env, exports);
  rawio::InitPoll(env, exports);
  rawio::InitEpoll(env, exports);
  rawio::InitWatch(env, exports);
  rawio::InitProcess(env, exports);
  rawio::InitFile(env, exports);
  rawio::InitZerocopy(env, exports);
  rawio::InitMsgZerocopy(env, exports);
  rawio::InitUring(env, exports);
  rawio::InitKeyspace(env, exports);
  rawio::InitNetdev(env, exports);
  rawio::InitFdOwner(env, exports);
  return exports;
}

NODE_API_MODULE(rawio, Init)
