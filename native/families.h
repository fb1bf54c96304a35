// One Init function per syscall family; addon.cc calls each of them and nothing else. The
// load generator's is called by loadgen_addon.cc, the init of its own addon (rawio_loadgen.node).
#pragma once
#include <napi.h>

namespace rawio {
void InitConstants(Napi::Env env, Napi::Object exports);
void InitSocket(Napi::Env env, Napi::Object exports);
void InitSelect(Napi::Env env, Napi::Object exports);
void InitPoll(Napi::Env env, Napi::Object exports);
void InitEpoll(Napi::Env env, Napi::Object exports);
void InitWatch(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitFile(Napi::Env env, Napi::Object exports);
void InitZerocopy(Napi::Env env, Napi::Object exports);
void InitMsgZerocopy(Napi::Env env, Napi::Object exports);
void InitUring(Napi::Env env, Napi::Object exports);
void InitKeyspace(Napi::Env env, Napi::Object exports);
void InitNetdev(Napi::Env env, Napi::Object exports);
void InitFdOwner(Napi::Env env, Napi::Object exports);

void InitLoadgen(Napi::Env env, Napi::Object exports);
}  // namespace rawio
