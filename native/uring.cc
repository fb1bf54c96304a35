// A raw io_uring (io_uring_setup(2), io_uring_enter(2), io_uring_register(2)), no liburing.
//
// Thin by design: `prep` fills one SQE from its arguments, `submit` publishes the SQ tail and
// enters the kernel, `reap` copies CQEs into an Int32Array as (userData, res, flags) triples.
// Everything else (promises, queues when the SQ is full, buffer lifetimes, the Proactor) is
// TypeScript. User data is the low 32 bits of the kernel's u64: JS hands an int32 or uint32 in,
// and reads it back as an int32 (JS keeps the high bit for its own promise ops).
//
// Memory safety: a buffer's address goes into an SQE only after its bounds are checked here
// (per opcode: byte counts, iovec counts, NUL-terminated paths, struct sizes); the JS layer
// keeps every such buffer referenced until its completion is reaped. The ring also counts the
// operations in flight so that it never unmaps or closes while the kernel may still write into
// user memory: the destructor (GC of a forgotten ring) cancels them and waits.
#include <sys/socket.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include "errors.h"
#include "families.h"
#include "uring_bufring.h"
#include "uring_ring.h"

namespace rawio {
namespace {

using uring::BufRing;
using uring::RingMem;
using uring::SysRegister;
using uring::SysSetup;

// Ops prep accepts, with how it checks the buffer behind sqe->addr (and sqe->addr2).
enum class AddrKind { kNone, kBytes, kIovecs, kPath, kTimespec, kFixed };

AddrKind KindOf(int op) {
  switch (op) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_SEND:
    case IORING_OP_RECV:
    case abi::kOpSendZc:  // its zc flags ride in ioprio, msg flags in the op flags word
      return AddrKind::kBytes;
    case IORING_OP_READ_FIXED:
    case IORING_OP_WRITE_FIXED:
      return AddrKind::kFixed;
    case IORING_OP_READV:
    case IORING_OP_WRITEV:
      return AddrKind::kIovecs;
    case IORING_OP_OPENAT:
    case IORING_OP_STATX:
      return AddrKind::kPath;
    case IORING_OP_TIMEOUT:
      return AddrKind::kTimespec;
    case IORING_OP_NOP:
    case IORING_OP_FSYNC:
    case IORING_OP_ACCEPT:
    case IORING_OP_ASYNC_CANCEL:
    case IORING_OP_CLOSE:
    case IORING_OP_SPLICE:
    case IORING_OP_POLL_ADD:
      return AddrKind::kNone;
    default:
      return static_cast<AddrKind>(-1);
  }
}

uint64_t U64(const Napi::CallbackInfo& info, size_t i, const char* name) {
  // -1 means "all ones" (the current file position; splice's "no offset").
  int64_t v = ArgInt(info, i, name, -1, (int64_t{1} << 53));
  return v < 0 ? ~uint64_t{0} : static_cast<uint64_t>(v);
}

// The length of `buf[off, off + len)` as an SQE's 32-bit len takes it: within the bytes left
// in the buffer, and at most 4 GiB - 1. A longer one (a buffer of 4 GiB, its default length)
// is a RangeError, never cut to its low 32 bits (4 GiB would have gone in as 0).
uint32_t SqeLen(const Napi::CallbackInfo& info, size_t i, size_t room) {
  int64_t len = ArgInt(info, i, "length", 0, static_cast<int64_t>(room));
  if (len > int64_t{UINT32_MAX}) {
    ThrowRange(info.Env(), "length is " + std::to_string(len) +
                               " bytes: an io_uring request takes at most 4294967295 (4 GiB - 1)");
  }
  return static_cast<uint32_t>(len);
}

// The fields of an SQE that rawio sets; GetSqe clears the entry, so what is not named stays 0.
// One filler for every prep* method, as liburing's io_uring_prep_rw serves each opcode.
struct SqeFields {
  SqeFields(int op, int32_t file, uint32_t ud)
      : opcode(static_cast<uint8_t>(op)), fd(file), userData(ud) {}
  uint8_t opcode = 0;
  uint8_t flags = 0;
  uint16_t ioprio = 0;
  int32_t fd = 0;
  uint64_t off = 0;
  uint64_t addr = 0;
  uint32_t len = 0;
  uint32_t opFlags = 0;  // rw_flags, msg_flags, accept_flags: one union in the kernel's struct
  uint32_t userData = 0;
  uint16_t bufIndex = 0;
  uint32_t fileIndex = 0;  // also splice_fd_in: one union
  uint64_t addr3 = 0;
};

inline void FillSqe(io_uring_sqe* sqe, const SqeFields& f) {
  sqe->opcode = f.opcode;
  sqe->flags = f.flags;
  sqe->ioprio = f.ioprio;
  sqe->fd = f.fd;
  sqe->off = f.off;
  sqe->addr = f.addr;
  sqe->len = f.len;
  sqe->rw_flags = static_cast<__kernel_rwf_t>(f.opFlags);
  sqe->user_data = f.userData;
  sqe->buf_index = f.bufIndex;
  sqe->file_index = f.fileIndex;
  sqe->addr3 = f.addr3;
}

class Ring;

// This thread's rings by slot, for prepSend (no unwrap of `this`). A ring's destructor empties
// its slot; the table goes with the thread's last ring, not at thread exit.
thread_local std::vector<Ring*>* tRings = nullptr;
// The bits of a slot in PrepRwIn's `how`; the bit above them asks for a submit.
constexpr int kSlotBits = 20;
thread_local size_t tRingCount = 0;

class Ring : public Napi::ObjectWrap<Ring> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Ring",
                       {InstanceMethod<&Ring::Setup>("setup"),
                        InstanceMethod<&Ring::Info>("info"),
                        InstanceMethod<&Ring::Prep>("prep"),
                        InstanceMethod<&Ring::PrepRw>("prepRw"),
                        InstanceMethod<&Ring::PrepSock>("prepSock"),
                        InstanceMethod<&Ring::PrepDirect>("prepDirect"),
                        InstanceMethod<&Ring::Submit>("submit"),
                        InstanceMethod<&Ring::Reap>("reap"),
                        InstanceMethod<&Ring::SqSpace>("sqSpace"),
                        InstanceMethod<&Ring::Inflight>("inflight"),
                        InstanceMethod<&Ring::State>("state"),
                        InstanceMethod<&Ring::FillIovecs>("fillIovecs"),
                        InstanceMethod<&Ring::Register>("register"),
                        InstanceMethod<&Ring::CancelAndWait>("cancelAndWait"),
                        InstanceMethod<&Ring::Unprep>("unprep"),
                        InstanceMethod<&Ring::RegisterBufRing>("registerBufRing"),
                        InstanceMethod<&Ring::RegisterRingFd>("registerRingFd"),
                        InstanceMethod<&Ring::OwnNewFds>("ownNewFds"),
                        InstanceMethod<&Ring::RecycleBufs>("recycleBufs"),
                        InstanceMethod<&Ring::Close>("close"),
                        StaticMethod<&Ring::Probe>("probe"),
                        StaticMethod<&Ring::PrepSend>("prepSend"),
                        StaticMethod<&Ring::PrepRwIn>("prepRwIn"),
                        StaticMethod<&Ring::SubmitIn>("submitIn"),
                        StaticMethod<&Ring::ReapIn>("reapIn")});
  }

  Ring(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Ring>(info), env_(info.Env()) {
    if (tRings == nullptr) tRings = new std::vector<Ring*>();
    size_t i = 0;
    while (i < tRings->size() && (*tRings)[i] != nullptr) i++;
    // PrepRwIn's `how` holds the slot in 20 bits (kSlotBits); no thread gets near that many rings.
    if (i >= (size_t{1} << kSlotBits)) ThrowRange(info.Env(), "too many rings on this thread");
    hooked_ = napi_add_env_cleanup_hook(env_, &Ring::AtEnvExit, this) == napi_ok;
    if (i == tRings->size()) tRings->push_back(nullptr);
    (*tRings)[i] = this;
    slot_ = i;
    tRingCount++;
  }
  ~Ring() override {
    if (tRings != nullptr && slot_ < tRings->size() && (*tRings)[slot_] == this) {
      (*tRings)[slot_] = nullptr;
      if (--tRingCount == 0) {
        delete tRings;
        tRings = nullptr;
      }
    }
    if (hooked_) napi_remove_env_cleanup_hook(env_, &Ring::AtEnvExit, this);
    m_.CancelAndWait();
    m_.Unmap();
    bufs_.Free();
  }

 private:
  // A ring never closed, with operations in flight when its environment ends (a worker's
  // end, process exit): its finalizer may come after the buffers' memory went back to the
  // heap, or never, and the kernel would then write into freed memory. Node runs cleanup
  // hooks newest first, so this wait comes before the finalizers of every buffer made
  // before the ring; buffers made later are covered by the JavaScript layer, which closes
  // busy rings at 'exit' (src/sys/ring-exit.ts).
  //
  // The fds the thread owns are closed first (fd_owner.cc; its own hook may come after this
  // one): a connection's socket still open would keep its send queue, and a zero-copy send
  // waiting in it (a client that does not read) would never post its notification, so the
  // wait would never end. Closed, a socket with unsent bytes is reset, which frees its queue.
  static void AtEnvExit(void* self) {
    auto* ring = static_cast<Ring*>(self);
    ring->hooked_ = false;
    FdCloseOwnedBy(ring->env_);
    ring->m_.CancelAndWait();
  }

  void Live(Napi::Env env) {
    if (m_.fd < 0) ThrowType(env, "ring is closed");
  }

  // setup(entries, flags, cqEntries): 0 or -errno.
  Napi::Value Setup(const Napi::CallbackInfo& info) {
    if (m_.fd >= 0) ThrowType(info.Env(), "ring is already set up");
    auto entries = static_cast<unsigned>(ArgInt(info, 0, "entries", 1, 32768));
    auto flags = static_cast<unsigned>(ArgInt(info, 1, "flags", 0, UINT32_MAX));
    auto cq = static_cast<unsigned>(ArgInt(info, 2, "cqEntries", 0, 65536));
    return Num(info.Env(), m_.Setup(entries, flags, cq));
  }

  // info(): [ringFd, sqEntries, cqEntries, features, slot (for Ring.prepSend)]
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array a = Napi::Array::New(env, 5);
    a.Set(0u, Num(env, m_.fd));
    a.Set(1u, Num(env, m_.sqEntries));
    a.Set(2u, Num(env, m_.cqEntries));
    a.Set(3u, Num(env, m_.features));
    a.Set(4u, Num(env, static_cast<double>(slot_)));
    return a;
  }

  // prep(op, fd, addrBuf|null, addrOff, len, off, offBuf|null, userData, opFlags, sqeFlags,
  //      ioprio, bufIndex, spliceFdIn): true, or false when the SQ is full.
  // With addrBuf, sqe->addr = addrBuf + addrOff (checked per opcode); without, addrOff is
  // the raw value (a user data to cancel, splice's input offset). offBuf, when given, is
  // statx's output struct and goes in sqe->addr2.
  Napi::Value Prep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    int op = static_cast<int>(ArgInt(info, 0, "op", 0, abi::kOpLast));
    AddrKind kind = KindOf(op);
    if (static_cast<int>(kind) < 0) ThrowRange(env, "opcode not supported by prep");
    auto fd = static_cast<int32_t>(ArgInt(info, 1, "fd", INT32_MIN, INT32_MAX));  // AT_FDCWD
    auto len = static_cast<uint32_t>(ArgInt(info, 4, "length", 0, UINT32_MAX));
    uint64_t addr = 0;
    auto sqeFlags = static_cast<uint8_t>(ArgInt(info, 9, "sqeFlags", 0, 255));
    if (info[2].IsNull() || info[2].IsUndefined()) {
      // IOSQE_BUFFER_SELECT: the kernel picks a buffer of the registered group (buf_index)
      // and clamps the length to it, so a recv needs no buffer of its own.
      bool select = op == IORING_OP_RECV && (sqeFlags & IOSQE_BUFFER_SELECT) != 0;
      if (kind != AddrKind::kNone && !select) ThrowType(env, "buffer must be a Uint8Array");
      addr = select ? 0 : U64(info, 3, "addr");
    } else {
      Bytes b = ArgBytes(info, 2);
      auto boff = static_cast<size_t>(ArgInt(info, 3, "offset", 0, b.len));
      CheckAddr(env, kind, b, boff, len);
      addr = reinterpret_cast<uintptr_t>(b.data + boff);
    }
    uint64_t off = 0;
    if (op == IORING_OP_STATX) {
      Bytes sb = ArgBytes(info, 6, "statxbuf");
      if (sb.len < 256) ThrowRange(env, "statx buffer must hold 256 bytes");
      off = reinterpret_cast<uintptr_t>(sb.data);
    } else {
      off = U64(info, 5, "position");
    }
    auto ud = static_cast<uint32_t>(ArgInt(info, 7, "userData", INT32_MIN, UINT32_MAX));
    auto opFlags = static_cast<uint32_t>(ArgInt(info, 8, "opFlags", 0, UINT32_MAX));
    auto ioprio = static_cast<uint16_t>(ArgInt(info, 10, "ioprio", 0, 65535));
    auto bufIndex = static_cast<uint16_t>(ArgInt(info, 11, "bufIndex", 0, 65535));
    auto spliceIn = static_cast<int32_t>(ArgInt(info, 12, "spliceFdIn", 0, INT32_MAX));
    SqeFields f(op, fd, ud);
    f.flags = sqeFlags;
    f.ioprio = ioprio;
    f.off = off;
    f.addr = addr;
    f.len = len;
    f.opFlags = opFlags;
    f.bufIndex = bufIndex;
    f.fileIndex = static_cast<uint32_t>(spliceIn);
    return Queue(env, f);
  }

  // The fast path for READ / WRITE / SEND / RECV / READ_FIXED / WRITE_FIXED:
  // prepRw(op, fd, buf, bufOff, len, position, userData, sqeFlags, bufIndex, rwFlags?):
  // boolean. rwFlags (default 0) is the op's flag word: send/recv's msg flags, RWF_* for rw.
  Napi::Value PrepRw(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    int op = static_cast<int>(ArgInt(info, 0, "op", 0, abi::kOpLast));
    AddrKind kind = KindOf(op);
    if (kind != AddrKind::kBytes && kind != AddrKind::kFixed) ThrowRange(env, "not an rw op");
    auto fd = static_cast<int32_t>(ArgInt(info, 1, "fd", 0, INT32_MAX));
    Bytes b = ArgBytes(info, 2);
    auto boff = static_cast<size_t>(ArgInt(info, 3, "offset", 0, b.len));
    uint32_t len = SqeLen(info, 4, b.len - boff);
    uint64_t pos = U64(info, 5, "position");
    auto ud = static_cast<uint32_t>(ArgInt(info, 6, "userData", INT32_MIN, UINT32_MAX));
    auto sqeFlags = static_cast<uint8_t>(ArgInt(info, 7, "sqeFlags", 0, 255));
    auto bufIndex = static_cast<uint16_t>(ArgInt(info, 8, "bufIndex", 0, 65535));
    auto rwFlags =
        info.Length() > 9 ? static_cast<uint32_t>(ArgInt(info, 9, "rwFlags", 0, UINT32_MAX)) : 0u;
    SqeFields f(op, fd, ud);
    f.flags = sqeFlags;
    f.off = pos;
    f.addr = reinterpret_cast<uintptr_t>(b.data + boff);
    f.len = len;
    f.opFlags = rwFlags;
    f.bufIndex = bufIndex;
    return Queue(env, f);
  }

  // The proactor's hot path, with the fewest arguments to convert: a SEND or RECV on a
  // stream socket. prepSock(op, fd, buf, bufOff, len, userData, msgFlags): boolean.
  Napi::Value PrepSock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    int op = static_cast<int>(ArgInt(info, 0, "op", 0, abi::kOpLast));
    if (op != IORING_OP_SEND && op != IORING_OP_RECV) ThrowRange(env, "not a send or recv");
    auto fd = static_cast<int32_t>(ArgInt(info, 1, "fd", 0, INT32_MAX));
    Bytes b = ArgBytes(info, 2);
    auto boff = static_cast<size_t>(ArgInt(info, 3, "offset", 0, b.len));
    uint32_t len = SqeLen(info, 4, b.len - boff);
    auto ud = static_cast<uint32_t>(ArgInt(info, 5, "userData", INT32_MIN, UINT32_MAX));
    auto msgFlags = static_cast<uint32_t>(ArgInt(info, 6, "msgFlags", 0, UINT32_MAX));
    SqeFields f(op, fd, ud);
    f.addr = reinterpret_cast<uintptr_t>(b.data + boff);
    f.len = len;
    f.opFlags = msgFlags;
    return Queue(env, f);
  }

  // Ring.prepSend(slot, fd, buf, bufOff, len, userData): a SEND, MSG_NOSIGNAL, on the ring in
  // `slot` (info()[4]); false when the SQ is full.
  static Napi::Value PrepSend(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto slot = static_cast<size_t>(ArgInt(info, 0, "slot", 0, INT32_MAX));
    Ring* ring = tRings != nullptr && slot < tRings->size() ? (*tRings)[slot] : nullptr;
    if (ring == nullptr) ThrowRange(env, "no ring in this slot");
    ring->Live(env);
    auto fd = static_cast<int32_t>(ArgInt(info, 1, "fd", 0, INT32_MAX));
    Bytes b = ArgBytes(info, 2);
    auto boff = static_cast<size_t>(ArgInt(info, 3, "offset", 0, b.len));
    uint32_t len = SqeLen(info, 4, b.len - boff);
    auto ud = static_cast<uint32_t>(ArgInt(info, 5, "userData", INT32_MIN, UINT32_MAX));
    SqeFields f(IORING_OP_SEND, fd, ud);
    f.addr = reinterpret_cast<uintptr_t>(b.data + boff);
    f.len = len;
    f.opFlags = MSG_NOSIGNAL;
    return ring->Queue(env, f);
  }

  // Entries about direct descriptors, which carry numbers only, never a pointer (so the
  // kernel writes no user memory): prepDirect(op, fd, userData, sqeFlags, opFlags, ioprio,
  // fileIndex, addr, len, off, addr3): boolean.
  //   ACCEPT: opFlags = accept4 flags, ioprio = multishot, fileIndex = the slot (+1, or ALLOC);
  //   CLOSE: fileIndex = slot + 1; FIXED_FD_INSTALL: fd = the slot (IOSQE_FIXED_FILE);
  //   MSG_RING: fd = the target ring, addr = IORING_MSG_SEND_FD, addr3 = our slot,
  //   fileIndex = the target's slot (+1, or ALLOC), off = the target completion's user data.
  Napi::Value PrepDirect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    int op = static_cast<int>(ArgInt(info, 0, "op", 0, abi::kOpLast));
    if (op != IORING_OP_ACCEPT && op != IORING_OP_CLOSE && op != abi::kOpMsgRing &&
        op != abi::kOpFixedFdInstall)
      ThrowRange(env, "not a direct-descriptor op");
    auto fd = static_cast<int32_t>(ArgInt(info, 1, "fd", 0, INT32_MAX));
    SqeFields f(op, fd, static_cast<uint32_t>(ArgInt(info, 2, "userData", INT32_MIN, UINT32_MAX)));
    f.flags = static_cast<uint8_t>(ArgInt(info, 3, "sqeFlags", 0, 255));
    f.opFlags = static_cast<uint32_t>(ArgInt(info, 4, "opFlags", 0, UINT32_MAX));
    f.ioprio = static_cast<uint16_t>(ArgInt(info, 5, "ioprio", 0, 65535));
    f.fileIndex = static_cast<uint32_t>(ArgInt(info, 6, "fileIndex", 0, UINT32_MAX));
    if (op == abi::kOpMsgRing) {
      f.addr = static_cast<uint64_t>(ArgInt(info, 7, "addr", 0, 1));  // DATA, SEND_FD
      f.len = static_cast<uint32_t>(ArgInt(info, 8, "len", 0, UINT32_MAX));
      // The target completion's user data, marked as posted by another ring (see kForeignCqe).
      f.off = static_cast<uint64_t>(ArgInt(info, 9, "off", 0, UINT32_MAX)) | abi::kForeignCqe;
      f.addr3 = static_cast<uint64_t>(ArgInt(info, 10, "addr3", 0, UINT32_MAX));
    }
    return Queue(env, f);
  }

  // Fills the next SQE: true, or false when the SQ is full. IOSQE_CQE_SKIP_SUCCESS is refused:
  // the ring counts one final completion per entry (inflight), and CancelAndWait would wait
  // forever for a completion the kernel never posts.
  Napi::Value Queue(Napi::Env env, const SqeFields& f) {
    return Napi::Boolean::New(env, Put(env, f));
  }
  // Fills the next SQE from `f`: false when the submission queue is full.
  bool Put(Napi::Env env, const SqeFields& f) {
    if ((f.flags & IOSQE_CQE_SKIP_SUCCESS) != 0)
      ThrowRange(env, "IOSQE_CQE_SKIP_SUCCESS is not supported: every entry must complete");
    io_uring_sqe* sqe = m_.GetSqe();
    if (sqe == nullptr) return false;
    FillSqe(sqe, f);
    m_.NoteFdOp(*sqe);
    Mirror();
    return true;
  }

  static void CheckAddr(Napi::Env env, AddrKind kind, Bytes b, size_t boff, uint32_t len) {
    size_t room = b.len - boff;
    switch (kind) {
      case AddrKind::kBytes:
      case AddrKind::kFixed:
        if (len > room) ThrowRange(env, "length runs past the end of the buffer");
        break;
      case AddrKind::kIovecs:
        if (static_cast<size_t>(len) * sizeof(iovec) > room) ThrowRange(env, "iovec count");
        break;
      case AddrKind::kPath:
        if (memchr(b.data + boff, 0, room) == nullptr) ThrowRange(env, "path lacks a NUL");
        break;
      case AddrKind::kTimespec:
        if (room < 16) ThrowRange(env, "timespec buffer must hold 16 bytes");
        break;
      case AddrKind::kNone:
        ThrowRange(env, "this opcode takes no buffer");
    }
  }

  // submit(waitNr): SQEs submitted, or -errno.
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Live(info.Env());
    auto wait = static_cast<unsigned>(ArgInt(info, 0, "waitNr", 0, UINT32_MAX));
    return Num(info.Env(), m_.Submit(wait));
  }

  // reap(out: Int32Array, minComplete): triples written, or -errno.
  Napi::Value Reap(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    size_t n = 0;
    int32_t* out = ValueInt32s(env, info[0], &n, "out", "out must be an Int32Array");
    auto min = static_cast<unsigned>(ArgInt(info, 1, "minComplete", 0, UINT32_MAX));
    auto cap = static_cast<unsigned>(n / 3);
    long r = m_.Reap(out, cap, min);
    Mirror();
    return Num(env, r);
  }

  // The ring in `slot` of this thread's rings (info()[4]), for the static fast paths below:
  // a call by slot skips the unwrap of `this` (a property lookup per call in Node-API).
  static Ring* InSlot(Napi::Env env, int64_t slot) {
    Ring* ring = tRings != nullptr && static_cast<size_t>(slot) < tRings->size()
                     ? (*tRings)[static_cast<size_t>(slot)]
                     : nullptr;
    if (ring == nullptr) ThrowRange(env, "no ring in this slot");
    ring->Live(env);
    return ring;
  }

  // Ring.prepRwIn(how, fd, buf, len, position, userData): prepRw of buf[0, len) with its
  // fixed arguments packed into one number, six arguments in all (node-addon-api copies more
  // than six onto the heap): how = submit * 2^52 + slot * 2^32 + bufIndex * 2^16 +
  // sqeFlags * 2^8 + op. With `submit` (a ring's submitEach), an entry prepared is submitted
  // in the same call, as submit(0) would: an enter that fails leaves it in the SQ, where the
  // next submit takes it and returns that error if it persists.
  static Napi::Value PrepRwIn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t how = ArgInt(info, 0, "how", 0, (int64_t{1} << 53) - 1);
    Ring* ring = InSlot(env, (how >> 32) & ((int64_t{1} << kSlotBits) - 1));
    int op = static_cast<int>(how & 0xff);
    AddrKind kind = KindOf(op);
    if (kind != AddrKind::kBytes && kind != AddrKind::kFixed) ThrowRange(env, "not an rw op");
    auto fd = static_cast<int32_t>(ArgInt(info, 1, "fd", 0, INT32_MAX));
    Bytes b = ArgBytes(info, 2);
    uint32_t len = SqeLen(info, 3, b.len);
    uint64_t pos = U64(info, 4, "position");
    auto ud = static_cast<uint32_t>(ArgInt(info, 5, "userData", INT32_MIN, UINT32_MAX));
    SqeFields f(op, fd, ud);
    f.flags = static_cast<uint8_t>((how >> 8) & 0xff);
    f.bufIndex = static_cast<uint16_t>((how >> 16) & 0xffff);
    f.off = pos;
    f.addr = reinterpret_cast<uintptr_t>(b.data);
    f.len = len;
    bool ok = ring->Put(env, f);
    if (ok && ((how >> (32 + kSlotBits)) & 1) != 0) ring->m_.Submit(0);
    return Napi::Boolean::New(env, ok);
  }

  // Ring.submitIn(slot, waitNr): submit(waitNr) by slot.
  static Napi::Value SubmitIn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring* ring = InSlot(env, ArgInt(info, 0, "slot", 0, INT32_MAX));
    auto wait = static_cast<unsigned>(ArgInt(info, 1, "waitNr", 0, UINT32_MAX));
    return Num(env, ring->m_.Submit(wait));
  }

  // Ring.reapIn(slot, out, minComplete, submit): reap(out, minComplete) by slot; with
  // `submit` true, what is prepared is submitted first, and the same io_uring_enter waits
  // (RingMem::SubmitAndReap). Triples written, or -errno.
  static Napi::Value ReapIn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ring* ring = InSlot(env, ArgInt(info, 0, "slot", 0, INT32_MAX));
    size_t n = 0;
    int32_t* out = ValueInt32s(env, info[1], &n, "out", "out must be an Int32Array");
    auto min = static_cast<unsigned>(ArgInt(info, 2, "minComplete", 0, UINT32_MAX));
    auto cap = static_cast<unsigned>(n / 3);
    long r =
        ArgBool(info, 3) ? ring->m_.SubmitAndReap(out, cap, min) : ring->m_.Reap(out, cap, min);
    ring->Mirror();
    return Num(env, r);
  }

  // state(): a Float64Array of one element over memory this ring keeps alive: [0] is the
  // count of operations in flight (RingMem::inflight), rewritten by every call that changes
  // it, so that JavaScript reads it without a call. Once per ring.
  Napi::Value State(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    if (!stateRef_.IsEmpty()) ThrowType(env, "the ring's state is already taken");
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, sizeof(double));
    state_ = static_cast<double*>(ab.Data());
    stateRef_ = Napi::Persistent(ab);
    Mirror();
    return Napi::Float64Array::New(env, 1, ab, 0);
  }

  void Mirror() {
    if (state_ != nullptr) *state_ = static_cast<double>(m_.inflight);
  }

  Napi::Value SqSpace(const Napi::CallbackInfo& info) {
    return Num(info.Env(), m_.fd < 0 ? 0 : m_.SqSpace());
  }
  Napi::Value Inflight(const Napi::CallbackInfo& info) {
    return Num(info.Env(), static_cast<double>(m_.inflight));
  }

  // fillIovecs(store, bufs): writes one struct iovec per buffer into store; returns the count.
  Napi::Value FillIovecs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[1].IsArray()) ThrowType(env, "buffers must be an array");
    Napi::Array bufs = info[1].As<Napi::Array>();
    uint32_t n = bufs.Length();
    if (static_cast<size_t>(n) * sizeof(iovec) > ArgOutBytes(info, 0, "store").len)
      ThrowRange(env, "store too small");
    std::vector<Bytes> b = ArrayBytes(env, bufs, 0, n, "each buffer must be a Uint8Array");
    // Taken again: reading the buffers may have run JS (ArrayBytes) that detached the store.
    Bytes store = ArgOutBytes(info, 0, "store");
    if (static_cast<size_t>(n) * sizeof(iovec) > store.len) ThrowRange(env, "store too small");
    std::vector<iovec> v(n);
    for (uint32_t i = 0; i < n; i++) v[i] = iovec{b[i].data, b[i].len};
    if (n > 0) memcpy(store.data, v.data(), n * sizeof(iovec));
    return Num(env, n);
  }

  // register(opcode, arg): IORING_REGISTER_EVENTFD (arg: fd), _BUFFERS (Uint8Array[]),
  // _FILES (number[]), and the unregister calls (arg ignored). 0 or -errno.
  Napi::Value Register(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    auto op = static_cast<unsigned>(ArgInt(info, 0, "opcode", 0, 64));
    switch (op) {
      case IORING_REGISTER_EVENTFD: {
        int efd = ArgFd(info, 1);
        return Num(env, SysRegister(m_.fd, op, &efd, 1));
      }
      case IORING_REGISTER_BUFFERS: {
        Napi::Array a = ArrayArg(env, info[1]);
        std::vector<Bytes> b =
            ArrayBytes(env, a, 0, a.Length(), "each buffer must be a Uint8Array");
        std::vector<iovec> v;
        for (const Bytes& x : b) v.push_back(iovec{x.data, x.len});
        return Num(env, SysRegister(m_.fd, op, v.data(), static_cast<unsigned>(v.size())));
      }
      case IORING_REGISTER_FILES: {
        std::vector<int> v;
        Napi::Array a = ArrayArg(env, info[1]);
        for (uint32_t i = 0; i < a.Length(); i++) {
          Napi::Value e = a.Get(i);
          if (!e.IsNumber()) ThrowType(env, "each fd must be a number");
          v.push_back(e.As<Napi::Number>().Int32Value());
        }
        return Num(env, SysRegister(m_.fd, op, v.data(), static_cast<unsigned>(v.size())));
      }
      case IORING_UNREGISTER_BUFFERS:
      case IORING_UNREGISTER_FILES:
      case IORING_UNREGISTER_EVENTFD:
        return Num(env, SysRegister(m_.fd, op, nullptr, 0));
      default:
        ThrowRange(env, "register opcode not supported");
    }
  }

  static Napi::Array ArrayArg(Napi::Env env, Napi::Value v) {
    if (!v.IsArray()) ThrowType(env, "argument must be an array");
    return v.As<Napi::Array>();
  }

  Napi::Value CancelAndWait(const Napi::CallbackInfo& info) {
    m_.CancelAndWait();
    Mirror();
    return Num(info.Env(), static_cast<double>(m_.inflight));
  }

  // unprep(userData): the prepared entry with this user data, not yet submitted, becomes a
  // NOP (RingMem::Unprep): true, or false when none waits.
  Napi::Value Unprep(const Napi::CallbackInfo& info) {
    Live(info.Env());
    auto ud = static_cast<uint32_t>(ArgInt(info, 0, "userData", INT32_MIN, UINT32_MAX));
    return Napi::Boolean::New(info.Env(), m_.Unprep(ud));
  }

  // ownNewFds(): every fd a completion of this ring carries (an accept's, an install's) is
  // owned by the calling thread's environment from the moment it is reaped (fd_owner.cc).
  Napi::Value OwnNewFds(const Napi::CallbackInfo& info) {
    Live(info.Env());
    m_.fdOwner = static_cast<napi_env>(info.Env());
    return info.Env().Undefined();
  }

  // registerRingFd(): IORING_REGISTER_RING_FDS (5.18) in the calling thread; every later
  // enter goes by the index. The index, or -errno.
  Napi::Value RegisterRingFd(const Napi::CallbackInfo& info) {
    Live(info.Env());
    return Num(info.Env(), m_.RegisterRingFd());
  }

  // registerBufRing(bgid, slab, count, size, flags?): IORING_REGISTER_PBUF_RING (5.19) of `count`
  // (a power of two) buffers of `size` bytes carved from `slab`, which stays referenced until
  // the ring is closed. One group per ring. 0 or -errno.
  Napi::Value RegisterBufRing(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    if (bufs_.bgid >= 0) ThrowRange(env, "a buffer ring is already registered");
    int bgid = static_cast<int>(ArgInt(info, 0, "bgid", 0, 65535));
    Bytes slab = ArgBytes(info, 1, "slab");
    auto count = static_cast<unsigned>(ArgInt(info, 2, "count", 1, 32768));
    auto size = static_cast<unsigned>(ArgInt(info, 3, "size", 1, UINT32_MAX));
    if ((count & (count - 1)) != 0) ThrowRange(env, "count must be a power of two");
    if (static_cast<uint64_t>(count) * size > slab.len) ThrowRange(env, "slab too small");
    auto flags = static_cast<unsigned>(info.Length() > 4 ? ArgInt(info, 4, "flags", 0, 2) : 0);
    long r = bufs_.Setup(m_.fd, bgid, slab.data, count, size, flags);
    if (r == 0) slab_ = Napi::Persistent(info[1].As<Napi::Object>());
    return Num(env, r);
  }

  // recycleBufs(bids: Int32Array, n): hands buffers bids[0, n) back to the kernel.
  Napi::Value RecycleBufs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    if (bufs_.bgid < 0) ThrowRange(env, "no buffer ring is registered");
    if (!info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      ThrowType(env, "bids must be an Int32Array");
    Napi::Int32Array bids = info[0].As<Napi::Int32Array>();
    auto n = static_cast<size_t>(ArgInt(info, 1, "n", 0, bids.ElementLength()));
    const int32_t* b = bids.Data();
    for (size_t i = 0; i < n; i++)
      if (b[i] < 0 || static_cast<unsigned>(b[i]) >= bufs_.count) ThrowRange(env, "bad buffer id");
    for (size_t i = 0; i < n; i++) bufs_.Add(static_cast<unsigned>(b[i]));
    bufs_.Publish();
    return env.Undefined();
  }

  // close(): unmaps and closes. The JS layer calls it only once nothing is in flight; if
  // something is, the kernel's completions are awaited first (CancelAndWait).
  Napi::Value Close(const Napi::CallbackInfo& info) {
    m_.CancelAndWait();
    m_.Unmap();
    bufs_.Free();  // nothing in flight and the ring gone: the kernel no longer reads the slab
    slab_.Reset();
    Mirror();
    state_ = nullptr;  // its memory goes with the reference: never written again
    stateRef_.Reset();
    return info.Env().Undefined();
  }

  // probe(): -errno when the kernel refuses io_uring, else
  // { features, lastOp, ops: number[] } from IORING_REGISTER_PROBE (5.6).
  static Napi::Value Probe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    io_uring_params p;
    memset(&p, 0, sizeof p);
    long fd = SysSetup(2, &p);
    if (fd < 0) return Num(env, fd);
    constexpr unsigned kOps = 256;
    std::vector<char> mem(sizeof(io_uring_probe) + kOps * sizeof(io_uring_probe_op), 0);
    auto* pr = reinterpret_cast<io_uring_probe*>(mem.data());
    long r = SysRegister(static_cast<int>(fd), IORING_REGISTER_PROBE, pr, kOps);
    close(static_cast<int>(fd));
    Napi::Object o = Napi::Object::New(env);
    o.Set("features", Num(env, p.features));
    o.Set("probeErrno", Num(env, r < 0 ? r : 0));
    Napi::Array ops = Napi::Array::New(env);
    if (r >= 0) {
      o.Set("lastOp", Num(env, pr->last_op));
      for (unsigned i = 0; i < pr->ops_len && i < kOps; i++) {
        if (pr->ops[i].flags & IO_URING_OP_SUPPORTED)
          ops.Set(ops.Length(), Num(env, pr->ops[i].op));
      }
    }
    o.Set("ops", ops);
    return o;
  }

  napi_env env_;
  bool hooked_ = false;
  size_t slot_ = 0;
  RingMem m_;
  BufRing bufs_;
  Napi::ObjectReference slab_;  // keeps the provided buffers' memory alive while registered
  double* state_ = nullptr;     // state()'s memory, held by stateRef_; written only in calls
  Napi::Reference<Napi::ArrayBuffer> stateRef_;
};

}  // namespace

void InitUring(Napi::Env env, Napi::Object exports) { exports.Set("Ring", Ring::Define(env)); }

}  // namespace rawio
