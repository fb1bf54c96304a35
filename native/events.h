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
  size_t n = 0;
  int32_t* data = ValueInt32s(info.Env(), info[i], &n, "out", "out must be an Int32Array");
  return Fired{data, n / 2};
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
