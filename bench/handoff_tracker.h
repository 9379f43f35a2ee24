// Bookkeeping for scenario 4: who holds the one contended lock, how fast it
// passes between clients, and whether two ever held it at once.
// Thread-safe; the lock it watches serializes callers anyway, so the mutex
// here is uncontended.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "stats.h"

namespace dogpiled::bench {

class HandoffTracker {
 public:
  HandoffTracker(int64_t window_begin_ns, int64_t window_end_ns)
      : window_begin_ns_(window_begin_ns), window_end_ns_(window_end_ns) {}

  // `client` was just granted the lock.
  void Granted(int client) {
    const int64_t now = NowNs();
    std::lock_guard<std::mutex> lock(mutex_);
    if (holder_ >= 0) {
      ++violations_;  // two holders at once: the lock is broken
    }
    holder_ = client;
    if (now < window_begin_ns_ || now > window_end_ns_) {
      return;
    }
    ++grants_;
    if (last_holder_ >= 0 && last_holder_ != client) {
      ++handoffs_;
      latencies_ns_.push_back(now - last_release_ns_);
    }
  }

  // `client` is about to send its release.
  void Releasing(int client) {
    std::lock_guard<std::mutex> lock(mutex_);
    holder_ = -1;
    last_holder_ = client;
    last_release_ns_ = NowNs();
  }

  // A request (lock, unlock or poll) is sent; counted inside the window.
  void Request() {
    const int64_t now = NowNs();
    std::lock_guard<std::mutex> lock(mutex_);
    if (now >= window_begin_ns_ && now <= window_end_ns_) {
      ++requests_;
    }
  }

  void Fail(const std::string& error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (errors_++ == 0) {
      first_error_ = error;
    }
  }

  bool failed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_ > 0;
  }

  // Call once every client has stopped.
  nlohmann::json Figures() {
    std::lock_guard<std::mutex> lock(mutex_);
    const double seconds =
        static_cast<double>(window_end_ns_ - window_begin_ns_) / kNsPerSec;
    nlohmann::json out;
    out["seconds"] = seconds;
    out["grants"] = grants_;
    out["handoffs"] = handoffs_;
    out["grants_per_sec"] = grants_ / seconds;
    out["handoffs_per_sec"] = handoffs_ / seconds;
    out["ops_per_sec"] = handoffs_ / seconds;
    out["requests"] = requests_;
    out["violations"] = violations_;
    out["errors"] = errors_;
    if (!first_error_.empty()) {
      out["first_error"] = first_error_;
    }
    out["latency"] = Summarize(latencies_ns_);
    return out;
  }

 private:
  const int64_t window_begin_ns_;
  const int64_t window_end_ns_;
  std::mutex mutex_;
  int holder_ = -1;
  int last_holder_ = -1;
  int64_t last_release_ns_ = 0;
  int64_t grants_ = 0;
  int64_t handoffs_ = 0;
  int64_t requests_ = 0;  // every request sent, polls included
  int64_t violations_ = 0;
  int64_t errors_ = 0;
  std::string first_error_;
  std::vector<int64_t> latencies_ns_;  // release sent -> next holder granted
};

}  // namespace dogpiled::bench
