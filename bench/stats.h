// Time and latency bookkeeping shared by every scenario.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

namespace dogpiled::bench {

// Monotonic nanoseconds; comparable across threads of this process.
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Sleeps until NowNs() reaches `ns` (a window's edge, not an ordering).
inline void SleepUntilNs(int64_t ns) {
  std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
      std::chrono::nanoseconds(ns)));
}

inline constexpr int64_t kNsPerMs = 1'000'000;
inline constexpr int64_t kNsPerSec = 1'000'000'000;

// Percentiles of a sample, in microseconds, plus a CDF thin enough for a
// plot (about 200 points, denser in the tail where the interest is).
// Consumes the sample (sorts it).
nlohmann::json Summarize(std::vector<int64_t>& latencies_ns);

// Appends `from` to `to`; for merging per-client samples.
void Append(std::vector<int64_t>& to, const std::vector<int64_t>& from);

}  // namespace dogpiled::bench
