// Files: open(2) and openat2(2) (RESOLVE_BENEATH), pread(2)/pwrite(2), fstat(2), statx(2)
// with STATX_DIOALIGN (Linux 6.1), posix_fadvise(2), posix_memalign(3) buffers for O_DIRECT,
// and mmap(2)/munmap(2)/madvise(2). Every fd is opened close-on-exec.
//
// Memory rules: an aligned buffer is an external Buffer whose finalizer frees it; a mapping
// is an external Buffer whose munmap() first detaches the ArrayBuffer (its length becomes 0,
// its data pointer null) and only then unmaps, so JS can never reach unmapped memory; a
// mapping once lent to io_uring or MSG_ZEROCOPY keeps its addresses reserved (PROT_NONE)
// until the ArrayBuffer is collected, so an operation still holding the Buffer never
// reaches the next mapping. The finalizer unmaps a
// mapping nobody unmapped. Mappings are clamped to the end of a regular
// file or a block device: touching a page past it would raise SIGBUS.
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "errors.h"
#include "families.h"

namespace rawio {
namespace {

// Number.MAX_SAFE_INTEGER: the largest offset a JS number carries exactly.
constexpr int64_t kMaxSafe = (int64_t{1} << 53) - 1;

// ---- syscall wrappers: result or -errno

long OpenAt2(int dirFd, const char* path, int flags, int mode, uint64_t resolve) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = (flags & (O_CREAT | O_TMPFILE)) ? static_cast<uint64_t>(mode) : 0;
  how.resolve = resolve;
  long r;
  // EAGAIN: a concurrent rename or mount raced the lookup; the kernel asks us to retry.
  for (int tries = 0; tries < 8; tries++) {
    r = RetryEintr([&] { return syscall(SYS_openat2, dirFd, path, &how, sizeof(how)); });
    if (r != -EAGAIN) break;
  }
  return r;
}

long Statx(int fd, unsigned mask, struct statx* sx) {
  return RetryEintr([&] { return statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, mask, sx); });
}

// ---- mappings: each one a heap record, found again by the address JS sees

struct Mapping {
  void* base;     // what mmap returned (page-aligned)
  size_t span;    // what to munmap
  bool unmapped;  // munmap() ran; the finalizer only frees the record
};

// One registry per thread: every Node environment (main, each worker) has its own thread,
// and a mapping's finalizer runs on the thread that made it.
thread_local std::unordered_map<const void*, Mapping*> mappings;

void FinalizeMapping(napi_env, void* data, void* hint) {
  Mapping* m = static_cast<Mapping*>(hint);
  if (!m->unmapped) {
    munmap(m->base, m->span);
    auto it = mappings.find(data);
    if (it != mappings.end() && it->second == m) mappings.erase(it);
  }
  delete m;
}

void FreeAligned(napi_env env, void* data, void* hint) {
  int64_t size = static_cast<int64_t>(reinterpret_cast<uintptr_t>(hint));
  int64_t ignored;
  napi_adjust_external_memory(env, -size, &ignored);
  free(data);
}

// An external Buffer over data, or a clear error where the runtime refuses external memory
// (Electron's V8 sandbox reports napi_no_external_buffers_allowed).
Napi::Value ExternalBuffer(Napi::Env env, void* data, size_t len, napi_finalize fin, void* hint) {
  napi_value out;
  napi_status s = napi_create_external_buffer(env, len, data, fin, hint, &out);
  if (s == napi_ok) return Napi::Value(env, out);
  fin(env, data, hint);
  if (s == napi_no_external_buffers_allowed)
    throw Napi::Error::New(env,
                           "this runtime refuses external buffers "
                           "(napi_no_external_buffers_allowed): aligned buffers and mmap are "
                           "unavailable here");
  throw Napi::Error::New(env, "napi_create_external_buffer failed");
}

// ---- N-API glue

std::string ArgPath(const Napi::CallbackInfo& info, size_t i) {
  return ArgCString(info, i, "path");
}

Napi::Value JsOpen(const Napi::CallbackInfo& info) {
  std::string path = ArgPath(info, 0);
  int flags = static_cast<int>(ArgInt(info, 1, "flags", 0, INT32_MAX));
  int mode = static_cast<int>(ArgInt(info, 2, "mode", 0, 07777));
  return Num(info.Env(), RetryEintr([&] { return open(path.c_str(), flags | O_CLOEXEC, mode); }));
}

// openat2(dirFd, path, flags, mode, resolveFlags)
Napi::Value JsOpenat2(const Napi::CallbackInfo& info) {
  int dirFd = ArgFd(info, 0, "dirFd");
  std::string path = ArgPath(info, 1);
  int flags = static_cast<int>(ArgInt(info, 2, "flags", 0, INT32_MAX));
  int mode = static_cast<int>(ArgInt(info, 3, "mode", 0, 07777));
  uint64_t resolve = static_cast<uint64_t>(ArgInt(info, 4, "resolve", 0, 0xff));
  return Num(info.Env(), OpenAt2(dirFd, path.c_str(), flags, mode, resolve));
}

Napi::Value JsPread(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  Bytes b = ArgSlice(info, 1, 2, 3);
  off_t pos = static_cast<off_t>(ArgInt(info, 4, "position", 0, kMaxSafe));
  return Num(info.Env(), RetryEintr([&] { return pread(fd, b.data, b.len, pos); }));
}

Napi::Value JsPwrite(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  Bytes b = ArgSlice(info, 1, 2, 3);
  off_t pos = static_cast<off_t>(ArgInt(info, 4, "position", 0, kMaxSafe));
  return Num(info.Env(), RetryEintr([&] { return pwrite(fd, b.data, b.len, pos); }));
}

// fstat(fd) → [size, blksize, mode, blocks, devMajor, devMinor, ino] or -errno.
// fstat(fd, out: Float64Array(7)) → 0 or -errno; out gets [size, blksize, mode, blocks,
// devMajor, devMinor, ino]. A typed array the caller reuses, not a new JS array: static files
// stat every file they serve, and building an array element by element costs more than the
// syscall.
Napi::Value JsFstat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct stat st;
  int fd = ArgFd(info, 0);
  size_t n = 0;
  void* data = nullptr;
  const char* typeMsg = "out must be a Float64Array of 7 (or 9, with st_mtim) elements";
  data = OutView(env, info[1], napi_float64_array, &n, "out", typeMsg);
  if (n < 7) ThrowType(env, typeMsg);
  long r = RetryEintr([&] { return fstat(fd, &st); });
  if (r < 0) return Num(env, r);
  double* v = static_cast<double*>(data);
  v[0] = static_cast<double>(st.st_size);
  v[1] = static_cast<double>(st.st_blksize);
  v[2] = static_cast<double>(st.st_mode);
  v[3] = static_cast<double>(st.st_blocks);
  v[4] = static_cast<double>(major(st.st_dev));
  v[5] = static_cast<double>(minor(st.st_dev));
  v[6] = static_cast<double>(st.st_ino);
  if (n >= 9) {
    v[7] = static_cast<double>(st.st_mtim.tv_sec);
    v[8] = static_cast<double>(st.st_mtim.tv_nsec);
  }
  return Num(env, 0);
}

// dioAlign(fd) → [gotDioAlign (0/1), memAlign, offsetAlign, devMajor, devMinor, blksize,
// mode] or -errno. The policy (fallbacks, "unsupported") lives in TypeScript.
Napi::Value JsDioAlign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct statx sx {};
  long r = Statx(ArgFd(info, 0), STATX_BASIC_STATS | STATX_DIOALIGN, &sx);
  if (r < 0) return Num(env, r);
  bool got = (sx.stx_mask & STATX_DIOALIGN) != 0;
  double v[] = {got ? 1.0 : 0.0,
                static_cast<double>(sx.stx_dio_mem_align),
                static_cast<double>(sx.stx_dio_offset_align),
                static_cast<double>(sx.stx_dev_major),
                static_cast<double>(sx.stx_dev_minor),
                static_cast<double>(sx.stx_blksize),
                static_cast<double>(sx.stx_mode)};
  Napi::Array a = Napi::Array::New(env, 7);
  for (uint32_t i = 0; i < 7; i++) a.Set(i, Num(env, v[i]));
  return a;
}

// probeDirect(fd): reopens the file with O_DIRECT through /proc/self/fd to learn whether
// its filesystem accepts direct IO at all: 0 yes, -EINVAL no, other -errno unknown. Only a
// regular file or a block device is reopened: opening a FIFO with no writer blocks for
// ever, and opening a character device runs its driver's open (a tape rewinds); neither
// takes O_DIRECT reads, so both answer -EINVAL unopened.
Napi::Value JsProbeDirect(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  struct stat st;
  long r = RetryEintr([&] { return fstat(fd, &st); });
  if (r < 0) return Num(info.Env(), r);
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return Num(info.Env(), -EINVAL);
  std::string p = "/proc/self/fd/" + std::to_string(fd);
  r = RetryEintr([&] { return open(p.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC | O_NOCTTY); });
  if (r >= 0) {
    close(static_cast<int>(r));
    r = 0;
  }
  return Num(info.Env(), r);
}

Napi::Value JsFadvise(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  off_t off = static_cast<off_t>(ArgInt(info, 1, "offset", 0, kMaxSafe));
  off_t len = static_cast<off_t>(ArgInt(info, 2, "length", 0, kMaxSafe));
  int advice = static_cast<int>(ArgInt(info, 3, "advice", 0, 7));
  // posix_fadvise returns the error number instead of setting errno.
  int r;
  do {
    r = posix_fadvise(fd, off, len, advice);
  } while (r == EINTR);
  return Num(info.Env(), -r);
}

// alignedBuffer(size, align): zero-filled, so no stale heap bytes ever reach JS; -errno when
// posix_memalign fails (ENOMEM: the TypeScript layer makes it an ErrnoError).
Napi::Value JsAlignedBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t size = static_cast<size_t>(ArgInt(info, 0, "size", 0, INT32_MAX));
  size_t align = static_cast<size_t>(ArgInt(info, 1, "align", 512, 1 << 30));
  if ((align & (align - 1)) != 0) ThrowRange(env, "align must be a power of two");
  void* p = nullptr;
  // A zero-size request still gets a real, aligned allocation: the finalizer frees it.
  int r = posix_memalign(&p, align, size == 0 ? align : size);
  if (r != 0) return Num(env, -r);  // posix_memalign returns the error number, errno untouched
  memset(p, 0, size == 0 ? align : size);
  int64_t ignored;
  napi_adjust_external_memory(env, static_cast<int64_t>(size), &ignored);
  return ExternalBuffer(env, p, size, FreeAligned, reinterpret_cast<void*>(size));
}

// addrAlign(buf, off): the largest power of two (up to 2^30) dividing &buf[off], so the
// TypeScript layer can say which O_DIRECT alignment a buffer misses.
Napi::Value JsAddrAlign(const Napi::CallbackInfo& info) {
  Bytes b = ArgBytes(info, 0);
  int64_t off = ArgInt(info, 1, "offset", 0, static_cast<int64_t>(b.len));
  uintptr_t a = reinterpret_cast<uintptr_t>(b.data) + static_cast<uintptr_t>(off);
  uintptr_t low = a & (~a + 1);
  return Num(info.Env(), static_cast<double>(a == 0 || low > (1u << 30) ? (1u << 30) : low));
}

// The flags and advice a caller may pass: MAP_POPULATE prefaults the view so writes from it
// take no page faults; the madvise hints only steer readahead and never drop or change
// data (MADV_DONTNEED, MADV_REMOVE and the like are refused).
constexpr int kMmapFlags = MAP_POPULATE;

bool SafeAdvice(int advice) {
  return advice == MADV_NORMAL || advice == MADV_RANDOM || advice == MADV_SEQUENTIAL ||
         advice == MADV_WILLNEED;
}

// mmap(fd, offset, length, flags): a read-only MAP_SHARED view of [offset, offset + length),
// clamped to EOF for regular files and to the device's end for block devices; flags is 0 or
// MAP_POPULATE. Returns a Buffer, or -errno.
Napi::Value JsMmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgFd(info, 0);
  int64_t offset = ArgInt(info, 1, "offset", 0, kMaxSafe);
  int64_t length = ArgInt(info, 2, "length", 0, kMaxSafe);
  int flags = info.Length() > 3 ? static_cast<int>(ArgInt(info, 3, "flags", 0, INT32_MAX)) : 0;
  if (flags & ~kMmapFlags) return Num(env, -EINVAL);
  struct stat st;
  long r = RetryEintr([&] { return fstat(fd, &st); });
  if (r < 0) return Num(env, r);
  // The end of the data: a regular file's size, a block device's (fstat says 0 for one).
  // Past it, a page touched raises SIGBUS, so the view stops there.
  int64_t end = -1;
  if (S_ISREG(st.st_mode)) end = st.st_size;
  uint64_t devSize = 0;
  if (S_ISBLK(st.st_mode)) {
    long b = RetryEintr([&] { return ioctl(fd, BLKGETSIZE64, &devSize); });
    if (b < 0) return Num(env, b);
    end = static_cast<int64_t>(std::min<uint64_t>(devSize, static_cast<uint64_t>(kMaxSafe)));
  }
  if (end >= 0) length = offset >= end ? 0 : std::min<int64_t>(length, end - offset);
  if (length == 0) return Napi::Buffer<uint8_t>::New(env, 0);
  // A Buffer holds at most 2^32 bytes in Node 20 (buffer.constants.MAX_LENGTH): map less.
  if (length > (int64_t{1} << 32) - 1) return Num(env, -EOVERFLOW);
  int64_t page = sysconf(_SC_PAGESIZE);
  int64_t delta = offset % page;
  size_t span = static_cast<size_t>(length + delta);
  void* base = mmap(nullptr, span, PROT_READ, MAP_SHARED | flags, fd, offset - delta);
  if (base == MAP_FAILED) return Num(env, -errno);
  uint8_t* data = static_cast<uint8_t*>(base) + delta;
  Mapping* m = new Mapping{base, span, false};
  mappings[data] = m;
  return ExternalBuffer(env, data, static_cast<size_t>(length), FinalizeMapping, m);
}

}  // namespace

bool IsMappingStart(const void* start) {
  return !mappings.empty() && mappings.find(start) != mappings.end();
}

namespace {

// The addresses of a mapping munmap() dropped, held (PROT_NONE) until its ArrayBuffer is
// collected: see JsMunmap.
struct Reservation {
  void* base;
  size_t span;
};

void ReleaseReservation(napi_env, void* data, void*) {
  auto* r = static_cast<Reservation*>(data);
  munmap(r->base, r->span);
  delete r;
}

// The live mapping whose Buffer is exactly t, or null (detached, a slice, not a mapping).
Mapping* WholeMapping(const Napi::TypedArray& t) {
  Napi::ArrayBuffer ab = t.ArrayBuffer();
  // A SharedArrayBuffer's view is never a mapping (and IsDetached would throw on it).
  if (!Napi::Value(ab).IsArrayBuffer()) return nullptr;
  if (ab.IsDetached() || t.ByteOffset() != 0 || t.ByteLength() != ab.ByteLength()) return nullptr;
  auto it = mappings.find(ab.Data());
  return it == mappings.end() ? nullptr : it->second;
}

// madvise(buf, advice): advice over the whole mapping behind buf. 0 or -errno; -EINVAL when
// buf is not a whole live mapping made by mmap() or the advice is not a readahead hint.
Napi::Value JsMadvise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) ThrowType(env, "buffer must be a Buffer returned by mmap()");
  int advice = static_cast<int>(ArgInt(info, 1, "advice", 0, INT32_MAX));
  Mapping* m = WholeMapping(info[0].As<Napi::TypedArray>());
  if (m == nullptr || !SafeAdvice(advice)) return Num(env, -EINVAL);
  return Num(env, RetryEintr([&] { return madvise(m->base, m->span, advice); }));
}

// munmap(buf, reserve = true): 0 when it unmapped, 1 when buf was already detached (a second
// munmap), -EINVAL when buf is not a whole mapping made by mmap(). reserve false (the facade
// knows buf was never lent to an operation that keeps its address) unmaps outright.
Napi::Value JsMunmap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) ThrowType(env, "buffer must be a Buffer returned by mmap()");
  Napi::TypedArray t = info[0].As<Napi::TypedArray>();
  Napi::ArrayBuffer ab = t.ArrayBuffer();
  if (!Napi::Value(ab).IsArrayBuffer()) return Num(env, -EINVAL);  // a SharedArrayBuffer's view
  if (ab.IsDetached()) return Num(env, 1);
  void* data = static_cast<uint8_t*>(ab.Data()) + t.ByteOffset();
  auto it = mappings.find(data);
  if (it == mappings.end() || t.ByteOffset() != 0 || t.ByteLength() != ab.ByteLength())
    return Num(env, -EINVAL);
  Mapping* m = it->second;
  mappings.erase(it);
  m->unmapped = true;  // before the detach, which may run FinalizeMapping
  // Detach first: from here on JS sees a zero-length buffer, never the unmapped pages.
  ab.Detach();
  if (info[1].IsBoolean() && !info[1].As<Napi::Boolean>().Value())
    return Num(env, Ret(munmap(m->base, m->span)));
  // An io_uring send still in flight may read these addresses after this call (the ring
  // holds the Buffer, not the pages). Unmapped outright, the range could be the next
  // mapping's, whose bytes would go out instead. So the file's pages are dropped by mapping
  // an inaccessible reservation over them (the kernel's late reads fail with EFAULT), and
  // the addresses are released only once the ArrayBuffer, and so every view an operation
  // holds, has been collected.
  void* r = mmap(m->base, m->span, PROT_NONE,
                 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) return Num(env, Ret(munmap(m->base, m->span)));
  auto* res = new Reservation{m->base, m->span};
  if (napi_add_finalizer(env, ab, res, ReleaseReservation, nullptr, nullptr) != napi_ok)
    ReleaseReservation(env, res, nullptr);
  return Num(env, 0);
}

// ---- transfer windows: mappings no JS ever sees
//
// The `mmap` transfer method writes a file to a socket from a mapping that lives only for
// the transfer. As a Buffer, each mapping would cost an external ArrayBuffer, a finalizer's
// global handle, a registry entry and a detach: far more user time than the mmap itself.
// Here a mapping is held in a slot of this thread's table instead, named by a small integer
// the TypeScript side owns for the length of one transfer, and only the kernel reads it
// (write(2) copies from it: a page lost to a truncation makes the copy fault, which the
// kernel reports as EFAULT or a short write, never SIGBUS). A thread's table is unmapped
// with the thread.

struct Window {
  void* base = nullptr;           // what mmap returned; null: the slot holds nothing
  size_t span = 0;                // what to munmap
  const uint8_t* data = nullptr;  // the byte at start (base, or a few bytes into its page)
  int fd = -1;                    // the file it maps
  int64_t start = 0;              // file position of its first data byte
  int64_t len = 0;                // data bytes from start (clamped to EOF when mapped)
};

struct WindowTable {
  std::vector<Window> slots;
  ~WindowTable() {
    for (Window& w : slots)
      if (w.base != nullptr) munmap(w.base, w.span);
  }
};

thread_local WindowTable windows;

// The highest slot number: far above the mappings a process may hold (vm.max_map_count).
constexpr int64_t kMaxWindowSlot = (int64_t{1} << 20) - 1;

// Failures on the file side, told apart from the socket's -errno: -(errno | kind << 16).
constexpr long kFailMmap = 1L << 16;
constexpr long kFailMadvise = 2L << 16;

void DropWindow(Window& w) {
  if (w.base != nullptr) munmap(w.base, w.span);
  w = Window{};
}

// Maps [pos, pos + want) of fd into w, clamped to EOF: 0 when nothing is left there (EOF),
// the data bytes mapped, or a file-side failure (-(errno | kind)).
long MapWindow(Window& w, int fd, int64_t pos, int64_t want, int flags, int advice) {
  struct stat st;
  long r = RetryEintr([&] { return fstat(fd, &st); });
  if (r < 0) return -(-r | kFailMmap);
  // Only a regular file has an end to clamp to; anything else is refused as mmap() would
  // refuse most of it (transferFile sends regular files alone).
  if (!S_ISREG(st.st_mode)) return -(EINVAL | kFailMmap);
  int64_t len = pos >= st.st_size ? 0 : std::min<int64_t>(want, st.st_size - pos);
  if (len == 0) return 0;
  static const int64_t page = sysconf(_SC_PAGESIZE);
  int64_t delta = pos % page;
  size_t span = static_cast<size_t>(len + delta);
  void* base = mmap(nullptr, span, PROT_READ, MAP_SHARED | flags, fd, pos - delta);
  if (base == MAP_FAILED) return -(errno | kFailMmap);
  if (advice >= 0) {
    long a = RetryEintr([&] { return madvise(base, span, advice); });
    if (a < 0) {
      munmap(base, span);
      return -(-a | kFailMadvise);
    }
  }
  w.base = base;
  w.span = span;
  w.fd = fd;
  w.data = static_cast<const uint8_t*>(base) + delta;
  w.start = pos;
  w.len = len;
  return len;
}

// mmapSend(slot, sockFd, fileFd, position, count, window, flags, advice): one step of the
// `mmap` transfer. Writes up to `count` bytes of fileFd at `position` to sockFd from the
// mapping in `slot`, first mapping a new window of up to `window` bytes at `position`
// (clamped to EOF) when the slot's mapping does not hold that position. Returns the bytes
// written, 0 at EOF (nothing left to map there), the write's -errno (-EAGAIN: resume with
// the same slot), or -(errno | 1 << 16) for a failed fstat/mmap, -(errno | 2 << 16) for a
// failed madvise. A step that writes all of `count` unmaps at once, so a transfer the
// kernel takes whole leaves nothing behind; otherwise mmapDrop(slot) ends it. flags: 0 or
// MAP_POPULATE; advice: -1 or one of the readahead hints.
Napi::Value JsMmapSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 8) ThrowType(env, "mmapSend takes 8 arguments");
  size_t slot = static_cast<size_t>(ArgInt(info, 0, "slot", 0, kMaxWindowSlot));
  int sockFd = ArgFd(info, 1, "sockFd");
  int fileFd = ArgFd(info, 2, "fileFd");
  int64_t pos = ArgInt(info, 3, "position", 0, kMaxSafe);
  int64_t count = ArgInt(info, 4, "count", 1, kMaxSafe);
  int64_t window = ArgInt(info, 5, "window", 1, int64_t{1} << 30);
  int flags = static_cast<int>(ArgInt(info, 6, "flags", 0, INT32_MAX));
  int advice = static_cast<int>(ArgInt(info, 7, "advice", -1, INT32_MAX));
  if ((flags & ~kMmapFlags) != 0) ThrowRange(env, "flags must be 0 or MAP_POPULATE");
  if (advice != -1 && !SafeAdvice(advice))
    ThrowRange(env,
               "advice must be -1 or a readahead hint (MADV_NORMAL, RANDOM, SEQUENTIAL, WILLNEED)");
  if (slot >= windows.slots.size()) windows.slots.resize(slot + 1);
  Window& w = windows.slots[slot];
  if (w.base == nullptr || w.fd != fileFd || pos < w.start || pos >= w.start + w.len) {
    DropWindow(w);
    long m = MapWindow(w, fileFd, pos, std::min(count, window), flags, advice);
    if (m <= 0) return Num(env, static_cast<double>(m));
  }
  const uint8_t* from = w.data + (pos - w.start);
  size_t n = static_cast<size_t>(std::min(count, w.start + w.len - pos));
  long r = RetryEintr([&] { return write(sockFd, from, n); });
  if (r == count) DropWindow(w);
  return Num(env, static_cast<double>(r));
}

// mmapDrop(slot): unmaps what `slot` holds (nothing: a no-op). Returns 1 when it held a
// mapping, 0 otherwise.
Napi::Value JsMmapDrop(const Napi::CallbackInfo& info) {
  size_t slot = static_cast<size_t>(ArgInt(info, 0, "slot", 0, kMaxWindowSlot));
  if (slot >= windows.slots.size() || windows.slots[slot].base == nullptr)
    return Num(info.Env(), 0);
  DropWindow(windows.slots[slot]);
  return Num(info.Env(), 1);
}

// mmapWindows(): the slots of this thread holding a mapping (for tests and leak checks).
Napi::Value JsMmapWindows(const Napi::CallbackInfo& info) {
  double n = 0;
  for (const Window& w : windows.slots)
    if (w.base != nullptr) n++;
  return Num(info.Env(), n);
}

}  // namespace

void InitFile(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, JsOpen));
  exports.Set("openat2", Napi::Function::New(env, JsOpenat2));
  exports.Set("pread", Napi::Function::New(env, JsPread));
  exports.Set("pwrite", Napi::Function::New(env, JsPwrite));
  exports.Set("fstat", Napi::Function::New(env, JsFstat));
  exports.Set("dioAlign", Napi::Function::New(env, JsDioAlign));
  exports.Set("probeDirect", Napi::Function::New(env, JsProbeDirect));
  exports.Set("fadvise", Napi::Function::New(env, JsFadvise));
  exports.Set("alignedBuffer", Napi::Function::New(env, JsAlignedBuffer));
  exports.Set("addrAlign", Napi::Function::New(env, JsAddrAlign));
  exports.Set("mmap", Napi::Function::New(env, JsMmap));
  exports.Set("munmap", Napi::Function::New(env, JsMunmap));
  exports.Set("madvise", Napi::Function::New(env, JsMadvise));
  exports.Set("mmapSend", Napi::Function::New(env, JsMmapSend));
  exports.Set("mmapDrop", Napi::Function::New(env, JsMmapDrop));
  exports.Set("mmapWindows", Napi::Function::New(env, JsMmapWindows));
}

}  // namespace rawio
