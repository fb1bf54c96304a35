// The keyspace's table: the shared-memory layout and its operations, no N-API (the design
// is described at the top of keyspace.cc, the only file that includes this one). Every
// method returns >= 0 or -errno.
#pragma once
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "errors.h"  // Bytes

namespace rawio {
namespace keyspace {

constexpr uint64_t kMagic = 0x3330534b4f494152ULL;  // "RAIOKS03"
constexpr uint32_t kClasses = 27;                   // 32 B .. 2 GiB blocks
constexpr uint32_t kBlockHead = 24;

struct Header {
  std::atomic<uint64_t> magic;  // stored last by the creator (release)
  uint64_t size;                // mapping size
  uint64_t seed;
  uint32_t nbuckets;  // power of two
  uint32_t arena;     // offset of the first block
  uint64_t top;       // bump pointer
  uint64_t count;     // live keys
  uint64_t used;      // bytes in live blocks
  uint64_t freed;     // bytes in the blocks of the free lists
  uint64_t slack;     // bytes a compaction would give back: live blocks larger than their class
  uint32_t free[kClasses];
  pthread_mutex_t lock;
};

struct Block {
  uint32_t next, hash, klen, vlen, cls, pad;
  uint8_t* data() { return reinterpret_cast<uint8_t*>(this) + kBlockHead; }
};
static_assert(sizeof(Block) == kBlockHead, "block header layout");

uint32_t Hash(uint64_t seed, const uint8_t* p, size_t n) {
  uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  memcpy(&w, p, n);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 29;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

// One mapping of a keyspace, valid on any thread. All methods return >= 0 or -errno.
class Table {
 public:
  ~Table() { Unmap(); }

  // Where the arena starts: after the header and the buckets, 64-byte aligned.
  static uint64_t ArenaOffset(uint32_t nbuckets) {
    return (sizeof(Header) + nbuckets * 4ULL + 63) & ~63ULL;
  }
  // Whether a keyspace of size bytes has room for nbuckets buckets and 4 KiB of data.
  static bool Fits(uint64_t size, uint32_t nbuckets) {
    return ArenaOffset(nbuckets) + 4096 <= size;
  }

  int Open(const char* name, bool create, uint64_t size, uint32_t nbuckets) {
    // A /proc/<pid>/fd/<n> name is an anonymous keyspace (CreateAnonymous) reopened.
    bool proc = strncmp(name, "/proc/", 6) == 0;
    if (proc && create) return -EEXIST;
    int fd = proc ? open(name, O_RDWR | O_CLOEXEC)
                  : shm_open(name, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
    if (fd < 0) return -errno;
    int r = create ? Init(fd, size, nbuckets) : Attach(fd);
    close(fd);
    if (r < 0 && create) shm_unlink(name);
    return r;
  }

  // A keyspace with no name in /dev/shm: a memfd, kept open by its creator (the returned fd)
  // and reopened by others through /proc/<pid>/fd/<fd>. Its memory goes back to the kernel
  // when the last mapping and the creator's fd are gone, so a creator that crashes leaks
  // nothing. The fd, or -errno.
  int CreateAnonymous(uint64_t size, uint32_t nbuckets) {
    int fd = memfd_create("rawio-keyspace", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    int r = Init(fd, size, nbuckets);
    if (r < 0) {
      close(fd);
      return r;
    }
    return fd;
  }

  void Unmap() {
    if (h_ != nullptr) munmap(h_, size_);
    h_ = nullptr;
  }

  long Get(const Bytes& k, const Bytes& out) {
    Locked l(this);
    if (l.err) return l.err;
    uint32_t* link = nullptr;
    Block* b = nullptr;
    long r = Find(k, &link, &b);
    if (r <= 0) return r < 0 ? r : -ENOENT;
    memcpy(out.data, b->data() + b->klen, b->vlen < out.len ? b->vlen : out.len);
    return b->vlen;
  }

  // flags: 1 = NX (only if absent), 2 = XX (only if present). 1 set, 0 not set.
  long Set(const Bytes& k, const Bytes& v, int flags) {
    Locked l(this);
    return l.err ? l.err : SetLocked(k, v, flags);
  }

  long Del(const Bytes& k) {
    Locked l(this);
    if (l.err) return l.err;
    uint32_t* link = nullptr;
    Block* b = nullptr;
    long r = Find(k, &link, &b);
    if (r <= 0) return r;
    *link = b->next;
    Free(b);
    return 1;
  }

  long Exists(const Bytes& k) {
    Locked l(this);
    if (l.err) return l.err;
    uint32_t* link = nullptr;
    Block* b = nullptr;
    return Find(k, &link, &b);
  }

  // Del (del = true) or Exists of every key, under one lock: how many were deleted or
  // present (a key given twice counts twice for Exists, once for Del, as in Redis).
  long Many(const Bytes* keys, size_t n, bool del) {
    Locked l(this);
    if (l.err) return l.err;
    long count = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t* link = nullptr;
      Block* b = nullptr;
      long r = Find(keys[i], &link, &b);
      if (r < 0) return r;
      if (r == 1 && del) {
        *link = b->next;
        Free(b);
      }
      count += r;
    }
    return count;
  }

  // Deletes every key that begins with prefix, under one lock: a walk of every chain (every
  // key once), so for rare clean-ups, not hot paths. How many were deleted.
  long DelPrefix(const Bytes& prefix) {
    Locked l(this);
    if (l.err) return l.err;
    long count = 0;
    uint64_t seen = 0;
    const uint64_t keys = h_->count;
    for (uint32_t i = 0; i < nbuckets_; i++) {
      uint32_t* link = &Buckets()[i];
      while (*link != 0) {
        Block* b = At(*link);
        if (b == nullptr || ++seen > keys) return -EIO;
        if (b->klen >= prefix.len && memcmp(b->data(), prefix.data, prefix.len) == 0) {
          *link = b->next;
          Free(b);
          count++;
        } else {
          link = &b->next;
        }
      }
    }
    return count;
  }

  // Adds delta to the integer at k (0 when absent); writes the decimal result to out.
  long Incr(const Bytes& k, int64_t delta, char out[24]) {
    Locked l(this);
    return l.err ? l.err : IncrLocked(k, delta, out);
  }

  // Adds 1 to the integer at k, as Incr, only when the integers at keys (0 when absent) sum
  // to less than max: the sum and the add in one critical section, so callers that share a
  // limit through keys can neither pass it nor be refused while it has room. The count of
  // digits written to out, 0 when the sum is max or more (nothing changed), -EINVAL (a
  // value that is not an integer), -ERANGE (overflow), -ENOMEM.
  long IncrIfSumBelow(const Bytes& k, const Bytes* keys, size_t n, int64_t max, char out[24]) {
    Locked l(this);
    if (l.err) return l.err;
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
      int64_t v = 0;
      long r = IntAt(keys[i], &v);
      if (r < 0) return r;
      if (__builtin_add_overflow(sum, v, &sum)) return -ERANGE;
    }
    return sum < max ? IncrLocked(k, 1, out) : 0;
  }

  // All pairs or none: -ENOMEM (nothing written) when they do not fit together.
  long Mset(const Bytes* kv, size_t n) {
    Locked l(this);
    if (l.err) return l.err;
    long fits = MsetFits(kv, n);
    // Blocks that shrank may hold the room: a compaction now, once, makes it count.
    if (fits == 0 && h_->slack > 0 && Compact(true)) fits = MsetFits(kv, n);
    if (fits <= 0) return fits < 0 ? fits : -ENOMEM;
    // No block shrinks while the pairs are written (MsetFits counted on their classes as they are).
    for (size_t i = 0; i + 1 < n; i += 2) {
      long r = SetLocked(kv[i], kv[i + 1], 0, false);
      if (r < 0) return r;
    }
    return 0;
  }

  // Copies each value into out back to back while it fits; lens[i] = length or -1.
  // Returns the bytes all values need (larger than out: call again with more room).
  long Mget(const Bytes* keys, size_t n, const Bytes& out, int32_t* lens) {
    Locked l(this);
    if (l.err) return l.err;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
      uint32_t* link = nullptr;
      Block* b = nullptr;
      long r = Find(keys[i], &link, &b);
      if (r < 0) return r;
      lens[i] = r ? static_cast<int32_t>(b->vlen) : -1;
      if (!r) continue;
      if (total + b->vlen <= out.len) memcpy(out.data + total, b->data() + b->klen, b->vlen);
      total += b->vlen;
    }
    return static_cast<long>(total);
  }

  long Flush() {
    Locked l(this);
    if (l.err) return l.err;
    memset(Buckets(), 0, nbuckets_ * sizeof(uint32_t));
    memset(h_->free, 0, sizeof(h_->free));
    h_->top = arena_;
    h_->count = h_->used = h_->freed = h_->slack = 0;
    return 0;
  }

  // [keys, bytes in use, capacity in bytes]
  long Info(double out[3]) {
    Locked l(this);
    if (l.err) return l.err;
    out[0] = static_cast<double>(h_->count);
    out[1] = static_cast<double>(h_->used);
    out[2] = static_cast<double>(size_ - arena_);
    return 0;
  }

 private:
  struct Locked {
    Table* t;
    long err = 0;
    explicit Locked(Table* table) : t(table) {
      if (t->h_ == nullptr) {
        err = -EBADF;
        return;
      }
      int r = pthread_mutex_lock(&t->h_->lock);
      if (r == EOWNERDEAD) r = pthread_mutex_consistent(&t->h_->lock);
      if (r != 0) err = -r;
    }
    ~Locked() {
      if (err == 0) pthread_mutex_unlock(&t->h_->lock);
    }
  };

  int Init(int fd, uint64_t size, uint32_t nbuckets) {
    uint64_t arena = ArenaOffset(nbuckets);
    if (!Fits(size, nbuckets)) return -EINVAL;
    // Reserve the pages now: a sparse segment on a full tmpfs (Docker's 64 MiB /dev/shm)
    // would raise SIGBUS on first touch; posix_fallocate turns that into ENOSPC here.
    int fr = posix_fallocate(fd, 0, static_cast<off_t>(size));
    if (fr == EOPNOTSUPP || fr == EINVAL) {
      if (ftruncate(fd, static_cast<off_t>(size)) < 0) return -errno;
    } else if (fr != 0) {
      return -fr;
    }
    int r = Map(fd, size);
    if (r < 0) return r;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    r = pthread_mutex_init(&h_->lock, &a);
    pthread_mutexattr_destroy(&a);
    if (r != 0) return -r;
    h_->size = size;
    h_->seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
    h_->nbuckets = nbuckets;
    h_->arena = static_cast<uint32_t>(arena);
    h_->top = arena;
    nbuckets_ = nbuckets;
    arena_ = static_cast<uint32_t>(arena);
    h_->magic.store(kMagic, std::memory_order_release);
    return 0;
  }

  int Attach(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size < sizeof(Header)) return -EINVAL;
    int r = Map(fd, size);
    if (r < 0) return r;
    Header* h = h_;
    bool ok = h->magic.load(std::memory_order_acquire) == kMagic && h->size == size &&
              h->nbuckets != 0 && (h->nbuckets & (h->nbuckets - 1)) == 0 &&
              h->arena >= sizeof(Header) + h->nbuckets * 4ULL && h->arena < size;
    if (!ok) Unmap();
    if (!ok) return -EINVAL;
    nbuckets_ = h->nbuckets;
    arena_ = h->arena;
    return 0;
  }

  int Map(int fd, uint64_t size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return -errno;
    h_ = static_cast<Header*>(p);
    size_ = size;
    return 0;
  }

  uint32_t* Buckets() { return reinterpret_cast<uint32_t*>(h_ + 1); }

  // The block at off, or null when off does not name a well-formed block in the arena.
  Block* At(uint32_t off) {
    if (off < arena_ || off % 8 != 0 || off + 32ULL > size_) return nullptr;
    Block* b = reinterpret_cast<Block*>(reinterpret_cast<uint8_t*>(h_) + off);
    uint64_t bsize = 32ULL << (b->cls < kClasses ? b->cls : 0);
    if (b->cls >= kClasses || off + bsize > size_ ||
        kBlockHead + static_cast<uint64_t>(b->klen) + b->vlen > bsize)
      return nullptr;
    return b;
  }

  // 1 and the block (and the link that points at it) when k is present, 0 when absent.
  long Find(const Bytes& k, uint32_t** link, Block** out) {
    uint32_t hash = Hash(h_->seed, k.data, k.len);
    *link = &Buckets()[hash & (nbuckets_ - 1)];
    for (uint32_t steps = 0; **link != 0; steps++) {
      Block* b = At(**link);
      if (b == nullptr || steps > h_->count) return -EIO;
      if (b->hash == hash && b->klen == k.len && memcmp(b->data(), k.data, k.len) == 0) {
        *out = b;
        return 1;
      }
      *link = &b->next;
    }
    return 0;
  }

  // Whether Mset's pairs fit, in order: 1 or 0 (or -errno). Written with no block shrinking
  // (Mset), an allocation succeeds exactly when the free space (past the bump pointer and on
  // the free lists) holds its block (Alloc compacts otherwise), each write takes its block
  // from it and gives back the one it replaces, and a value that fits its key's block takes
  // nothing; a key written twice is followed through the blocks of this MSET.
  long MsetFits(const Bytes* kv, size_t n) {
    uint64_t room = size_ - h_->top + h_->freed;
    std::unordered_map<std::string_view, uint32_t> written;  // key: class of its new block
    for (size_t i = 0; i + 1 < n; i += 2) {
      std::string_view key(reinterpret_cast<const char*>(kv[i].data), kv[i].len);
      int64_t cur = -1;  // the class of the key's block, -1 when absent
      auto w = written.find(key);
      if (w != written.end()) {
        cur = w->second;
      } else {
        uint32_t* link = nullptr;
        Block* b = nullptr;
        long r = Find(kv[i], &link, &b);
        if (r < 0) return r;
        if (r == 1) cur = b->cls;
      }
      uint64_t need = kBlockHead + static_cast<uint64_t>(kv[i].len) + kv[i + 1].len;
      if (cur >= 0 && need <= (32ULL << cur)) continue;  // written in place
      uint32_t cls = ClassOf(need);
      if (cls == kClasses || room < (32ULL << cls)) return 0;
      room -= 32ULL << cls;
      if (cur >= 0) room += 32ULL << cur;
      written[key] = cls;
    }
    return 1;
  }

  // The integer at k into *v (0 when absent): 0, or -EINVAL when the value is not one.
  long IntAt(const Bytes& k, int64_t* v) {
    uint32_t* link = nullptr;
    Block* b = nullptr;
    long r = Find(k, &link, &b);
    if (r < 0) return r;
    *v = 0;
    return r == 1 && !ParseInt(b->data() + b->klen, b->vlen, v) ? -EINVAL : 0;
  }

  long IncrLocked(const Bytes& k, int64_t delta, char out[24]) {
    int64_t v = 0;
    long r = IntAt(k, &v);
    if (r < 0) return r;
    if (__builtin_add_overflow(v, delta, &v)) return -ERANGE;
    int n = snprintf(out, 24, "%lld", static_cast<long long>(v));
    r = SetLocked(k, Bytes{reinterpret_cast<uint8_t*>(out), static_cast<size_t>(n)}, 0);
    return r < 0 ? r : n;
  }

  // shrink: whether a compaction this write runs may shrink blocks (see Alloc).
  long SetLocked(const Bytes& k, const Bytes& v, int flags, bool shrink = true) {
    uint32_t* link = nullptr;
    Block* b = nullptr;
    long found = Find(k, &link, &b);
    if (found < 0) return found;
    if ((flags & 1 && found) || (flags & 2 && !found)) return 0;
    uint64_t need = kBlockHead + static_cast<uint64_t>(k.len) + v.len;
    if (found && need <= (32ULL << b->cls)) {  // fits in place
      h_->slack -= Slack(b);
      memcpy(b->data() + b->klen, v.data, v.len);
      h_->used += v.len - b->vlen;
      b->vlen = static_cast<uint32_t>(v.len);
      h_->slack += Slack(b);
      return 1;
    }
    Block* nb = Alloc(need, shrink);
    if (nb == nullptr) return -ENOMEM;
    // Alloc may have compacted the arena, moving b: look it up again (nb is in no chain).
    if (found && Find(k, &link, &b) != 1) found = 0;
    nb->hash = Hash(h_->seed, k.data, k.len);
    nb->klen = static_cast<uint32_t>(k.len);
    nb->vlen = static_cast<uint32_t>(v.len);
    memcpy(nb->data(), k.data, k.len);
    memcpy(nb->data() + k.len, v.data, v.len);
    uint32_t off = Offset(nb);
    if (found) {  // replace b in its chain
      nb->next = b->next;
      *link = off;
      Free(b);
    } else {
      uint32_t* head = &Buckets()[nb->hash & (nbuckets_ - 1)];
      nb->next = *head;
      *head = off;
    }
    h_->count++;
    h_->used += need;
    return 1;
  }

  uint8_t* Base() { return reinterpret_cast<uint8_t*>(h_); }

  static uint32_t ClassOf(uint64_t need) {
    uint32_t cls = 0;
    while (cls < kClasses && (32ULL << cls) < need) cls++;
    return cls;
  }

  // The bytes a compaction would take from live block b: its size less its class's now.
  static uint64_t Slack(Block* b) {
    return (32ULL << b->cls) -
           (32ULL << ClassOf(kBlockHead + static_cast<uint64_t>(b->klen) + b->vlen));
  }

  // A block of the class that holds need bytes: from its free list, else cut from the bump
  // pointer, else split off a larger free block, else (when the free blocks, the space past
  // the bump pointer and, with shrink, what live blocks would give back add up to enough)
  // from the arena compacted. Null when full. The room counted is exactly the room a
  // compaction makes, so a write that fails compacts nothing.
  Block* Alloc(uint64_t need, bool shrink = true) {
    uint32_t cls = ClassOf(need);
    if (cls == kClasses) return nullptr;
    uint64_t bsize = 32ULL << cls;
    Block* b = Pop(cls);
    if (b == nullptr && h_->free[cls] == 0) b = Bump(bsize);
    for (uint32_t c = cls + 1; b == nullptr && c < kClasses; c++) {
      Block* big = Pop(c);
      if (big == nullptr) continue;
      // Halve it down to cls: the upper halves go to the free lists of classes c-1 .. cls.
      uint32_t off = Offset(big);
      for (uint32_t k = c; k-- > cls;) Push(off + static_cast<uint32_t>(32ULL << k), k);
      b = big;
    }
    uint64_t room = size_ - h_->top + h_->freed + (shrink ? h_->slack : 0);
    if (b == nullptr && room >= bsize && Compact(shrink)) b = Bump(bsize);
    if (b != nullptr) b->cls = cls;
    return b;
  }

  uint32_t Offset(Block* b) {
    return static_cast<uint32_t>(reinterpret_cast<uint8_t*>(b) - Base());
  }

  // The head of class cls's free list, taken off it; null when empty or out of bounds.
  Block* Pop(uint32_t cls) {
    uint64_t off = h_->free[cls];
    uint64_t bsize = 32ULL << cls;
    if (off == 0 || off < arena_ || off % 32 != 0 || off + bsize > size_) return nullptr;
    Block* b = reinterpret_cast<Block*>(Base() + off);
    h_->free[cls] = b->next;
    h_->freed -= bsize;
    return b;
  }

  void Push(uint32_t off, uint32_t cls) {
    Block* b = reinterpret_cast<Block*>(Base() + off);
    b->klen = b->vlen = 0;
    b->cls = cls;
    b->next = h_->free[cls];
    h_->free[cls] = off;
    h_->freed += 32ULL << cls;
  }

  Block* Bump(uint64_t bsize) {
    if (h_->top < arena_ || h_->top % 32 != 0 || h_->top + bsize > size_ ||
        h_->top + bsize > UINT32_MAX)
      return nullptr;
    Block* b = reinterpret_cast<Block*>(Base() + h_->top);
    h_->top += bsize;
    return b;
  }

  // Slides every live block down to the start of the arena, in offset order, each (with
  // shrink) shrunk to the class its key and value need, and relinks the chains; the free
  // lists are emptied and the bump pointer follows the last block. Freed blocks of one class
  // thus serve any other, and a block kept by a value that shrank gives the rest back. False
  // (the table untouched) when a chain or block is malformed. A process that dies in here
  // leaves the chains partly rebuilt: keys may be lost, never the bounds (At checks them).
  bool Compact(bool shrink) {
    uint64_t most = (size_ - arena_) / 32;  // blocks the arena can hold
    std::vector<uint32_t> offs;
    offs.reserve(h_->count < most ? h_->count + 1 : most);
    uint32_t* buckets = Buckets();
    for (uint32_t i = 0; i < nbuckets_; i++) {
      for (uint32_t off = buckets[i]; off != 0;) {
        Block* b = At(off);
        if (b == nullptr || offs.size() > h_->count || offs.size() >= most) return false;
        offs.push_back(off);
        off = b->next;
      }
    }
    std::sort(offs.begin(), offs.end());
    for (size_t i = 0; i + 1 < offs.size(); i++) {
      if (offs[i] + (32ULL << At(offs[i])->cls) > offs[i + 1]) return false;  // overlap
    }
    memset(buckets, 0, nbuckets_ * sizeof(uint32_t));
    uint64_t dst = arena_;
    uint64_t used = 0;
    for (uint32_t off : offs) {
      Block* b = At(off);
      uint64_t len = kBlockHead + static_cast<uint64_t>(b->klen) + b->vlen;
      uint32_t cls = shrink ? ClassOf(len) : b->cls;  // <= b->cls: dst never passes off
      memmove(Base() + dst, b, len);
      Block* nb = reinterpret_cast<Block*>(Base() + dst);
      nb->cls = cls;
      uint32_t* head = &buckets[nb->hash & (nbuckets_ - 1)];
      nb->next = *head;
      *head = static_cast<uint32_t>(dst);
      dst += 32ULL << cls;
      used += len;
    }
    h_->count = offs.size();
    h_->used = used;
    memset(h_->free, 0, sizeof(h_->free));
    h_->freed = 0;
    if (shrink) h_->slack = 0;
    h_->top = dst;
    return true;
  }

  void Free(Block* b) {
    h_->slack -= Slack(b);
    h_->count--;
    h_->used -= kBlockHead + static_cast<uint64_t>(b->klen) + b->vlen;
    Push(Offset(b), b->cls);
  }

  // Redis's rule for an integer value: optional '-', digits, no leading zeros, int64 range.
  static bool ParseInt(const uint8_t* p, size_t n, int64_t* out) {
    if (n == 0 || n > 20) return false;
    bool neg = p[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == n || (p[i] == '0' && n > i + 1) || (neg && p[i] == '0')) return false;
    uint64_t v = 0;
    for (; i < n; i++) {
      if (p[i] < '0' || p[i] > '9') return false;
      if (v > (UINT64_MAX - 9) / 10) return false;
      v = v * 10 + (p[i] - '0');
    }
    if (v > static_cast<uint64_t>(INT64_MAX) + (neg ? 1 : 0)) return false;
    *out = neg ? static_cast<int64_t>(0 - v) : static_cast<int64_t>(v);
    return true;
  }

  Header* h_ = nullptr;
  // The geometry, validated once and kept here: another process of the same user could
  // rewrite the shared header, and these bound every access.
  uint64_t size_ = 0;
  uint32_t nbuckets_ = 0;
  uint32_t arena_ = 0;
};

}  // namespace keyspace
}  // namespace rawio
