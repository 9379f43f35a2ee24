// The dogpile rules: who gets FRESH, STALE, CREATE or waits, and the line
// of waiters. What a creator does with its role, and Peek, are in
// publish.cc.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <utility>

#include "core/coordinator.h"
#include "core/expiry.h"
#include "core/errors.h"
#include "core/op.h"
#include "core/validation.h"

namespace dogpiled::core {
namespace {

Status CheckAcquire(const AcquireRequest& r, const Limits& limits,
                    double now) {
  if (Status s = CheckNames(r.registry, r.key, limits); !s.ok()) {
    return s;
  }
  if (Status s = CheckTimeout(r.wait_timeout_ms, "wait_timeout_ms", limits);
      !s.ok()) {
    return s;
  }
  if (Status s = CheckTimeout(r.creation_timeout_ms, "creation_timeout_ms",
                              limits);
      !s.ok()) {
    return s;
  }
  if (r.client_created_time) {
    if (Status s = CheckNotFuture(*r.client_created_time,
                                  "client_created_time", limits, now);
        !s.ok()) {
      return s;
    }
  }
  if (Status s = CheckFinite(r.early_refresh_beta, "early_refresh_beta");
      !s.ok()) {
    return s;
  }
  if (r.early_refresh_beta < 0) {
    return FieldInvalid("early_refresh_beta", "must not be negative");
  }
  return CheckNonNegative(r.max_stale_ms, "max_stale_ms");
}

// Stale-if-error: a value too long past its expiry counts as absent.
bool TooStale(double created_time, int64_t expire_ms, int64_t max_stale_ms,
              double now) {
  if (max_stale_ms <= 0) {
    return false;
  }
  const int64_t lived = expire_ms > 0 ? expire_ms : 0;
  return MillisSince(created_time, now) - lived > max_stale_ms;
}

}  // namespace

void Coordinator::CountOutcome(Outcome outcome) {
  switch (outcome) {
    case Outcome::kFresh: ++stats_.acquires_fresh; break;
    case Outcome::kStale: ++stats_.acquires_stale; break;
    case Outcome::kCreate: ++stats_.acquires_create; break;
    case Outcome::kNotReady: ++stats_.acquires_not_ready; break;
  }
}

Coordinator::Decision Coordinator::Decide(Entry& entry,
                                          const AcquireRequest& request,
                                          AcquireResult& result) {
  const double now = clock_->WallSeconds();
  const int64_t now_ms = clock_->NowMs();
  // A throttled key behaves as if someone were creating: nobody is elected.
  const bool backing_off = entry.backoff_until_ms > now_ms;
  const bool creating = entry.creator.has_value() || backing_off;
  bool usable = false;
  bool expired = true;
  double created_time = 0;
  if (!request.client_created_time) {
    usable = entry.has_value && entry.created_time > 0;
    if (usable) {
      created_time = entry.created_time;
      expired = IsExpired(created_time, request.expire_ms, now) ||
                entry.value_token <= SoftInvalidToken(entry);
      result.has_value = true;
      result.value = entry.value;
      result.created_time = created_time;
    }
  } else {
    created_time = *request.client_created_time;
    const Invalidation& mine = entry.invalidation;
    const Invalidation& all = entry.registry->invalidation;
    const Invalidation& global = global_invalidation_;
    // A lock-only publish after the last invalidation vouches for its
    // stamp, whatever the creator's clock said.
    const bool vouched = entry.lock_only_token > SoftInvalidToken(entry) &&
                         created_time >= entry.lock_only_created_time;
    const double hard_wall =
        std::max({mine.hard_wall, all.hard_wall, global.hard_wall});
    const double soft_wall =
        std::max({mine.soft_wall, all.soft_wall, global.soft_wall});
    usable = created_time > 0 && (vouched || created_time > hard_wall);
    expired = IsExpired(created_time, request.expire_ms, now) ||
              (!vouched && created_time <= soft_wall);
    result.created_time = created_time;
  }
  if (usable) {
    result.age_ms = MillisSince(created_time, now);
  }
  if (usable && expired &&
      TooStale(created_time, request.expire_ms, request.max_stale_ms, now)) {
    usable = false;
    result.has_value = false;
    result.value.clear();
    if (!request.client_created_time) {
      result.created_time = 0;
    }
    result.age_ms = 0;
  }
  if (backing_off) {
    result.retry_in_ms = entry.backoff_until_ms - now_ms;
  }
  if (usable && !expired) {
    result.is_expired = false;
    result.retry_in_ms = 0;
    if (request.early_refresh_beta > 0 && !creating &&
        request.expire_ms > 0 && entry.creation_ms) {
      // XFetch: refresh early when now - delta * beta * ln(U) passes the
      // expiry, U uniform in (0, 1].
      std::uniform_real_distribution<double> uniform(0.0, 1.0);
      const double u = 1.0 - uniform(rng_);
      const double delta = *entry.creation_ms / 1000.0;
      const double expiry =
          created_time + static_cast<double>(request.expire_ms) / 1000.0;
      if (now - delta * request.early_refresh_beta * std::log(u) >= expiry) {
        return Decision::kCreate;
      }
    }
    return Decision::kFresh;
  }
  result.is_expired = true;
  if (usable) {
    return creating ? Decision::kStale : Decision::kCreate;
  }
  return creating ? Decision::kWait : Decision::kCreate;
}

Status Coordinator::GrantCreator(Entry& entry, const AcquireRequest& request,
                                 AcquireResult& result) {
  Session& session = sessions_.at(request.session_id);
  if (Status s = CheckGrantCaps(session); !s.ok()) {
    return s;
  }
  StatusOr<Token> token = NextToken();
  if (!token.ok()) {
    return token.status();
  }
  const int64_t now = clock_->NowMs();
  const int64_t timeout = request.creation_timeout_ms != 0
                              ? request.creation_timeout_ms
                              : limits_.default_creation_timeout_ms;
  Creator creator;
  creator.session_id = request.session_id;
  creator.token = token.value();
  creator.granted_ms = now;
  creator.deadline_ms = now + timeout;
  creator.lock_only = request.client_created_time.has_value();
  creator.request_id = request.request_id;
  creator.timer = timers_.Add(
      creator.deadline_ms, {TimerTarget::Kind::kCreator, creator.token,
                            entry.registry->name, entry.key});
  AddDeadline(creator.deadline_ms);
  entry.creator = creator;
  session.creator_of.insert(&entry);
  ++session.tenant->grants;
  RememberGrant(request.session_id, request.request_id, entry, creator.token,
                /*is_lock=*/false);
  if (Journaling()) {
    journal_->Granted({creator.token, GrantKind::kCreator, request.session_id,
                       entry.registry->name, entry.key, request.request_id,
                       creator.lock_only, timeout});
  }
  result.outcome = Outcome::kCreate;
  result.retry_in_ms = 0;
  result.token = creator.token;
  result.creation_deadline_ms = timeout;
  if (!result.is_expired) {
    ++stats_.early_refreshes;
  }
  return {};
}

void Coordinator::ReleaseCreator(Entry& entry, Ending why) {
  if (!entry.creator) {
    return;
  }
  const bool published = why == Ending::kPublished;
  observer_->OnCreatorEnded(entry.registry->name, entry.key,
                            clock_->NowMs() - entry.creator->granted_ms,
                            published);
  if (Session* session = FindSession(entry.creator->session_id)) {
    session->creator_of.erase(&entry);
    --session->tenant->grants;
    if (why == Ending::kByHolder) {
      RememberRelease(*session, entry.registry->name, entry.key,
                      entry.creator->token, /*is_lock=*/false);
    }
  }
  ForgetGrant(entry.creator->session_id, entry.creator->request_id,
              entry.creator->token);
  timers_.Cancel(entry.creator->timer);
  if (Journaling()) {
    PersistedRelease release{entry.creator->token, std::nullopt,
                             why == Ending::kByHolder};
    if (published && entry.creator->lock_only) {
      release.lock_only_created_time = entry.lock_only_created_time;
    }
    journal_->Released(release);
  }
  entry.creator.reset();
}

void Coordinator::ServeDogpileLine(Entry& entry) {
  for (auto it = entry.dogpile_line.begin();
       it != entry.dogpile_line.end();) {
    const uint64_t id = *it++;
    AcquireResult result;
    Waiter& parked = waiters_.at(id);
    const Decision decision = Decide(entry, parked.acquire, result);
    if (decision == Decision::kWait) {
      continue;
    }
    Waiter waiter = Unpark(id);
    if (decision == Decision::kCreate) {
      if (Status s = GrantCreator(entry, waiter.acquire, result); !s.ok()) {
        Answer(waiter, s);
        continue;
      }
    } else {
      result.outcome =
          decision == Decision::kFresh ? Outcome::kFresh : Outcome::kStale;
      NoteFresh(waiter.acquire, result);
    }
    CountOutcome(result.outcome);
    Defer([done = std::move(waiter.acquire_done),
           result = std::move(result)] { done(result); });
  }
}

StatusOr<Entry*> Coordinator::HeldCreator(
    const std::string& registry, const std::string& key, SessionId session,
    Token token) {
  Entry* entry = FindEntry(registry, key);
  if (entry != nullptr) {
    Normalize(*entry);  // a role that timed out is gone before the check
  }
  if (entry == nullptr || !entry->creator || entry->creator->token != token ||
      entry->creator->session_id != session) {
    if (entry != nullptr) {
      MaybeCollect(entry);
    }
    ++stats_.fencing_rejections;
    return NotHolder(token, "token: " + std::to_string(token) +
                                " does not hold the creator role of this key "
                                "(it timed out, was invalidated, or belongs "
                                "to another session)");
  }
  return entry;
}

uint64_t Coordinator::Acquire(const AcquireRequest& request,
                              AcquireCallback done) {
  Op op(this);
  auto answer = [&](StatusOr<AcquireResult> r) {
    mu_.AssertHeld();  // runs only inside this locked call
    Defer([done, r = std::move(r)] { done(r); });
    return uint64_t{0};
  };
  if (shutting_down_) {
    return answer(ShuttingDown());
  }
  if (Status s = CheckAcquire(request, limits_, clock_->WallSeconds());
      !s.ok()) {
    return answer(s);
  }
  Session* session = FindSession(request.session_id);
  if (session == nullptr) {
    return answer(SessionNotFound(request.session_id));
  }
  if (request.request_id != 0) {
    if (auto retried = RetryAcquire(*session, request, done)) {
      return *retried;
    }
  }
  Entry& entry = GetOrCreateEntry(request.registry, request.key);
  Normalize(entry);
  AcquireResult result;
  switch (Decide(entry, request, result)) {
    case Decision::kFresh:
    case Decision::kStale:
      result.outcome = result.is_expired ? Outcome::kStale : Outcome::kFresh;
      NoteFresh(request, result);
      TouchLru(entry);
      break;
    case Decision::kCreate:
      if (Status s = GrantCreator(entry, request, result); !s.ok()) {
        MaybeCollect(&entry);
        return answer(s);
      }
      TouchLru(entry);
      break;
    case Decision::kWait: {
      if (request.wait_timeout_ms == 0) {
        result.outcome = Outcome::kNotReady;
        break;
      }
      if (Status s = CheckWaitCaps(entry.dogpile_line,
                                   sessions_.at(request.session_id));
          !s.ok()) {
        return answer(s);
      }
      Waiter& waiter = Park(entry, request.session_id,
                            request.wait_timeout_ms, entry.dogpile_line,
                            request.request_id);
      waiter.acquire = request;
      waiter.acquire_done = std::move(done);
      return waiter.id;
    }
  }
  CountOutcome(result.outcome);
  MaybeCollect(&entry);  // a lock-only FRESH may leave nothing behind
  return answer(std::move(result));
}

void Coordinator::NoteFresh(const AcquireRequest& request,
                            AcquireResult& result) {
  if (result.outcome != Outcome::kFresh || !result.has_value) {
    return;
  }
  result.fresh_for_ms = request.expire_ms == 0
                            ? -1
                            : std::max<int64_t>(
                                  0, request.expire_ms - result.age_ms);
  if (request.near_cache && near_cache_ != nullptr) {
    result.near_cache_watch_id =
        near_cache_->Track(request.session_id, request.registry, request.key);
  }
}

}  // namespace dogpiled::core
