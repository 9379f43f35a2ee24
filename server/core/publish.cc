// What a creator does with its role (Publish, Abandon), and Peek: the other
// half of the dogpile rules of dogpile.cc.
#include <string>
#include <utility>

#include "core/coordinator.h"
#include "core/errors.h"
#include "core/expiry.h"
#include "core/op.h"
#include "core/validation.h"

namespace dogpiled::core {
namespace {

// Weight of the newest sample in the smoothed creation duration.
constexpr double kCreationSmoothing = 0.3;

}  // namespace

StatusOr<double> Coordinator::Publish(const PublishRequest& request,
                                      AckWaitPtr* acks) {
  // Hashed before the lock: it tells a retry (same value) from a second
  // Publish with the same token.
  const size_t value_hash = std::hash<std::string>()(request.value.str());
  Op op(this);
  if (shutting_down_) {
    return ShuttingDown();
  }
  if (Status s = CheckNames(request.registry, request.key, limits_);
      !s.ok()) {
    return s;
  }
  if (request.value.size() > limits_.max_value_bytes) {
    return ResourceExhausted("value: " + std::to_string(request.value.size()) +
                             " bytes is over the limit of " +
                             std::to_string(limits_.max_value_bytes))
        .WithReason(std::string(reason::kValueTooLarge),
                    {{std::string(kFieldKey), "value"},
                     {std::string(kLimitKey),
                      std::to_string(limits_.max_value_bytes)},
                     {"size", std::to_string(request.value.size())}});
  }
  if (request.created_time) {
    if (Status s = CheckNotFuture(*request.created_time, "created_time",
                                  limits_, clock_->WallSeconds());
        !s.ok()) {
      return s;
    }
  }
  if (FindSession(request.session_id) == nullptr) {
    return SessionNotFound(request.session_id);
  }
  if (auto again = PublishedBefore(request, value_hash)) {
    // A retry of an accepted Publish whose answer was lost: it answers once
    // the drops the first one pushed are applied.
    if (acks != nullptr && near_cache_ != nullptr) {
      *acks = near_cache_->Invalidate(request.registry, request.key);
    }
    return *again;
  }
  StatusOr<Entry*> held = HeldCreator(request.registry, request.key,
                                      request.session_id, request.token);
  if (!held.ok()) {
    return held.status();
  }
  Entry* entry = held.value();
  const Creator creator = *entry->creator;
  const double created =
      request.created_time.value_or(clock_->WallSeconds());
  if (creator.lock_only) {
    entry->lock_only_token = creator.token;
    entry->lock_only_created_time = created;
  } else {
    Tenant* tenant = sessions_.at(request.session_id).tenant;
    if (Status s = MakeRoom(*entry, request.value.size(), tenant); !s.ok()) {
      return s;
    }
    StoreValue(*entry, request.value, created, creator.token, tenant);
  }
  // A lock-only publish stores no value, and the log keeps none for a new
  // leader to hash: its retry is known by token and key alone.
  RememberPublish(request, creator.lock_only ? kAnyValue : value_hash,
                  created);
  const double took = static_cast<double>(clock_->NowMs() - creator.granted_ms);
  entry->creation_ms =
      entry->creation_ms
          ? (1 - kCreationSmoothing) * *entry->creation_ms +
                kCreationSmoothing * took
          : took;
  ReleaseCreator(*entry, Ending::kPublished);
  if (near_cache_ != nullptr) {
    AckWaitPtr pushed = near_cache_->Invalidate(request.registry, request.key);
    if (acks != nullptr) {
      *acks = std::move(pushed);
    }
  }
  entry->backoff_until_ms = 0;
  ++stats_.publishes;
  // Parked lock-only callers now hold a cache stamped `created`: they go and
  // read it.
  for (uint64_t id : entry->dogpile_line) {
    Waiter& waiter = waiters_.at(id);
    if (waiter.acquire.client_created_time) {
      waiter.acquire.client_created_time = created;
    }
  }
  ServeDogpileLine(*entry);
  MaybeCollect(entry);
  return created;
}

Status Coordinator::Abandon(const AbandonRequest& request) {
  Op op(this);
  if (shutting_down_) {
    return ShuttingDown();
  }
  if (Status s = CheckNames(request.registry, request.key, limits_);
      !s.ok()) {
    return s;
  }
  if (Status s = CheckMaxBytes(request.reason, kMaxReasonBytes, "reason");
      !s.ok()) {
    return s;
  }
  if (Status s = CheckTimeout(request.retry_after_ms, "retry_after_ms",
                              limits_);
      !s.ok()) {
    return s;
  }
  Session* session = FindSession(request.session_id);
  if (session == nullptr) {
    return SessionNotFound(request.session_id);
  }
  StatusOr<Entry*> held = HeldCreator(request.registry, request.key,
                                      request.session_id, request.token);
  if (!held.ok()) {
    if (ReleasedBefore(*session, request.registry, request.key, request.token,
                       /*is_lock=*/false)) {
      // A retry after a lost answer (counted as a fencing rejection).
      return AlreadyReleased(request.token, "Abandon");
    }
    return held.status();
  }
  Entry* entry = held.value();
  ReleaseCreator(*entry, Ending::kByHolder);
  ++stats_.abandons;
  if (request.retry_after_ms > 0) {
    entry->backoff_until_ms = clock_->NowMs() + request.retry_after_ms;
    timers_.Cancel(entry->backoff_timer);
    entry->backoff_timer = timers_.Add(
        entry->backoff_until_ms,
        {TimerTarget::Kind::kBackoff, 0, request.registry, request.key});
    AddDeadline(entry->backoff_until_ms);
  }
  ServeDogpileLine(*entry);
  MaybeCollect(entry);
  return {};
}

StatusOr<PeekResult> Coordinator::Peek(const std::string& registry,
                                       const std::string& key,
                                       int64_t expire_ms) {
  Op op(this);
  if (shutting_down_) {
    return ShuttingDown();
  }
  if (Status s = CheckNames(registry, key, limits_); !s.ok()) {
    return s;
  }
  PeekResult result;
  Entry* entry = FindEntry(registry, key);
  if (entry == nullptr) {
    return result;
  }
  Normalize(*entry);
  result.creating = entry->creator.has_value();
  if (entry->has_value && entry->created_time > 0) {
    result.has_value = true;
    result.value = entry->value;
    result.created_time = entry->created_time;
    result.age_ms = MillisSince(entry->created_time, clock_->WallSeconds());
    result.is_expired =
        IsExpired(entry->created_time, expire_ms, clock_->WallSeconds()) ||
        entry->value_token <= SoftInvalidToken(*entry);
    TouchLru(*entry);
  }
  MaybeCollect(entry);
  return result;
}

}  // namespace dogpiled::core
