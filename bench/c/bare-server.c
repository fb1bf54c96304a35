/*
 * bare-server: the least work a server can do for the bench's HTTP and RESP clients, as a
 * yardstick for the client rather than for servers. One thread, one epoll set
 * (level-triggered), non-blocking sockets; per readable connection one read(2), the replies
 * of every whole request in it, one send(2). No routing, no headers parsed, no allocation
 * per request, no timers. If this server, under wrk or redis-benchmark pinned to the client
 * CPU, cannot reach a ratio a target asks for, the client (not the server's work) is what
 * decides that ratio on this machine.
 *
 *   bare-server http PORT   each request head (up to its blank line) gets a fixed
 *                           "hello world\n" reply shaped like nginx's: status line, Server,
 *                           Date (formatted once a second), Content-Type, Content-Length.
 *                           Request bodies are not read: the clients send GETs.
 *   bare-server resp PORT   RESP arrays of bulk strings: SET stores its value (one slot,
 *                           whatever the key), GET answers with it ($-1 before any SET),
 *                           PING answers +PONG, anything else -ERR.
 *
 * Listens on 127.0.0.1:PORT and serves until killed. Output a client does not take is kept
 * (and the connection not read) until the socket is writable again: no request is lost and
 * memory stays bounded by one read's replies.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bare-common.h"

enum { READ_CHUNK = 64 * 1024, MAX_INPUT = 16 * 1024 * 1024, MAX_EVENTS = 256 };

struct conn {
  char *in; /* resp: unparsed bytes kept from earlier reads */
  size_t in_len, in_cap;
  char *out; /* replies not yet sent */
  size_t out_off, out_len, out_cap;
  int head_match; /* http: how much of "\r\n\r\n" the last bytes matched */
};

static int epfd;
static int is_resp;
static struct conn **conns;
static size_t nconns;
static char *value; /* resp: the one stored value */
static size_t value_len;
static int have_value;

static void out_append(struct conn *c, const char *p, size_t n) {
  buf_append(&c->out, &c->out_len, &c->out_cap, p, n);
}

/* Reads "<digits>\r\n" at p (after the type byte): the number, or -1 when incomplete, -2 when bad.
 */
static long long resp_number(const char *p, const char *end, const char **next) {
  long long v = 0;
  const char *q = p;
  int neg = 0;
  if (q < end && *q == '-') neg = 1, q++;
  for (; q < end && *q >= '0' && *q <= '9'; q++) {
    v = v * 10 + (*q - '0');
    if (v > MAX_INPUT) return -2;
  }
  if (q + 1 >= end) return -1;
  if (q[0] != '\r' || q[1] != '\n' || q == p + neg) return -2;
  *next = q + 2;
  return neg ? -v : v;
}

/* One whole command at p: its length (argv filled, up to 3 args kept), 0 when incomplete, -1 when
 * bad. */
static long resp_command(const char *p, const char *end, const char **argv, size_t *argl,
                         long *argc) {
  if (*p != '*') return -1;
  const char *q;
  long long n = resp_number(p + 1, end, &q);
  if (n == -1) return 0;
  if (n < 1 || n > 1024 * 1024) return -1;
  for (long long i = 0; i < n; i++) {
    if (q >= end) return 0;
    if (*q != '$') return -1;
    long long len = resp_number(q + 1, end, &q);
    if (len == -1) return 0;
    if (len < 0) return -1;
    if ((long long)(end - q) < len + 2) return 0;
    if (q[len] != '\r' || q[len + 1] != '\n') return -1;
    if (i < 3) argv[i] = q, argl[i] = (size_t)len;
    q += len + 2;
  }
  *argc = (long)n;
  return (long)(q - p);
}

static int verb_is(const char *a, size_t l, const char *verb) {
  return l == strlen(verb) && strncasecmp(a, verb, l) == 0;
}

/* resp: every whole command in the connection's input, answered; what is left kept. 0, or -1 to
 * close. */
static int resp_input(struct conn *c) {
  const char *p = c->in, *end = c->in + c->in_len;
  while (p < end) {
    const char *argv[3];
    size_t argl[3];
    long argc = 0;
    long used = resp_command(p, end, argv, argl, &argc);
    if (used < 0) {
      static const char ERR[] = "-ERR Protocol error\r\n";
      out_append(c, ERR, sizeof ERR - 1);
      return -1;
    }
    if (used == 0) break;
    if (verb_is(argv[0], argl[0], "SET") && argc >= 3) {
      if (argl[2] > value_len || !value) value = grow(value, argl[2] ? argl[2] : 1);
      memcpy(value, argv[2], argl[2]);
      value_len = argl[2];
      have_value = 1;
      out_append(c, "+OK\r\n", 5);
    } else if (verb_is(argv[0], argl[0], "GET") && argc >= 2) {
      if (!have_value) {
        out_append(c, "$-1\r\n", 5);
      } else {
        char head[32];
        int hl = snprintf(head, sizeof head, "$%zu\r\n", value_len);
        out_append(c, head, (size_t)hl);
        out_append(c, value, value_len);
        out_append(c, "\r\n", 2);
      }
    } else if (verb_is(argv[0], argl[0], "PING")) {
      out_append(c, "+PONG\r\n", 7);
    } else {
      static const char ERR[] = "-ERR unknown command\r\n";
      out_append(c, ERR, sizeof ERR - 1);
    }
    p += used;
  }
  c->in_len = (size_t)(end - p);
  memmove(c->in, p, c->in_len);
  return 0;
}

static void conn_close(int fd) {
  struct conn *c = conns[fd];
  epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(c->in);
  free(c->out);
  free(c);
  conns[fd] = NULL;
}

static void watch(int fd, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(epfd, op, fd, &ev) < 0) die("epoll_ctl");
}

/* Sends what is pending. 1 when all went, 0 when the socket is full, -1 on error. */
static int flush(int fd, struct conn *c) {
  while (c->out_off < c->out_len) {
    ssize_t w = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) return 0;
    if (w < 0) return -1;
    c->out_off += (size_t)w;
  }
  c->out_off = c->out_len = 0;
  return 1;
}

/* After input or writability: send, and watch for input only when nothing is left over. */
static void settle(int fd, struct conn *c, int was_waiting) {
  int r = flush(fd, c);
  if (r < 0) return conn_close(fd);
  if (r == 0 && !was_waiting) watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
  if (r == 1 && was_waiting) watch(fd, EPOLLIN, EPOLL_CTL_MOD);
}

static void on_readable(int fd, struct conn *c) {
  char buf[READ_CHUNK];
  char *into = buf;
  size_t room = sizeof buf;
  if (is_resp) {
    if (c->in_cap - c->in_len < READ_CHUNK) {
      if (c->in_len + READ_CHUNK > MAX_INPUT) return conn_close(fd);
      c->in_cap = c->in_len + READ_CHUNK;
      c->in = grow(c->in, c->in_cap);
    }
    into = c->in + c->in_len;
    room = c->in_cap - c->in_len;
  }
  ssize_t n;
  do n = read(fd, into, room);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0) return conn_close(fd);
  int bad = 0;
  if (is_resp) {
    c->in_len += (size_t)n;
    bad = resp_input(c) < 0;
  } else {
    http_heads(&c->head_match, buf, (size_t)n, &c->out, &c->out_len, &c->out_cap);
  }
  if (bad) {
    flush(fd, c);
    return conn_close(fd);
  }
  settle(fd, c, 0);
}

static void on_accept(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return; /* EAGAIN, or out of fds: the listening socket stays readable, try again later */
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conns = table_fit(conns, &nconns, fd, sizeof *conns);
    conns[fd] = calloc(1, sizeof **conns);
    if (!conns[fd]) die("calloc");
    watch(fd, EPOLLIN, EPOLL_CTL_ADD);
  }
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "http") && strcmp(argv[1], "resp"))) {
    fprintf(stderr, "usage: %s http|resp PORT\n", argv[0]);
    return 2;
  }
  is_resp = strcmp(argv[1], "resp") == 0;
  signal(SIGPIPE, SIG_IGN);
  int lfd = listen_loopback(atoi(argv[2]), SOCK_NONBLOCK | SOCK_CLOEXEC);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  watch(lfd, EPOLLIN, EPOLL_CTL_ADD);
  struct epoll_event evs[MAX_EVENTS];
  for (;;) {
    int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        on_accept(lfd);
        continue;
      }
      struct conn *c = (size_t)fd < nconns ? conns[fd] : NULL;
      if (!c) continue;
      if (evs[i].events & EPOLLOUT)
        settle(fd, c, 1);
      else
        on_readable(fd, c);
    }
  }
}
