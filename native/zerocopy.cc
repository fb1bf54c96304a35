// Zero-copy moves between fds: sendfile(2), splice(2), tee(2), copy_file_range(2). Pipes
// themselves (pipe2 + F_SETPIPE_SZ) live in socket.cc. Each call is one syscall: result
// (bytes moved, maybe fewer than asked) or -errno; EINTR is retried. An offset of -1 means
// "no offset": the fd's own file position is used and advanced, as with a NULL loff_t*.
#include <fcntl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "errors.h"
#include "families.h"

namespace rawio {
namespace {

constexpr int64_t kMaxOff = (int64_t{1} << 53) - 1;  // Number.MAX_SAFE_INTEGER
// The kernel moves at most MAX_RW_COUNT (INT_MAX rounded down to a page) per call.
constexpr int64_t kMaxLen = 0x7ffff000;

// An optional offset argument: -1 (no offset) or [0, kMaxOff].
int64_t ArgOff(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ArgInt(info, i, name, -1, kMaxOff);
}

size_t ArgLen(const Napi::CallbackInfo& info, size_t i) {
  int64_t n = ArgInt(info, i, "length", 0, kMaxOff);
  return static_cast<size_t>(n > kMaxLen ? kMaxLen : n);
}

unsigned ArgFlags(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && !info[i].IsUndefined()
             ? static_cast<unsigned>(ArgInt(info, i, "flags", 0, 0xff))
             : 0u;
}

// sendfile(outFd, inFd, offset, count)
Napi::Value JsSendfile(const Napi::CallbackInfo& info) {
  int out = ArgFd(info, 0, "outFd");
  int in = ArgFd(info, 1, "inFd");
  int64_t off = ArgOff(info, 2, "offset");
  size_t count = ArgLen(info, 3);
  off_t o = static_cast<off_t>(off);
  return Num(info.Env(),
             RetryEintr([&] { return sendfile(out, in, off < 0 ? nullptr : &o, count); }));
}

// splice(inFd, inOff, outFd, outOff, len, flags)
Napi::Value JsSplice(const Napi::CallbackInfo& info) {
  int in = ArgFd(info, 0, "inFd");
  int64_t inOff = ArgOff(info, 1, "inOff");
  int out = ArgFd(info, 2, "outFd");
  int64_t outOff = ArgOff(info, 3, "outOff");
  size_t len = ArgLen(info, 4);
  unsigned flags = ArgFlags(info, 5);
  loff_t io = inOff, oo = outOff;
  return Num(info.Env(), RetryEintr([&] {
               return splice(in, inOff < 0 ? nullptr : &io, out, outOff < 0 ? nullptr : &oo, len,
                             flags);
             }));
}

// tee(inFd, outFd, len, flags): duplicates pipe contents without consuming them.
Napi::Value JsTee(const Napi::CallbackInfo& info) {
  int in = ArgFd(info, 0, "inFd");
  int out = ArgFd(info, 1, "outFd");
  size_t len = ArgLen(info, 2);
  unsigned flags = ArgFlags(info, 3);
  return Num(info.Env(), RetryEintr([&] { return tee(in, out, len, flags); }));
}

// copyFileRange(inFd, inOff, outFd, outOff, len)
Napi::Value JsCopyFileRange(const Napi::CallbackInfo& info) {
  int in = ArgFd(info, 0, "inFd");
  int64_t inOff = ArgOff(info, 1, "inOff");
  int out = ArgFd(info, 2, "outFd");
  int64_t outOff = ArgOff(info, 3, "outOff");
  size_t len = ArgLen(info, 4);
  loff_t io = inOff, oo = outOff;
  return Num(info.Env(), RetryEintr([&] {
               return copy_file_range(in, inOff < 0 ? nullptr : &io, out,
                                      outOff < 0 ? nullptr : &oo, len, 0);
             }));
}

}  // namespace

void InitZerocopy(Napi::Env env, Napi::Object exports) {
  exports.Set("sendfile", Napi::Function::New(env, JsSendfile));
  exports.Set("splice", Napi::Function::New(env, JsSplice));
  exports.Set("tee", Napi::Function::New(env, JsTee));
  exports.Set("copyFileRange", Napi::Function::New(env, JsCopyFileRange));
}

}  // namespace rawio
