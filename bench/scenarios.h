// The benchmark scenarios of issue 7. Each drives one system, once, and
// returns its figures as JSON; bench/run.py starts the servers, repeats and
// compares. Every request loop here is bounded in count and time.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace dogpiled::bench {

struct Options {
  std::string target;  // the gRPC server under test (dogpiled or noop)
  std::string etcd;    // etcd's client address, host:port
  int redis_port = 0;  // redis-server on 127.0.0.1
  std::string system;  // which system the scenario drives
  int connections = 4;
  int concurrency = 32;
  double seconds = 5;
  double warmup_seconds = 0.5;
  int clients = 8;  // handoff contenders, stampede clients, parked waiters
  std::vector<int64_t> keys = {1};  // stored keys (one figure per entry)
  int poll_ms = 100;                // redis lock waiters' poll interval
  int creator_ms = 100;             // how long a stampede creator works
  int arrival_ms = 20;              // stampede clients arrive over this
  int server_pid = 0;               // process sampled for RSS and threads
  int value_bytes = 64;
  uint64_t seed = 1;
};

// 1. A no-op unary RPC against bench_noop_server (system "noop").
nlohmann::json RunCeiling(const Options& options);
// 2 and 7. Acquire on fresh values, uniformly over each count in `keys`
// (system "dogpiled"), or GET on the same keys (system "redis").
nlohmann::json RunFresh(const Options& options);
// 3. Acquire(CREATE) + Publish on distinct keys (system "dogpiled").
nlohmann::json RunElection(const Options& options);
// 4. `clients` take turns on one lock: "dogpiled-write", "dogpiled-create",
// "etcd" or "redis" (polling every poll_ms).
nlohmann::json RunHandoff(const Options& options);
// 5. `clients` hit one expired key whose creator takes creator_ms:
// "dogpiled", "redis-lock" (waiters poll the lock every poll_ms, as
// dogpile.cache does), "redis-lock-poll-value" (waiters poll the value) or
// "no-lock".
nlohmann::json RunStampede(const Options& options);
// 6. `clients` calls parked on one key, then answered by one Publish
// ("dogpiled"), or parked on bench_noop_server and released ("noop").
nlohmann::json RunParked(const Options& options);

// Small, fast, per-thread random numbers; good enough to pick keys.
class XorShift {
 public:
  explicit XorShift(uint64_t seed) : state_(seed | 1) {}
  uint64_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }

 private:
  uint64_t state_;
};

}  // namespace dogpiled::bench
