// The io_uring ABI rawio relies on: the kernel's uapi header, checked.
//
// rawio speaks to io_uring with raw syscalls (io_uring_setup(2), io_uring_enter(2),
// io_uring_register(2)) and no liburing, so the layout of the shared structures is a contract
// between this file and the running kernel. The static_asserts below pin the sizes and
// offsets uring.cc writes and reads; the fallbacks name the kernel that introduced each
// constant, for builds against an older linux-libc-dev than the kernel they run on (the
// kernel ignores or refuses what it does not know, and the probe tells the JS layer).
#pragma once
#include <linux/io_uring.h>
#include <sys/syscall.h>

#include <cstddef>
#include <cstdint>

#ifndef __NR_io_uring_setup  // 5.1; the numbers are the same on every architecture since
#define __NR_io_uring_setup 425
#define __NR_io_uring_enter 426
#define __NR_io_uring_register 427
#endif

#ifndef IORING_FEAT_NODROP  // 5.5
#define IORING_FEAT_NODROP (1U << 1)
#endif
#ifndef IORING_SQ_CQ_OVERFLOW  // 5.8
#define IORING_SQ_CQ_OVERFLOW (1U << 1)
#endif
#ifndef IORING_SETUP_SUBMIT_ALL  // 5.18
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG  // 5.19
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#define IORING_SQ_TASKRUN (1U << 2)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN  // 6.1 (with IORING_SETUP_SINGLE_ISSUER, 6.0)
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_ACCEPT_MULTISHOT  // 5.19
#define IORING_ACCEPT_MULTISHOT (1U << 0)
#endif
#ifndef IORING_ASYNC_CANCEL_ANY  // 5.19
#define IORING_ASYNC_CANCEL_ALL (1U << 0)
#define IORING_ASYNC_CANCEL_ANY (1U << 2)
#endif
#ifndef IORING_RECV_MULTISHOT  // 6.0 (IORING_REGISTER_PBUF_RING: 5.19)
#define IORING_RECVSEND_POLL_FIRST (1U << 0)
#define IORING_RECV_MULTISHOT (1U << 1)
#endif
#ifndef IOSQE_CQE_SKIP_SUCCESS  // 5.17
#define IOSQE_CQE_SKIP_SUCCESS (1U << 6)
#endif
#ifndef IORING_CQE_F_MORE  // 5.13
#define IORING_CQE_F_MORE (1U << 1)
#endif
#ifndef IORING_CQE_F_NOTIF  // 6.0, with IORING_OP_SEND_ZC
#define IORING_CQE_F_NOTIF (1U << 3)
#endif
#ifndef IORING_SEND_ZC_REPORT_USAGE  // 6.2: the notification's res says whether data was copied
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

namespace rawio {
namespace abi {

// A provided-buffer ring (IORING_REGISTER_PBUF_RING, 5.19), declared here rather than taken
// from <linux/io_uring.h> so that older headers build: the registration argument, and one
// ring entry. The ring's tail overlays the `resv` field of entry 0.
struct BufReg {
  uint64_t ringAddr;
  uint32_t ringEntries;
  uint16_t bgid;
  uint16_t flags;
  uint64_t resv[3];
};
struct BufEntry {
  uint64_t addr;
  uint32_t len;
  uint16_t bid;
  uint16_t resv;  // entry 0: the ring's tail
};
constexpr unsigned kRegisterPbufRing = 22;  // IORING_REGISTER_PBUF_RING, an enum in the headers
static_assert(sizeof(BufReg) == 40, "struct io_uring_buf_reg");
static_assert(sizeof(BufEntry) == 16 && offsetof(BufEntry, resv) == 14, "struct io_uring_buf");

// The opcodes uring.cc bounds-checks against; newer ones pass through as numbers.
constexpr int kOpNop = IORING_OP_NOP;
// IORING_OP_SEND_ZC (6.0), an enum in the headers: its number, for headers older than 6.0.
constexpr int kOpSendZc = 47;
constexpr int kOpLast = 64;  // larger than any opcode through 6.18 (IORING_OP_PIPE is 61)

static_assert(sizeof(io_uring_sqe) == 64, "SQE is 64 bytes (without IORING_SETUP_SQE128)");
static_assert(sizeof(io_uring_cqe) == 16, "CQE is 16 bytes (without IORING_SETUP_CQE32)");
static_assert(offsetof(io_uring_sqe, opcode) == 0, "sqe.opcode");
static_assert(offsetof(io_uring_sqe, flags) == 1, "sqe.flags");
static_assert(offsetof(io_uring_sqe, ioprio) == 2, "sqe.ioprio");
static_assert(offsetof(io_uring_sqe, fd) == 4, "sqe.fd");
static_assert(offsetof(io_uring_sqe, off) == 8, "sqe.off / addr2");
static_assert(offsetof(io_uring_sqe, addr) == 16, "sqe.addr / splice_off_in");
static_assert(offsetof(io_uring_sqe, len) == 24, "sqe.len");
static_assert(offsetof(io_uring_sqe, rw_flags) == 28, "sqe op flags union");
static_assert(offsetof(io_uring_sqe, user_data) == 32, "sqe.user_data");
static_assert(offsetof(io_uring_sqe, buf_index) == 40, "sqe.buf_index");
static_assert(offsetof(io_uring_sqe, splice_fd_in) == 44, "sqe.splice_fd_in");
static_assert(offsetof(io_uring_cqe, user_data) == 0, "cqe.user_data");
static_assert(offsetof(io_uring_cqe, res) == 8, "cqe.res");
static_assert(offsetof(io_uring_cqe, flags) == 12, "cqe.flags");
static_assert(sizeof(io_uring_params) == 120, "io_uring_params");
static_assert(sizeof(io_sqring_offsets) == 40, "io_sqring_offsets");
static_assert(sizeof(io_cqring_offsets) == 40, "io_cqring_offsets");
static_assert(sizeof(io_uring_probe) == 16 && sizeof(io_uring_probe_op) == 8, "probe");
static_assert(offsetof(io_uring_params, features) == 20, "params.features");
static_assert(offsetof(io_uring_params, sq_off) == 40, "params.sq_off");
static_assert(offsetof(io_uring_params, cq_off) == 80, "params.cq_off");

}  // namespace abi
}  // namespace rawio
