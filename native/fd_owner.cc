// Which thread owns which fd, for the fds a server model's thread opens for itself (its
// connections' sockets, the file of a body being sent, its pipes …): fdOwn(fd) records the
// calling thread's environment as the owner (taking the fd over from another thread that
// owned it), close() of an owned fd forgets it, and an environment cleanup hook closes what
// its thread still owns when the thread ends — also when Worker.terminate() stops it in the
// middle of user code, which no JavaScript would survive to do.
//
// One table for the process, under one lock, so that an fd closed on another thread (a reply's
// file sent by a reactor that is not the thread that opened it) is forgotten there, and a
// number closed and given to someone else is never closed a second time: close() and the hook
// both forget and close under the lock.
#include "fd_owner.h"
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include "errors.h"
#include "families.h"

namespace rawio {
namespace {

std::mutex mu;
std::unordered_map<int, napi_env>* owners = nullptr;  // fd -> owning environment
std::unordered_set<napi_env>* hooked = nullptr;       // environments with a cleanup hook

// A TCP socket with bytes still in its send queue (SIOCOUTQ), closed as its thread ends:
// the connection is cut mid-reply anyway, so the close is a reset (SO_LINGER 0), which frees
// the queue at once. A plain close would orphan the socket with its queue, kept for minutes
// while a client that does not read holds a zero window, and the zero-copy sends among those
// bytes (IORING_OP_SEND_ZC, MSG_ZEROCOPY) would get their notification only then: the
// thread's ring, closed next (uring.cc), waits for every one.
void ResetIfUnsent(int fd) {
  int proto = 0;
  socklen_t len = sizeof(proto);
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 || proto != IPPROTO_TCP) return;
  int unsent = 0;
  if (ioctl(fd, SIOCOUTQ, &unsent) < 0 || unsent <= 0) return;
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

// Closes what `env` owns; the caller holds mu.
void CloseOwnedLocked(napi_env env) {
  if (owners == nullptr) return;
  for (auto it = owners->begin(); it != owners->end();) {
    if (it->second == env) {
      ResetIfUnsent(it->first);
      close(it->first);  // released even on EINTR; never retried
      it = owners->erase(it);
    } else {
      ++it;
    }
  }
}

// The environment is ending: close every fd it still owns.
void AtEnvExit(void* arg) {
  auto env = static_cast<napi_env>(arg);
  std::lock_guard<std::mutex> lock(mu);
  hooked->erase(env);
  CloseOwnedLocked(env);
}

// fdOwn(fd): the calling thread owns fd from now on; undefined.
Napi::Value JsFdOwn(const Napi::CallbackInfo& info) {
  FdOwnBy(ArgFd(info, 0), static_cast<napi_env>(info.Env()));
  return info.Env().Undefined();
}

}  // namespace

void FdOwnBy(int fd, void* owner) {
  auto env = static_cast<napi_env>(owner);
  std::lock_guard<std::mutex> lock(mu);
  if (owners == nullptr) owners = new std::unordered_map<int, napi_env>();
  if (hooked == nullptr) hooked = new std::unordered_set<napi_env>();
  if (hooked->count(env) == 0) {
    if (napi_add_env_cleanup_hook(env, AtEnvExit, env) != napi_ok) return;
    hooked->insert(env);
  }
  (*owners)[fd] = env;
}

void FdCloseOwnedBy(void* env) {
  std::lock_guard<std::mutex> lock(mu);
  CloseOwnedLocked(static_cast<napi_env>(env));
}

long CloseFd(int fd) {
  std::lock_guard<std::mutex> lock(mu);
  if (owners != nullptr) owners->erase(fd);
  long r = Ret(close(fd));
  // Linux has released the fd even when close reports EINTR; retrying could close a
  // descriptor another thread has just been given.
  return r == -EINTR ? 0 : r;
}

void InitFdOwner(Napi::Env env, Napi::Object exports) {
  exports.Set("fdOwn", Napi::Function::New(env, JsFdOwn));
}

}  // namespace rawio
