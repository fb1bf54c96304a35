// A provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19) under native/uring.cc: `count`
// buffers of `size` bytes, carved from one caller-owned slab, that the kernel picks from for
// requests flagged IOSQE_BUFFER_SELECT (multishot recv, 6.0) and names in the CQE
// (IORING_CQE_F_BUFFER, buffer id in the upper 16 bits of cqe->flags). The application hands
// a buffer back by writing an entry at the tail and publishing the tail with a release store
// (the kernel reads it with an acquire load), as for the SQ.
#pragma once
#include <sys/mman.h>

#include <cstdint>

#include "uring_abi.h"
#include "uring_ring.h"

namespace rawio {
namespace uring {

struct BufRing {
  int bgid = -1;
  abi::BufEntry* ring = nullptr;  // page-aligned, count entries
  size_t ringLen = 0;
  uint8_t* base = nullptr;  // the slab: buffer i is base + i * size
  unsigned count = 0, size = 0;
  uint16_t tail = 0;  // our local tail: entries written, published by Publish()

  // count: a power of two <= 32768; flags: IOU_PBUF_RING_INC (6.12) or 0. 0 or -errno
  // (EINVAL before 5.19, or for a flag the kernel does not know).
  long Setup(int ringFd, int group, uint8_t* slab, unsigned n, unsigned bytes, unsigned flags) {
    ringLen = static_cast<size_t>(n) * sizeof(abi::BufEntry);
    void* m = mmap(nullptr, ringLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -errno;
    ring = static_cast<abi::BufEntry*>(m);
    base = slab;
    count = n;
    size = bytes;
    abi::BufReg reg{};
    reg.ringAddr = reinterpret_cast<uintptr_t>(ring);
    reg.ringEntries = n;
    reg.bgid = static_cast<uint16_t>(group);
    reg.flags = static_cast<uint16_t>(flags);
    long r = SysRegister(ringFd, abi::kRegisterPbufRing, &reg, 1);
    if (r < 0) {
      Free();
      return r;
    }
    bgid = group;
    for (unsigned i = 0; i < n; i++) Add(i);
    Publish();
    return 0;
  }

  // Queues buffer `bid` for the kernel again (visible after Publish).
  void Add(unsigned bid) {
    abi::BufEntry& e = ring[tail & (count - 1)];
    e.addr = reinterpret_cast<uintptr_t>(base + static_cast<size_t>(bid) * size);
    e.len = size;
    e.bid = static_cast<uint16_t>(bid);
    tail++;
  }

  void Publish() { __atomic_store_n(&ring[0].resv, tail, __ATOMIC_RELEASE); }

  // After the ring fd is closed (or the group unregistered) and nothing is in flight: the
  // kernel holds no more references into the slab or the entries.
  void Free() {
    if (ring != nullptr) munmap(ring, ringLen);
    ring = nullptr;
    bgid = -1;
  }
};

}  // namespace uring
}  // namespace rawio
