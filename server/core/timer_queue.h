// Deadlines of the core (session TTLs, creation timeouts, parked waits,
// invalidation horizons) ordered by time. Not thread-safe: the Coordinator
// owns it under its mutex.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

namespace dogpiled::core {

// What a deadline is for. Targets are named by ids, never by pointers, so a
// timer that outlives its object finds nothing and does nothing.
struct TimerTarget {
  enum class Kind { kSession, kCreator, kWaiter, kEntryHorizon,
                    kRegistryHorizon, kBackoff };
  Kind kind;
  uint64_t id = 0;        // session id, waiter id, or creator token
  std::string registry;   // all but kSession and kWaiter
  std::string key;        // kCreator, kEntryHorizon, kBackoff
};

class TimerQueue {
 public:
  using TimerId = uint64_t;

  TimerId Add(int64_t deadline_ms, TimerTarget target);
  void Cancel(TimerId id);
  std::optional<int64_t> NextDeadline() const;
  // Removes and returns the earliest target due at `now_ms`, if any.
  std::optional<TimerTarget> PopDue(int64_t now_ms);
  size_t size() const { return targets_.size(); }

 private:
  struct Slot {
    int64_t deadline_ms;
    TimerTarget target;
  };
  TimerId next_id_ = 1;
  std::set<std::pair<int64_t, TimerId>> order_;
  std::unordered_map<TimerId, Slot> targets_;
};

}  // namespace dogpiled::core
