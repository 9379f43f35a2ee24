// Near-cache figures (issue 12), through the C++ SDK against a running
// dogpiled, all in one run:
//   1. fresh reads of one key from one thread, with and without the
//      near-cache (the latter is the RPC ceiling the SDK reaches);
//   2. Publish and Invalidate latency with `holders` near-caches (sessions)
//      holding the key, against none holding it; each timed call returns
//      only after every holder acked.
// Prints one JSON object. Usage:
//   near_cache_bench --target 127.0.0.1:7420 [--seconds 2] [--holders 100]
//                    [--rounds 200]
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

double ReadsPerSecond(dogpiled::Session& session, double seconds) {
  dogpiled::Dogpile reader(session, "bench", "hot", Expire(milliseconds(3'600'000)));
  const auto creator = [] { return std::string(64, 'v'); };
  reader.acquire(creator);
  uint64_t reads = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    for (int i = 0; i < 64; ++i) {
      reader.acquire(creator);
    }
    reads += 64;
  }
  return static_cast<double>(reads) /
         std::chrono::duration<double>(Clock::now() - start).count();
}

nlohmann::json Percentiles(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double p) {
    return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  };
  return {{"n", us.size()}, {"p50_us", at(0.5)}, {"p99_us", at(0.99)},
          {"max_us", us.back()}};
}

template <typename Fn>
double TimeUs(Fn fn) {
  const auto start = Clock::now();
  fn();
  return std::chrono::duration<double, std::micro>(Clock::now() - start)
      .count();
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
    const double rpc = ReadsPerSecond(rpc_session, seconds);
    const double cached = ReadsPerSecond(near_session, seconds);
    out["fresh_reads_per_s"] = {{"rpc", rpc}, {"near_cache", cached},
                                {"ratio", cached / rpc}};
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
  std::vector<double> publish_none, publish_held, inv_none, inv_held;
  for (int round = 0; round < rounds; ++round) {
    publish_none.push_back(TimeUs(publish));  // the last Invalidate dropped all
    hold_all();
    publish_held.push_back(TimeUs(publish));
    hold_all();
    inv_held.push_back(TimeUs([&] { plain.Invalidate("bench", "k", false); }));
    inv_none.push_back(TimeUs([&] { plain.Invalidate("bench", "k", false); }));
  }
  out["holders"] = holders;
  // Publish figures include the Acquire that elects the creator.
  out["acquire_and_publish"] = {{"no_holder", Percentiles(publish_none)},
                                {"holders", Percentiles(publish_held)}};
  out["invalidate"] = {{"no_holder", Percentiles(inv_none)},
                       {"holders", Percentiles(inv_held)}};
  std::cout << out.dump(2) << std::endl;
  return 0;
}
