// Sockets, pipes and eventfds: socket(2), bind(2), listen(2), accept4(2), connect(2),
// read(2)/write(2)/writev(2), shutdown(2), close(2), socketpair(2), pipe2(2), eventfd(2),
// and the few setsockopt(2)/fcntl(2) knobs the loops and tests need. Every fd is created
// close-on-exec, and non-blocking unless the caller asks for a blocking one.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "errors.h"
#include "families.h"
#include "fd_owner.h"

namespace rawio {
namespace {

// Resolves host (a numeric IPv4/IPv6 address or a name) to a sockaddr. Returns 0 or -errno
// (EAI errors are reported as EINVAL: the host is not usable).
int Resolve(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof(*ss));
  auto* v4 = reinterpret_cast<sockaddr_in*>(ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*v4);
    return 0;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(*v6);
    return 0;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return -EINVAL;
  std::memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  if (ss->ss_family == AF_INET)
    v4->sin_port = htons(static_cast<uint16_t>(port));
  else
    v6->sin6_port = htons(static_cast<uint16_t>(port));
  return 0;
}

int SocketFlags(bool blocking) { return SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK); }

// A setup of several calls: its fd, or the -errno of the call that failed and that call's
// name, so that the error names bind(2) when bind failed and not the listen(2) that never ran.
struct Setup {
  long ret;
  const char* syscall;
};

Napi::Value SetupResult(Napi::Env env, const Setup& s) {
  if (s.ret >= 0) return Num(env, static_cast<double>(s.ret));
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Num(env, static_cast<double>(s.ret)));
  a.Set(1u, Napi::String::New(env, s.syscall));
  return a;
}

// Closes fd after a failed step, keeping that step's errno.
Setup Failed(int fd, const char* syscall) {
  int e = errno;
  close(fd);
  return {-e, syscall};
}

// bindOnly: bound and not listening (no listen(2)): the port is reserved, but no connection
// is queued to this socket, as one is to every listening member of an SO_REUSEPORT group.
Setup ListenTcp(const std::string& host, int port, int backlog, bool reusePort, bool blocking,
                bool bindOnly) {
  sockaddr_storage ss;
  socklen_t len;
  int r = Resolve(host, port, &ss, &len);
  if (r < 0) return {r, "getaddrinfo"};
  int fd = socket(ss.ss_family, SOCK_STREAM | SocketFlags(blocking), 0);
  if (fd < 0) return {-errno, "socket"};
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
      (reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0))
    return Failed(fd, "setsockopt");
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) return Failed(fd, "bind");
  if (bindOnly) return {fd, "bind"};
  if (listen(fd, backlog) < 0) return Failed(fd, "listen");
  return {fd, "listen"};
}

// A non-blocking connect returns the fd at once with the connection in progress: the fd
// becomes writable when it completes (SO_ERROR then says how).
Setup ConnectTcp(const std::string& host, int port, bool blocking) {
  sockaddr_storage ss;
  socklen_t len;
  int r = Resolve(host, port, &ss, &len);
  if (r < 0) return {r, "getaddrinfo"};
  int fd = socket(ss.ss_family, SOCK_STREAM | SocketFlags(blocking), 0);
  if (fd < 0) return {-errno, "socket"};
  long c = RetryEintr([&] { return connect(fd, reinterpret_cast<sockaddr*>(&ss), len); });
  if (c < 0 && !(c == -EINPROGRESS && !blocking)) {
    close(fd);
    return {c, "connect"};
  }
  return {fd, "connect"};
}

Napi::Value JsListenTcp(const Napi::CallbackInfo& info) {
  std::string host = ArgCString(info, 0, "host");
  int port = static_cast<int>(ArgInt(info, 1, "port", 0, 65535));
  int backlog = static_cast<int>(ArgInt(info, 2, "backlog", 0, INT32_MAX));
  return SetupResult(info.Env(), ListenTcp(host, port, backlog, ArgBool(info, 3), ArgBool(info, 4),
                                           ArgBool(info, 5)));
}

Napi::Value JsConnectTcp(const Napi::CallbackInfo& info) {
  std::string host = ArgCString(info, 0, "host");
  int port = static_cast<int>(ArgInt(info, 1, "port", 0, 65535));
  return SetupResult(info.Env(), ConnectTcp(host, port, ArgBool(info, 2)));
}

Napi::Value JsLocalPort(const Napi::CallbackInfo& info) {
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(ArgFd(info, 0), reinterpret_cast<sockaddr*>(&ss), &len) < 0)
    return Num(info.Env(), -errno);
  // Only an IP socket has a port: another family's address (AF_UNIX: a socketpair's is the
  // family alone) holds no port bytes to read.
  if (ss.ss_family == AF_INET6)
    return Num(info.Env(), ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port));
  if (ss.ss_family == AF_INET)
    return Num(info.Env(), ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port));
  return Num(info.Env(), -EAFNOSUPPORT);
}

// peerAddress(fd, out): getpeername(2) of a connected socket as 16 bytes of IPv6 address in
// out (an IPv4 peer as its IPv4-mapped address ::ffff:a.b.c.d, so both spellings of one
// IPv4 client are the same 16 bytes). Returns the family (AF_INET, AF_INET6), -EAFNOSUPPORT
// for a socket of another family (AF_UNIX), or -errno (ENOTCONN: the peer already reset).
Napi::Value JsPeerAddress(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  Bytes out = ArgOutBytes(info, 1, "out");
  if (out.len < 16) ThrowRange(info.Env(), "out must hold 16 bytes");
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return Num(info.Env(), -errno);
  if (ss.ss_family == AF_INET) {
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    std::memcpy(out.data, kMapped, 12);
    std::memcpy(out.data + 12, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, 4);
    return Num(info.Env(), AF_INET);
  }
  if (ss.ss_family == AF_INET6) {
    std::memcpy(out.data, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, 16);
    return Num(info.Env(), AF_INET6);
  }
  return Num(info.Env(), -EAFNOSUPPORT);
}

Napi::Value JsAccept(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int flags = SocketFlags(ArgBool(info, 1));
  return Num(info.Env(), RetryEintr([&] { return accept4(fd, nullptr, nullptr, flags); }));
}

Napi::Value JsRead(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  Bytes b = ArgSlice(info, 1, 2, 3);
  return Num(info.Env(), RetryEintr([&] { return read(fd, b.data, b.len); }));
}

Napi::Value JsWrite(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  Bytes b = ArgSlice(info, 1, 2, 3);
  return Num(info.Env(), RetryEintr([&] { return write(fd, b.data, b.len); }));
}

// writev(fd, bufs, start): writes bufs[start..] (at most IOV_MAX of them) in one call.
Napi::Value JsWritev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  if (!info[1].IsArray()) ThrowType(env, "bufs must be an array of Uint8Array");
  Napi::Array arr = info[1].As<Napi::Array>();
  uint32_t n = arr.Length();
  uint32_t start = info.Length() > 2 ? static_cast<uint32_t>(ArgInt(info, 2, "start", 0, n)) : 0;
  uint32_t count = n - start > 1024 ? 1024 : n - start;
  std::vector<Bytes> bufs =
      ArrayBytes(env, arr, start, count, "bufs must be an array of Uint8Array");
  std::vector<iovec> iov(count);
  for (uint32_t i = 0; i < count; i++) iov[i] = iovec{bufs[i].data, bufs[i].len};
  return Num(env, RetryEintr([&] { return writev(fd, iov.data(), static_cast<int>(count)); }));
}

Napi::Value JsShutdown(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int how = static_cast<int>(ArgInt(info, 1, "how", SHUT_RD, SHUT_RDWR));
  return Num(info.Env(), Ret(shutdown(fd, how)));
}

Napi::Value JsClose(const Napi::CallbackInfo& info) {
  return Num(info.Env(), CloseFd(ArgFd(info, 0)));
}

long SetOpt(int fd, int level, int name, int value) {
  return Ret(setsockopt(fd, level, name, &value, sizeof(value)));
}

Napi::Value JsSetNoDelay(const Napi::CallbackInfo& info) {
  return Num(info.Env(), SetOpt(ArgFd(info, 0), IPPROTO_TCP, TCP_NODELAY, ArgBool(info, 1)));
}

Napi::Value JsSetCork(const Napi::CallbackInfo& info) {
  return Num(info.Env(), SetOpt(ArgFd(info, 0), IPPROTO_TCP, TCP_CORK, ArgBool(info, 1)));
}

Napi::Value JsSetSndBuf(const Napi::CallbackInfo& info) {
  int v = static_cast<int>(ArgInt(info, 1, "size", 0, INT32_MAX));
  return Num(info.Env(), SetOpt(ArgFd(info, 0), SOL_SOCKET, SO_SNDBUF, v));
}

Napi::Value JsSetRcvBuf(const Napi::CallbackInfo& info) {
  int v = static_cast<int>(ArgInt(info, 1, "size", 0, INT32_MAX));
  return Num(info.Env(), SetOpt(ArgFd(info, 0), SOL_SOCKET, SO_RCVBUF, v));
}

// SO_LINGER with a zero timeout: close(2) then sends RST instead of FIN.
Napi::Value JsSetLingerZero(const Napi::CallbackInfo& info) {
  linger l{1, 0};
  return Num(info.Env(), Ret(setsockopt(ArgFd(info, 0), SOL_SOCKET, SO_LINGER, &l, sizeof(l))));
}

// SO_ERROR: the pending error of a socket (how a non-blocking connect ended), as -errno.
Napi::Value JsSocketError(const Napi::CallbackInfo& info) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(ArgFd(info, 0), SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return Num(info.Env(), -errno);
  return Num(info.Env(), -err);
}

Napi::Value JsSetBlocking(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return Num(info.Env(), -errno);
  fl = ArgBool(info, 1) ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK);
  return Num(info.Env(), Ret(fcntl(fd, F_SETFL, fl)));
}

// F_DUPFD_CLOEXEC: a second fd for the same socket, so that rawio can own one while Node's
// handle closes the other (Connection over a net.Socket).
Napi::Value JsDupCloexec(const Napi::CallbackInfo& info) {
  return Num(info.Env(), Ret(fcntl(ArgFd(info, 0), F_DUPFD_CLOEXEC, 0)));
}

Napi::Value PairOrErrno(Napi::Env env, long r, const int fds[2]) {
  if (r < 0) return Num(env, r);
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, Num(env, fds[0]));
  a.Set(1u, Num(env, fds[1]));
  return a;
}

Napi::Value JsSocketpair(const Napi::CallbackInfo& info) {
  int fds[2] = {-1, -1};
  long r = Ret(socketpair(AF_UNIX, SOCK_STREAM | SocketFlags(ArgBool(info, 0)), 0, fds));
  return PairOrErrno(info.Env(), r, fds);
}

// pipe2 + F_SETPIPE_SZ; size 0 keeps the kernel's default (16 pages).
Napi::Value JsPipe(const Napi::CallbackInfo& info) {
  int size = static_cast<int>(ArgInt(info, 0, "size", 0, INT32_MAX));
  int fds[2] = {-1, -1};
  long r = Ret(pipe2(fds, O_CLOEXEC | (ArgBool(info, 1) ? 0 : O_NONBLOCK)));
  if (r == 0 && size > 0 && fcntl(fds[1], F_SETPIPE_SZ, size) < 0) {
    r = -errno;
    close(fds[0]);
    close(fds[1]);
  }
  return PairOrErrno(info.Env(), r, fds);
}

Napi::Value JsPipeSize(const Napi::CallbackInfo& info) {
  return Num(info.Env(), Ret(fcntl(ArgFd(info, 0), F_GETPIPE_SZ)));
}

Napi::Value JsEventfd(const Napi::CallbackInfo& info) {
  unsigned initial = static_cast<unsigned>(ArgInt(info, 0, "initial", 0, UINT32_MAX));
  int flags = EFD_CLOEXEC | (ArgBool(info, 1) ? 0 : EFD_NONBLOCK);
  return Num(info.Env(), Ret(eventfd(initial, flags)));
}

}  // namespace

void InitSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("listenTcp", Napi::Function::New(env, JsListenTcp));
  exports.Set("connectTcp", Napi::Function::New(env, JsConnectTcp));
  exports.Set("localPort", Napi::Function::New(env, JsLocalPort));
  exports.Set("accept", Napi::Function::New(env, JsAccept));
  exports.Set("peerAddress", Napi::Function::New(env, JsPeerAddress));
  exports.Set("read", Napi::Function::New(env, JsRead));
  exports.Set("write", Napi::Function::New(env, JsWrite));
  exports.Set("writev", Napi::Function::New(env, JsWritev));
  exports.Set("shutdown", Napi::Function::New(env, JsShutdown));
  exports.Set("close", Napi::Function::New(env, JsClose));
  exports.Set("setNoDelay", Napi::Function::New(env, JsSetNoDelay));
  exports.Set("setCork", Napi::Function::New(env, JsSetCork));
  exports.Set("setSndBuf", Napi::Function::New(env, JsSetSndBuf));
  exports.Set("setRcvBuf", Napi::Function::New(env, JsSetRcvBuf));
  exports.Set("setLingerZero", Napi::Function::New(env, JsSetLingerZero));
  exports.Set("socketError", Napi::Function::New(env, JsSocketError));
  exports.Set("setBlocking", Napi::Function::New(env, JsSetBlocking));
  exports.Set("dupCloexec", Napi::Function::New(env, JsDupCloexec));
  exports.Set("socketpair", Napi::Function::New(env, JsSocketpair));
  exports.Set("pipe", Napi::Function::New(env, JsPipe));
  exports.Set("pipeSize", Napi::Function::New(env, JsPipeSize));
  exports.Set("eventfd", Napi::Function::New(env, JsEventfd));
}

}  // namespace rawio
