// Passes every core event on to several observers, because the Coordinator
// takes exactly one (the daemon has two: logs and metrics). Thread-safe if
// each observer is; the list is fixed at construction.
#pragma once

#include <vector>

#include "core/observer.h"

namespace dogpiled::daemon {

class ObserverFanout final : public core::Observer {
 public:
  // The observers must outlive this object; null entries are skipped.
  explicit ObserverFanout(std::vector<core::Observer*> observers);

  void OnSessionEnded(core::SessionId id, const std::string& name,
                      bool expired) override;
  void OnCreatorEnded(const std::string& registry, const std::string& key,
                      int64_t held_ms, bool published) override;
  void OnCreationTimeout(const std::string& registry, const std::string& key,
                         core::Token token) override;
  void OnWaitEnded(int64_t waited_ms) override;
  void OnEviction(const std::string& registry, const std::string& key,
                  uint64_t bytes) override;

 private:
  // Constant after construction.
  const std::vector<core::Observer*> observers_;
};

}  // namespace dogpiled::daemon
