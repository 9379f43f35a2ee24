#include "core/timer_queue.h"

namespace dogpiled::core {

TimerQueue::TimerId TimerQueue::Add(int64_t deadline_ms, TimerTarget target) {
  TimerId id = next_id_++;
  order_.emplace(deadline_ms, id);
  targets_.emplace(id, Slot{deadline_ms, std::move(target)});
  return id;
}

void TimerQueue::Cancel(TimerId id) {
  auto it = targets_.find(id);
  if (it == targets_.end()) {
    return;
  }
  order_.erase({it->second.deadline_ms, id});
  targets_.erase(it);
}

std::optional<int64_t> TimerQueue::NextDeadline() const {
  if (order_.empty()) {
    return std::nullopt;
  }
  return order_.begin()->first;
}

std::optional<TimerTarget> TimerQueue::PopDue(int64_t now_ms) {
  if (order_.empty() || order_.begin()->first > now_ms) {
    return std::nullopt;
  }
  TimerId id = order_.begin()->second;
  order_.erase(order_.begin());
  auto it = targets_.find(id);
  TimerTarget target = std::move(it->second.target);
  targets_.erase(it);
  return target;
}

}  // namespace dogpiled::core
