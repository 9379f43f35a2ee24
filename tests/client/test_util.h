// Small helpers shared by the client tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "dogpiled/client.h"

namespace dogpiled::testing {

// Lease lengths and the waits that go with them, times
// DOGPILED_TEST_TIME_SCALE (default 1). These tests check what a lease does
// in real time, and a renewal must make its round trip within the lease's
// local deadline: scripts/sanitize.sh sets 3 for TSan, which slows every
// call several times over on top of whatever else loads the machine. The
// assertions stay the same; only the clock they run against is slower.
inline std::chrono::milliseconds Scaled(std::chrono::milliseconds t) {
  const char* env = std::getenv("DOGPILED_TEST_TIME_SCALE");
  const double scale = env != nullptr ? std::atof(env) : 1.0;
  return scale > 1.0 ? std::chrono::milliseconds(static_cast<int64_t>(
                           static_cast<double>(t.count()) * scale))
                     : t;
}

// A one-shot event between test threads (like absl::Notification).
class Notification {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    notified_ = true;
    cv_.notify_all();
  }
  bool WaitFor(std::chrono::milliseconds timeout =
                   std::chrono::milliseconds(10'000)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return notified_; });
  }
  bool HasBeenNotified() {
    std::lock_guard<std::mutex> lock(mu_);
    return notified_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// Polls `condition` until it holds or `timeout` passes. For states only the
// daemon can tell (a call parked on it), which no event announces; every
// other wait in these tests is on an event.
template <typename Condition>
bool Eventually(Condition condition,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// The daemon's counters; fails the calling test on error.
inline Stats GetStatsOrDie(const Client& client) {
  StatusOr<Stats> stats = client.GetStats();
  if (!stats.ok()) {
    throw std::runtime_error("Stats: " + stats.status().ToString());
  }
  return *stats;
}

// Total Acquire answers the daemon has counted.
inline uint64_t TotalAcquires(const Stats& s) {
  return s.acquires_fresh + s.acquires_stale + s.acquires_create +
         s.acquires_not_ready;
}

// Parked calls on the daemon right now (Acquire and Lock).
inline bool WaitersAre(const Client& client, uint64_t n) {
  return Eventually([&] { return GetStatsOrDie(client).waiters == n; });
}

}  // namespace dogpiled::testing
