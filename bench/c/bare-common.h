/*
 * What the two bare servers (bare-server.c on epoll, bare-uring.c on io_uring) share: the
 * fixed HTTP reply and the request-head matcher, the growable output buffer, the table of
 * connections by fd, and the loopback listening socket. Header-only (static inline), so
 * each server stays one compiler invocation; bench/lib/c-driver.ts keys its build cache on
 * this file's bytes too.
 */
#ifndef RAWIO_BARE_COMMON_H
#define RAWIO_BARE_COMMON_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static inline void die(const char *what) {
  perror(what);
  exit(1);
}

static inline void *grow(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) die("realloc");
  return q;
}

/* Appends n bytes to the buffer *buf holding *len of *cap bytes, doubling it as needed. */
static inline void buf_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n) {
  if (*len + n > *cap) {
    while (*len + n > *cap) *cap = *cap ? *cap * 2 : 4096;
    *buf = grow(*buf, *cap);
  }
  memcpy(*buf + *len, p, n);
  *len += n;
}

/*
 * Makes room for fd in a table of n slots of elem bytes (new slots zeroed): the table, moved
 * if it grew. conns = table_fit(conns, &nconns, fd, sizeof *conns).
 */
static inline void *table_fit(void *table, size_t *n, int fd, size_t elem) {
  if ((size_t)fd < *n) return table;
  size_t m = *n ? *n : 1024;
  while (m <= (size_t)fd) m *= 2;
  table = grow(table, m * elem);
  memset((char *)table + *n * elem, 0, (m - *n) * elem);
  *n = m;
  return table;
}

/*
 * The reply to every HTTP request, shaped like nginx's: status line, Server, Date (formatted
 * again once a second), Content-Type, Content-Length, "hello world\n". Its length goes in *len.
 */
static inline const char *http_reply(size_t *len) {
  static char reply[256];
  static size_t reply_len;
  static time_t reply_at;
  time_t now = time(NULL);
  if (!reply_len || now != reply_at) {
    char date[64];
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    reply_len =
        (size_t)snprintf(reply, sizeof reply,
                         "HTTP/1.1 200 OK\r\nServer: bare\r\nDate: %s\r\n"
                         "Content-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n",
                         date);
    reply_at = now;
  }
  *len = reply_len;
  return reply;
}

/*
 * Appends a reply for every request head (up to "\r\n\r\n") that ends in p[0, n); *match
 * carries how much of the blank line the bytes before matched, across reads.
 */
static inline void http_heads(int *match, const char *p, size_t n, char **out, size_t *len,
                              size_t *cap) {
  static const char END[] = "\r\n\r\n";
  int m = *match;
  for (size_t i = 0; i < n; i++) {
    if (p[i] == END[m])
      m++;
    else
      m = p[i] == '\r' ? 1 : 0;
    if (m == 4) {
      size_t rl;
      const char *r = http_reply(&rl);
      buf_append(out, len, cap, r, rl);
      m = 0;
    }
  }
  *match = m;
}

/* A socket listening on 127.0.0.1:port; type_flags as socket(2) takes them (SOCK_NONBLOCK…). */
static inline int listen_loopback(int port, int type_flags) {
  int fd = socket(AF_INET, SOCK_STREAM | type_flags, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(fd, 4096) < 0) die("listen");
  return fd;
}

#endif
