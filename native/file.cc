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
}

}  // namespace rawio
