// The raw ring under native/uring.cc: io_uring_setup(2), the mmaps of the SQ ring, CQ ring
// and SQE array, io_uring_enter(2) and io_uring_register(2), with the memory ordering the
// shared indexes need. No N-API here: uring.cc is the glue, this is the kernel's side.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "errors.h"
#include "fd_owner.h"
#include "uring_abi.h"

namespace rawio {
namespace uring {

inline long SysSetup(unsigned entries, io_uring_params* p) {
  return RetryEintr([&] { return syscall(__NR_io_uring_setup, entries, p); });
}
inline long SysEnter(int fd, unsigned submit, unsigned wait, unsigned flags) {
  return RetryEintr(
      [&] { return syscall(__NR_io_uring_enter, fd, submit, wait, flags, nullptr, 0); });
}
inline long SysRegister(int fd, unsigned op, const void* arg, unsigned nr) {
  return RetryEintr([&] { return syscall(__NR_io_uring_register, fd, op, arg, nr); });
}

// The kernel writes the SQ head and the CQ tail; we write the SQ tail and the CQ head. Each
// side publishes with a release store and reads the other's index with an acquire load, so
// that the entries an index covers are fully written before the index moves (C++17: the
// __atomic builtins stand in for std::atomic_ref on these plain u32s in shared memory).
inline unsigned LoadAcquire(const unsigned* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void StoreRelease(unsigned* p, unsigned v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

struct RingMem {
  int fd = -1;
  bool sqpoll = false;
  bool deferTaskrun = false;  // IORING_SETUP_DEFER_TASKRUN (6.1): completions run in enter()
  bool taskrunFlag = false;   // IORING_SETUP_TASKRUN_FLAG (5.19): IORING_SQ_TASKRUN says so
  unsigned features = 0, sqEntries = 0, cqEntries = 0;
  void* sqMap = nullptr;
  size_t sqMapLen = 0;
  void* cqMap = nullptr;  // == sqMap with IORING_FEAT_SINGLE_MMAP
  size_t cqMapLen = 0;
  io_uring_sqe* sqes = nullptr;
  size_t sqesLen = 0;
  unsigned *sqHead, *sqTail, *sqMask, *sqFlags, *sqArray;
  unsigned *cqHead, *cqTail, *cqMask;
  io_uring_cqe* cqes;
  unsigned sqeTail = 0;  // our local tail: SQEs prepared, not yet published
  unsigned published = 0;
  long inflight = 0;   // SQEs submitted or prepared whose final CQE has not been reaped
  int ringIndex = -1;  // the ring's slot among this thread's registered ring fds, or -1
  // The user data of the operations in flight whose completions carry a new fd (an accept,
  // an open, a socket, a fixed-fd install, none of them into a registered slot): a completion
  // of theirs that is discarded unread (CancelAndWait) has its fd closed, as nobody else
  // will ever see the number. A handful at most: looked up by a scan.
  std::vector<uint64_t> fdOps;
  // With an owner (a server model's ring: ownNewFds()), each such fd is owned by that
  // environment from the moment it is reaped (native/fd_owner.cc), so that a thread ended
  // with completions reaped but not yet handled does not leak their fds.
  void* fdOwner = nullptr;

  // io_uring_enter(2) by the registered ring fd when there is one (IORING_ENTER_REGISTERED_RING,
  // 5.18): the kernel then skips the fdget/fdput of the ring's file on every call.
  long Enter(unsigned submit, unsigned wait, unsigned flags) {
    if (ringIndex >= 0)
      return SysEnter(ringIndex, submit, wait, flags | IORING_ENTER_REGISTERED_RING);
    return SysEnter(fd, submit, wait, flags);
  }

  // IORING_REGISTER_RING_FDS (5.18): registers the ring in the calling thread's table. The
  // index is valid only in that thread, which must be the one that enters (a proactor's is).
  long RegisterRingFd() {
    if (ringIndex >= 0) return ringIndex;
    io_uring_rsrc_update up{};
    up.offset = ~0U;  // any free slot: the kernel writes the one it took back here
    up.data = static_cast<uint64_t>(fd);
    long r = SysRegister(fd, IORING_REGISTER_RING_FDS, &up, 1);
    if (r < 0) return r;
    ringIndex = static_cast<int>(up.offset);
    return ringIndex;
  }

  // The registration holds a reference to the ring: drop it, or close(fd) would not free it.
  void UnregisterRingFd() {
    if (ringIndex < 0) return;
    io_uring_rsrc_update up{};
    up.offset = static_cast<unsigned>(ringIndex);
    SysRegister(fd, IORING_UNREGISTER_RING_FDS, &up, 1);
    ringIndex = -1;
  }

  template <typename T>
  static T* At(void* base, unsigned off) {
    return reinterpret_cast<T*>(static_cast<char*>(base) + off);
  }

  long Setup(unsigned entries, unsigned flags, unsigned cqSize) {
    io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = flags;
    if (cqSize > 0) {
      p.flags |= IORING_SETUP_CQSIZE;
      p.cq_entries = cqSize;
    }
    long r = SysSetup(entries, &p);
    if (r < 0) return r;
    fd = static_cast<int>(r);
    sqpoll = (flags & IORING_SETUP_SQPOLL) != 0;
    deferTaskrun = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
    taskrunFlag = (flags & IORING_SETUP_TASKRUN_FLAG) != 0;
    features = p.features;
    sqEntries = p.sq_entries;
    cqEntries = p.cq_entries;
    sqMapLen = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    cqMapLen = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    // 5.4+: one mmap covers both rings; older kernels want two.
    bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single && cqMapLen > sqMapLen) sqMapLen = cqMapLen;
    sqMap = mmap(nullptr, sqMapLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                 IORING_OFF_SQ_RING);
    if (sqMap == MAP_FAILED) return Fail();
    if (single) {
      cqMap = sqMap;
    } else {
      cqMap = mmap(nullptr, cqMapLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                   IORING_OFF_CQ_RING);
      if (cqMap == MAP_FAILED) return Fail();
    }
    sqesLen = p.sq_entries * sizeof(io_uring_sqe);
    void* s = mmap(nullptr, sqesLen, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                   IORING_OFF_SQES);
    if (s == MAP_FAILED) return Fail();
    sqes = static_cast<io_uring_sqe*>(s);
    sqHead = At<unsigned>(sqMap, p.sq_off.head);
    sqTail = At<unsigned>(sqMap, p.sq_off.tail);
    sqMask = At<unsigned>(sqMap, p.sq_off.ring_mask);
    sqFlags = At<unsigned>(sqMap, p.sq_off.flags);
    sqArray = At<unsigned>(sqMap, p.sq_off.array);
    cqHead = At<unsigned>(cqMap, p.cq_off.head);
    cqTail = At<unsigned>(cqMap, p.cq_off.tail);
    cqMask = At<unsigned>(cqMap, p.cq_off.ring_mask);
    cqes = At<io_uring_cqe>(cqMap, p.cq_off.cqes);
    // The SQ array maps ring slots to SQE indexes; rawio always uses slot i for SQE i.
    for (unsigned i = 0; i < sqEntries; i++) sqArray[i] = i;
    sqeTail = published = *sqTail;
    return 0;
  }

  long Fail() {
    long e = -errno;
    Unmap();
    return e;
  }

  void Unmap() {
    if (sqes != nullptr) munmap(sqes, sqesLen);
    if (cqMap != nullptr && cqMap != MAP_FAILED && cqMap != sqMap) munmap(cqMap, cqMapLen);
    if (sqMap != nullptr && sqMap != MAP_FAILED) munmap(sqMap, sqMapLen);
    sqes = nullptr;
    sqMap = cqMap = nullptr;
    if (fd >= 0) UnregisterRingFd();
    if (fd >= 0) close(fd);
    fd = -1;
  }

  // The next free SQE, zeroed, or nullptr when the SQ is full. The acquire load of the
  // kernel's head orders our reuse of a slot after the kernel has finished reading it.
  io_uring_sqe* GetSqe() {
    if (sqeTail - LoadAcquire(sqHead) >= sqEntries) return nullptr;
    io_uring_sqe* sqe = &sqes[sqeTail & *sqMask];
    memset(sqe, 0, sizeof *sqe);
    sqeTail++;
    inflight++;
    return sqe;
  }

  // Turns the prepared entry with user data `ud` that the kernel has not taken yet into a
  // NOP with the same user data: an operation aborted before it was submitted then never
  // runs (no bytes received, no fd made), and still posts the one completion it is counted
  // for. False when no such entry waits (submitted already; with SQPOLL the poller may take
  // any entry at any moment, so none is touched). Only this thread moves the head otherwise.
  bool Unprep(uint64_t ud) {
    if (sqpoll) return false;
    for (unsigned i = LoadAcquire(sqHead); i != sqeTail; i++) {
      io_uring_sqe& s = sqes[i & *sqMask];
      if (s.user_data != ud) continue;
      if (MakesFd(s)) {
        auto it = std::find(fdOps.begin(), fdOps.end(), ud);
        if (it != fdOps.end()) {
          *it = fdOps.back();
          fdOps.pop_back();
        }
      }
      memset(&s, 0, sizeof s);
      s.opcode = IORING_OP_NOP;
      s.user_data = ud;
      return true;
    }
    return false;
  }

  unsigned SqSpace() { return sqEntries - (sqeTail - LoadAcquire(sqHead)); }

  long Submit(unsigned waitNr) {
    unsigned fresh = sqeTail - published;
    // Release: the SQE contents above become visible to the kernel before the new tail.
    if (fresh > 0) StoreRelease(sqTail, sqeTail);
    published = sqeTail;
    // With SQPOLL, the entries published now (the poller takes them); else every entry the kernel
    // has not consumed yet, not only those published now: an enter may take fewer than it was given
    // (an SQE that fails at submission ends the batch without IORING_SETUP_SUBMIT_ALL; -EAGAIN,
    // -EBUSY), and the rest, already published, would otherwise wait for an enter that never names
    // them (nor the cancel that close() queues behind them). Only this thread moves the head
    // without SQPOLL: it is exact.
    unsigned toSubmit = sqpoll ? fresh : sqeTail - LoadAcquire(sqHead);
    // With DEFER_TASKRUN, completions are only posted while the task is in io_uring_enter
    // with GETEVENTS, so every enter asks for them (min 0: no waiting), as fio does.
    unsigned flags = waitNr > 0 || deferTaskrun ? IORING_ENTER_GETEVENTS : 0;
    if (sqpoll) {
      // The poller thread may have gone to sleep after its last look at the tail: a full
      // barrier between our tail store and the flags load (liburing does the same), then
      // wake it if it asked to be woken.
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
      if (__atomic_load_n(sqFlags, __ATOMIC_RELAXED) & IORING_SQ_NEED_WAKEUP)
        flags |= IORING_ENTER_SQ_WAKEUP;
      if (flags == 0) return toSubmit;
    } else if (toSubmit == 0 && waitNr == 0) {
      return 0;
    }
    long r = Enter(sqpoll ? 0 : toSubmit, waitNr, flags);
    return sqpoll && r >= 0 ? toSubmit : r;
  }

  // Copies ready CQEs out; acquire on the tail so each CQE is read after the kernel wrote
  // it, release on the head so the kernel reuses the slots only after we have read them.
  unsigned Copy(int32_t* out, unsigned cap) {
    unsigned head = *cqHead;
    unsigned tail = LoadAcquire(cqTail);
    unsigned n = 0;
    while (head != tail && n < cap) {
      const io_uring_cqe& c = cqes[head & *cqMask];
      out[3 * n] = static_cast<int32_t>(static_cast<uint32_t>(c.user_data));
      out[3 * n + 1] = c.res;
      out[3 * n + 2] = static_cast<int32_t>(c.flags);
      if (!fdOps.empty()) NewFd(c, false);
      if ((c.flags & IORING_CQE_F_MORE) == 0 && (c.user_data & abi::kForeignCqe) == 0) inflight--;
      head++;
      n++;
    }
    StoreRelease(cqHead, head);
    return n;
  }

  static bool MakesFd(const io_uring_sqe& sqe) {
    switch (sqe.opcode) {
      case IORING_OP_ACCEPT:
      case IORING_OP_OPENAT:
      case IORING_OP_OPENAT2:
      case IORING_OP_SOCKET:
        return sqe.file_index == 0;  // else the file goes into a registered slot
      case abi::kOpFixedFdInstall:
        return true;
      default:
        return false;
    }
  }

  void NoteFdOp(const io_uring_sqe& sqe) {
    if (MakesFd(sqe)) fdOps.push_back(sqe.user_data);
  }

  // A completion being reaped (or discarded): the fd it carries, if it is one of fdOps', is
  // given to the owner (or closed when discarded); the op is forgotten at its last completion.
  void NewFd(const io_uring_cqe& c, bool discard) {
    auto it = std::find(fdOps.begin(), fdOps.end(), c.user_data);
    if (it == fdOps.end()) return;
    if (c.res >= 0) {
      if (discard)
        CloseFd(c.res);
      else if (fdOwner != nullptr)
        FdOwnBy(c.res, fdOwner);
    }
    if ((c.flags & IORING_CQE_F_MORE) == 0) {
      *it = fdOps.back();
      fdOps.pop_back();
    }
  }

  // Copy for completions nobody will read: each is dropped, the fd it carries closed.
  void Discard() {
    unsigned head = *cqHead;
    unsigned tail = LoadAcquire(cqTail);
    for (; head != tail; head++) {
      const io_uring_cqe& c = cqes[head & *cqMask];
      if (!fdOps.empty()) NewFd(c, true);
      if ((c.flags & IORING_CQE_F_MORE) == 0 && (c.user_data & abi::kForeignCqe) == 0) inflight--;
    }
    StoreRelease(cqHead, head);
  }

  unsigned Ready() { return LoadAcquire(cqTail) - *cqHead; }

  // With DEFER_TASKRUN, completions wait as task work until an enter runs it; with
  // TASKRUN_FLAG the kernel also says when any waits (IORING_SQ_TASKRUN, or CQ_OVERFLOW for
  // completions that found the CQ full), and an enter when neither is set would post nothing.
  bool WorkWaits() {
    constexpr unsigned kWork = IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN;
    return !taskrunFlag || (__atomic_load_n(sqFlags, __ATOMIC_ACQUIRE) & kWork) != 0;
  }

  // The operations in flight the kernel has taken: those whose entries wait in the SQ, never
  // submitted (prepared since the last submit, or left by one), post nothing until then.
  long Submitted() {
    unsigned waiting = sqpoll ? sqeTail - published : sqeTail - LoadAcquire(sqHead);
    return inflight - static_cast<long>(waiting);
  }

  // Copies up to `cap` completions, waiting until `minComplete` have come (at most what the
  // kernel has in flight). A timeout's completion ends the kernel's wait early (it wakes every
  // waiter, however many it was asked for), so the wait goes on for the rest.
  long Reap(int32_t* out, unsigned cap, unsigned minComplete) {
    if (minComplete > cap) minComplete = cap;
    unsigned n = 0;
    for (;;) {
      unsigned want = minComplete - n;
      if (static_cast<long>(want) > Submitted()) want = static_cast<unsigned>(Submitted());
      if ((want > 0 && Ready() < want) || (deferTaskrun && Ready() == 0 && WorkWaits())) {
        long r = Enter(0, want, IORING_ENTER_GETEVENTS);
        if (r < 0 && r != -ETIME) return n > 0 ? n : r;
      }
      n += Copy(out + 3 * n, cap - n);
      // IORING_FEAT_NODROP (5.5): completions that found the CQ full wait on the kernel's
      // overflow list and IORING_SQ_CQ_OVERFLOW is set; entering with GETEVENTS flushes them
      // into the CQ, which now has room since we just emptied it. IORING_SQ_TASKRUN (a ring
      // set up with IORING_SETUP_TASKRUN_FLAG, 5.19): completions wait as task work that only
      // an enter runs (DEFER_TASKRUN, COOP_TASKRUN); reap them now rather than a batch later.
      constexpr unsigned kEnter = IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN;
      while (n < cap && (__atomic_load_n(sqFlags, __ATOMIC_ACQUIRE) & kEnter)) {
        long r = Enter(0, 0, IORING_ENTER_GETEVENTS);
        if (r < 0) break;
        unsigned more = Copy(out + 3 * n, cap - n);
        if (more == 0) break;
        n += more;
      }
      if (n >= minComplete || Submitted() == 0) return n;
    }
  }

  // Submit(), waiting in the same io_uring_enter for `minComplete` completions (at most what
  // is in flight, at most `cap`), then Reap(): io_uring_submit_and_wait and the copy-out in
  // one step, for callers that pay per call into the library. -errno when the submit fails
  // (nothing is copied then); a timeout's completion that ends the wait early is no failure.
  long SubmitAndReap(int32_t* out, unsigned cap, unsigned minComplete) {
    if (minComplete > cap) minComplete = cap;
    unsigned waitNr = minComplete;
    if (static_cast<long>(waitNr) > inflight) waitNr = static_cast<unsigned>(inflight);
    long r = Submit(waitNr);
    if (r < 0 && r != -ETIME) return r;
    return Reap(out, cap, minComplete);
  }

  // Cancels every request in flight (IORING_ASYNC_CANCEL_ANY, 5.19) and waits until the
  // kernel has posted their final completions, discarding them: only after that may the
  // buffers they point at be released, and the rings unmapped.
  void CancelAndWait() {
    if (fd < 0 || inflight == 0) return;
    io_uring_sqe* sqe = GetSqe();
    if (sqe == nullptr) {
      // The SQ is full of prepared entries: hand them to the kernel first, or the cancel is
      // never queued and the wait below blocks forever on an operation that never completes.
      if (Submit(0) < 0) return;
      sqe = GetSqe();
    }
    if (sqe != nullptr) {
      sqe->opcode = IORING_OP_ASYNC_CANCEL;
      sqe->cancel_flags = IORING_ASYNC_CANCEL_ANY;
      sqe->user_data = 0xffffffffu;
    }
    if (Submit(0) < 0) return;
    while (inflight > 0) {
      // An enter with GETEVENTS also flushes the overflow list and runs deferred task work.
      if (Ready() == 0) {
        long r = Enter(0, 1, IORING_ENTER_GETEVENTS);
        if (r < 0 && r != -ETIME) return;
      }
      Discard();
    }
  }
};

}  // namespace uring
}  // namespace rawio
