// Collapses the in-process herd: threads of one process that acquire the
// same key through the same session at once make one round trip. The first
// thread leads (asks the daemon, creates if elected); the others wait here
// and share its answer, so the daemon sees one caller per process.
//
// Thread-safe: Run may be called from any thread at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "dogpiled/dogpile.h"
#include "dogpiled/status.h"

namespace dogpiled::internal {

class Flight {
 public:
  struct Result {
    // kValue: the leader got an answer (shared with followers);
    // kError: the daemon or transport failed (shared, thrown by each);
    // kRetry: ask again (lock-only: the cache lacked the value).
    enum class Kind { kValue, kError, kRetry } kind = Kind::kValue;
    AcquireResult value;
    Status error;
  };

  explicit Flight(const std::string& /*key*/) {}
  Flight(const Flight&) = delete;
  Flight& operator=(const Flight&) = delete;

  // If no flight is running, runs `lead` in this thread and returns what it
  // returns (or rethrows what it throws). Otherwise waits for the running
  // flight and returns its result; `*led` tells which happened. A leader
  // that throws (its creator failed) shares nothing: its followers try
  // again, and the first of them leads the next flight.
  Result Run(const std::function<Result()>& lead, bool* led) {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      if (!running_) {
        running_ = true;
        lock.unlock();
        *led = true;
        Result result;
        try {
          result = lead();
        } catch (...) {
          Finish(false, {});
          throw;
        }
        Finish(true, result);
        return result;
      }
      const uint64_t seen = generation_;
      cv_.wait(lock, [&] { return generation_ != seen; });
      if (last_ok_) {
        *led = false;
        return last_;
      }
    }
  }

 private:
  void Finish(bool ok, const Result& result) {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = false;
    ++generation_;
    last_ok_ = ok;
    last_ = result;
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool running_ = false;     // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_; counts finished flights
  bool last_ok_ = false;     // guarded by mu_
  Result last_;              // guarded by mu_
};

}  // namespace dogpiled::internal
