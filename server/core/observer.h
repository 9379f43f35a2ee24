// Hooks through which the daemon sees what the core does (for logs and
// metrics) without the core knowing about either.
#pragma once

#include <cstdint>
#include <string>

#include "core/types.h"

namespace dogpiled::core {

// Called with the Coordinator's lock held: implementations must be quick,
// thread-safe, and must not call back into the Coordinator. Every method
// has an empty default.
class Observer {
 public:
  virtual ~Observer() = default;
  // A session ended: by Close, or by its TTL passing (`expired`).
  virtual void OnSessionEnded(SessionId /*id*/, const std::string& /*name*/,
                              bool /*expired*/) {}
  // A creator role ended after `held_ms`: published, or lost (abandoned,
  // timed out, invalidated, session ended).
  virtual void OnCreatorEnded(const std::string& /*registry*/,
                              const std::string& /*key*/, int64_t /*held_ms*/,
                              bool /*published*/) {}
  virtual void OnCreationTimeout(const std::string& /*registry*/,
                                 const std::string& /*key*/, Token /*token*/) {
  }
  // A parked Acquire or Lock left its line after `waited_ms`.
  virtual void OnWaitEnded(int64_t /*waited_ms*/) {}
  virtual void OnEviction(const std::string& /*registry*/,
                          const std::string& /*key*/, uint64_t /*bytes*/) {}
};

}  // namespace dogpiled::core
