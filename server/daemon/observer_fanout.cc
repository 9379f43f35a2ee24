#include "daemon/observer_fanout.h"

#include <algorithm>

namespace dogpiled::daemon {
namespace {

std::vector<core::Observer*> WithoutNulls(std::vector<core::Observer*> v) {
  v.erase(std::remove(v.begin(), v.end(), nullptr), v.end());
  return v;
}

}  // namespace

ObserverFanout::ObserverFanout(std::vector<core::Observer*> observers)
    : observers_(WithoutNulls(std::move(observers))) {}

void ObserverFanout::OnSessionEnded(core::SessionId id,
                                    const std::string& name, bool expired) {
  for (core::Observer* o : observers_) {
    o->OnSessionEnded(id, name, expired);
  }
}

void ObserverFanout::OnCreatorEnded(const std::string& registry,
                                    const std::string& key, int64_t held_ms,
                                    bool published) {
  for (core::Observer* o : observers_) {
    o->OnCreatorEnded(registry, key, held_ms, published);
  }
}

void ObserverFanout::OnCreationTimeout(const std::string& registry,
                                       const std::string& key,
                                       core::Token token) {
  for (core::Observer* o : observers_) {
    o->OnCreationTimeout(registry, key, token);
  }
}

void ObserverFanout::OnWaitEnded(int64_t waited_ms) {
  for (core::Observer* o : observers_) {
    o->OnWaitEnded(waited_ms);
  }
}

void ObserverFanout::OnEviction(const std::string& registry,
                                const std::string& key, uint64_t bytes) {
  for (core::Observer* o : observers_) {
    o->OnEviction(registry, key, bytes);
  }
}

}  // namespace dogpiled::daemon
