// What the three multiplexers share: the `out` Int32Array that wait() fills with
// (fd, revents) pairs, and the mask argument, which may arrive from JS as a negative int32
// (EPOLLET is bit 31, and `a | b` in JS yields an int32).
#pragma once
#include <fcntl.h>

#include "errors.h"

namespace rawio {

struct Fired {
  int32_t* data;
  size_t pairs;  // capacity: out.length / 2
};

inline Fired ArgFired(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    ThrowType(info.Env(), "out must be an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return Fired{a.Data(), a.ElementLength() / 2};
}

// An event mask: any int32 or uint32 value, taken as its 32 bits.
inline uint32_t ArgMask(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<uint32_t>(ArgInt(info, i, "mask", INT32_MIN, UINT32_MAX));
}

// A wait timeout in ms: -1 blocks, 0 polls.
inline int ArgTimeout(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int>(ArgInt(info, i, "timeoutMs", -1, INT32_MAX));
}

// Whether fd is open: poll and select have no registration call that would say EBADF, so
// add() asks, to report a closed fd the way epoll_ctl does.
inline bool FdOpen(int fd) { return fcntl(fd, F_GETFD) >= 0 || errno != EBADF; }

}  // namespace rawio
