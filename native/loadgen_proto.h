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
  bool close = false;         // the last reply ended the connection (Connection: close)
};

// Per-connection parser state kept between reads: HTTP's place in a reply, the rest of a
// RESP bulk string's data, echo's bytes of the current reply.
struct ParseState {
  enum { kHead, kBody, kChunkSize, kChunkData, kTrailer } http = kHead;
  uint64_t remain = 0;  // body, chunk or RESP bulk bytes still to skip; echo: of the current reply
  bool closeAfter = false;  // the reply being read said the server closes after it
};

// The most bytes of a reply's head, or of any one line (a chunk size, a trailer, a RESP
// simple string), buffered while its end has not come: past it, it cannot be framed.
constexpr long kMaxLine = 65536;

inline bool IEquals(const char* a, const char* b, size_t n) { return strncasecmp(a, b, n) == 0; }

// A Content-Length value [p, end): optional blanks, 1 to 18 digits, optional blanks. False
// for anything else (a sign, a list, a number past 10^18): a length the reply cannot be framed by.
inline bool ContentLength(const char* p, const char* end, uint64_t* length) {
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  while (end > p && (end[-1] == ' ' || end[-1] == '\t')) end--;
  if (p == end || end - p > 18) return false;
  uint64_t n = 0;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9') return false;
    n = n * 10 + static_cast<uint64_t>(*p - '0');
  }
  *length = n;
  return true;
}

// True when the header value [p, end) holds `token` as one of its comma-separated items.
inline bool HasToken(const char* p, const char* end, const char* token) {
  size_t n = std::strlen(token);
  for (const char* c = p; c + n <= end; c++)
    if (IEquals(c, token, n) && (c == p || c[-1] == ' ' || c[-1] == ',' || c[-1] == '\t') &&
        (c + n == end || c[n] == ' ' || c[n] == ',' || c[n] == '\t'))
      return true;
  return false;
}

inline const char* FindCrlf(const char* p, const char* end) {
  for (; p + 1 < end; p++)
    if (p[0] == '\r' && p[1] == '\n') return p;
  return nullptr;
}

// Reads the status and the framing headers of one HTTP response head [p, end).
// Returns false when the head is malformed or has no keep-alive framing. An interim reply
// (1xx but 101) leaves the state in kHead with *interim set: the final reply follows it.
inline bool HttpHead(const char* p, const char* end, ParseState& st, ParseOut& out, bool* interim) {
  if (end - p < 12 || std::memcmp(p, "HTTP/1.", 7) != 0) return false;
  for (int i = 9; i < 12; i++)
    if (p[i] < '0' || p[i] > '9') return false;
  int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  if (status < 100 || status > 599 || status == 101) return false;  // 101: no longer HTTP
  *interim = status < 200;
  if (*interim) return true;
  bool chunked = false, haveLength = false;
  // HTTP/1.0 closes after each reply unless it says keep-alive; HTTP/1.1 when it says close.
  bool http10 = p[7] == '0', keepAlive = false, close = false;
  uint64_t length = 0;
  for (const char* line = FindCrlf(p, end); line && line + 2 < end;) {
    line += 2;
    const char* eol = FindCrlf(line, end);
    if (!eol || eol == line) break;
    size_t n = static_cast<size_t>(eol - line);
    if (n > 15 && IEquals(line, "content-length:", 15)) {
      uint64_t n = 0;
      if (!ContentLength(line + 15, eol, &n) || (haveLength && n != length)) return false;
      haveLength = true;
      length = n;
    } else if (n > 11 && IEquals(line, "connection:", 11)) {
      close = close || HasToken(line + 11, eol, "close");
      keepAlive = keepAlive || HasToken(line + 11, eol, "keep-alive");
    } else if (n > 18 && IEquals(line, "transfer-encoding:", 18)) {
      for (const char* c = line + 18; c + 7 <= eol; c++)
        if (IEquals(c, "chunked", 7)) chunked = true;
    }
    line = eol;
  }
  if (status >= 400) out.errorReplies++;
  st.closeAfter = close || (http10 && !keepAlive);
  bool noBody = status == 204 || status == 304;
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

// Skips what it can of `remain` bytes of data at p, the last two of them a CRLF when
// `crlf` (a chunk's or a RESP bulk string's end), which must be there: false when not.
inline bool SkipData(uint64_t& remain, bool crlf, const char*& p, const char* end) {
  uint64_t tail = crlf ? 2 : 0;
  if (remain > tail) {
    uint64_t take = std::min<uint64_t>(remain - tail, static_cast<uint64_t>(end - p));
    p += take;
    remain -= take;
  }
  for (; remain > 0 && remain <= tail && p < end; p++, remain--)
    if (*p != (remain == 2 ? '\r' : '\n')) return false;
  return true;
}

inline ParseOut ParseHttp(ParseState& st, const char* buf, size_t len) {
  ParseOut out;
  const char* p = buf;
  const char* end = buf + len;
  for (;;) {
    if (st.http == ParseState::kBody || st.http == ParseState::kChunkData) {
      if (!SkipData(st.remain, st.http == ParseState::kChunkData, p, end)) {
        out.bad = true;  // a chunk's data not followed by CRLF: its size was wrong
        break;
      }
      if (st.remain > 0) break;
      if (st.http == ParseState::kBody) {
        out.replies++;
        st.http = ParseState::kHead;
        if (st.closeAfter) {
          out.close = true;
          break;
        }
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
        if (end - p > kMaxLine) out.bad = true;  // a head this long is not a reply we sent for
        break;
      }
      bool interim = false;
      if (!HttpHead(p, hend, st, out, &interim)) {
        out.bad = true;
        break;
      }
      p = hend;  // an interim reply's head is skipped: the final one answers the request
    } else if (!eol) {
      // A chunk-size or trailer line is buffered until its CRLF: past kMaxLine it is not
      // one (an endless line would otherwise grow the buffer and its rescans for ever).
      if (end - p > kMaxLine) out.bad = true;
      break;
    } else if (st.http == ParseState::kChunkSize) {
      uint64_t size = 0;
      const char* c = p;
      for (; c < eol && std::isxdigit(static_cast<unsigned char>(*c)); c++)
        size =
            size * 16 + static_cast<uint64_t>(std::isdigit(*c) ? *c - '0' : (*c | 32) - 'a' + 10);
      const char* ext = c;  // after the size: blanks, then the line's end or an extension
      while (ext < eol && (*ext == ' ' || *ext == '\t')) ext++;
      if (c == p || c - p > 15 || (ext < eol && *ext != ';')) {
        out.bad = true;  // no size, one past 2^60 (it would wrap), or junk after it
        break;
      }
      p = eol + 2;
      // The data and its CRLF; the last chunk has none (the trailer's empty line ends it).
      st.remain = size == 0 ? 0 : size + 2;
      st.http = size == 0 ? ParseState::kTrailer : ParseState::kChunkData;
    } else {  // kTrailer: lines until an empty one
      bool last = eol == p;
      p = eol + 2;
      if (last) {
        out.replies++;
        st.http = ParseState::kHead;
        if (st.closeAfter) {
          out.close = true;
          break;
        }
      }
    }
  }
  out.consumed = static_cast<size_t>(p - buf);
  return out;
}

// RESP arrays (no reply to PING, SET or GET is one) are framed up to this many bytes: an
// unfinished one is parsed again from its start on each read, so an endless one would
// otherwise cost memory and time without bound.
constexpr long kMaxArray = 1 << 20;
constexpr long kMaxBulk = 512L << 20;  // the protocol's largest bulk string

// The length on a bulk string's or array's header line [d, eol) (after its type byte): 0 to
// 10 digits, -1 for the null `-1`, -2 for anything else.
inline long RespLength(const char* d, const char* eol) {
  if (eol - d == 2 && d[0] == '-' && d[1] == '1') return -1;
  if (eol == d || eol - d > 10) return -2;
  long n = 0;
  for (; d < eol; d++) {
    if (*d < '0' || *d > '9') return -2;
    n = n * 10 + (*d - '0');
  }
  return n;
}

// One RESP value at p: its length in bytes, 0 if incomplete, -1 if malformed.
inline long RespValue(const char* p, const char* end, int depth, bool* isError) {
  if (p >= end) return 0;
  const char* eol = FindCrlf(p + 1, end);
  if (!eol) return end - p > kMaxLine ? -1 : 0;
  long head = eol + 2 - p;
  char type = *p;
  if (type == '+') return head;
  if (type == ':') {  // a signed decimal integer, nothing else
    const char* d = p + 1 + (p[1] == '-' || p[1] == '+');
    if (d == eol || eol - d > 19) return -1;
    for (; d < eol; d++)
      if (*d < '0' || *d > '9') return -1;
    return head;
  }
  if (type == '-') {
    *isError = true;
    return head;
  }
  if (type != '$' && type != '*') return -1;
  long n = RespLength(p + 1, eol);
  if (n == -1) return head;  // null bulk string or array
  if (n < 0 || (type == '$' && n > kMaxBulk)) return -1;
  if (type == '$') {
    if (end - eol - 2 < n + 2) return 0;
    // The data is followed by its CRLF: else the length was wrong (a reply framed by it
    // would swallow the next one's bytes).
    return eol[2 + n] == '\r' && eol[3 + n] == '\n' ? head + n + 2 : -1;
  }
  if (depth > 8) return -1;
  bool capped = depth == 0 && end - p > kMaxArray;
  if (capped) end = p + kMaxArray;
  long total = head;
  for (long i = 0; i < n; i++) {
    long r = RespValue(p + total, end, depth + 1, isError);
    if (r < 0) return r;
    if (r == 0) return capped ? -1 : 0;
    total += r;
  }
  return total;
}

// A bulk string at the top (GET's answer) is streamed as an HTTP body is: its header line
// read, then its data skipped as it comes (st.remain: the data and CRLF still to come), so
// a reply of up to 512 MiB is never buffered. Any other value is parsed whole (RespValue).
inline ParseOut ParseResp(ParseState& st, const char* buf, size_t len) {
  ParseOut out;
  const char* p = buf;
  const char* end = buf + len;
  for (;;) {
    if (st.remain > 0) {
      if (!SkipData(st.remain, true, p, end)) {
        out.bad = true;  // the data not followed by CRLF: the length was wrong
        break;
      }
      if (st.remain > 0) break;
      out.replies++;
    }
    if (p >= end) break;
    if (*p == '$') {
      const char* eol = FindCrlf(p + 1, end);
      if (!eol) {
        if (end - p > kMaxLine) out.bad = true;
        break;
      }
      long n = RespLength(p + 1, eol);
      if (n == -2 || n > kMaxBulk) {
        out.bad = true;
        break;
      }
      p = eol + 2;
      if (n == -1)
        out.replies++;  // the null bulk string
      else
        st.remain = static_cast<uint64_t>(n) + 2;
      continue;
    }
    bool isError = false;
    long r = RespValue(p, end, 0, &isError);
    if (r < 0) out.bad = true;
    if (r <= 0) break;
    p += r;
    out.replies++;
    if (isError) out.errorReplies++;
  }
  out.consumed = static_cast<size_t>(p - buf);
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
