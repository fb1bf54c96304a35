// The -errno convention and the argument guards shared by every family.
//
// Every syscall wrapper returns its result (>= 0) or -errno, read right after the call, as
// liburing does; nothing here touches errno later. The TypeScript layer checks arguments
// first and throws TypeError / RangeError with good messages; the guards below repeat the
// checks that protect memory (types, fd ranges, buffer bounds) so that a bad call from
// anywhere becomes a JS exception, never an abort or an out-of-bounds access.
#pragma once
#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace rawio {

// Retries a syscall interrupted by a signal (EINTR) and returns result or -errno.
// Not for close(2): Linux releases the fd even when close reports EINTR.
template <typename F>
inline long RetryEintr(F call) {
  long r;
  do {
    r = static_cast<long>(call());
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : r;
}

// The result of a call that must not be retried (close), as result or -errno.
inline long Ret(long r) { return r < 0 ? -errno : r; }

// The argument errors carry Node's own codes, as the TypeScript layer's do (src/sys/validate.ts):
// a call that reaches a guard here without a check in front (a method of a class that hands
// its arguments straight to the addon) fails with the same shape as one checked in JS.
[[noreturn]] inline void ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError e = Napi::TypeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw e;
}
[[noreturn]] inline void ThrowRange(Napi::Env env, const std::string& msg) {
  Napi::RangeError e = Napi::RangeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  throw e;
}

inline Napi::Number Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

// An integer value in [lo, hi]; TypeError for a non-number, RangeError otherwise (NaN,
// a fraction, out of bounds: never truncated or wrapped as Int32Value would).
inline int64_t IntValue(Napi::Env env, napi_value v, const char* name, int64_t lo, int64_t hi) {
  // One N-API call: napi_get_value_double itself says whether the value is a number.
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok)
    ThrowType(env, std::string(name) + " must be a number");
  if (!std::isfinite(d) || std::trunc(d) != d || d < static_cast<double>(lo) ||
      d > static_cast<double>(hi))
    ThrowRange(env, std::string(name) + " is out of range");
  return static_cast<int64_t>(d);
}

// An integer argument in [lo, hi]; TypeError for a non-number, RangeError otherwise.
inline int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo,
                      int64_t hi) {
  return IntValue(info.Env(), info[i], name, lo, hi);
}

inline int ArgFd(const Napi::CallbackInfo& info, size_t i, const char* name = "fd") {
  return static_cast<int>(ArgInt(info, i, name, 0, INT32_MAX));
}

inline bool ArgBool(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].ToBoolean().Value();
}

struct Bytes {
  uint8_t* data;
  size_t len;
};

// A string that becomes a C string (a path, a host, a name). An embedded NUL would cut it
// short in the kernel's eyes, so it is refused as node:fs refuses it: a TypeError whose
// `code` is ERR_INVALID_ARG_VALUE. The TypeScript layer checks first; this is the second line.
inline std::string CString(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsString()) ThrowType(env, std::string(name) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) {
    Napi::TypeError e =
        Napi::TypeError::New(env, std::string(name) + " must be a string without null bytes");
    e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
    throw e;
  }
  return s;
}

inline std::string ArgCString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return CString(info.Env(), info[i], name);
}

// A view of a detached ArrayBuffer (transferred: `ab.transfer()`, `postMessage` with a
// transfer list; or a Buffer munmap() released) has no memory any more and reads as empty:
// taken as a buffer, a read into it would return 0, which says EOF, and a write of it would
// send nothing and report success. A TypeError coded ERR_INVALID_ARG_TYPE instead, as the
// TypeScript layer's liveBytes() (src/sys/validate.ts) throws.
[[noreturn]] inline void ThrowDetached(Napi::Env env) {
  Napi::TypeError e = Napi::TypeError::New(
      env, "the buffer's ArrayBuffer is detached (transferred, or unmapped by munmap())");
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw e;
}

// A typed array's data (adjusted by its byte offset) and element count, in one N-API call:
// napi_get_typedarray_info fails for anything that is not a typed array. False when `v` is
// not a typed array of type `want`; ThrowDetached for a view of a detached ArrayBuffer. These
// guards run on every read and write: only an empty view can be a detached one, so only
// then is its ArrayBuffer asked. `offset`, when asked for, is the view's byte offset into
// its ArrayBuffer.
inline bool TypedView(napi_env env, napi_value v, napi_typedarray_type want, void** data,
                      size_t* count, size_t* offset = nullptr) {
  napi_typedarray_type type = napi_int8_array;
  if (napi_get_typedarray_info(env, v, &type, count, data, nullptr, offset) != napi_ok)
    return false;
  if (type != want) return false;
  // Asked for only then: getting the ArrayBuffer of a small view V8 keeps on its heap
  // moves its bytes off the heap.
  napi_value ab = nullptr;
  bool detached = false;
  if (*count == 0 && napi_get_typedarray_info(env, v, &type, count, data, &ab, offset) == napi_ok &&
      napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && detached)
    ThrowDetached(env);
  return true;
}

// Whether `start` is the first byte of a live mapping made by mmap() on this thread
// (file.cc): read-only memory (PROT_READ), where a store faults.
bool IsMappingStart(const void* start);

// The addon writes some results itself, not through a syscall (which would answer EFAULT):
// an output view over a Buffer from mmap() would make that store fault (SIGSEGV) and kill
// the process, so it is refused first, with a TypeError coded ERR_INVALID_ARG_VALUE. `data`
// and `offset` are the view's, as TypedView returns them.
inline void CheckWritable(napi_env env, void* data, size_t offset, const char* msg) {
  if (data != nullptr && IsMappingStart(static_cast<uint8_t*>(data) - offset)) {
    Napi::TypeError e = Napi::TypeError::New(env, std::string(msg) +
                                                      " must be writable (a Buffer from mmap() "
                                                      "is read-only)");
    e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
    throw e;
  }
}

// A typed array of type `want` the addon writes into: its data and element count;
// TypeError `typeMsg` for anything else, and CheckWritable's TypeError for a mapping.
inline void* OutView(napi_env env, napi_value v, napi_typedarray_type want, size_t* count,
                     const char* name, const char* typeMsg) {
  void* data = nullptr;
  size_t offset = 0;
  if (!TypedView(env, v, want, &data, count, &offset)) ThrowType(env, typeMsg);
  CheckWritable(env, data, offset, name);
  return data;
}

// The bytes of a Uint8Array (Buffer included) value; false for anything else.
inline bool ViewBytes(napi_env env, napi_value v, Bytes* out) {
  void* data = nullptr;
  size_t len = 0;
  if (!TypedView(env, v, napi_uint8_array, &data, &len)) return false;
  *out = Bytes{static_cast<uint8_t*>(data), len};  // null for a view with no backing store
  return true;
}

// The bytes of a Uint8Array value; TypeError `msg` for anything else.
inline Bytes ValueBytes(Napi::Env env, napi_value v, const char* msg) {
  Bytes b{nullptr, 0};
  if (!ViewBytes(env, v, &b)) ThrowType(env, msg);
  return b;
}

// The elements of an Int32Array value the addon writes into (every Int32Array it takes is
// an output); TypeError `msg` for anything else, or for a view over a mapping (OutView).
inline int32_t* ValueInt32s(Napi::Env env, napi_value v, size_t* count, const char* name,
                            const char* msg) {
  return static_cast<int32_t*>(OutView(env, v, napi_int32_array, count, name, msg));
}

// A Uint8Array (Buffer included) argument (the message is built only on failure).
inline Bytes ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* name = "buffer") {
  Bytes b{nullptr, 0};
  if (!ViewBytes(info.Env(), info[i], &b))
    ThrowType(info.Env(), std::string(name) + " must be a Uint8Array");
  return b;
}

// A Uint8Array argument the addon writes into itself (a Keyspace value, iovecs): TypeError
// for anything else, or for a view over a mapping (OutView).
inline Bytes ArgOutBytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  void* data = nullptr;
  size_t len = 0;
  size_t offset = 0;
  if (!TypedView(info.Env(), info[i], napi_uint8_array, &data, &len, &offset))
    ThrowType(info.Env(), std::string(name) + " must be a Uint8Array");
  CheckWritable(info.Env(), data, offset, name);
  return Bytes{static_cast<uint8_t*>(data), len};
}

// The Uint8Array elements [start, start + count) of array `a`, as Bytes. Reading an element
// may run JS (an accessor on the array, or on Array.prototype behind a hole), and that JS
// could detach, shrink or replace a view read before it, or change the array's length: so
// every element is fetched first, and the pointers are taken after, with no JS in between.
// `count` is fixed by the caller, so a length changed meanwhile never moves past `out`, and
// nothing is sized by it up front (a sparse array's length may be 2^32 - 1: its first hole
// is the TypeError). TypeError `msg` for an element that is not a Uint8Array.
inline std::vector<Bytes> ArrayBytes(Napi::Env env, const Napi::Array& a, uint32_t start,
                                     uint32_t count, const char* msg) {
  std::vector<napi_value> values;
  Bytes b{nullptr, 0};
  for (uint32_t i = 0; i < count; i++) {
    napi_value v = a.Get(start + i);
    if (!ViewBytes(env, v, &b)) ThrowType(env, msg);  // the type only: the pointer comes later
    values.push_back(v);
  }
  std::vector<Bytes> out(values.size());
  for (size_t i = 0; i < values.size(); i++) ViewBytes(env, values[i], &out[i]);
  return out;
}

// The slice [off, off + len) of a Uint8Array argument, bounds-checked.
inline Bytes ArgSlice(const Napi::CallbackInfo& info, size_t bi, size_t oi, size_t li) {
  Bytes b = ArgBytes(info, bi);
  int64_t off = ArgInt(info, oi, "offset", 0, static_cast<int64_t>(b.len));
  int64_t len = ArgInt(info, li, "length", 0, static_cast<int64_t>(b.len) - off);
  return Bytes{b.data + off, static_cast<size_t>(len)};
}

}  // namespace rawio
