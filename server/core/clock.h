// Time as a parameter: the core reads it only through Clock, so tests drive
// it with FakeClock and never sleep.
#pragma once

#include <cstdint>

namespace dogpiled::core {

// Thread-safe: implementations may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds, for deadlines (TTL, waits, creation timeouts).
  virtual int64_t NowMs() const = 0;
  // Epoch seconds, for created_time and expiry (like Python's time.time()).
  virtual double WallSeconds() const = 0;
};

// The real clocks: steady_clock and system_clock.
class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  double WallSeconds() const override;
};

// A clock that moves only when told to. Not thread-safe; tests drive it
// from one thread.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(double wall_start = 1'700'000'000.0)
      : wall_start_(wall_start) {}
  int64_t NowMs() const override { return now_ms_; }
  double WallSeconds() const override {
    return wall_start_ + static_cast<double>(now_ms_) / 1000.0;
  }
  void AdvanceMs(int64_t ms) { now_ms_ += ms; }

 private:
  double wall_start_;
  int64_t now_ms_ = 0;
};

}  // namespace dogpiled::core
