// epoll(7): epoll_create1(2), epoll_ctl(2), epoll_wait(2), behind one small object that
// owns the epoll fd and the epoll_event array epoll_wait writes into. wait() copies the
// events into the caller's Int32Array as (fd, revents) pairs, so a wait allocates nothing.
// The fd is stored in epoll_event.data.fd; masks pass through raw (EPOLLET, EPOLLONESHOT,
// EPOLLEXCLUSIVE included): policy lives in TypeScript.
#include <sys/epoll.h>
#include <unistd.h>

#include <vector>

#include "events.h"
#include "families.h"

namespace rawio {
namespace {

class Epoll : public Napi::ObjectWrap<Epoll> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Epoll",
        {InstanceMethod<&Epoll::Fd>("fd"), InstanceMethod<&Epoll::Add>("add"),
         InstanceMethod<&Epoll::Modify>("modify"), InstanceMethod<&Epoll::Remove>("remove"),
         InstanceMethod<&Epoll::Wait>("wait"), InstanceMethod<&Epoll::Close>("close")});
  }

  // new Epoll(): throws nothing; fd() is -errno when epoll_create1 failed.
  Epoll(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Epoll>(info) {
    epfd_ = static_cast<int>(Ret(epoll_create1(EPOLL_CLOEXEC)));
  }

  ~Epoll() override { CloseFd(); }

 private:
  Napi::Value Fd(const Napi::CallbackInfo& info) { return Num(info.Env(), epfd_); }

  Napi::Value Ctl(const Napi::CallbackInfo& info, int op, bool withMask) {
    int fd = ArgFd(info, 0);
    epoll_event ev{};
    if (withMask) ev.events = ArgMask(info, 1);
    ev.data.fd = fd;
    if (epfd_ < 0) return Num(info.Env(), -EBADF);
    return Num(info.Env(), Ret(epoll_ctl(epfd_, op, fd, &ev)));
  }

  Napi::Value Add(const Napi::CallbackInfo& info) { return Ctl(info, EPOLL_CTL_ADD, true); }
  Napi::Value Modify(const Napi::CallbackInfo& info) { return Ctl(info, EPOLL_CTL_MOD, true); }
  Napi::Value Remove(const Napi::CallbackInfo& info) { return Ctl(info, EPOLL_CTL_DEL, false); }

  // wait(out, timeoutMs): the number of (fd, revents) pairs written, or -errno. A wait cut
  // short by a signal reports 0 events; the caller's loop simply waits again.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Fired out = ArgFired(info, 0);
    int timeout = ArgTimeout(info, 1);
    if (epfd_ < 0) return Num(info.Env(), -EBADF);
    if (out.pairs == 0) return Num(info.Env(), -EINVAL);
    // The array grows to the largest capacity asked for, once, never per wait.
    size_t cap = out.pairs > 65536 ? 65536 : out.pairs;
    if (events_.size() < cap) events_.resize(cap);
    int n = epoll_wait(epfd_, events_.data(), static_cast<int>(cap), timeout);
    if (n < 0) return Num(info.Env(), errno == EINTR ? 0 : -errno);
    for (int i = 0; i < n; i++) {
      out.data[2 * i] = events_[i].data.fd;
      out.data[2 * i + 1] = static_cast<int32_t>(events_[i].events);
    }
    return Num(info.Env(), n);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) { return Num(info.Env(), CloseFd()); }

  long CloseFd() {
    if (epfd_ < 0) return 0;
    long r = Ret(close(epfd_));
    epfd_ = -1;
    return r;
  }

  int epfd_ = -1;
  std::vector<epoll_event> events_;
};

}  // namespace

void InitEpoll(Napi::Env env, Napi::Object exports) { exports.Set("Epoll", Epoll::Define(env)); }

}  // namespace rawio
