// The load generator's per-thread loop (see loadgen_engine.h): epoll(7) over non-blocking
// connect(2)/send(2)/read(2), a min-heap of connections waiting for their next intended
// send time (fixed rate) or a reconnect, and epoll_pwait2(2) for a timeout finer than 1 ms.
#include "loadgen_engine.h"

#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <queue>

namespace rawio {

uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void LoadStats::Merge(const LoadStats& o) {
  requests += o.requests;
  sent += o.sent;
  received += o.received;
  bytesOut += o.bytesOut;
  bytesIn += o.bytesIn;
  bytesInWindow += o.bytesInWindow;
  connects += o.connects;
  connectErrors += o.connectErrors;
  resets += o.resets;
  badReplies += o.badReplies;
  errorReplies += o.errorReplies;
  lost += o.lost;
  if (o.windowNs > windowNs) windowNs = o.windowNs;
  if (o.affinityErrno) affinityErrno = o.affinityErrno;
  if (o.ended > ended) ended = o.ended;
  connectionsAnswered += o.connectionsAnswered;
  if (o.lastErrno != 0 && o.lastErrnoNs >= lastErrnoNs) {
    lastErrno = o.lastErrno;
    lastErrnoNs = o.lastErrnoNs;
  }
  cpuSeconds += o.cpuSeconds;
  latency.Merge(o.latency);
}

namespace {

// This thread's user + system time (getrusage(2) RUSAGE_THREAD): what the client cost.
double ThreadCpuSeconds() {
  rusage ru{};
  if (getrusage(RUSAGE_THREAD, &ru) < 0) return 0;
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

// After a failed attempt, 10 ms doubling to 500 ms while the connection keeps failing: no
// busy loop against a server that is gone, and a prompt reconnect when it is back.
constexpr uint64_t kReconnectDelayNs = 10'000'000;
constexpr uint64_t kReconnectMaxNs = 500'000'000;
constexpr size_t kReadBuf = 64 * 1024;
constexpr int kReadsPerEvent = 16;
constexpr size_t kMaxQueued = 1 << 20;  // request bytes waiting for the socket, per connection

struct Conn {
  int fd = -1;
  bool connecting = false, wantOut = false, queued = false;
  bool replied = false;   // this TCP connection got a reply
  bool answered = false;  // any of this slot's connections got one
  uint32_t failures = 0;  // attempts in a row that ended without a reply
  std::string out;
  size_t outOff = 0;
  std::string carry;  // bytes of an unfinished reply
  ParseState ps;
  std::vector<uint64_t> stamps;  // send (or intended send) times of the requests in flight
  size_t head = 0, inflight = 0;
  uint64_t nextDue = 0, seq = 0;
};

using Due = std::pair<uint64_t, uint32_t>;

class Loop {
 public:
  Loop(const LoadConfig& cfg, int index, const std::atomic<bool>& stop)
      : cfg_(cfg), stop_(stop), rbuf_(kReadBuf) {
    for (int i = index; i < cfg.connections; i += cfg.threads) conns_.emplace_back();
    // Each connection sends every connections/rate seconds: together they make the rate.
    intervalNs_ = cfg.rate > 0 ? 1e9 * cfg.connections / cfg.rate : 0;
    for (Conn& c : conns_) c.stamps.resize(static_cast<size_t>(cfg.pipeline));
    // A request count is shared out like the connections: thread i sends its share.
    uint64_t t = static_cast<uint64_t>(cfg.threads), i = static_cast<uint64_t>(index);
    byCount_ = cfg.requests > 0;
    quota_ = cfg.requests / t + (i < cfg.requests % t ? 1 : 0);
  }

  LoadStats Run() {
    if (!cfg_.cpus.empty()) Pin();
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      st_.connectErrors += conns_.size();
      return st_;
    }
    measureStart_ = cfg_.t0 + cfg_.warmupNs;
    measureEnd_ = measureStart_ + cfg_.durationNs;
    uint64_t now = MonotonicNs();
    lastProgressNs_ = cfg_.t0;
    for (size_t i = 0; i < conns_.size(); i++) {
      // Stagger the schedules so the connections do not all fire at once.
      conns_[i].nextDue = cfg_.t0 + static_cast<uint64_t>(intervalNs_ * i / conns_.size());
      Connect(static_cast<uint32_t>(i), now);
    }
    Spin();
    uint64_t end = MonotonicNs();
    for (Conn& c : conns_) {
      if (c.fd >= 0 && c.connecting) {
        // Never made, after the window and the drain: its SYN went unanswered (a listener
        // whose backlog is full, a host that drops it), an error to count and name.
        st_.connectErrors++;
        st_.lastErrno = ETIMEDOUT;
        st_.lastErrnoNs = end;
      }
      st_.lost += c.inflight;
      if (c.fd >= 0) close(c.fd);
      if (c.answered) st_.connectionsAnswered++;
    }
    if (st_.ended == End::kDone && stop_.load(std::memory_order_relaxed)) st_.ended = End::kStopped;
    close(ep_);
    // By count the window closes with the last reply, not when the last request left.
    if (byCount_) st_.windowNs = lastReplyNs_ > measureStart_ ? lastReplyNs_ - measureStart_ : 0;
    st_.cpuSeconds = ThreadCpuSeconds();
    return st_;
  }

 private:
  void Pin() {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : cfg_.cpus) CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0) st_.affinityErrno = errno;
  }

  // The run may still send: not stopped, its count not sent, not given up.
  bool Open() const {
    if (byCount_ && (st_.sent >= quota_ || st_.ended != End::kDone)) return false;
    return !stop_.load(std::memory_order_relaxed);
  }

  bool Sending(uint64_t now) const { return now < measureEnd_ && Open(); }

  // By count: no reply for stallNs while a request or a connect waited for the server. A
  // thread with nothing outstanding waits for its schedule (fixed rate) or for a reconnect
  // after a failure, not for the server: that restarts the clock (failures in a row are
  // Failed's to count). Once its count is sent and answered, a connect under way is the
  // drain's to bound, not a stall.
  bool Stalled(uint64_t now) {
    if (!byCount_ || stop_.load(std::memory_order_relaxed)) return false;
    if (inflight_ == 0 && (connecting_ == 0 || !Sending(now))) lastProgressNs_ = now;
    return now - lastProgressNs_ >= cfg_.stallNs;
  }

  void Spin() {
    epoll_event evs[256];
    uint64_t drainEnd = 0;
    for (;;) {
      uint64_t now = MonotonicNs();
      if (st_.ended == End::kDone && Stalled(now)) {
        st_.ended = End::kStalled;  // what is in flight is lost
        return;
      }
      if (!Sending(now)) {
        if (drainEnd == 0) {
          uint64_t end = now < measureEnd_ ? now : measureEnd_;
          st_.windowNs = end > measureStart_ ? end - measureStart_ : 0;
          windowOpen_ = false;
          // A count waits for its last replies while they keep coming (Stalled bounds it);
          // a window, a stop or a run given up waits drainNs.
          bool counted = byCount_ && st_.ended == End::kDone && now < measureEnd_ &&
                         !stop_.load(std::memory_order_relaxed);
          drainEnd = counted ? UINT64_MAX : now + cfg_.drainNs;
        }
        // A stop while a count waits for its last replies: Stalled no longer bounds the
        // wait (a stopped run is not stalled), so the stop's drainNs does, as for a window.
        if (drainEnd == UINT64_MAX && stop_.load(std::memory_order_relaxed))
          drainEnd = now + cfg_.drainNs;
        // Connects under way get the drain too (a count answered gives them drainNs): one
        // that ends in it is counted, made or failed; one still under way when the run
        // ends is a connect error (Run).
        if (inflight_ == 0) {
          if (connecting_ == 0) return;
          if (drainEnd == UINT64_MAX) drainEnd = now + cfg_.drainNs;
        }
        if (now >= drainEnd) return;
      }
      uint64_t wake = now + 50'000'000;  // notice stop() within 50 ms
      if (Sending(now) && measureEnd_ < wake) wake = measureEnd_;
      if (drainEnd && drainEnd < wake) wake = drainEnd;
      if (!heap_.empty() && heap_.top().first < wake) wake = heap_.top().first;
      int n = Wait(evs, 256, wake > now ? wake - now : 0);
      now = MonotonicNs();
      for (int i = 0; i < n; i++) OnEvent(evs[i].data.u32, evs[i].events, now);
      while (!heap_.empty() && heap_.top().first <= now) {
        uint32_t idx = heap_.top().second;
        heap_.pop();
        conns_[idx].queued = false;
        if (conns_[idx].fd < 0) {
          if (Sending(now)) Connect(idx, now);
        } else if (!conns_[idx].connecting) {
          Pump(idx, now);
        }
      }
    }
  }

  int Wait(epoll_event* evs, int max, uint64_t ns) {
#ifdef SYS_epoll_pwait2
    if (!noPwait2_) {
      timespec ts{static_cast<time_t>(ns / 1000000000u), static_cast<long>(ns % 1000000000u)};
      long r = syscall(SYS_epoll_pwait2, ep_, evs, max, &ts, nullptr, 0);
      if (r >= 0) return static_cast<int>(r);
      if (errno != ENOSYS) return 0;
      noPwait2_ = true;  // before Linux 5.11
    }
#endif
    int r = epoll_wait(ep_, evs, max, static_cast<int>((ns + 999999) / 1000000));
    return r < 0 ? 0 : r;
  }

  void Schedule(uint32_t idx, uint64_t at) {
    if (conns_[idx].queued) return;
    conns_[idx].queued = true;
    heap_.emplace(at, idx);
  }

  void Connect(uint32_t idx, uint64_t now) {
    Conn& c = conns_[idx];
    int fd = socket(cfg_.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return ConnectFailed(idx, now, errno);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int r = connect(fd, reinterpret_cast<const sockaddr*>(&cfg_.addr), cfg_.addrLen);
    if (r < 0 && errno != EINPROGRESS) {
      int err = errno;
      close(fd);
      return ConnectFailed(idx, now, err);
    }
    c.fd = fd;
    c.connecting = true;
    c.replied = false;
    connecting_++;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u32 = idx;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void ConnectFailed(uint32_t idx, uint64_t now, int err) {
    st_.connectErrors++;
    Failed(idx, now, err);
  }

  // An attempt that ended without a reply: retry after the back-off, or, by count, give up
  // once every connection of this thread has failed kGiveUpFailures times in a row.
  void Failed(uint32_t idx, uint64_t now, int err) {
    Conn& c = conns_[idx];
    if (err != 0) {
      st_.lastErrno = err;
      st_.lastErrnoNs = now;
    }
    if (++c.failures == kGiveUpFailures) failing_++;
    if (byCount_ && failing_ == conns_.size() && st_.ended == End::kDone)
      st_.ended = End::kUnreachable;
    if (!Sending(now)) return;
    uint32_t shift = c.failures - 1 < 16 ? c.failures - 1 : 16;
    uint64_t delay = kReconnectDelayNs << shift;
    Schedule(idx, now + (delay < kReconnectMaxNs ? delay : kReconnectMaxNs));
  }

  void OnEvent(uint32_t idx, uint32_t events, uint64_t now) {
    Conn& c = conns_[idx];
    if (c.fd < 0) return;
    if (c.connecting) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
        Drop(idx);
        return ConnectFailed(idx, now, err != 0 ? err : ECONNREFUSED);
      }
      c.connecting = false;
      connecting_--;
      st_.connects++;
      SetOut(idx, false);
      return Pump(idx, now);
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      if (!OnReadable(idx)) return;
    }
    if ((events & EPOLLOUT) && c.fd >= 0) {
      Flush(idx);
      if (c.fd >= 0 && c.out.empty()) Pump(idx, now);  // what kMaxQueued held back
    }
  }

  // Reads until the socket is drained, or kReadsPerEvent reads: a server that sends
  // faster than the replies are parsed must not keep this loop from its clock (the window's
  // end, a stop, the other connections); epoll reports the rest on the next turn. False
  // when the connection was dropped.
  bool OnReadable(uint32_t idx) {
    Conn& c = conns_[idx];
    for (int reads = 0; reads < kReadsPerEvent; reads++) {
      ssize_t r = read(c.fd, rbuf_.data(), rbuf_.size());
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == EAGAIN) break;
      if (r < 0) return Reset(idx, false, false, errno);
      if (r == 0) return Reset(idx, false, c.inflight == 0, c.inflight == 0 ? 0 : kErrnoEof);
      st_.bytesIn += static_cast<uint64_t>(r);
      uint64_t now = MonotonicNs();
      // Read inside the window: what a rate of bytes divides by `seconds`, so it ends where
      // windowNs does. A timed window closes when Spin sees it over (a stop too, noticed up to
      // a wait later: the bytes read until then are the window's, as is the time); a count's
      // with its last counted reply, whenever that comes (a stop's drain too), as `requests`.
      // bytesIn also holds the warm-up's and the drain's.
      if (now >= measureStart_ && now < measureEnd_ && (byCount_ || windowOpen_))
        st_.bytesInWindow += static_cast<uint64_t>(r);
      bool closing = false;
      if (!Consume(idx, static_cast<size_t>(r), now, &closing))
        return Reset(idx, true, false, EPROTO);
      // The server said it closes after this reply (Connection: close, or HTTP/1.0): no
      // request goes on this connection again; a new one is made at once, as after any
      // close of a connection that answered. Requests already pipelined on it are lost.
      if (closing) return Reset(idx, false, c.inflight == 0, c.inflight == 0 ? 0 : kErrnoEof);
      if (static_cast<size_t>(r) < rbuf_.size()) break;  // drained: saves the EAGAIN read
    }
    Pump(idx, MonotonicNs());
    return conns_[idx].fd >= 0;
  }

  // Counts the replies in n bytes read; false for a reply that cannot be framed. *closing
  // is set when the last of them said the server closes the connection after it.
  bool Consume(uint32_t idx, size_t n, uint64_t now, bool* closing) {
    Conn& c = conns_[idx];
    const char* data = rbuf_.data();
    size_t len = n;
    if (!c.carry.empty()) {
      c.carry.append(data, n);
      data = c.carry.data();
      len = c.carry.size();
    }
    ParseOut o;
    const RequestWriter& w = cfg_.writer;
    if (w.proto == Proto::kHttp)
      o = ParseHttp(c.ps, data, len);
    else if (w.proto == Proto::kResp)
      o = ParseResp(c.ps, data, len);
    else
      o = ParseEcho(c.ps, cfg_.echoSize, len);
    if (c.carry.empty())
      c.carry.assign(data + o.consumed, len - o.consumed);
    else
      c.carry.erase(0, o.consumed);
    st_.errorReplies += o.errorReplies;
    // Bytes past the replies to every request in flight (another reply, or part of one)
    // were asked for by no request: the last reply's length lied (its body ran on), or the
    // server answered twice or unasked. Either way that reply is no answer: the connection
    // fails as a bad reply, that request lost. (A reply that closes the connection ends
    // the parse before what follows it.)
    bool pending = !c.carry.empty() || c.ps.http != ParseState::kHead || c.ps.remain > 0;
    bool surplus = o.replies > c.inflight || (o.replies == c.inflight && pending && !o.close);
    uint64_t answered = o.replies < c.inflight ? o.replies : c.inflight;
    if (surplus) {
      o.bad = true;
      if (answered > 0) answered--;
    }
    if (answered > 0) {
      c.replied = c.answered = true;
      if (c.failures >= kGiveUpFailures) failing_--;
      c.failures = 0;
      lastProgressNs_ = now;
    }
    for (uint64_t i = 0; i < answered; i++) {
      uint64_t stamp = c.stamps[c.head];
      c.head = (c.head + 1) % c.stamps.size();
      c.inflight--;
      inflight_--;
      st_.received++;
      // Closed loop measures the replies that came in the window; a fixed rate the requests
      // due in it, whenever (within the drain) their replies came: a stall at the window's
      // end is latency, not replies that fell out of the count.
      uint64_t at = intervalNs_ > 0 ? stamp : now;
      if (at >= measureStart_ && at < measureEnd_) {
        st_.requests++;
        lastReplyNs_ = now;
        st_.latency.Record(now > stamp ? now - stamp : 0);
      }
    }
    *closing = o.close && !o.bad;
    return !o.bad;
  }

  // Queues the requests this connection may send now, then writes them in one call. No
  // more is queued while kMaxQueued bytes wait for the socket (a server that does not read):
  // the pipeline's depth of large requests is not copied out at once. The rest follow at
  // once when the socket took everything, else as it drains (OnEvent).
  void Pump(uint32_t idx, uint64_t now) {
    Conn& c = conns_[idx];
    // At a fixed rate the requests due in the window are sent in the drain too when a
    // stalled server held them back: else a stall at the window's end would never be seen.
    if (c.fd < 0 || c.connecting || !Open() || (intervalNs_ == 0 && now >= measureEnd_)) return;
    size_t depth = c.stamps.size();
    for (;;) {
      bool held = false;  // kMaxQueued stopped the queueing, not the pipeline or the schedule
      while (c.inflight < depth && !(byCount_ && st_.sent >= quota_)) {
        if (c.out.size() - c.outOff >= kMaxQueued) {
          held = true;
          break;
        }
        uint64_t stamp = now;
        if (intervalNs_ > 0) {
          if (c.nextDue >= measureEnd_) break;  // due after the window: not sent
          if (c.nextDue > now) {
            Schedule(idx, c.nextDue);
            break;
          }
          stamp = c.nextDue;
          c.nextDue += static_cast<uint64_t>(intervalNs_);
        }
        c.stamps[(c.head + c.inflight) % depth] = stamp;
        c.inflight++;
        inflight_++;
        cfg_.writer.Append(c.out, c.seq++);
        st_.sent++;
      }
      Flush(idx);
      if (!held || c.fd < 0 || !c.out.empty()) return;
    }
  }

  void Flush(uint32_t idx) {
    Conn& c = conns_[idx];
    while (c.outOff < c.out.size()) {
      ssize_t w = send(c.fd, c.out.data() + c.outOff, c.out.size() - c.outOff, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) return SetOut(idx, true);
      if (w < 0) {
        Reset(idx, false, false, errno);
        return;
      }
      c.outOff += static_cast<size_t>(w);
      st_.bytesOut += static_cast<uint64_t>(w);
    }
    c.out.clear();
    c.outOff = 0;
    if (c.wantOut) SetOut(idx, false);
  }

  void SetOut(uint32_t idx, bool on) {
    Conn& c = conns_[idx];
    c.wantOut = on;
    epoll_event ev{};
    ev.events = on ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    ev.data.u32 = idx;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void Drop(uint32_t idx) {
    Conn& c = conns_[idx];
    close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    if (c.connecting) connecting_--;
    c.connecting = c.wantOut = false;
    c.out.clear();
    c.outOff = 0;
    c.carry.clear();
    c.ps = ParseState{};
    st_.lost += c.inflight;
    inflight_ -= c.inflight;
    c.inflight = 0;
    c.head = 0;
  }

  // The peer closed or reset the connection (or sent a reply we cannot frame): count it
  // (a quiet close with nothing in flight is no error) and connect again while the window
  // is open: at once if it had answered, else after the back-off (Failed). `err` is what
  // ended it (an errno, EPROTO, kErrnoEof), 0 for a quiet close. Always returns false.
  bool Reset(uint32_t idx, bool badReply, bool quiet, int err) {
    if (badReply)
      st_.badReplies++;
    else if (!quiet)
      st_.resets++;
    bool replied = conns_[idx].replied;
    Drop(idx);
    uint64_t now = MonotonicNs();
    if (replied) {
      if (err != 0) {
        st_.lastErrno = err;
        st_.lastErrnoNs = now;
      }
      if (Sending(now)) Connect(idx, now);
    } else {
      Failed(idx, now, err);
    }
    return false;
  }

  const LoadConfig& cfg_;
  const std::atomic<bool>& stop_;
  std::vector<char> rbuf_;
  std::vector<Conn> conns_;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> heap_;
  double intervalNs_ = 0;  // per connection, fixed-rate mode
  bool byCount_ = false;   // the window ends when quota_ requests were sent and answered
  uint64_t quota_ = 0;     // this thread's share of the request count
  uint64_t lastReplyNs_ = 0;
  bool windowOpen_ = true;       // until Spin closes a timed window (sets windowNs)
  uint64_t lastProgressNs_ = 0;  // the last reply, or the last moment nothing was outstanding
  uint64_t inflight_ = 0;        // requests in flight over this thread's connections
  size_t connecting_ = 0;        // connections whose connect(2) is under way
  size_t failing_ = 0;           // connections with kGiveUpFailures failed attempts in a row
  uint64_t measureStart_ = 0, measureEnd_ = 0;
  int ep_ = -1;
  bool noPwait2_ = false;
  LoadStats st_;
};

}  // namespace

LoadStats RunLoadThread(const LoadConfig& cfg, int index, const std::atomic<bool>& stop) {
  return Loop(cfg, index, stop).Run();
}

}  // namespace rawio
