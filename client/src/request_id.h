// request_id for Acquire and Lock: random, non-zero, one per logical call,
// kept across its retries so the daemon can answer a retry with the grant
// the lost answer carried (see AcquireRequest.request_id).
//
// Thread-safe: each thread draws from its own generator.
#pragma once

#include <cstdint>
#include <random>

namespace dogpiled::internal {

inline uint64_t NewRequestId() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  uint64_t id = 0;
  while (id == 0) {
    id = gen();
  }
  return id;
}

}  // namespace dogpiled::internal
