// MSG_ZEROCOPY sends (see the kernel's Documentation/networking/msg_zerocopy.rst): send(2)
// with caller-given flags, the SO_ZEROCOPY opt-in, and the completions the kernel queues on
// the socket's error queue (recvmsg(2) with MSG_ERRQUEUE). Each completion names a range
// [ee_info, ee_data] of the socket's zero-copy send counter: the sends whose pages the
// kernel no longer reads, and whether it copied them after all (SO_EE_CODE_ZEROCOPY_COPIED,
// as on loopback). Which buffers those ids stand for is the TypeScript layer's bookkeeping.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "errors.h"
#include "families.h"

#ifndef SO_ZEROCOPY  // 4.14
#define SO_ZEROCOPY 60
#endif
#ifndef MSG_ZEROCOPY  // 4.14
#define MSG_ZEROCOPY 0x4000000
#endif

namespace rawio {
namespace {

// struct sock_extended_err (<linux/errqueue.h>), redeclared so that older headers build.
struct SockExtendedErr {
  uint32_t ee_errno;
  uint8_t ee_origin;
  uint8_t ee_type;
  uint8_t ee_code;
  uint8_t ee_pad;
  uint32_t ee_info;  // zero copy: the first send id of the range
  uint32_t ee_data;  // zero copy: the last send id of the range (inclusive)
};
static_assert(sizeof(SockExtendedErr) == 16, "struct sock_extended_err");
static_assert(offsetof(SockExtendedErr, ee_origin) == 4, "sock_extended_err.ee_origin");
static_assert(offsetof(SockExtendedErr, ee_code) == 6, "sock_extended_err.ee_code");
static_assert(offsetof(SockExtendedErr, ee_info) == 8, "sock_extended_err.ee_info");
static_assert(offsetof(SockExtendedErr, ee_data) == 12, "sock_extended_err.ee_data");
constexpr uint8_t kOriginZerocopy = 5;  // SO_EE_ORIGIN_ZEROCOPY (4.14)
constexpr uint8_t kCodeCopied = 1;      // SO_EE_CODE_ZEROCOPY_COPIED (4.14)
constexpr int kIpRecvErr = 11;          // IP_RECVERR, the cmsg type of an IPv4 socket's errors
constexpr int kIpv6RecvErr = 25;        // IPV6_RECVERR

long Send(int fd, const uint8_t* data, size_t len, int flags) {
  return RetryEintr([&] { return send(fd, data, len, flags); });
}

// One error-queue message: 1 with *out filled when it is a zero-copy completion, 0 when it
// was some other error (skipped), or -errno (-EAGAIN: the queue is empty).
long RecvZerocopy(int fd, SockExtendedErr* out) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(SockExtendedErr) + 64)];
  msghdr msg{};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  long r = RetryEintr([&] { return recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT); });
  if (r < 0) return r;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    bool v4 = c->cmsg_level == SOL_IP && c->cmsg_type == kIpRecvErr;
    bool v6 = c->cmsg_level == SOL_IPV6 && c->cmsg_type == kIpv6RecvErr;
    if (!(v4 || v6) || c->cmsg_len < CMSG_LEN(sizeof(SockExtendedErr))) continue;
    std::memcpy(out, CMSG_DATA(c), sizeof(*out));
    if (out->ee_origin == kOriginZerocopy && out->ee_errno == 0) return 1;
  }
  return 0;
}

// sendFlags(fd, buf, off, len, flags): bytes sent (maybe fewer) or -errno.
Napi::Value JsSendFlags(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  Bytes b = ArgSlice(info, 1, 2, 3);
  int flags = static_cast<int>(ArgInt(info, 4, "flags", 0, INT32_MAX));
  return Num(info.Env(), Send(fd, b.data, b.len, flags));
}

// setZerocopy(fd, on): SO_ZEROCOPY; 0 or -errno.
Napi::Value JsSetZerocopy(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int on = ArgBool(info, 1) ? 1 : 0;
  return Num(info.Env(), Ret(setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &on, sizeof(on))));
}

// zerocopyCompletions(fd, out: Int32Array): drains the error queue's zero-copy completions
// into out as (first id, last id, copied 0/1) triples, the ids as uint32 bit patterns.
// Returns the triples written (0: none waiting), or -errno. Stops when out is full.
Napi::Value JsZerocopyCompletions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  size_t count = 0;
  int32_t* out = ValueInt32s(env, info[1], &count, "out", "out must be an Int32Array");
  size_t cap = count / 3, n = 0;
  while (n < cap) {
    SockExtendedErr ee{};
    long r = RecvZerocopy(fd, &ee);
    if (r == -EAGAIN) break;
    if (r < 0) return Num(env, n > 0 ? static_cast<double>(n) : static_cast<double>(r));
    if (r == 0) continue;
    out[3 * n] = static_cast<int32_t>(ee.ee_info);
    out[3 * n + 1] = static_cast<int32_t>(ee.ee_data);
    out[3 * n + 2] = (ee.ee_code & kCodeCopied) != 0 ? 1 : 0;
    n++;
  }
  return Num(env, static_cast<double>(n));
}

}  // namespace

void InitMsgZerocopy(Napi::Env env, Napi::Object exports) {
  exports.Set("sendFlags", Napi::Function::New(env, JsSendFlags));
  exports.Set("setZerocopy", Napi::Function::New(env, JsSetZerocopy));
  exports.Set("zerocopyCompletions", Napi::Function::New(env, JsZerocopyCompletions));
}

}  // namespace rawio
