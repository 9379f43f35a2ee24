// Retries are safe; re-entry is not (semantics.md section 2). A call that
// carries a request_id is remembered while it is parked or holds its grant,
// so a retry after a lost answer gets that grant again, or takes the parked
// call's place in line, instead of queueing behind itself. Publish retries
// are answered from the session's last few accepted ones; Unlock and
// Abandon retries are refused NOT_HOLDER, marked "released" when they
// repeat one of the session's last few.
#include <algorithm>
#include <deque>
#include <functional>
#include <string>
#include <utility>

#include "core/coordinator.h"
#include "core/errors.h"
#include "core/op.h"

namespace dogpiled::core {
namespace {

// Keeps the newest few of a session's calls.
template <typename T>
void KeepNewest(std::deque<T>& recent, T call) {
  recent.push_back(call);
  if (recent.size() > kRecentPerSession) {
    recent.pop_front();
  }
}

size_t NameHash(const std::string& registry, const std::string& key) {
  return std::hash<std::string>()(registry) * 31 +
         std::hash<std::string>()(key);
}

bool SameKey(const Entry& entry, const std::string& registry,
             const std::string& key) {
  return entry.registry->name == registry && entry.key == key;
}

}  // namespace

void Coordinator::RememberGrant(SessionId session, uint64_t request_id,
                                Entry& entry, Token token, bool is_lock) {
  if (request_id == 0) {
    return;
  }
  Session& s = sessions_.at(session);
  s.granted_requests[request_id] = {&entry, token, is_lock};
  if (is_lock) {
    s.lock_requests[token] = request_id;
  }
}

void Coordinator::ForgetGrant(SessionId session, uint64_t request_id,
                              Token token) {
  Session* s = FindSession(session);
  if (s == nullptr || request_id == 0) {
    return;
  }
  if (auto it = s->granted_requests.find(request_id);
      it != s->granted_requests.end() && it->second.token == token) {
    s->granted_requests.erase(it);
  }
  s->lock_requests.erase(token);
}

uint64_t Coordinator::Rekey(uint64_t wait_id) {
  auto node = waiters_.extract(wait_id);
  const uint64_t id = next_wait_id_++;
  Waiter& waiter = node.mapped();
  node.key() = id;
  waiter.id = id;
  *waiter.pos = id;
  timers_.Cancel(waiter.timer);
  Session& session = sessions_.at(waiter.session_id);
  session.waits.erase(wait_id);
  session.waits.insert(id);
  if (waiter.request_id != 0) {
    session.parked_requests[waiter.request_id] = id;
  }
  waiters_.insert(std::move(node));
  return id;
}

Waiter& Coordinator::TakeOver(uint64_t wait_id, int64_t wait_ms) {
  // The earlier call's answer would be lost anyway: it is told so, and the
  // retry waits in its place, for as long as it asks.
  Waiter& old = waiters_.at(wait_id);
  const Status replaced =
      Status(Code::kAborted,
             "request_id: replaced by a retry of the same request")
          .WithReason(std::string(reason::kReplacedByRetry),
                      {{std::string(kFieldKey), "request_id"}});
  if (old.is_lock) {
    Defer([done = std::move(old.lock_done), replaced] { done(replaced); });
  } else {
    Defer([done = std::move(old.acquire_done), replaced] { done(replaced); });
  }
  Waiter& waiter = waiters_.at(Rekey(wait_id));
  const int64_t deadline = clock_->NowMs() + wait_ms;
  waiter.timer =
      timers_.Add(deadline, {TimerTarget::Kind::kWaiter, waiter.id, {}, {}});
  AddDeadline(deadline);
  return waiter;
}

std::optional<uint64_t> Coordinator::RetryAcquire(
    Session& session, const AcquireRequest& request, AcquireCallback& done) {
  if (auto parked = session.parked_requests.find(request.request_id);
      parked != session.parked_requests.end()) {
    Waiter& old = waiters_.at(parked->second);
    if (old.is_lock || !SameKey(*old.entry, request.registry, request.key)) {
      return std::nullopt;  // the id was reused for another call
    }
    Waiter& waiter = TakeOver(parked->second, request.wait_timeout_ms);
    waiter.acquire = request;
    waiter.acquire_done = std::move(done);
    return waiter.id;
  }
  auto granted = session.granted_requests.find(request.request_id);
  if (granted == session.granted_requests.end() || granted->second.is_lock) {
    return std::nullopt;
  }
  Entry& entry = *granted->second.entry;
  if (!SameKey(entry, request.registry, request.key) || !entry.creator ||
      entry.creator->token != granted->second.token) {
    return std::nullopt;
  }
  // The same grant again: the role, its token and what is left of its time,
  // with the value as it is now.
  AcquireResult result;
  Decide(entry, request, result);
  result.outcome = Outcome::kCreate;
  result.token = entry.creator->token;
  result.creation_deadline_ms =
      std::max<int64_t>(0, entry.creator->deadline_ms - clock_->NowMs());
  result.retry_in_ms = 0;
  Defer([done = std::move(done), result = std::move(result)] {
    done(result);
  });
  return 0;
}

std::optional<uint64_t> Coordinator::RetryLock(Session& session,
                                               const LockRequest& request,
                                               LockCallback& done) {
  if (auto parked = session.parked_requests.find(request.request_id);
      parked != session.parked_requests.end()) {
    Waiter& old = waiters_.at(parked->second);
    if (!old.is_lock || !SameKey(*old.entry, request.registry, request.key) ||
        static_cast<int>(old.mode) != request.mode) {
      return std::nullopt;
    }
    Waiter& waiter = TakeOver(parked->second, request.wait_timeout_ms);
    waiter.lock_done = std::move(done);
    return waiter.id;
  }
  auto granted = session.granted_requests.find(request.request_id);
  if (granted == session.granted_requests.end() || !granted->second.is_lock) {
    return std::nullopt;
  }
  Entry& entry = *granted->second.entry;
  const Token token = granted->second.token;
  if (!SameKey(entry, request.registry, request.key) ||
      session.locks.count(token) == 0) {
    return std::nullopt;
  }
  Defer([done = std::move(done), token] { done(LockResult{true, token}); });
  return 0;
}

std::optional<double> Coordinator::PublishedBefore(
    const PublishRequest& request, size_t value_hash) {
  Session* session = FindSession(request.session_id);
  if (session == nullptr || request.token == 0) {
    return std::nullopt;
  }
  const size_t name = NameHash(request.registry, request.key);
  for (const Session::Published& p : session->recent_publishes) {
    if (p.token == request.token && p.name_hash == name &&
        (p.value_hash == value_hash || p.value_hash == kAnyValue)) {
      return p.created_time;
    }
  }
  return std::nullopt;
}

void Coordinator::RememberPublish(const PublishRequest& request,
                                  size_t value_hash, double created_time) {
  KeepNewest(sessions_.at(request.session_id).recent_publishes,
             Session::Published{request.token,
                                NameHash(request.registry, request.key),
                                value_hash, created_time});
}

bool Coordinator::ReleasedBefore(const Session& session,
                                 const std::string& registry,
                                 const std::string& key, Token token,
                                 bool is_lock) const {
  const size_t name = NameHash(registry, key);
  return std::any_of(session.recent_releases.begin(),
                     session.recent_releases.end(),
                     [&](const Session::Released& r) {
                       return r.token == token && r.name_hash == name &&
                              r.is_lock == is_lock;
                     });
}

void Coordinator::RememberRelease(Session& session,
                                  const std::string& registry,
                                  const std::string& key, Token token,
                                  bool is_lock) {
  KeepNewest(session.recent_releases,
             Session::Released{token, NameHash(registry, key), is_lock});
}

void Coordinator::ReleaseUndelivered(const std::string& registry,
                                     const std::string& key,
                                     SessionId session_id, Token token,
                                     bool is_lock) {
  Op op(this);
  Entry* entry = FindEntry(registry, key);
  if (entry == nullptr || FindSession(session_id) == nullptr) {
    return;
  }
  if (is_lock) {
    Session& session = sessions_.at(session_id);
    auto held = session.locks.find(token);
    if (held == session.locks.end() || held->second != entry) {
      return;
    }
    ReleaseLock(*entry, token);
    ServeRwLine(*entry);
  } else {
    if (!entry->creator || entry->creator->token != token ||
        entry->creator->session_id != session_id) {
      return;
    }
    ReleaseCreator(*entry);
    ++stats_.abandons;
    ServeDogpileLine(*entry);
  }
  MaybeCollect(entry);
}

}  // namespace dogpiled::core
