// What the load generator says and how it counts replies, for its protocols: HTTP/1.1
// keep-alive GET (a reply ends by Content-Length or by chunked framing, RFC 9112 §6), echo
// (N bytes out, the same N back), raw (the user's bytes out, a fixed count of bytes back:
// echo with a payload of the user's choosing), and RESP (the Redis protocol: PING / SET /
// GET frames, one command or a weighted mix; a reply is one simple string, error, integer,
// bulk string or array).
//
// The parsers are incremental and allocation-free: each call consumes what it can from
// the bytes it is given and says how many whole replies that made, so a reply split over
// several reads, or several replies in one read (pipelining), count the same.
#pragma once
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace rawio {

enum class Proto { kHttp, kEcho, kResp };
enum class RespCmd { kPing, kSet, kGet, kSetGet, kMix };

struct ParseOut {
  size_t consumed = 0;
  uint32_t replies = 0;
  uint32_t errorReplies = 0;  // HTTP status >= 400, RESP "-ERR"
  bool bad = false;           // a framing error: the connection cannot continue
};

// Per-connection parser state (only HTTP keeps any between calls; echo counts bytes).
struct ParseState {
  enum { kHead, kBody, kChunkSize, kChunkData, kTrailer } http = kHead;
  uint64_t remain = 0;  // body or chunk bytes still to skip; echo: bytes of the current reply
};

inline bool IEquals(const char* a, const char* b, size_t n) { return strncasecmp(a, b, n) == 0; }

inline const char* FindCrlf(const char* p, const char* end) {
  for (; p + 1 < end; p++)
    if (p[0] == '\r' && p[1] == '\n') return p;
  return nullptr;
}

// Reads the status and the framing headers of one HTTP response head [p, end).
// Returns false when the head is malformed or has no keep-alive framing.
inline bool HttpHead(const char* p, const char* end, ParseState& st, ParseOut& out) {
  if (end - p < 12 || std::memcmp(p, "HTTP/1.", 7) != 0) return false;
  int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  if (status < 100 || status > 599) return false;
  bool chunked = false, haveLength = false;
  uint64_t length = 0;
  for (const char* line = FindCrlf(p, end); line && line + 2 < end;) {
    line += 2;
    const char* eol = FindCrlf(line, end);
    if (!eol || eol == line) break;
    size_t n = static_cast<size_t>(eol - line);
    if (n > 15 && IEquals(line, "content-length:", 15)) {
      haveLength = true;
      for (const char* c = line + 15; c < eol; c++)
        if (*c >= '0' && *c <= '9') length = length * 10 + static_cast<uint64_t>(*c - '0');
    } else if (n > 18 && IEquals(line, "transfer-encoding:", 18)) {
      for (const char* c = line + 18; c + 7 <= eol; c++)
        if (IEquals(c, "chunked", 7)) chunked = true;
    }
    line = eol;
  }
  if (status >= 400) out.errorReplies++;
  bool noBody = status < 200 || status == 204 || status == 304;
  if (chunked) {
    st.http = ParseState::kChunkSize;
  } else if (haveLength || noBody) {
    st.remain = noBody ? 0 : length;
    st.http = ParseState::kBody;
  } else {
    return false;  // body delimited by close: not a keep-alive reply
  }
  return true;
}

inline ParseOut ParseHttp(ParseState& st, const char* buf, size_t len) {
  ParseOut out;
  const char* p = buf;
  const char* end = buf + len;
  for (;;) {
    if (st.http == ParseState::kBody || st.http == ParseState::kChunkData) {
      uint64_t take = std::min<uint64_t>(st.remain, static_cast<uint64_t>(end - p));
      p += take;
      st.remain -= take;
      if (st.remain > 0) break;
      if (st.http == ParseState::kBody) {
        out.replies++;
        st.http = ParseState::kHead;
      } else {
        st.http = ParseState::kChunkSize;
      }
      continue;
    }
    const char* eol = FindCrlf(p, end);
    if (st.http == ParseState::kHead) {
      const char* hend = nullptr;
      for (const char* c = eol; c && c + 3 < end; c = FindCrlf(c + 2, end))
        if (c[2] == '\r' && c[3] == '\n') {
          hend = c + 4;
          break;
        }
      if (!hend) {
        if (end - p > 65536) out.bad = true;  // a head this long is not a reply we sent for
        break;
      }
      if (!HttpHead(p, hend, st, out)) {
        out.bad = true;
        break;
      }
      p = hend;
    } else if (!eol) {
      break;
    } else if (st.http == ParseState::kChunkSize) {
      uint64_t size = 0;
      const char* c = p;
      for (; c < eol && std::isxdigit(static_cast<unsigned char>(*c)); c++)
        size =
            size * 16 + static_cast<uint64_t>(std::isdigit(*c) ? *c - '0' : (*c | 32) - 'a' + 10);
      if (c == p) {
        out.bad = true;
        break;
      }
      p = eol + 2;
      st.remain = size + 2;  // the data and its CRLF
      st.http = size == 0 ? ParseState::kTrailer : ParseState::kChunkData;
    } else {  // kTrailer: lines until an empty one
      bool last = eol == p;
      p = eol + 2;
      if (last) {
        out.replies++;
        st.http = ParseState::kHead;
      }
    }
  }
  out.consumed = static_cast<size_t>(p - buf);
  return out;
}

// One RESP value at p: its length in bytes, 0 if incomplete, -1 if malformed.
inline long RespValue(const char* p, const char* end, int depth, bool* isError) {
  if (p >= end) return 0;
  const char* eol = FindCrlf(p + 1, end);
  if (!eol) return end - p > 65536 ? -1 : 0;
  long head = eol + 2 - p;
  char type = *p;
  if (type == '+' || type == ':') return head;
  if (type == '-') {
    *isError = true;
    return head;
  }
  if (type != '$' && type != '*') return -1;
  long n = std::strtol(p + 1, nullptr, 10);
  if (n < 0) return head;  // null bulk string or null array
  if (type == '$') return end - eol - 2 >= n + 2 ? head + n + 2 : 0;
  if (depth > 8) return -1;
  long total = head;
  for (long i = 0; i < n; i++) {
    long r = RespValue(p + total, end, depth + 1, isError);
    if (r <= 0) return r;
    total += r;
  }
  return total;
}

inline ParseOut ParseResp(const char* buf, size_t len) {
  ParseOut out;
  size_t off = 0;
  while (off < len) {
    bool isError = false;
    long r = RespValue(buf + off, buf + len, 0, &isError);
    if (r < 0) out.bad = true;
    if (r <= 0) break;
    off += static_cast<size_t>(r);
    out.replies++;
    if (isError) out.errorReplies++;
  }
  out.consumed = off;
  return out;
}

inline ParseOut ParseEcho(ParseState& st, size_t payload, size_t len) {
  ParseOut out;
  uint64_t have = st.remain + len;
  out.replies = static_cast<uint32_t>(have / payload);
  st.remain = have % payload;
  out.consumed = len;
  return out;
}

// Appends the n-th request of a connection to out.
struct RequestWriter {
  Proto proto;
  RespCmd cmd;
  std::string httpRequest;  // the whole GET, built once
  std::string echoPayload;
  std::string value;
  uint32_t keyspace;
  // kMix: the n-th request is the command whose share of the weights holds n % total,
  // a fixed cycle (PING, then SET, then GET runs) so every run sends the same sequence.
  uint32_t mix[3] = {0, 0, 0};  // ping, set, get

  RespCmd Pick(uint64_t n) const {
    if (cmd == RespCmd::kSetGet) return n % 2 ? RespCmd::kGet : RespCmd::kSet;
    if (cmd != RespCmd::kMix) return cmd;
    uint64_t slot = n % (uint64_t{mix[0]} + mix[1] + mix[2]);
    if (slot < mix[0]) return RespCmd::kPing;
    return slot < uint64_t{mix[0]} + mix[1] ? RespCmd::kSet : RespCmd::kGet;
  }

  void Append(std::string& out, uint64_t n) const {
    switch (proto) {
      case Proto::kHttp:
        out += httpRequest;
        return;
      case Proto::kEcho:
        out += echoPayload;
        return;
      case Proto::kResp:
        break;
    }
    RespCmd c = Pick(n);
    if (c == RespCmd::kPing) {
      out += "*1\r\n$4\r\nPING\r\n";
      return;
    }
    std::string key = "key:" + std::to_string((n / (cmd == RespCmd::kSetGet ? 2 : 1)) % keyspace);
    out += c == RespCmd::kSet ? "*3\r\n$3\r\nSET\r\n$" : "*2\r\n$3\r\nGET\r\n$";
    out += std::to_string(key.size()) + "\r\n" + key + "\r\n";
    if (c == RespCmd::kSet) out += "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
  }
};

}  // namespace rawio
