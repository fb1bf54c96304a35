// The benchmark's load generator, N-API side: `loadgen(options, done)` copies the options
// into a plain LoadConfig on the main thread, starts a native thread that runs the engine
// (loadgen_engine.cc) on its own threads and epoll sets, and returns a `stop()` function.
// When the run is over the result comes back through a napi_threadsafe_function, so the
// JS callback runs on the main thread and Node's loop is never blocked (sharp's rule: no
// N-API call off the main thread, inputs copied into a plain struct first).
#include <arpa/inet.h>
#include <net/if.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>

#include "errors.h"
#include "families.h"
#include "loadgen_engine.h"

namespace rawio {
namespace {

Napi::Value Prop(const Napi::Object& o, const char* name) { return o.Get(name); }

int64_t PropInt(const Napi::Object& o, const char* name, int64_t lo, int64_t hi) {
  Napi::Value v = Prop(o, name);
  if (!v.IsNumber()) ThrowType(o.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) ||
      d != static_cast<double>(static_cast<int64_t>(d)))
    ThrowRange(o.Env(), std::string(name) + " is out of range");
  return static_cast<int64_t>(d);
}

std::string PropStr(const Napi::Object& o, const char* name) {
  return CString(o.Env(), Prop(o, name), name);
}

// A numeric IPv4 or IPv6 address: names are resolved in JS (src/loadgen/), so that the
// native side never blocks on DNS and the caller decides which hosts it may aim at. An IPv6
// address may carry a zone (`fe80::1%eth0`, or the interface's index), as net.isIP and
// resolveTarget take it: a link-local address means nothing without one.
void NumericAddress(Napi::Env env, const std::string& host, int port, LoadConfig& c) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(&c.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&c.addr);
  size_t pct = host.find('%');
  std::string addr = host.substr(0, pct);
  if (pct == std::string::npos && inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    c.addrLen = sizeof(*v4);
  } else if (inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    c.addrLen = sizeof(*v6);
    if (pct != std::string::npos) {
      std::string zone = host.substr(pct + 1);
      bool digits = !zone.empty() && zone.size() <= 9 &&
                    zone.find_first_not_of("0123456789") == std::string::npos;
      unsigned index =
          digits ? static_cast<unsigned>(std::stoul(zone)) : if_nametoindex(zone.c_str());
      if (index == 0) ThrowRange(env, "host's zone '" + zone + "' names no network interface");
      v6->sin6_scope_id = index;
    }
  } else {
    ThrowRange(env, "host must be a numeric IPv4 or IPv6 address");
  }
}

void ReadResp(Napi::Env env, const Napi::Object& o, RequestWriter& w) {
  std::string cmd = PropStr(o, "command");
  if (cmd == "ping")
    w.cmd = RespCmd::kPing;
  else if (cmd == "set")
    w.cmd = RespCmd::kSet;
  else if (cmd == "get")
    w.cmd = RespCmd::kGet;
  else if (cmd == "setget")
    w.cmd = RespCmd::kSetGet;
  else if (cmd == "mix")
    w.cmd = RespCmd::kMix;
  else
    ThrowRange(env, "command must be 'ping', 'set', 'get', 'setget' or 'mix'");
  Napi::Value mix = Prop(o, "mix");
  if (!mix.IsArray() || mix.As<Napi::Array>().Length() != 3)
    ThrowType(env, "mix must be an array of 3 weights (ping, set, get)");
  uint64_t total = 0;
  for (uint32_t i = 0; i < 3; i++) {
    Napi::Value v = mix.As<Napi::Array>()[i];
    if (!v.IsNumber()) ThrowType(env, "mix weights must be numbers");
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 1e6) || d != static_cast<double>(static_cast<uint32_t>(d)))
      ThrowRange(env, "mix weights must be whole numbers in [0, 1e6]");
    w.mix[i] = static_cast<uint32_t>(d);
    total += w.mix[i];
  }
  if (w.cmd == RespCmd::kMix && total == 0) ThrowRange(env, "mix weights must not all be 0");
}

// Raw: the request is the caller's bytes, a reply is `replySize` bytes (0: as many as sent).
void ReadRaw(Napi::Env env, const Napi::Object& o, LoadConfig& c) {
  Napi::Value p = Prop(o, "payload");
  if (!p.IsBuffer()) ThrowType(env, "payload must be a Buffer");
  auto b = p.As<Napi::Buffer<char>>();
  if (b.Length() == 0 || b.Length() > (16u << 20))
    ThrowRange(env, "payload must hold 1 byte to 16 MiB");
  c.writer.echoPayload.assign(b.Data(), b.Length());
  size_t reply = static_cast<size_t>(PropInt(o, "replySize", 0, 16 << 20));
  c.echoSize = reply == 0 ? b.Length() : reply;
}

LoadConfig ReadConfig(Napi::Env env, const Napi::Object& o) {
  LoadConfig c;
  NumericAddress(env, PropStr(o, "host"), static_cast<int>(PropInt(o, "port", 1, 65535)), c);
  std::string proto = PropStr(o, "protocol");
  RequestWriter& w = c.writer;
  if (proto == "http")
    w.proto = Proto::kHttp;
  else if (proto == "echo")
    w.proto = Proto::kEcho;
  else if (proto == "resp")
    w.proto = Proto::kResp;
  else if (proto == "raw")
    w.proto = Proto::kEcho;  // raw is echo with the caller's bytes and reply size
  else
    ThrowRange(env, "protocol must be 'http', 'echo', 'resp' or 'raw'");
  ReadResp(env, o, w);
  std::string path = PropStr(o, "path");
  if (path.empty() || path[0] != '/' || path.find_first_of("\r\n ") != std::string::npos)
    ThrowRange(env, "path must start with / and hold no spaces or line breaks");
  // Host as a URI names the target (RFC 9110 §7.2): an IPv6 address in brackets, and the
  // port unless it is HTTP's 80 ("Host: ::1" is no host, and a server may refuse it).
  std::string host = PropStr(o, "host");
  host = host.substr(0, host.find('%'));  // a zone is this machine's, not the server's name
  int port = static_cast<int>(PropInt(o, "port", 1, 65535));
  if (c.addr.ss_family == AF_INET6) host = "[" + host + "]";
  if (port != 80) host += ":" + std::to_string(port);
  w.httpRequest = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
  c.echoSize = static_cast<size_t>(PropInt(o, "payloadSize", 1, 16 << 20));
  if (proto == "raw")
    ReadRaw(env, o, c);
  else
    w.echoPayload.assign(c.echoSize, 'x');
  w.value.assign(static_cast<size_t>(PropInt(o, "valueSize", 0, 16 << 20)), 'v');
  w.keyspace = static_cast<uint32_t>(PropInt(o, "keyspace", 1, 1 << 30));
  c.connections = static_cast<int>(PropInt(o, "connections", 1, 100000));
  c.threads = static_cast<int>(PropInt(o, "threads", 1, 64));
  if (c.threads > c.connections) c.threads = c.connections;
  c.pipeline = static_cast<int>(PropInt(o, "pipeline", 1, 1024));
  Napi::Value rate = Prop(o, "rate");
  if (!rate.IsNumber()) ThrowType(env, "rate must be a number");
  c.rate = rate.As<Napi::Number>().DoubleValue();
  // 0 is closed loop; below 0.01/s the per-connection interval would overflow the clock.
  if (!(c.rate == 0 || (c.rate >= 0.01 && c.rate <= 1e9)))
    ThrowRange(env, "rate must be 0 (closed loop) or in [0.01, 1e9]");
  c.requests = static_cast<uint64_t>(PropInt(o, "requests", 0, INT64_C(1) << 50));
  c.warmupNs = static_cast<uint64_t>(PropInt(o, "warmupMs", 0, 3600000)) * 1000000u;
  c.durationNs = static_cast<uint64_t>(PropInt(o, "durationMs", 1, 3600000)) * 1000000u;
  c.drainNs = static_cast<uint64_t>(PropInt(o, "drainMs", 0, 60000)) * 1000000u;
  c.stallNs = static_cast<uint64_t>(PropInt(o, "stallMs", 1, 3600000)) * 1000000u;
  Napi::Value cpus = Prop(o, "cpus");
  if (!cpus.IsArray()) ThrowType(env, "cpus must be an array of numbers");
  Napi::Array a = cpus.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a[i];
    // A whole number in range: Int32Value would read NaN as 0 and 1.5 as 1.
    int cpu = static_cast<int>(IntValue(env, v, "cpu", 0, CPU_SETSIZE - 1));
    c.cpus.push_back(cpu);
  }
  return c;
}

LoadStats RunAll(LoadConfig cfg, const std::atomic<bool>& stop) {
  cfg.t0 = MonotonicNs();
  std::vector<LoadStats> parts(static_cast<size_t>(cfg.threads));
  std::vector<std::thread> threads;
  for (int i = 1; i < cfg.threads; i++)
    threads.emplace_back([&cfg, &parts, &stop, i] { parts[i] = RunLoadThread(cfg, i, stop); });
  parts[0] = RunLoadThread(cfg, 0, stop);
  for (std::thread& t : threads) t.join();
  for (size_t i = 1; i < parts.size(); i++) parts[0].Merge(parts[i]);
  return std::move(parts[0]);
}

Napi::Object ToJs(Napi::Env env, const LoadStats& s) {
  Napi::Object r = Napi::Object::New(env);
  auto n = [&](const char* k, double v) { r.Set(k, Num(env, v)); };
  double secs = static_cast<double>(s.windowNs) / 1e9;
  n("requests", static_cast<double>(s.requests));
  n("seconds", secs);
  n("rps", secs > 0 ? static_cast<double>(s.requests) / secs : 0);
  n("sent", static_cast<double>(s.sent));
  n("received", static_cast<double>(s.received));
  n("bytesOut", static_cast<double>(s.bytesOut));
  n("bytesIn", static_cast<double>(s.bytesIn));
  n("bytesInWindow", static_cast<double>(s.bytesInWindow));
  n("connects", static_cast<double>(s.connects));
  n("affinityErrno", -s.affinityErrno);
  static const char* const kEnded[] = {"done", "stopped", "stalled", "unreachable"};
  r.Set("ended", Napi::String::New(env, kEnded[static_cast<int>(s.ended)]));
  n("connectionsAnswered", static_cast<double>(s.connectionsAnswered));
  // -errno as affinityErrno; kErrnoEof (-1) stays 1 here, which no errno is taken for below
  n("lastErrno", s.lastErrno == kErrnoEof ? 1 : -s.lastErrno);
  n("cpuSeconds", s.cpuSeconds);
  Napi::Object e = Napi::Object::New(env);
  e.Set("connect", Num(env, static_cast<double>(s.connectErrors)));
  e.Set("reset", Num(env, static_cast<double>(s.resets)));
  e.Set("badReply", Num(env, static_cast<double>(s.badReplies)));
  e.Set("errorReply", Num(env, static_cast<double>(s.errorReplies)));
  e.Set("lost", Num(env, static_cast<double>(s.lost)));
  r.Set("errors", e);
  Napi::Object l = Napi::Object::New(env);
  const LogLinearHistogram& h = s.latency;
  auto us = [&](const char* k, double ns) { l.Set(k, Num(env, ns / 1000)); };
  us("min", static_cast<double>(h.Min()));
  us("mean", h.Mean());
  us("p50", h.Quantile(0.5));
  us("p90", h.Quantile(0.9));
  us("p99", h.Quantile(0.99));
  us("p999", h.Quantile(0.999));
  us("p9999", h.Quantile(0.9999));
  us("p99999", h.Quantile(0.99999));
  us("max", static_cast<double>(h.Max()));
  l.Set("count", Num(env, static_cast<double>(h.Count())));
  r.Set("latencyUs", l);
  // The non-empty buckets as (value ns, count) pairs, ascending: enough for any percentile
  // table in JS without a second copy of the histogram's arithmetic.
  std::vector<double> pairs;
  h.ForEach([&](double value, uint64_t count) {
    pairs.push_back(value);
    pairs.push_back(static_cast<double>(count));
  });
  Napi::Float64Array hist = Napi::Float64Array::New(env, pairs.size());
  std::copy(pairs.begin(), pairs.end(), hist.Data());
  r.Set("histogram", hist);
  return r;
}

void Deliver(Napi::Env env, Napi::Function cb, LoadStats* s) {
  std::unique_ptr<LoadStats> owned(s);
  if (env != nullptr && cb != nullptr) cb.Call({ToJs(env, *s)});
}

// loadgen(options, done(result)): starts a run; returns stop(), which ends the window early.
Napi::Value JsLoadgen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "options must be an object");
  if (!info[1].IsFunction()) ThrowType(env, "done must be a function");
  LoadConfig cfg = ReadConfig(env, info[0].As<Napi::Object>());
  auto stop = std::make_shared<std::atomic<bool>>(false);
  auto tsfn =
      Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "rawio.loadgen", 0, 1);
  std::thread([cfg = std::move(cfg), stop, tsfn]() mutable {
    auto* s = new LoadStats(RunAll(std::move(cfg), *stop));
    if (tsfn.BlockingCall(s, Deliver) != napi_ok) delete s;
    tsfn.Release();
  }).detach();
  return Napi::Function::New(
      env,
      [stop](const Napi::CallbackInfo& i) -> Napi::Value {
        stop->store(true);
        return i.Env().Undefined();
      },
      "stop");
}

}  // namespace

void InitLoadgen(Napi::Env env, Napi::Object exports) {
  exports.Set("loadgen", Napi::Function::New(env, JsLoadgen));
}

}  // namespace rawio
