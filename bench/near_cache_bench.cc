// Near-cache figures (issue 12), through the C++ SDK against a running
// dogpiled, all in one run:
//   1. fresh reads of one key from one thread, with and without the
//      near-cache (the latter is the RPC ceiling the SDK reaches);
//   2. Publish and Invalidate latency with `holders` near-caches (sessions)
//      holding the key, against none holding it; each timed call returns
//      only after every holder acked.
// With --server-pid, the daemon's CPU per read and per timed call is
// reported beside each figure (from /proc, so sampled at the kernel's tick:
// meaningful over many calls, not one).
// Prints one JSON object. Usage:
//   near_cache_bench --target 127.0.0.1:7420 [--seconds 2] [--holders 100]
//                    [--rounds 200] [--server-pid PID]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dogpiled/client.h"
#include "dogpiled/dogpile.h"
#include "dogpiled/session.h"
#include "proc_stats.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

dogpiled::Session Open(const dogpiled::Client& client) {
  auto s = dogpiled::Session::Open(client);
  if (!s.ok()) {
    throw std::runtime_error("Session::Open: " + s.status().ToString());
  }
  return std::move(s).value();
}

dogpiled::DogpileOptions Expire(milliseconds expire) {
  dogpiled::DogpileOptions options;
  options.expiretime = expire;
  return options;
}

struct Rate {
  double per_s = 0;
  double server_cpu_us = 0;  // per read
};

Rate ReadsPerSecond(dogpiled::Session& session, double seconds,
                    int server_pid) {
  dogpiled::Dogpile reader(session, "bench", "hot", Expire(milliseconds(3'600'000)));
  const auto creator = [] { return std::string(64, 'v'); };
  reader.acquire(creator);
  uint64_t reads = 0;
  const int64_t cpu0 = dogpiled::bench::CpuTimeNs(server_pid);
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    for (int i = 0; i < 64; ++i) {
      reader.acquire(creator);
    }
    reads += 64;
  }
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  const int64_t cpu = dogpiled::bench::CpuTimeNs(server_pid) - cpu0;
  return {static_cast<double>(reads) / elapsed,
          server_pid == 0 ? 0.0 : static_cast<double>(cpu) / 1e3 / reads};
}

// Latencies of one kind of timed call, and the daemon's CPU across them.
struct Timed {
  std::vector<double> us;
  int64_t server_cpu_ns = 0;
};

nlohmann::json Percentiles(Timed timed, int server_pid) {
  std::vector<double>& us = timed.us;
  std::sort(us.begin(), us.end());
  auto at = [&](double p) {
    return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  };
  nlohmann::json out = {{"n", us.size()}, {"p50_us", at(0.5)},
                        {"p99_us", at(0.99)}, {"max_us", us.back()}};
  if (server_pid != 0) {
    out["server_cpu_us"] = static_cast<double>(timed.server_cpu_ns) / 1e3 /
                           static_cast<double>(us.size());
  }
  return out;
}

template <typename Fn>
void TimeInto(Timed& timed, int server_pid, Fn fn) {
  const int64_t cpu0 = dogpiled::bench::CpuTimeNs(server_pid);
  const auto start = Clock::now();
  fn();
  timed.us.push_back(
      std::chrono::duration<double, std::micro>(Clock::now() - start)
          .count());
  timed.server_cpu_ns += dogpiled::bench::CpuTimeNs(server_pid) - cpu0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("near-cache benchmark");
  std::string target = "127.0.0.1:7420";
  double seconds = 2;
  int holders = 100;
  int rounds = 200;
  app.add_option("--target", target);
  app.add_option("--seconds", seconds);
  app.add_option("--holders", holders);
  app.add_option("--rounds", rounds);
  int server_pid = 0;
  app.add_option("--server-pid", server_pid,
                 "the daemon's pid, to report its CPU per call");
  CLI11_PARSE(app, argc, argv);

  dogpiled::ClientOptions plain_options;
  plain_options.target = target;
  dogpiled::ClientOptions near_options = plain_options;
  near_options.near_cache_bytes = 64 << 20;
  dogpiled::Client plain(plain_options);
  dogpiled::Client near(near_options);

  nlohmann::json out;
  {
    dogpiled::Session rpc_session = Open(plain);
    dogpiled::Session near_session = Open(near);
    while (!near_session.near_cache_stats().serving) {
      std::this_thread::sleep_for(milliseconds(1));  // the watch comes up
    }
    const Rate rpc = ReadsPerSecond(rpc_session, seconds, server_pid);
    const Rate cached = ReadsPerSecond(near_session, seconds, server_pid);
    out["fresh_reads_per_s"] = {{"rpc", rpc.per_s},
                                {"near_cache", cached.per_s},
                                {"ratio", cached.per_s / rpc.per_s}};
    if (server_pid != 0) {
      out["server_cpu_us_per_read"] = {{"rpc", rpc.server_cpu_us},
                                       {"near_cache", cached.server_cpu_us}};
    }
  }

  std::vector<dogpiled::Session> sessions;
  std::vector<std::unique_ptr<dogpiled::Dogpile>> readers;
  for (int i = 0; i < holders; ++i) {
    sessions.push_back(Open(near));
  }
  for (auto& s : sessions) {
    while (!s.near_cache_stats().serving) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    readers.push_back(std::make_unique<dogpiled::Dogpile>(
        s, "bench", "k", Expire(milliseconds(3'600'000))));
  }
  dogpiled::Session writer_session = Open(plain);
  dogpiled::Dogpile writer(writer_session, "bench", "k",
                           Expire(milliseconds(-1)));
  const auto hold_all = [&] {
    for (auto& r : readers) {
      r->acquire([] { return std::string("reader"); });
    }
  };
  uint64_t version = 0;
  const auto publish = [&] {
    writer.acquire([&] { return "v" + std::to_string(++version); });
  };
  const auto invalidate = [&] { plain.Invalidate("bench", "k", false); };
  Timed publish_none, publish_held, inv_none, inv_held;
  for (int round = 0; round < rounds; ++round) {
    // The last Invalidate dropped every copy.
    TimeInto(publish_none, server_pid, publish);
    hold_all();
    TimeInto(publish_held, server_pid, publish);
    hold_all();
    TimeInto(inv_held, server_pid, invalidate);
    TimeInto(inv_none, server_pid, invalidate);
  }
  out["holders"] = holders;
  // Publish figures include the Acquire that elects the creator.
  out["acquire_and_publish"] = {
      {"no_holder", Percentiles(std::move(publish_none), server_pid)},
      {"holders", Percentiles(std::move(publish_held), server_pid)}};
  out["invalidate"] = {
      {"no_holder", Percentiles(std::move(inv_none), server_pid)},
      {"holders", Percentiles(std::move(inv_held), server_pid)}};
  std::cout << out.dump(2) << std::endl;
  return 0;
}
