// Process and thread knobs the loops, models and benchmarks need and Node does not give:
// sched_setaffinity(2) for pinning a thread to CPUs, getrlimit(2)/setrlimit(2) (C10K wants
// RLIMIT_NOFILE raised), gettid(2), the calling thread's name (prctl PR_SET_NAME /
// PR_GET_NAME), which top -H, ps -L and perf show, and the signal a process gets when its
// parent dies (prctl PR_SET_PDEATHSIG), which multi-process's workers ask for.
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "errors.h"
#include "families.h"

namespace rawio {
namespace {

// setAffinity(cpus: number[]): pins the calling thread. 0 or -errno.
Napi::Value JsSetAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) ThrowType(env, "cpus must be an array of numbers");
  Napi::Array a = info[0].As<Napi::Array>();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a[i];
    int cpu = static_cast<int>(IntValue(env, v, "cpu", 0, CPU_SETSIZE - 1));
    CPU_SET(cpu, &set);
  }
  return Num(env, Ret(sched_setaffinity(0, sizeof(set), &set)));
}

Napi::Value JsGetAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) < 0) return Num(env, -errno);
  Napi::Array a = Napi::Array::New(env);
  uint32_t n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &set)) a.Set(n++, Num(env, cpu));
  return a;
}

int Resource(const Napi::CallbackInfo& info) {
  return static_cast<int>(ArgInt(info, 0, "resource", 0, RLIM_NLIMITS - 1));
}

double Lim(rlim_t v) { return v == RLIM_INFINITY ? -1 : static_cast<double>(v); }

// getrlimit(resource): [soft, hard] (-1 for unlimited) or -errno.
Napi::Value JsGetrlimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rlimit rl;
  if (getrlimit(Resource(info), &rl) < 0) return Num(env, -errno);
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Num(env, Lim(rl.rlim_cur)));
  a.Set(1u, Num(env, Lim(rl.rlim_max)));
  return a;
}

// setrlimit(resource, soft, hard): -1 means unlimited. 0 or -errno.
Napi::Value JsSetrlimit(const Napi::CallbackInfo& info) {
  int res = Resource(info);
  int64_t soft = ArgInt(info, 1, "soft", -1, INT64_MAX / 2);
  int64_t hard = ArgInt(info, 2, "hard", -1, INT64_MAX / 2);
  rlimit rl{soft < 0 ? RLIM_INFINITY : static_cast<rlim_t>(soft),
            hard < 0 ? RLIM_INFINITY : static_cast<rlim_t>(hard)};
  return Num(info.Env(), Ret(setrlimit(res, &rl)));
}

Napi::Value JsGettid(const Napi::CallbackInfo& info) {
  return Num(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

// setThreadName(name: string): names the calling thread (at most 15 bytes: the kernel's
// TASK_COMM_LEN less its NUL; the JavaScript wrapper checks). 0 or -errno.
Napi::Value JsSetThreadName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.find('\0') != std::string::npos) ThrowType(env, "name must not contain a NUL byte");
  if (name.size() > 15) ThrowRange(env, "name must be at most 15 bytes");
  return Num(env, Ret(prctl(PR_SET_NAME, name.c_str(), 0, 0, 0)));
}

// getThreadName(): the calling thread's name, or -errno.
Napi::Value JsGetThreadName(const Napi::CallbackInfo& info) {
  char buf[17] = {0};  // PR_GET_NAME writes up to 16 bytes, NUL included
  if (prctl(PR_GET_NAME, buf, 0, 0, 0) < 0) return Num(info.Env(), -errno);
  return Napi::String::New(info.Env(), buf);
}

// setParentDeathSignal(signal: number): the signal the kernel sends this process when the
// thread that forked it ends (0: none). 0 or -errno.
Napi::Value JsSetParentDeathSignal(const Napi::CallbackInfo& info) {
  int sig = static_cast<int>(ArgInt(info, 0, "signal", 0, 64));
  return Num(info.Env(), Ret(prctl(PR_SET_PDEATHSIG, static_cast<unsigned long>(sig), 0, 0, 0)));
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("setAffinity", Napi::Function::New(env, JsSetAffinity));
  exports.Set("getAffinity", Napi::Function::New(env, JsGetAffinity));
  exports.Set("getrlimit", Napi::Function::New(env, JsGetrlimit));
  exports.Set("setrlimit", Napi::Function::New(env, JsSetrlimit));
  exports.Set("gettid", Napi::Function::New(env, JsGettid));
  exports.Set("setThreadName", Napi::Function::New(env, JsSetThreadName));
  exports.Set("getThreadName", Napi::Function::New(env, JsGetThreadName));
  exports.Set("setParentDeathSignal", Napi::Function::New(env, JsSetParentDeathSignal));
}

}  // namespace rawio
