// The load generator's engine: one thread, one epoll set, N non-blocking TCP connections.
// Closed loop keeps `pipeline` requests in flight per connection (max throughput, as wrk
// does); fixed rate gives each connection a schedule of intended send times and measures
// latency from the intended time, not the actual one, so a stalled server shows up as
// latency rather than as fewer samples (the coordinated-omission fix of wrk2).
//
// Phases: warm-up (replies not recorded), the measured window (a duration, or until a
// count of requests has been sent and answered), then a drain: no new
// requests, in-flight replies still counted, so that sent == received at the end when the
// server answered everything — the counts a test can compare with what the server saw. At a
// fixed rate the requests due in the window are the ones measured: those a stalled server
// held back still go in the drain, their latency from their due time.
//
// A connection that fails (a refused connect, or one closed, reset or answered with bytes
// the protocol cannot frame before any reply on it) is retried after a back-off that
// doubles from 10 ms to 500 ms while it keeps failing, as wrk keeps going through connect
// errors. A run by count has no duration to end it, so it also gives up: when every
// connection of a thread has failed kGiveUpFailures times in a row (ended: unreachable), or
// when no reply has come for `stallNs` while requests or connects waited (ended: stalled).
// The same bound replaces the drain's: a run by count waits for its last replies as long as
// they keep coming.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "loadgen_hist.h"
#include "loadgen_proto.h"

namespace rawio {

struct LoadConfig {
  sockaddr_storage addr{};
  socklen_t addrLen = 0;
  RequestWriter writer;
  size_t echoSize = 0;
  int connections = 1;
  int threads = 1;
  int pipeline = 1;
  double rate = 0;        // requests per second over all connections; 0 = closed loop
  uint64_t requests = 0;  // stop sending after this many (over all threads); 0 = by duration
  uint64_t warmupNs = 0, durationNs = 0, drainNs = 0;
  uint64_t stallNs = 0;  // by count: no reply for this long while waiting ends the run
  std::vector<int> cpus;
  uint64_t t0 = 0;  // the common start, so every thread's window is the same
};

// Why a run ended, worst last (a merge keeps the worst of the threads').
enum class End : int { kDone = 0, kStopped = 1, kStalled = 2, kUnreachable = 3 };

// Failed attempts in a row on every connection after which a run by count gives up.
constexpr uint32_t kGiveUpFailures = 8;

// LoadStats::lastErrno for a connection the server closed with requests unanswered.
constexpr int kErrnoEof = -1;

struct LoadStats {
  uint64_t requests = 0;  // replies inside the measured window
  uint64_t sent = 0, received = 0, bytesOut = 0, bytesIn = 0;
  uint64_t bytesInWindow = 0;  // bytes read inside the measured window (bytesIn: the whole run)
  uint64_t connects = 0, connectErrors = 0, resets = 0, badReplies = 0, errorReplies = 0;
  uint64_t lost = 0;      // in flight on a reset connection or when the drain ran out
  uint64_t windowNs = 0;  // the measured window (shorter when stopped early)
  double cpuSeconds = 0;  // user + system time of the load generator's threads
  int affinityErrno = 0;
  End ended = End::kDone;
  uint64_t connectionsAnswered = 0;  // connections that got at least one reply
  // What ended the last failed connection: an errno (connect, read, send), EPROTO for a
  // reply the protocol cannot frame, kErrnoEof for a close with requests unanswered; 0: none.
  int lastErrno = 0;
  uint64_t lastErrnoNs = 0;  // when (a merge keeps the latest)
  LogLinearHistogram latency;

  void Merge(const LoadStats& o);
};

// Runs one thread's share of the connections until the window and the drain are over.
LoadStats RunLoadThread(const LoadConfig& cfg, int index, const std::atomic<bool>& stop);

uint64_t MonotonicNs();

}  // namespace rawio
