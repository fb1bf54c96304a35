// select(2): the read, write and except fd_sets live in this object, with the highest fd
// watched. fd_set is a fixed bitmap of FD_SETSIZE (1024) bits, so every fd is checked
// against FD_SETSIZE before FD_SET touches the bitmap: a larger fd is a RangeError, never
// a write out of bounds (glibc's FD_SET does not check). wait() copies the sets (select
// overwrites its arguments) and scans 0..maxfd: the linear cost the benchmark measures.
// Interest: POLLIN → read set, POLLOUT → write set, POLLPRI → except set; a ready fd is
// reported with the same bits (a peer close shows as readable, as select has no HUP).
#include <poll.h>
#include <sys/select.h>

#include "events.h"
#include "families.h"

namespace rawio {
namespace {

class SelectSet : public Napi::ObjectWrap<SelectSet> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "SelectSet",
        {InstanceMethod<&SelectSet::Add>("add"), InstanceMethod<&SelectSet::Modify>("modify"),
         InstanceMethod<&SelectSet::Remove>("remove"), InstanceMethod<&SelectSet::Wait>("wait")});
  }

  SelectSet(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SelectSet>(info) {
    FD_ZERO(&watched_);
    FD_ZERO(&read_);
    FD_ZERO(&write_);
    FD_ZERO(&except_);
  }

 private:
  static int ArgSelectFd(const Napi::CallbackInfo& info) {
    return static_cast<int>(ArgInt(info, 0, "fd", 0, FD_SETSIZE - 1));
  }

  void Set(int fd, uint32_t mask) {
    if (mask & POLLIN)
      FD_SET(fd, &read_);
    else
      FD_CLR(fd, &read_);
    if (mask & POLLOUT)
      FD_SET(fd, &write_);
    else
      FD_CLR(fd, &write_);
    if (mask & POLLPRI)
      FD_SET(fd, &except_);
    else
      FD_CLR(fd, &except_);
  }

  Napi::Value Add(const Napi::CallbackInfo& info) {
    int fd = ArgSelectFd(info);
    uint32_t mask = ArgMask(info, 1);
    if (FD_ISSET(fd, &watched_)) return Num(info.Env(), -EEXIST);
    if (!FdOpen(fd)) return Num(info.Env(), -EBADF);
    FD_SET(fd, &watched_);
    Set(fd, mask);
    if (fd > maxfd_) maxfd_ = fd;
    return Num(info.Env(), 0);
  }

  Napi::Value Modify(const Napi::CallbackInfo& info) {
    int fd = ArgSelectFd(info);
    uint32_t mask = ArgMask(info, 1);
    if (!FD_ISSET(fd, &watched_)) return Num(info.Env(), -ENOENT);
    Set(fd, mask);
    return Num(info.Env(), 0);
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    int fd = ArgSelectFd(info);
    if (!FD_ISSET(fd, &watched_)) return Num(info.Env(), -ENOENT);
    FD_CLR(fd, &watched_);
    Set(fd, 0);
    while (maxfd_ >= 0 && !FD_ISSET(maxfd_, &watched_)) maxfd_--;
    return Num(info.Env(), 0);
  }

  // wait(out, timeoutMs): pairs written, or -errno; a signal makes it report 0 events.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Fired out = ArgFired(info, 0);
    int timeout = ArgTimeout(info, 1);
    fd_set r = read_, w = write_, e = except_;
    timeval tv{timeout / 1000, (timeout % 1000) * 1000};
    int n = select(maxfd_ + 1, &r, &w, &e, timeout < 0 ? nullptr : &tv);
    size_t k = 0;
    if (n < 0 && errno == EBADF) {
      // One watched fd was closed behind the set's back, and select fails whole where poll
      // flags just that fd POLLNVAL. Report the closed ones as poll does (so the caller can
      // stop watching them), then the others that are ready now, without waiting again.
      r = read_, w = write_, e = except_;
      k = ReportClosed(out, &r, &w, &e);
      if (k == 0) return Num(info.Env(), -EBADF);
      timeval now{0, 0};
      n = select(maxfd_ + 1, &r, &w, &e, &now);
      if (n < 0) n = 0;
    }
    if (n < 0) return Num(info.Env(), errno == EINTR ? 0 : -errno);
    // The scan starts where the last one that filled `out` stopped, so that low fds that stay
    // ready cannot keep the higher ones out of every wait.
    int span = maxfd_ + 1;
    int start = cursor_ < span ? cursor_ : 0;
    int next = 0;
    for (int j = 0; j < span && k < out.pairs && n > 0; j++) {
      int fd = start + j < span ? start + j : start + j - span;
      int32_t ev = (FD_ISSET(fd, &r) ? POLLIN : 0) | (FD_ISSET(fd, &w) ? POLLOUT : 0) |
                   (FD_ISSET(fd, &e) ? POLLPRI : 0);
      if (ev == 0) continue;
      out.data[2 * k] = fd;
      out.data[2 * k + 1] = ev;
      k++;
      n--;  // select counts each set an fd is in; ending early is only an optimisation
      next = fd + 1;
    }
    cursor_ = k == out.pairs && n > 0 ? next : 0;  // `out` was full: start after it next time
    return Num(info.Env(), static_cast<double>(k));
  }
  // Writes a (fd, POLLNVAL) pair for each watched fd that is no longer open and takes it
  // out of the sets the retry waits on; returns the pairs written.
  size_t ReportClosed(const Fired& out, fd_set* r, fd_set* w, fd_set* e) {
    size_t k = 0;
    for (int fd = 0; fd <= maxfd_; fd++) {
      if (!FD_ISSET(fd, &watched_) || FdOpen(fd)) continue;
      FD_CLR(fd, r);
      FD_CLR(fd, w);
      FD_CLR(fd, e);
      if (k == out.pairs) continue;
      out.data[2 * k] = fd;
      out.data[2 * k + 1] = POLLNVAL;
      k++;
    }
    return k;
  }
  fd_set watched_, read_, write_, except_;
  int maxfd_ = -1;
  int cursor_ = 0;  // the fd the next wait's scan starts at
};

}  // namespace

void InitSelect(Napi::Env env, Napi::Object exports) {
  exports.Set("SelectSet", SelectSet::Define(env));
}

}  // namespace rawio
