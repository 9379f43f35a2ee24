// Sessions: leases that every grant and wait hangs on. Opening, renewing,
// closing, and ending one (by Close or by its TTL) with all it held.
#include <algorithm>
#include <string>
#include <vector>

#include "core/coordinator.h"
#include "core/errors.h"
#include "core/op.h"
#include "core/validation.h"

namespace dogpiled::core {

StatusOr<OpenResult> Coordinator::Open(int64_t ttl_ms,
                                       const std::string& client_name,
                                       const std::string& client,
                                       const std::string& owner) {
  Op op(this);
  if (shutting_down_) {
    return ShuttingDown();
  }
  if (ttl_ms != 0 &&
      (ttl_ms < limits_.min_ttl_ms || ttl_ms > limits_.max_ttl_ms)) {
    return InvalidArgument("ttl_ms: must be 0 (the default) or between " +
                           std::to_string(limits_.min_ttl_ms) + " and " +
                           std::to_string(limits_.max_ttl_ms))
        .WithReason(std::string(reason::kFieldInvalid),
                    {{std::string(kFieldKey), "ttl_ms"},
                     {"min", std::to_string(limits_.min_ttl_ms)},
                     {std::string(kLimitKey),
                      std::to_string(limits_.max_ttl_ms)}});
  }
  if (Status s = CheckMaxBytes(client_name, kMaxClientNameBytes,
                               "client_name");
      !s.ok()) {
    return s;
  }
  if (sessions_.size() >= limits_.max_sessions) {
    return CapReached(reason::kSessionsLimit, "sessions", limits_.max_sessions,
                      "sessions: the cap of " +
                          std::to_string(limits_.max_sessions) +
                          " open sessions is reached");
  }
  Tenant* tenant = GetTenant(owner);
  if (tenant->sessions >= limits_.max_sessions_per_tenant) {
    MaybeDropTenant(tenant);
    return LimitReached("sessions: this tenant's quota of " +
                            std::to_string(limits_.max_sessions_per_tenant) +
                            " open sessions is reached",
                        std::string(reason::kTenantSessionsQuota), "sessions",
                        limits_.max_sessions_per_tenant);
  }
  uint64_t& of_client = sessions_per_client_[client];
  if (of_client >= limits_.max_sessions_per_client) {
    MaybeDropTenant(tenant);
    return CapReached(
        reason::kSessionsPerClient, "sessions",
        limits_.max_sessions_per_client,
        "sessions: the cap of " +
        std::to_string(limits_.max_sessions_per_client) +
        " open sessions per client is reached for " +
        (client.empty() ? std::string("this client") : client));
  }
  ++of_client;
  SessionId id = 0;
  while (id == 0 || sessions_.count(id) != 0) {
    // 63 bits: safe in every language's int64.
    id = (session_id_source_ ? session_id_source_() : rng_()) >> 1;
  }
  Session& session = sessions_[id];
  session.id = id;
  session.ttl_ms = ttl_ms == 0 ? limits_.default_ttl_ms : ttl_ms;
  session.deadline_ms = clock_->NowMs() + session.ttl_ms;
  session.client_name = client_name;
  session.client = client;
  session.owner = owner;
  session.tenant = tenant;
  ++tenant->sessions;
  session.timer = timers_.Add(session.deadline_ms,
                              {TimerTarget::Kind::kSession, id, {}, {}});
  AddDeadline(session.deadline_ms);
  if (Journaling()) {
    journal_->SessionOpened(
        {id, session.ttl_ms, client_name, client, owner});
  }
  return OpenResult{id, session.ttl_ms};
}

StatusOr<int64_t> Coordinator::KeepAlive(SessionId id) {
  Op op(this);
  if (shutting_down_) {
    return ShuttingDown();
  }
  Session* session = FindSession(id);
  if (session == nullptr) {
    return SessionNotFound(id);
  }
  // The timer stays where it is; when it fires it sees the later deadline
  // and re-arms. That keeps KeepAlive O(1).
  session->deadline_ms = clock_->NowMs() + session->ttl_ms;
  return session->ttl_ms;
}

Status Coordinator::Close(SessionId id) {
  Op op(this);
  Session* session = FindSession(id);
  if (session == nullptr) {
    return SessionNotFound(id);
  }
  EndSession(session, /*expired=*/false);
  return {};
}

Status Coordinator::CheckOwner(SessionId id, const std::string& caller) {
  Op op(this);
  Session* session = FindSession(id);
  if (session == nullptr || session->owner == caller) {
    return {};
  }
  // The id is not repeated: the caller may have only guessed it.
  return Status(Code::kPermissionDenied,
                "session_id: the session belongs to another identity "
                "(open your own, with your own credentials)")
      .WithReason(std::string(reason::kSessionNotOwned),
                  {{std::string(kFieldKey), "session_id"}});
}

Session* Coordinator::FindSession(SessionId id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}

void Coordinator::EndSession(Session* session, bool expired) {
  const SessionId id = session->id;
  if (expired) {
    ++stats_.session_expiries;
  }
  observer_->OnSessionEnded(id, session->client_name, expired);
  if (near_cache_ != nullptr) {
    near_cache_->SessionEnded(id);  // its pushes count as applied now
  }
  timers_.Cancel(session->timer);
  // First take everything of this session out, then serve the lines it
  // stood in or blocked: serving a line can grant (and unpark) calls, and
  // must never meet one of this session's own. Entries are collected last,
  // once each, so no pointer here outlives its entry.
  std::vector<Entry*> touched;
  const std::vector<uint64_t> waits(session->waits.begin(),
                                    session->waits.end());
  for (uint64_t wait_id : waits) {
    Waiter waiter = Unpark(wait_id);
    Answer(waiter, SessionNotFound(id, "session " + std::to_string(id) +
                                       " ended while waiting"));
    touched.push_back(waiter.entry);
  }
  const std::vector<Entry*> roles(session->creator_of.begin(),
                                  session->creator_of.end());
  for (Entry* entry : roles) {
    ReleaseCreator(*entry);
    touched.push_back(entry);
  }
  const std::vector<std::pair<Token, Entry*>> locks(session->locks.begin(),
                                                    session->locks.end());
  for (auto [token, entry] : locks) {
    ReleaseLock(*entry, token);
    touched.push_back(entry);
  }
  if (auto it = sessions_per_client_.find(session->client);
      it != sessions_per_client_.end() && --it->second == 0) {
    sessions_per_client_.erase(it);
  }
  Tenant* tenant = session->tenant;
  --tenant->sessions;
  sessions_.erase(id);
  if (Journaling()) {
    journal_->SessionEnded(id);  // after its releases, before new grants
  }
  MaybeDropTenant(tenant);
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (Entry* entry : touched) {
    ServeDogpileLine(*entry);
    ServeRwLine(*entry);
  }
  for (Entry* entry : touched) {
    MaybeCollect(entry);
  }
}

}  // namespace dogpiled::core
