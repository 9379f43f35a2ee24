// The read-write mutex rules: many readers or one writer; a waiting writer
// blocks new readers; everyone queues in arrival order.
#include <string>
#include <utility>

#include "core/coordinator.h"
#include "core/errors.h"
#include "core/op.h"
#include "core/validation.h"

namespace dogpiled::core {

bool Coordinator::CanGrant(const Entry& entry, LockMode mode) {
  if (entry.writer_token != 0) {
    return false;
  }
  return mode == LockMode::kRead || entry.readers.empty();
}

StatusOr<Token> Coordinator::GrantLock(Entry& entry, SessionId session_id,
                                       LockMode mode, uint64_t request_id) {
  Session& session = sessions_.at(session_id);
  if (Status s = CheckGrantCaps(session); !s.ok()) {
    return s;
  }
  StatusOr<Token> token = NextToken();
  if (!token.ok()) {
    return token;
  }
  if (mode == LockMode::kWrite) {
    entry.writer_token = token.value();
    entry.writer_session = session_id;
  } else {
    entry.readers[token.value()] = session_id;
  }
  session.locks[token.value()] = &entry;
  ++session.tenant->grants;
  RememberGrant(session_id, request_id, entry, token.value(),
                /*is_lock=*/true);
  if (Journaling()) {
    journal_->Granted({token.value(),
                       mode == LockMode::kWrite ? GrantKind::kWriteLock
                                                : GrantKind::kReadLock,
                       session_id, entry.registry->name, entry.key,
                       request_id, false, 0});
  }
  ++stats_.lock_grants;
  return token;
}

void Coordinator::ServeRwLine(Entry& entry) {
  while (!entry.rw_line.empty()) {
    Waiter& head = waiters_.at(entry.rw_line.front());
    if (!CanGrant(entry, head.mode)) {
      return;
    }
    Waiter waiter = Unpark(head.id);
    StatusOr<Token> token =
        GrantLock(entry, waiter.session_id, waiter.mode, waiter.request_id);
    if (!token.ok()) {
      Answer(waiter, token.status());
      continue;
    }
    Defer([done = std::move(waiter.lock_done), t = token.value()] {
      done(LockResult{true, t});
    });
  }
}

void Coordinator::ReleaseLock(Entry& entry, Token token, Ending why) {
  SessionId holder = 0;
  if (entry.writer_token == token) {
    holder = entry.writer_session;
    entry.writer_token = 0;
    entry.writer_session = 0;
  } else if (auto it = entry.readers.find(token); it != entry.readers.end()) {
    holder = it->second;
    entry.readers.erase(it);
  }
  if (holder != 0 && Journaling()) {
    journal_->Released({token, std::nullopt, why == Ending::kByHolder});
  }
  if (Session* session = FindSession(holder)) {
    session->locks.erase(token);
    --session->tenant->grants;
    if (why == Ending::kByHolder) {
      RememberRelease(*session, entry.registry->name, entry.key, token,
                      /*is_lock=*/true);
    }
    if (auto it = session->lock_requests.find(token);
        it != session->lock_requests.end()) {
      ForgetGrant(holder, it->second, token);
    }
  }
}

uint64_t Coordinator::Lock(const LockRequest& request, LockCallback done) {
  Op op(this);
  auto answer = [&](StatusOr<LockResult> r) {
    mu_.AssertHeld();  // runs only inside this locked call
    Defer([done, r = std::move(r)] { done(r); });
    return uint64_t{0};
  };
  if (shutting_down_) {
    return answer(ShuttingDown());
  }
  if (Status s = CheckRegistry(request.registry); !s.ok()) {
    return answer(s);
  }
  if (Status s = CheckKey(request.key, limits_); !s.ok()) {
    return answer(s);
  }
  if (request.mode != static_cast<int>(LockMode::kRead) &&
      request.mode != static_cast<int>(LockMode::kWrite)) {
    return answer(FieldInvalid("mode", "must be MODE_READ or MODE_WRITE"));
  }
  if (Status s = CheckNonNegative(request.wait_timeout_ms, "wait_timeout_ms");
      !s.ok()) {
    return answer(s);
  }
  if (request.wait_timeout_ms > limits_.max_timeout_ms) {
    return answer(FieldInvalid(
        "wait_timeout_ms",
        "must be at most " + std::to_string(limits_.max_timeout_ms),
        limits_.max_timeout_ms));
  }
  Session* session = FindSession(request.session_id);
  if (session == nullptr) {
    return answer(SessionNotFound(request.session_id));
  }
  if (request.request_id != 0) {
    if (auto retried = RetryLock(*session, request, done)) {
      return *retried;
    }
  }
  const auto mode = static_cast<LockMode>(request.mode);
  Entry& entry = GetOrCreateEntry(request.registry, request.key);
  // Arrivals queue behind anyone already waiting: that is what makes a
  // waiting writer block new readers, and keeps writers in arrival order.
  if (entry.rw_line.empty() && CanGrant(entry, mode)) {
    StatusOr<Token> token =
        GrantLock(entry, request.session_id, mode, request.request_id);
    if (!token.ok()) {
      MaybeCollect(&entry);
      return answer(token.status());
    }
    return answer(LockResult{true, token.value()});
  }
  if (request.wait_timeout_ms == 0) {
    MaybeCollect(&entry);
    return answer(LockResult{});
  }
  if (Status s = CheckWaitCaps(entry.rw_line,
                               sessions_.at(request.session_id));
      !s.ok()) {
    return answer(s);
  }
  Waiter& waiter = Park(entry, request.session_id, request.wait_timeout_ms,
                        entry.rw_line, request.request_id);
  waiter.is_lock = true;
  waiter.mode = mode;
  waiter.lock_done = std::move(done);
  return waiter.id;
}

Status Coordinator::Unlock(const std::string& registry,
                           const std::string& key, SessionId session_id,
                           Token token) {
  Op op(this);
  if (shutting_down_) {
    return ShuttingDown();
  }
  if (Status s = CheckRegistry(registry); !s.ok()) {
    return s;
  }
  if (Status s = CheckKey(key, limits_); !s.ok()) {
    return s;
  }
  Session* session = FindSession(session_id);
  if (session == nullptr) {
    return SessionNotFound(session_id);
  }
  Entry* entry = FindEntry(registry, key);
  auto held = session->locks.find(token);
  if (entry == nullptr || held == session->locks.end() ||
      held->second != entry) {
    ++stats_.fencing_rejections;
    if (ReleasedBefore(*session, registry, key, token, /*is_lock=*/true)) {
      return AlreadyReleased(token, "Unlock");  // a retry after a lost answer
    }
    return NotHolder(token, "token: this session holds no lock with token " +
                                 std::to_string(token) + " on this key");
  }
  ReleaseLock(*entry, token, Ending::kByHolder);
  ServeRwLine(*entry);
  MaybeCollect(entry);
  return {};
}

}  // namespace dogpiled::core
