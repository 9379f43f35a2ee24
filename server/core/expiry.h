// Expiry arithmetic shared by the dogpile rules (dogpile.cc, publish.cc).
#pragma once

#include <cmath>
#include <cstdint>

namespace dogpiled::core {

// expire_ms > 0: fresh for that long after created_time; 0: never expires;
// < 0: always expired.
inline bool IsExpired(double created_time, int64_t expire_ms, double now) {
  if (expire_ms < 0) {
    return true;
  }
  return expire_ms > 0 &&
         now >= created_time + static_cast<double>(expire_ms) / 1000.0;
}

// Milliseconds from `from` (epoch seconds) to `now`, never negative.
inline int64_t MillisSince(double from, double now) {
  return now > from ? std::llround((now - from) * 1000.0) : 0;
}

}  // namespace dogpiled::core
