// poll(2): a native pollfd array with an fd → slot index, so add/modify/remove are O(1)
// (remove moves the last slot into the hole) and wait() hands the kernel the array as is.
// The kernel walks every slot on each call: that linear cost is what the multiplex
// benchmark measures. Masks are the poll bits (the same values as EPOLLIN/OUT/RDHUP...);
// bits above the 16 of `short events` are dropped.
#include <poll.h>

#include <unordered_map>
#include <vector>

#include "events.h"
#include "families.h"

namespace rawio {
namespace {

class PollSet : public Napi::ObjectWrap<PollSet> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "PollSet",
        {InstanceMethod<&PollSet::Add>("add"), InstanceMethod<&PollSet::Modify>("modify"),
         InstanceMethod<&PollSet::Remove>("remove"), InstanceMethod<&PollSet::Wait>("wait"),
         InstanceMethod<&PollSet::Size>("size")});
  }

  PollSet(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PollSet>(info) {}

 private:
  static short Events(uint32_t mask) { return static_cast<short>(mask & 0xffff); }

  // add(fd, mask): 0, -EEXIST when fd is in the set, -EBADF when fd is not open.
  Napi::Value Add(const Napi::CallbackInfo& info) {
    int fd = ArgFd(info, 0);
    uint32_t mask = ArgMask(info, 1);
    if (slot_.count(fd) != 0) return Num(info.Env(), -EEXIST);
    if (!FdOpen(fd)) return Num(info.Env(), -EBADF);
    slot_[fd] = fds_.size();
    fds_.push_back(pollfd{fd, Events(mask), 0});
    return Num(info.Env(), 0);
  }

  // modify(fd, mask): 0 or -ENOENT.
  Napi::Value Modify(const Napi::CallbackInfo& info) {
    int fd = ArgFd(info, 0);
    uint32_t mask = ArgMask(info, 1);
    auto it = slot_.find(fd);
    if (it == slot_.end()) return Num(info.Env(), -ENOENT);
    fds_[it->second].events = Events(mask);
    return Num(info.Env(), 0);
  }

  // remove(fd): 0 or -ENOENT.
  Napi::Value Remove(const Napi::CallbackInfo& info) {
    int fd = ArgFd(info, 0);
    auto it = slot_.find(fd);
    if (it == slot_.end()) return Num(info.Env(), -ENOENT);
    size_t hole = it->second;
    slot_.erase(it);
    if (hole != fds_.size() - 1) {
      fds_[hole] = fds_.back();
      slot_[fds_[hole].fd] = hole;
    }
    fds_.pop_back();
    return Num(info.Env(), 0);
  }

  // wait(out, timeoutMs): pairs written, or -errno; a signal makes it report 0 events. When
  // more fds are ready than `out` holds, the next wait reports the rest first.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Fired out = ArgFired(info, 0);
    int timeout = ArgTimeout(info, 1);
    int n = poll(fds_.data(), fds_.size(), timeout);
    if (n < 0) return Num(info.Env(), errno == EINTR ? 0 : -errno);
    // The scan starts where the last one that filled `out` stopped, so that fds early in
    // the array that stay ready cannot keep the later ones out of every wait.
    size_t k = 0;
    size_t count = fds_.size();
    size_t start = cursor_ < count ? cursor_ : 0;
    size_t next = 0;
    for (size_t j = 0; j < count && k < out.pairs && n > 0; j++) {
      size_t i = start + j < count ? start + j : start + j - count;
      if (fds_[i].revents == 0) continue;
      out.data[2 * k] = fds_[i].fd;
      out.data[2 * k + 1] = static_cast<uint16_t>(fds_[i].revents);
      k++;
      n--;
      next = i + 1;
    }
    cursor_ = n > 0 ? next : 0;  // more were ready than `out` holds: start after them next time
    return Num(info.Env(), static_cast<double>(k));
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Num(info.Env(), static_cast<double>(fds_.size()));
  }

  std::vector<pollfd> fds_;
  std::unordered_map<int, size_t> slot_;
  size_t cursor_ = 0;  // the slot the next wait's scan starts at
};

}  // namespace

void InitPoll(Napi::Env env, Napi::Object exports) { exports.Set("PollSet", PollSet::Define(env)); }

}  // namespace rawio
