// Logs what the core does, through spdlog. Thread-safe (spdlog is); cheap
// when the level is off, since it runs under the core's lock.
#pragma once

#include "core/observer.h"

namespace dogpiled::daemon {

class LogObserver final : public core::Observer {
 public:
  void OnSessionEnded(core::SessionId id, const std::string& name,
                      bool expired) override;
  void OnCreatorEnded(const std::string& registry, const std::string& key,
                      int64_t held_ms, bool published) override;
  void OnCreationTimeout(const std::string& registry, const std::string& key,
                         core::Token token) override;
  void OnEviction(const std::string& registry, const std::string& key,
                  uint64_t bytes) override;
};

}  // namespace dogpiled::daemon
