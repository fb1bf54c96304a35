// The RESP protocol's keyspace: one hash table in POSIX shared memory (shm_open(3), mmap(2)),
// shared by every thread and process of a server, so that a SET on any connection is seen
// by a GET on any other whatever the server model.
//
// Design. The creator shm_open()s a fresh name (O_EXCL), sizes it with ftruncate and lays
// out: a Header (magic, geometry, counters, size-class free lists, a hash seed, and one
// process-shared *robust* pthread mutex), a bucket array of uint32 offsets, then an arena of
// blocks. Other threads and processes attach by name; the fd is closed right after mmap,
// so a mapping holds no descriptor. Keys live in chained blocks: {next, hash, klen, vlen,
// cls} followed by the key and value bytes. A block's size is a power of two (32 << cls);
// freed blocks go to their class's free list and are reused by the next allocation of that
// class, new ones are cut from a bump pointer, else split off a larger free block; when the
// free blocks, the space past the bump pointer and what live blocks would give back (a value
// overwritten in place by a shorter one keeps its block: the header counts the slack)
// together have room, the arena is compacted (live blocks slid down in order, each shrunk to
// its class, chains relinked, the free lists emptied), so space freed in one size serves any
// other. An MSET shrinks no block while it writes (its all-or-nothing check counts on the
// blocks as they are), after one compaction first if only the slack holds its room. When nothing
// has room the operation fails with -ENOMEM (the protocol's OOM reply). Capacity is fixed at
// creation, and its pages are reserved then (posix_fallocate), so a full /dev/shm fails the
// creation, not a later write.
//
// Every operation takes the one lock: the critical sections are a hash, a short chain walk
// and a memcpy, far shorter than the syscalls around them (a compaction, run only when the
// free space is scattered, walks every key once), and one lock makes INCR, SET NX,
// MSET and DEL atomic against every other client for free. A process that dies holding the
// lock leaves it EOWNERDEAD: the next locker marks it consistent and carries on (the one
// operation in flight may be lost, and with a compaction the keys not yet relinked, never
// the table's bounds). Offsets read from shared memory are bounds-checked before use, so a
// corrupted segment yields -EIO, never a stray access. The hash is seeded per keyspace
// against chosen-key collisions.
//
// Lifecycle: the server that creates a keyspace unlinks its name when it closes; a mapping
// stays valid until its own close (munmap) or collection.
#include <sys/mman.h>

#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "families.h"
#include "keyspace_table.h"

namespace rawio {
namespace {

using keyspace::Table;

// ---- N-API glue: class Keyspace { open, close, get, set, del, exists, delMany, delPrefix,
// existsMany, incr, incrIfSumBelow, mset, mget, flush, info } and keyspaceUnlink(name). Every
// method returns
// >= 0 or -errno.

bool IsProcFdName(const std::string& s) {
  unsigned pid = 0, fd = 0;
  int end = 0;
  return sscanf(s.c_str(), "/proc/%u/fd/%u%n", &pid, &fd, &end) == 2 &&
         static_cast<size_t>(end) == s.size();
}

std::string ArgName(const Napi::CallbackInfo& info, size_t i) {
  std::string s = ArgCString(info, i, "name");
  if (IsProcFdName(s)) return s;
  if (s.size() < 2 || s.size() > 200 || s[0] != '/' || s.find('/', 1) != std::string::npos)
    ThrowRange(info.Env(), "name must be '/' and 1-199 characters without '/'");
  return s;
}

// An array of Uint8Array arguments as Bytes (ArrayBytes: an accessor that grows the array or
// detaches a key read before it changes nothing already taken). Read before any other
// buffer argument of the call, whose pointer that JS could otherwise leave dangling.
std::vector<Bytes> ArgByteList(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsArray()) ThrowType(info.Env(), "keys must be an array of Uint8Array");
  Napi::Array a = info[i].As<Napi::Array>();
  return ArrayBytes(info.Env(), a, 0, a.Length(), "keys must be an array of Uint8Array");
}

Bytes ArgKey(const Napi::CallbackInfo& info, size_t i, const char* name = "key") {
  Bytes b = ArgBytes(info, i, name);
  if (b.len > UINT32_MAX / 2) ThrowRange(info.Env(), std::string(name) + " is too long");
  return b;
}

// A RangeError when size cannot hold the header, `buckets` buckets and 4 KiB of data (each
// in range on its own: 64 KiB with 2^24 buckets).
void CheckFits(Napi::Env env, int64_t size, int64_t buckets) {
  if (!Table::Fits(static_cast<uint64_t>(size), static_cast<uint32_t>(buckets)))
    ThrowRange(env, "buckets must leave 4 KiB of size for data: " + std::to_string(buckets) +
                        " buckets need " +
                        std::to_string(Table::ArenaOffset(static_cast<uint32_t>(buckets)) + 4096) +
                        " bytes");
}

class Keyspace : public Napi::ObjectWrap<Keyspace> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "Keyspace",
        {InstanceMethod<&Keyspace::Open>("open"), InstanceMethod<&Keyspace::Close>("close"),
         InstanceMethod<&Keyspace::Get>("get"), InstanceMethod<&Keyspace::Set>("set"),
         InstanceMethod<&Keyspace::Del>("del"), InstanceMethod<&Keyspace::Exists>("exists"),
         InstanceMethod<&Keyspace::DelMany>("delMany"),
         InstanceMethod<&Keyspace::DelPrefix>("delPrefix"),
         InstanceMethod<&Keyspace::ExistsMany>("existsMany"),
         InstanceMethod<&Keyspace::Incr>("incr"),
         InstanceMethod<&Keyspace::IncrIfSumBelow>("incrIfSumBelow"),
         InstanceMethod<&Keyspace::Mset>("mset"), InstanceMethod<&Keyspace::Mget>("mget"),
         InstanceMethod<&Keyspace::Flush>("flush"), InstanceMethod<&Keyspace::Info>("info"),
         InstanceMethod<&Keyspace::CreateAnonymous>("createAnonymous")});
  }
  explicit Keyspace(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Keyspace>(info) {}
  ~Keyspace() override { CloseFd(); }

 private:
  // open(name, create, size, buckets): create (O_EXCL) or attach. 0 or -errno.
  Napi::Value Open(const Napi::CallbackInfo& info) {
    std::string name = ArgName(info, 0);
    bool create = ArgBool(info, 1);
    int64_t size = ArgInt(info, 2, "size", 1 << 16, UINT32_MAX);
    int64_t buckets = ArgInt(info, 3, "buckets", 16, 1 << 24);
    if (buckets & (buckets - 1)) ThrowRange(info.Env(), "buckets must be a power of two");
    if (create) CheckFits(info.Env(), size, buckets);
    t_.Unmap();
    return Num(info.Env(), t_.Open(name.c_str(), create, static_cast<uint64_t>(size),
                                   static_cast<uint32_t>(buckets)));
  }
  // createAnonymous(size, buckets): a memfd keyspace; its fd (kept until close) or -errno.
  Napi::Value CreateAnonymous(const Napi::CallbackInfo& info) {
    int64_t size = ArgInt(info, 0, "size", 1 << 16, UINT32_MAX);
    int64_t buckets = ArgInt(info, 1, "buckets", 16, 1 << 24);
    if (buckets & (buckets - 1)) ThrowRange(info.Env(), "buckets must be a power of two");
    CheckFits(info.Env(), size, buckets);
    t_.Unmap();
    CloseFd();
    int r = t_.CreateAnonymous(static_cast<uint64_t>(size), static_cast<uint32_t>(buckets));
    if (r >= 0) fd_ = r;
    return Num(info.Env(), r);
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    t_.Unmap();
    CloseFd();
    return info.Env().Undefined();
  }
  void CloseFd() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  // get(key, out): the value's length (copied into out as far as it fits) or -ENOENT.
  Napi::Value Get(const Napi::CallbackInfo& info) {
    Bytes k = ArgKey(info, 0);
    return Num(info.Env(), t_.Get(k, ArgOutBytes(info, 1, "out")));
  }
  // set(key, value, flags): 1 set, 0 not (NX = 1, XX = 2), -ENOMEM when full.
  Napi::Value Set(const Napi::CallbackInfo& info) {
    Bytes k = ArgKey(info, 0);
    Bytes v = ArgKey(info, 1, "value");
    int flags = static_cast<int>(ArgInt(info, 2, "flags", 0, 2));
    return Num(info.Env(), t_.Set(k, v, flags));
  }
  Napi::Value Del(const Napi::CallbackInfo& info) {
    return Num(info.Env(), t_.Del(ArgKey(info, 0)));
  }
  Napi::Value Exists(const Napi::CallbackInfo& info) {
    return Num(info.Env(), t_.Exists(ArgKey(info, 0)));
  }
  // delMany(keys) / existsMany(keys): del / exists of every key under one lock; the count.
  Napi::Value DelMany(const Napi::CallbackInfo& info) {
    std::vector<Bytes> keys = ArgByteList(info, 0);
    return Num(info.Env(), t_.Many(keys.data(), keys.size(), true));
  }
  // delPrefix(prefix): deletes every key that begins with prefix (any length, '' all), under
  // one lock; the count.
  Napi::Value DelPrefix(const Napi::CallbackInfo& info) {
    return Num(info.Env(), t_.DelPrefix(ArgBytes(info, 0, "prefix")));
  }
  Napi::Value ExistsMany(const Napi::CallbackInfo& info) {
    std::vector<Bytes> keys = ArgByteList(info, 0);
    return Num(info.Env(), t_.Many(keys.data(), keys.size(), false));
  }
  // incr(key, delta (a number within 2^53, or an int64 bigint), out): writes the new value's
  // decimal digits to out (>= 24 bytes) and returns their count; -EINVAL (not an integer), -ERANGE
  // (overflow), -ENOMEM.
  Napi::Value Incr(const Napi::CallbackInfo& info) {
    Bytes k = ArgKey(info, 0);
    int64_t delta = 0;
    if (info[1].IsBigInt()) {  // any int64, as Redis's INCRBY takes
      bool lossless = false;
      delta = info[1].As<Napi::BigInt>().Int64Value(&lossless);
      if (!lossless) ThrowRange(info.Env(), "delta must be a bigint within int64");
    } else {
      delta = ArgInt(info, 1, "delta", -(1LL << 53), 1LL << 53);
    }
    Bytes out = ArgOutBytes(info, 2, "out");
    if (out.len < 24) ThrowRange(info.Env(), "out must hold 24 bytes");
    char digits[24];
    long r = t_.Incr(k, delta, digits);
    if (r > 0) memcpy(out.data, digits, static_cast<size_t>(r));
    return Num(info.Env(), r);
  }
  // incrIfSumBelow(key, keys, max, out): incr(key, 1, out) only when the values of keys sum
  // to less than max, under one lock: the digits' count as incr, 0 at the limit, or -errno.
  Napi::Value IncrIfSumBelow(const Napi::CallbackInfo& info) {
    std::vector<Bytes> keys = ArgByteList(info, 1);  // first: it may run JS (ArgByteList)
    Bytes k = ArgKey(info, 0);
    int64_t max = ArgInt(info, 2, "max", 0, 1LL << 53);
    Bytes out = ArgOutBytes(info, 3, "out");
    if (out.len < 24) ThrowRange(info.Env(), "out must hold 24 bytes");
    char digits[24];
    long r = t_.IncrIfSumBelow(k, keys.data(), keys.size(), max, digits);
    if (r > 0) memcpy(out.data, digits, static_cast<size_t>(r));
    return Num(info.Env(), r);
  }
  // mset([k1, v1, k2, v2, ...]): 0 or -ENOMEM, under one lock.
  Napi::Value Mset(const Napi::CallbackInfo& info) {
    std::vector<Bytes> kv = ArgByteList(info, 0);
    if (kv.size() % 2) ThrowRange(info.Env(), "mset needs key/value pairs");
    return Num(info.Env(), t_.Mset(kv.data(), kv.size()));
  }
  // mget(keys, out, lens: Int32Array): see Table::Mget.
  Napi::Value Mget(const Napi::CallbackInfo& info) {
    std::vector<Bytes> keys = ArgByteList(info, 0);
    Bytes out = ArgOutBytes(info, 1, "out");
    size_t nlens = 0;
    int32_t* lens = ValueInt32s(info.Env(), info[2], &nlens, "lens", "lens must be an Int32Array");
    if (nlens < keys.size()) ThrowRange(info.Env(), "lens is too short");
    return Num(info.Env(), t_.Mget(keys.data(), keys.size(), out, lens));
  }
  Napi::Value Flush(const Napi::CallbackInfo& info) { return Num(info.Env(), t_.Flush()); }
  // info(): [keys, bytes used, capacity] or -errno.
  Napi::Value Info(const Napi::CallbackInfo& info) {
    double v[3];
    long r = t_.Info(v);
    if (r < 0) return Num(info.Env(), r);
    Napi::Array a = Napi::Array::New(info.Env(), 3);
    for (uint32_t i = 0; i < 3; i++) a.Set(i, Num(info.Env(), v[i]));
    return a;
  }

  Table t_;
  int fd_ = -1;
};

Napi::Value JsKeyspaceUnlink(const Napi::CallbackInfo& info) {
  std::string name = ArgName(info, 0);
  if (IsProcFdName(name)) return Num(info.Env(), 0);  // anonymous: nothing to unlink
  return Num(info.Env(), Ret(shm_unlink(name.c_str())));
}

}  // namespace

void InitKeyspace(Napi::Env env, Napi::Object exports) {
  exports.Set("Keyspace", Keyspace::Define(env));
  exports.Set("keyspaceUnlink", Napi::Function::New(env, JsKeyspaceUnlink));
}

}  // namespace rawio
