/*
 * bare-uring: bare-server's HTTP mode on io_uring, the least a completion-based server can
 * do for wrk: the yardstick of the proactor's CPU per request, as bare-server.c is of the
 * epoll models'. One thread, one ring set up as rawio's Proactor sets its own up where the
 * kernel allows (SINGLE_ISSUER | DEFER_TASKRUN, else COOP_TASKRUN, else none), raw
 * syscalls (no liburing):
 *
 *   - one multishot accept on the listening socket;
 *   - per connection one multishot recv into a ring of provided buffers; each request head
 *     (up to its blank line) gets the fixed "hello world\n" reply of bare-server.c;
 *   - one send in flight per connection, from a buffer nothing touches until it completes;
 *     replies that arrive meanwhile wait in a second buffer and go out in one send when it
 *     completes (a short send sends its rest first);
 *   - one io_uring_enter per loop turn: submit what was queued, wait for one completion.
 *
 *   bare-uring [--fixed-files] [--skip-send-cqe] PORT
 *                     listens on 127.0.0.1:PORT and serves until killed
 *
 * A connection whose unsent replies pass 4 MiB (a client that sends and never reads) is
 * closed: the multishot recv cannot be paused, and this program holds no more than that.
 *
 * Two options measure what two io_uring features save a server like this (see
 * docs/PERFORMANCE.md); the bench runs without them:
 *
 *   --fixed-files    connections live in a registered file table (multishot accept into
 *                    IORING_FILE_INDEX_ALLOC), and recv, send, shutdown and close name a
 *                    slot with IOSQE_FIXED_FILE: no file lookup and reference per operation.
 *                    TCP_NODELAY is set on the listening socket, which accepted sockets
 *                    inherit (no setsockopt on a slot).
 *   --skip-send-cqe  replies go out with MSG_WAITALL (the kernel finishes a short send
 *                    itself) and IOSQE_CQE_SKIP_SUCCESS: a send that succeeds posts no
 *                    completion. The program then cannot know when a send has left, so
 *                    several may be in flight on one connection, each from a read-only
 *                    block of the second's reply repeated. Correct only while the socket
 *                    takes each send whole, as it does for a client that reads its replies
 *                    (wrk): a send the kernel must finish in parts, waiting for room, can be
 *                    overtaken by a later one, cutting a reply in two on the wire. Nor is a
 *                    client that never reads bounded by the 4 MiB above. A measurement
 *                    option, never a way to serve.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bare-common.h"

enum {
  ENTRIES = 1024,
  BUFS = 1024, /* provided receive buffers (a power of two) */
  BUF_SIZE = 4096,
  MAX_PENDING = 4 << 20, /* unsent replies a connection may hold */
  BGID = 0,
  FIXED_SLOTS = 16384, /* --fixed-files: the registered file table */
  BLOCK_REPLIES = 64,  /* --skip-send-cqe: replies per read-only block */
  BLOCKS = 16,         /* --skip-send-cqe: one block a second, reused after BLOCKS seconds */
};

/* user_data: the operation in the top byte, the fd below. */
enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3 };
#define UD(op, fd) (((uint64_t)(op) << 56) | (uint32_t)(fd))
#define UD_OP(ud) ((int)((ud) >> 56))
#define UD_FD(ud) ((int)(uint32_t)(ud))

struct conn {
  char *out; /* replies waiting for the next send */
  size_t len, cap;
  char *fl; /* the send in flight: [fl_off, fl_len) not yet sent; the kernel reads it */
  size_t fl_len, fl_off, fl_cap;
  int head_match;
  int recv_armed;
  int send_busy;
  int closing; /* EOF or error seen: close once neither the recv nor a send is in flight */
};

static int ring_fd;
static struct io_uring_params params;
static unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
static unsigned *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes;
static struct io_uring_cqe *cqes;
static unsigned to_submit;
static struct io_uring_buf_ring *buf_ring;
static char *buf_mem;
static unsigned short buf_tail;
static struct conn **conns;
static size_t nconns;
static int fixed_files, skip_send_cqe;
/* --skip-send-cqe: BLOCK_REPLIES copies of the reply of the second in block_at[i]. */
static char *blocks[BLOCKS];
static time_t block_at[BLOCKS];

static void die_err(const char *what, int err) {
  errno = err;
  die(what);
}

static int sys_setup(unsigned entries, struct io_uring_params *p) {
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(unsigned submit, unsigned min_complete, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, ring_fd, submit, min_complete, flags, NULL, 0);
}

static int sys_register(unsigned op, void *arg, unsigned n) {
  return (int)syscall(__NR_io_uring_register, ring_fd, op, arg, n);
}

static void *map_ring(size_t len, off_t off) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring_fd, off);
  if (p == MAP_FAILED) die("mmap ring");
  return p;
}

/* The ring, set up as rawio's Proactor does where the kernel has it. */
static void setup_ring(void) {
  static const unsigned tries[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      IORING_SETUP_COOP_TASKRUN,
      0,
  };
  for (size_t i = 0; i < sizeof tries / sizeof *tries; i++) {
    memset(&params, 0, sizeof params);
    params.flags = tries[i] | IORING_SETUP_CQSIZE;
    params.cq_entries = ENTRIES * 4;
    ring_fd = sys_setup(ENTRIES, &params);
    if (ring_fd >= 0) break;
    if (errno != EINVAL) die("io_uring_setup");
  }
  if (ring_fd < 0) die("io_uring_setup");
  size_t sq_len = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  size_t cq_len = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
  int single = (params.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single && cq_len > sq_len) sq_len = cq_len;
  char *sq = map_ring(sq_len, IORING_OFF_SQ_RING);
  char *cq = single ? sq : map_ring(cq_len, IORING_OFF_CQ_RING);
  sq_head = (unsigned *)(sq + params.sq_off.head);
  sq_tail = (unsigned *)(sq + params.sq_off.tail);
  sq_mask = (unsigned *)(sq + params.sq_off.ring_mask);
  sq_array = (unsigned *)(sq + params.sq_off.array);
  cq_head = (unsigned *)(cq + params.cq_off.head);
  cq_tail = (unsigned *)(cq + params.cq_off.tail);
  cq_mask = (unsigned *)(cq + params.cq_off.ring_mask);
  cqes = (struct io_uring_cqe *)(cq + params.cq_off.cqes);
  sqes = map_ring(params.sq_entries * sizeof(struct io_uring_sqe), IORING_OFF_SQES);
}

/* The provided-buffer ring every multishot recv picks from. */
static void setup_buffers(void) {
  size_t ring_len = BUFS * sizeof(struct io_uring_buf);
  buf_ring = mmap(NULL, ring_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf_ring == MAP_FAILED) die("mmap buffer ring");
  buf_mem = malloc((size_t)BUFS * BUF_SIZE);
  if (!buf_mem) die("malloc");
  struct io_uring_buf_reg reg = {
      .ring_addr = (uint64_t)(uintptr_t)buf_ring, .ring_entries = BUFS, .bgid = BGID};
  if (sys_register(IORING_REGISTER_PBUF_RING, &reg, 1) < 0) die("IORING_REGISTER_PBUF_RING");
  for (unsigned i = 0; i < BUFS; i++) {
    struct io_uring_buf *b = &buf_ring->bufs[i];
    b->addr = (uint64_t)(uintptr_t)(buf_mem + (size_t)i * BUF_SIZE);
    b->len = BUF_SIZE;
    b->bid = (unsigned short)i;
  }
  buf_tail = BUFS;
  __atomic_store_n(&buf_ring->tail, buf_tail, __ATOMIC_RELEASE);
}

/* Gives buffer `bid` back to the kernel. */
static void recycle(unsigned short bid) {
  struct io_uring_buf *b = &buf_ring->bufs[buf_tail & (BUFS - 1)];
  b->addr = (uint64_t)(uintptr_t)(buf_mem + (size_t)bid * BUF_SIZE);
  b->len = BUF_SIZE;
  b->bid = bid;
  buf_tail++;
  __atomic_store_n(&buf_ring->tail, buf_tail, __ATOMIC_RELEASE);
}

/* Submits what is queued and, with min_complete 1, waits for a completion. */
static void submit_pending(unsigned min_complete) {
  unsigned flags = min_complete ? IORING_ENTER_GETEVENTS : 0;
  for (;;) {
    int r = sys_enter(to_submit, min_complete, flags);
    if (r >= 0) {
      to_submit -= (unsigned)r < to_submit ? (unsigned)r : to_submit;
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EBUSY)
      return; /* reap completions first, submit on the next turn */
    die("io_uring_enter");
  }
}

/* A fresh SQE, submitting what is queued first when the ring is full. */
static struct io_uring_sqe *sqe(void) {
  unsigned tail = *sq_tail;
  if (tail - __atomic_load_n(sq_head, __ATOMIC_ACQUIRE) >= params.sq_entries) {
    submit_pending(0);
    if (tail - __atomic_load_n(sq_head, __ATOMIC_ACQUIRE) >= params.sq_entries)
      die("submission queue full");
  }
  unsigned idx = tail & *sq_mask;
  struct io_uring_sqe *s = &sqes[idx];
  memset(s, 0, sizeof *s);
  sq_array[idx] = idx;
  __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
  to_submit++;
  return s;
}

static void prep_accept(int lfd) {
  struct io_uring_sqe *s = sqe();
  s->opcode = IORING_OP_ACCEPT;
  s->fd = lfd;
  s->ioprio = IORING_ACCEPT_MULTISHOT;
  s->accept_flags = SOCK_CLOEXEC;
  if (fixed_files) {
    s->file_index = IORING_FILE_INDEX_ALLOC; /* res is the slot */
    s->accept_flags = 0;                     /* a slot has no close-on-exec flag */
  }
  s->user_data = UD(OP_ACCEPT, lfd);
}

static void prep_recv(int fd) {
  struct io_uring_sqe *s = sqe();
  s->opcode = IORING_OP_RECV;
  s->fd = fd;
  s->ioprio = IORING_RECV_MULTISHOT;
  s->flags = IOSQE_BUFFER_SELECT | (fixed_files ? IOSQE_FIXED_FILE : 0);
  s->buf_group = BGID;
  s->user_data = UD(OP_RECV, fd);
  conns[fd]->recv_armed = 1;
}

/* Sends the rest of the buffer in flight, or (all of it sent) swaps the waiting replies in. */
static void prep_send(int fd, struct conn *c) {
  if (c->fl_off == c->fl_len) {
    char *b = c->fl;
    size_t cap = c->fl_cap;
    c->fl = c->out, c->fl_cap = c->cap, c->fl_len = c->len, c->fl_off = 0;
    c->out = b, c->cap = cap, c->len = 0;
  }
  struct io_uring_sqe *s = sqe();
  s->opcode = IORING_OP_SEND;
  s->fd = fd;
  s->addr = (uint64_t)(uintptr_t)(c->fl + c->fl_off);
  s->len = (unsigned)(c->fl_len - c->fl_off);
  s->msg_flags = MSG_NOSIGNAL;
  if (fixed_files) s->flags = IOSQE_FIXED_FILE;
  s->user_data = UD(OP_SEND, fd);
  c->send_busy = 1;
}

/* --skip-send-cqe: BLOCK_REPLIES copies of this second's reply, filled once a second. */
static const char *reply_block(size_t *reply_len) {
  const char *r = http_reply(reply_len);
  time_t now = time(NULL);
  size_t i = (size_t)now % BLOCKS;
  if (block_at[i] != now) {
    /* http_reply() formats into 256 bytes: a block holds BLOCK_REPLIES of any length */
    if (!blocks[i] && !(blocks[i] = malloc(BLOCK_REPLIES * 256))) die("malloc");
    for (int k = 0; k < BLOCK_REPLIES; k++) memcpy(blocks[i] + k * *reply_len, r, *reply_len);
    block_at[i] = now;
  }
  return blocks[i];
}

/* --skip-send-cqe: sends the c->len bytes of whole replies queued, from a block, posting no
 * completion unless it fails; the kernel finishes a short send itself (MSG_WAITALL). */
static void send_skipping(int fd, struct conn *c) {
  size_t rl;
  const char *b = reply_block(&rl);
  for (size_t left = c->len / rl; left > 0;) {
    size_t k = left < BLOCK_REPLIES ? left : BLOCK_REPLIES;
    struct io_uring_sqe *s = sqe();
    s->opcode = IORING_OP_SEND;
    s->fd = fd;
    s->addr = (uint64_t)(uintptr_t)b;
    s->len = (unsigned)(k * rl);
    s->msg_flags = MSG_NOSIGNAL | MSG_WAITALL;
    s->flags = IOSQE_CQE_SKIP_SUCCESS | (fixed_files ? IOSQE_FIXED_FILE : 0);
    s->user_data = UD(OP_SEND, fd);
    left -= k;
  }
  c->len = 0;
}

/* An operation on fd whose completion nobody waits for (IOSQE_CQE_SKIP_SUCCESS; user_data 0). */
static struct io_uring_sqe *sqe_quiet(int op, int fd) {
  struct io_uring_sqe *s = sqe();
  s->opcode = (unsigned char)op;
  s->fd = fd;
  s->flags = IOSQE_CQE_SKIP_SUCCESS;
  s->user_data = 0;
  return s;
}

static void conn_free(int fd) {
  struct conn *c = conns[fd];
  if (fixed_files) {
    struct io_uring_sqe *s = sqe_quiet(IORING_OP_CLOSE, 0);
    s->file_index = (unsigned)fd + 1; /* closes the slot */
  } else
    close(fd);
  free(c->out);
  free(c->fl);
  free(c);
  conns[fd] = NULL;
}

/* Frees a closing connection once the ring holds nothing of it: a multishot recv keeps the
 * socket (and a send its buffer) after close(2), and a new connection may get the fd. */
static void maybe_free(int fd, struct conn *c) {
  if (c->closing && !c->send_busy && !c->recv_armed) conn_free(fd);
}

/* EOF, an error or too much unsent: end the armed recv (shutdown completes it) and free. */
static void conn_end(int fd, struct conn *c) {
  if (!c->closing && c->recv_armed) {
    if (fixed_files) {
      struct io_uring_sqe *s = sqe_quiet(IORING_OP_SHUTDOWN, fd);
      s->len = SHUT_RDWR;
      s->flags |= IOSQE_FIXED_FILE;
    } else
      shutdown(fd, SHUT_RDWR);
  }
  c->closing = 1;
  maybe_free(fd, c);
}

static void add_conn(int fd) {
  int one = 1;
  if (!fixed_files) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conns = table_fit(conns, &nconns, fd, sizeof *conns);
  conns[fd] = calloc(1, sizeof **conns);
  if (!conns[fd]) die("calloc");
  prep_recv(fd);
}

static void on_data(int fd, struct conn *c, const char *p, size_t n) {
  http_heads(&c->head_match, p, n, &c->out, &c->len, &c->cap);
  if (skip_send_cqe) return send_skipping(fd, c);
  if (c->len + (c->fl_len - c->fl_off) > MAX_PENDING) return conn_end(fd, c);
  if (c->len && !c->send_busy) prep_send(fd, c);
}

static void on_send(int fd, struct conn *c, int res) {
  c->send_busy = 0;
  if (res < 0 || c->closing) return conn_end(fd, c);
  c->fl_off += (size_t)res;
  if (c->fl_off < c->fl_len || c->len) prep_send(fd, c);
}

static void on_cqe(int lfd, struct io_uring_cqe *e) {
  if (e->user_data == 0) return; /* a quiet shutdown or close that failed: nothing to do */
  int op = UD_OP(e->user_data), fd = UD_FD(e->user_data);
  int more = (e->flags & IORING_CQE_F_MORE) != 0;
  if (op == OP_ACCEPT) {
    if (e->res >= 0)
      add_conn(e->res);
    else if (e->res != -EAGAIN && e->res != -ECONNABORTED && e->res != -EINTR &&
             e->res != -EMFILE && e->res != -ENFILE)
      die_err("accept", -e->res);
    if (!more) prep_accept(lfd);
    return;
  }
  struct conn *c = (size_t)fd < nconns ? conns[fd] : NULL;
  if (op == OP_SEND) {
    if (c && skip_send_cqe)
      conn_end(fd, c); /* only a failed send completes */
    else if (c)
      on_send(fd, c, e->res);
    return;
  }
  /* OP_RECV */
  if (e->flags & IORING_CQE_F_BUFFER) {
    unsigned short bid = (unsigned short)(e->flags >> IORING_CQE_BUFFER_SHIFT);
    if (c && !c->closing && e->res > 0)
      on_data(fd, c, buf_mem + (size_t)bid * BUF_SIZE, (size_t)e->res);
    recycle(bid);
  }
  if (!c) return;
  if (!more) c->recv_armed = 0;
  if (c->closing) return maybe_free(fd, c);
  if (e->res == 0 || (e->res < 0 && e->res != -ENOBUFS)) return conn_end(fd, c);
  if (!more) prep_recv(fd); /* out of buffers, or the kernel ended it: arm it again */
}

int main(int argc, char **argv) {
  const char *port = NULL;
  int bad = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--fixed-files") == 0)
      fixed_files = 1;
    else if (strcmp(argv[i], "--skip-send-cqe") == 0)
      skip_send_cqe = 1;
    else if (argv[i][0] != '-' && !port)
      port = argv[i];
    else
      bad = 1;
  }
  if (bad || !port) {
    fprintf(stderr, "usage: %s [--fixed-files] [--skip-send-cqe] PORT\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = listen_loopback(atoi(port), SOCK_CLOEXEC);
  if (fixed_files) {
    int one = 1;
    setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  setup_ring();
  setup_buffers();
  if (fixed_files) {
    static int slots[FIXED_SLOTS];
    memset(slots, -1, sizeof slots); /* every slot empty */
    if (sys_register(IORING_REGISTER_FILES, slots, FIXED_SLOTS) < 0) die("IORING_REGISTER_FILES");
  }
  prep_accept(lfd);
  for (;;) {
    submit_pending(1);
    unsigned head = *cq_head;
    unsigned tail = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
    for (; head != tail; head++) on_cqe(lfd, &cqes[head & *cq_mask]);
    __atomic_store_n(cq_head, head, __ATOMIC_RELEASE);
  }
}
