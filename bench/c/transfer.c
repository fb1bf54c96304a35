/*
 * transfer: the C baseline of rawio's `transferFile` (bench/scenarios/copy-c.ts). It connects
 * to a loopback sink that reads and discards, sends a whole file COUNT times through the same
 * syscalls, sizes and flags as rawio's method of that name (src/transfer/<method>.ts, native
 * calls under them), and prints one JSON line: bytes, elapsed ns (CLOCK_MONOTONIC around the
 * sending only), user/sys CPU microseconds and context switches (getrusage over that window).
 *
 *   transfer HOST:PORT FILE readwrite|mmap|sendfile|splice COUNT
 *
 * Per file, as rawio does it: fstat for the size, then
 *   readwrite  pread 128 KiB into one buffer, write it out (partial writes resumed);
 *   mmap       fstat + mmap(PROT_READ, MAP_SHARED) of 8 MiB windows, write from the mapping,
 *              munmap when the window is sent (no madvise, as rawio gives none);
 *   sendfile   sendfile(sock, file, &offset, remaining);
 *   splice     file -> pipe (SPLICE_F_MOVE) only when the pipe is empty, then pipe -> socket
 *              (SPLICE_F_MOVE | SPLICE_F_NONBLOCK, | SPLICE_F_MORE while more follows), through
 *              one non-blocking pipe of the kernel's default size made once (rawio pools it).
 * The socket is non-blocking with TCP_NODELAY, like the bench's Sink.connect(); on EAGAIN the
 * driver waits in poll(2) for POLLOUT, the least a C program can do where rawio turns libuv's
 * loop. EINTR is retried. Any error ends the program with a message and exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { CHUNK = 128 << 10, MMAP_WINDOW = 8 << 20, MAX_RW = 0x7ffff000 };

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("transfer: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void die_errno(const char *what) { die("%s: %s", what, strerror(errno)); }

/* Blocks until the non-blocking socket is writable again (after EAGAIN). */
static void wait_writable(int sock) {
  struct pollfd p = {.fd = sock, .events = POLLOUT};
  for (;;) {
    int r = poll(&p, 1, -1);
    if (r > 0) return;
    if (r < 0 && errno != EINTR) die_errno("poll");
  }
}

/* After a socket-side call failed: EINTR retries, EAGAIN waits for POLLOUT, the rest end it. */
static void on_socket_error(int sock, const char *what) {
  if (errno == EINTR) return;
  if (errno != EAGAIN) die_errno(what);
  wait_writable(sock);
}

static void write_all(int sock, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(sock, p, n);
    if (w < 0) {
      on_socket_error(sock, "write");
      continue;
    }
    p += w;
    n -= (size_t)w;
  }
}

static void send_readwrite(int sock, int file, off_t size, char *buf) {
  for (off_t sent = 0; sent < size;) {
    size_t want = size - sent < CHUNK ? (size_t)(size - sent) : CHUNK;
    ssize_t n = pread(file, buf, want, sent);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die_errno("pread");
    if (n == 0) die("the file shrank while it was sent");
    write_all(sock, buf, (size_t)n);
    sent += n;
  }
}

static void send_mmap(int sock, int file, off_t size) {
  for (off_t sent = 0; sent < size;) {
    /* rawio's mmap() fstats to clamp the window to EOF: the same call here. */
    struct stat st;
    if (fstat(file, &st) < 0) die_errno("fstat");
    if (st.st_size < size) die("the file shrank while it was sent");
    size_t len = size - sent < MMAP_WINDOW ? (size_t)(size - sent) : MMAP_WINDOW;
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, file, sent);
    if (map == MAP_FAILED) die_errno("mmap");
    write_all(sock, map, len);
    if (munmap(map, len) < 0) die_errno("munmap");
    sent += (off_t)len;
  }
}

static void send_sendfile(int sock, int file, off_t size) {
  for (off_t off = 0; off < size;) {
    size_t want = size - off < MAX_RW ? (size_t)(size - off) : MAX_RW;
    ssize_t n = sendfile(sock, file, &off, want);
    if (n == 0) die("the file shrank while it was sent");
    if (n < 0) on_socket_error(sock, "sendfile");
  }
}

static void send_splice(int sock, int file, off_t size, int pipe_r, int pipe_w, size_t pipe_size) {
  size_t in_pipe = 0;
  for (loff_t off = 0, sent = 0; sent < size;) {
    if (in_pipe == 0) {
      /* The pipe is empty, so this cannot meet EAGAIN. */
      size_t want = (size_t)(size - sent) < pipe_size ? (size_t)(size - sent) : pipe_size;
      ssize_t n = splice(file, &off, pipe_w, NULL, want, SPLICE_F_MOVE);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die_errno("splice (file to pipe)");
      if (n == 0) die("the file shrank while it was sent");
      in_pipe = (size_t)n;
    }
    unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
    if (size - sent > (loff_t)in_pipe) flags |= SPLICE_F_MORE;
    ssize_t w = splice(pipe_r, NULL, sock, NULL, in_pipe, flags);
    if (w < 0) {
      on_socket_error(sock, "splice (pipe to socket)");
      continue;
    }
    in_pipe -= (size_t)w;
    sent += w;
  }
}

static int connect_to(const char *hostport) {
  char host[256];
  const char *colon = strrchr(hostport, ':');
  if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host))
    die("bad address '%s' (want HOST:PORT)", hostport);
  size_t hl = (size_t)(colon - hostport);
  /* [::1]:port: drop the brackets. */
  if (hostport[0] == '[' && hl >= 2 && hostport[hl - 1] == ']') {
    memcpy(host, hostport + 1, hl - 2);
    host[hl - 2] = '\0';
  } else {
    memcpy(host, hostport, hl);
    host[hl] = '\0';
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
  struct addrinfo *ai;
  int g = getaddrinfo(host, colon + 1, &hints, &ai);
  if (g != 0) die("%s: %s", hostport, gai_strerror(g));
  int sock = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock < 0) die_errno("socket");
  int r;
  do r = connect(sock, ai->ai_addr, ai->ai_addrlen);
  while (r < 0 && errno == EINTR);
  freeaddrinfo(ai);
  if (r < 0 && errno != EINPROGRESS) die_errno("connect");
  if (r < 0) {
    wait_writable(sock);
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len) < 0) die_errno("getsockopt");
    if (err != 0) die("connect %s: %s", hostport, strerror(err));
  }
  int one = 1;
  if (setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) die_errno("TCP_NODELAY");
  return sock;
}

static long long tv_us(struct timeval tv) { return tv.tv_sec * 1000000LL + tv.tv_usec; }

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: transfer HOST:PORT FILE readwrite|mmap|sendfile|splice COUNT\n");
    return 2;
  }
  const char *method = argv[3];
  static const char *const names[] = {"readwrite", "mmap", "sendfile", "splice"};
  enum { READWRITE, MMAP, SENDFILE, SPLICE, NONE } m = READWRITE;
  while (m < NONE && strcmp(method, names[m]) != 0) m++;
  if (m == NONE) die("unknown method '%s' (readwrite, mmap, sendfile or splice)", method);
  char *end;
  long count = strtol(argv[4], &end, 10);
  if (*argv[4] == '\0' || *end != '\0' || count < 1) die("bad count '%s'", argv[4]);

  int file = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (file < 0) die("%s: %s", argv[2], strerror(errno));
  char *buf = m == READWRITE ? malloc(CHUNK) : NULL;
  if (m == READWRITE && !buf) die("out of memory");
  int pipefd[2] = {-1, -1};
  size_t pipe_size = 0;
  if (m == SPLICE) {
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) die_errno("pipe2");
    int ps = fcntl(pipefd[1], F_GETPIPE_SZ);
    if (ps < 0) die_errno("F_GETPIPE_SZ");
    pipe_size = (size_t)ps;
  }
  int sock = connect_to(argv[1]);

  long long bytes = 0;
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  long long t0 = now_ns();
  for (long i = 0; i < count; i++) {
    struct stat st;
    if (fstat(file, &st) < 0) die_errno("fstat");
    if (st.st_size == 0) continue;
    switch (m) {
      case READWRITE:
        send_readwrite(sock, file, st.st_size, buf);
        break;
      case MMAP:
        send_mmap(sock, file, st.st_size);
        break;
      case SENDFILE:
        send_sendfile(sock, file, st.st_size);
        break;
      default:
        send_splice(sock, file, st.st_size, pipefd[0], pipefd[1], pipe_size);
    }
    bytes += st.st_size;
  }
  long long t1 = now_ns();
  getrusage(RUSAGE_SELF, &r1);

  if (close(sock) < 0) die_errno("close");
  printf(
      "{\"method\":\"%s\",\"bytes\":%lld,\"elapsed_ns\":%lld,\"user_us\":%lld,\"sys_us\":%lld,"
      "\"voluntary_cs\":%ld,\"involuntary_cs\":%ld}\n",
      method, bytes, t1 - t0, tv_us(r1.ru_utime) - tv_us(r0.ru_utime),
      tv_us(r1.ru_stime) - tv_us(r0.ru_stime), r1.ru_nvcsw - r0.ru_nvcsw,
      r1.ru_nivcsw - r0.ru_nivcsw);
  free(buf);
  return fflush(stdout) == 0 ? 0 : 1;
}
