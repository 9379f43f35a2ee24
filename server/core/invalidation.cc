// Invalidation: soft and hard, of one key or a whole registry in O(1).
// Marks are tokens (everything granted at or before one is doomed) plus a
// wall time for lock-only callers; entries compare against them lazily.
// Marks past their memory share fold upwards (memory.cc).
#include <algorithm>
#include <string>
#include <utility>

#include "core/coordinator.h"
#include "core/errors.h"
#include "core/op.h"
#include "core/validation.h"

namespace dogpiled::core {

void Coordinator::Remember(Invalidation& inv, bool hard, TimerTarget target,
                           MarkRef holder) {
  const double wall = clock_->WallSeconds();
  if (Journaling()) {
    journal_->Invalidated({target.registry, target.key, hard, last_token_,
                           wall});
  }
  ApplyInvalidation(inv, hard, last_token_, wall,
                    clock_->NowMs() + limits_.invalidation_horizon_ms,
                    std::move(target), holder);
}

void Coordinator::ApplyInvalidation(Invalidation& inv, bool hard, Token mark,
                                    double wall, int64_t remember_until_ms,
                                    TimerTarget target, MarkRef holder) {
  inv.soft_token = std::max(inv.soft_token, mark);
  inv.soft_wall = std::max(inv.soft_wall, wall);
  if (hard) {
    inv.hard_token = std::max(inv.hard_token, mark);
    inv.hard_wall = std::max(inv.hard_wall, wall);
  }
  if (holder.registry == nullptr) {
    return;  // the daemon-wide mark: kept for the daemon's life
  }
  TrackMark(inv, holder);
  if (remember_until_ms > inv.remember_until_ms) {
    inv.remember_until_ms = remember_until_ms;
    timers_.Cancel(inv.timer);
    inv.timer = timers_.Add(inv.remember_until_ms, std::move(target));
    AddDeadline(inv.remember_until_ms);
  }
}

Token Coordinator::SoftInvalidToken(const Entry& entry) const {
  return std::max({entry.invalidation.soft_token,
                   entry.registry->invalidation.soft_token,
                   global_invalidation_.soft_token});
}

Token Coordinator::HardInvalidToken(const Entry& entry) const {
  return std::max({entry.invalidation.hard_token,
                   entry.registry->invalidation.hard_token,
                   global_invalidation_.hard_token});
}

void Coordinator::Normalize(Entry& entry) {
  // Values a hard invalidation made absent free their memory now.
  if (entry.has_value && entry.value_token <= HardInvalidToken(entry)) {
    DropValue(entry);
  }
  // A creator elected before an invalidation can never publish; its role
  // passes on now (registry-wide invalidations reach an entry lazily, at
  // its next touch or the doomed creator's Publish).
  if (entry.creator && entry.creator->token <= SoftInvalidToken(entry)) {
    ReleaseCreator(entry);
    ServeDogpileLine(entry);
  }
}

Status Coordinator::Invalidate(const InvalidateRequest& request,
                               AckWaitPtr* acks) {
  Op op(this);
  if (shutting_down_) {
    return ShuttingDown();
  }
  if (Status s = CheckRegistry(request.registry); !s.ok()) {
    return s;
  }
  if (Status s = CheckKeyOrEmpty(request.key, limits_); !s.ok()) {
    return s;
  }
  if (request.key.empty()) {
    // O(1): entries compare their tokens with the registry's mark lazily.
    Registry& registry = GetOrCreateRegistry(request.registry);
    Remember(registry.invalidation, request.hard,
             {TimerTarget::Kind::kRegistryHorizon, 0, registry.name, {}},
             {&registry, nullptr});
  } else {
    Entry& entry = GetOrCreateEntry(request.registry, request.key);
    Remember(entry.invalidation, request.hard,
             {TimerTarget::Kind::kEntryHorizon, 0, request.registry,
              request.key},
             {entry.registry, &entry});
    Normalize(entry);
  }
  if (near_cache_ != nullptr) {
    AckWaitPtr pushed = near_cache_->Invalidate(request.registry, request.key);
    if (acks != nullptr) {
      *acks = std::move(pushed);
    }
  }
  EnforceBudget();
  return {};
}

StatusOr<uint64_t> Coordinator::OpenWatch(SessionId session,
                                          std::function<void()> wake) {
  Op op(this);
  if (shutting_down_ || near_cache_ == nullptr) {
    return ShuttingDown();
  }
  if (FindSession(session) == nullptr) {
    return SessionNotFound(session);
  }
  if (Journaling()) {
    journal_->SessionWatching(session);
  }
  return near_cache_->OpenWatch(session, std::move(wake));
}

}  // namespace dogpiled::core
