// Restoring durable state at start-up and exporting it for snapshots.
#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/coordinator.h"
#include "core/op.h"
#include "core/validation.h"

namespace dogpiled::core {
namespace {

void ExportMarks(const std::string& registry, const std::string& key,
                 const Invalidation& inv, PersistedState& out) {
  if (inv.hard_token != 0) {
    out.invalidations.push_back({registry, key, true, inv.hard_token,
                                 inv.hard_wall});
  }
  if (inv.soft_token > inv.hard_token) {
    out.invalidations.push_back({registry, key, false, inv.soft_token,
                                 inv.soft_wall});
  }
}

}  // namespace

void Coordinator::Restore(const PersistedState& state) {
  Op op(this);
  replaying_ = true;
  const int64_t now_ms = clock_->NowMs();
  const double now_wall = clock_->WallSeconds();
  // Marks past the horizon are not restored, so neither is any value they
  // voided: a value is never served FRESH again after an invalidation of
  // it was acknowledged, however long the daemon was down.
  std::map<std::pair<std::string, std::string>, Token> forgotten;
  auto voided = [&](const PersistedValue& v) {
    for (const std::string& key : {v.key, std::string()}) {
      auto it = forgotten.find({v.registry, key});
      if (it != forgotten.end() && v.token <= it->second) {
        return true;
      }
    }
    return false;
  };
  for (const PersistedInvalidation& inv : state.invalidations) {
    const int64_t left =
        limits_.invalidation_horizon_ms -
        static_cast<int64_t>((now_wall - inv.wall) * 1000.0);
    last_token_ = std::max(last_token_, inv.mark);
    if (inv.registry.empty()) {  // the daemon-wide mark: kept however old
      ApplyInvalidation(global_invalidation_, inv.hard, inv.mark, inv.wall, 0,
                        {TimerTarget::Kind::kRegistryHorizon, 0, {}, {}},
                        {});
      continue;
    }
    if (left <= 0) {
      Token& mark = forgotten[{inv.registry, inv.key}];
      mark = std::max(mark, inv.mark);
      continue;
    }
    if (!CheckRegistry(inv.registry).ok() ||
        !CheckKeyOrEmpty(inv.key, limits_).ok()) {
      continue;
    }
    if (inv.key.empty()) {
      Registry& registry = GetOrCreateRegistry(inv.registry);
      ApplyInvalidation(registry.invalidation, inv.hard, inv.mark, inv.wall,
                        now_ms + left,
                        {TimerTarget::Kind::kRegistryHorizon, 0,
                         inv.registry, {}},
                        {&registry, nullptr});
    } else {
      Entry& entry = GetOrCreateEntry(inv.registry, inv.key);
      ApplyInvalidation(entry.invalidation, inv.hard, inv.mark, inv.wall,
                        now_ms + left,
                        {TimerTarget::Kind::kEntryHorizon, 0, inv.registry,
                         inv.key},
                        {entry.registry, &entry});
    }
    EnforceBudget();  // marks past their share fold as they come
  }
  // Values come least recently used first. When the budget shrank, the
  // most recent are the ones kept: choose from the newest end, then store
  // oldest first so the LRU order is what it was.
  std::vector<const PersistedValue*> kept;
  uint64_t room = limits_.memory_budget_bytes > UsedBytes()
                      ? limits_.memory_budget_bytes - UsedBytes()
                      : 0;
  for (auto it = state.values.rbegin(); it != state.values.rend(); ++it) {
    const PersistedValue& v = *it;
    last_token_ = std::max(last_token_, v.token);
    const uint64_t cost = v.value.size() + EntryCost(v.key);
    if (voided(v) || !CheckRegistry(v.registry).ok() ||
        !CheckKey(v.key, limits_).ok() ||
        v.value.size() > limits_.max_value_bytes || cost > room ||
        !(v.created_time <=
          now_wall + static_cast<double>(limits_.max_future_skew_ms) / 1000)) {
      continue;
    }
    room -= cost;
    kept.push_back(&v);
  }
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    const PersistedValue& v = **it;
    Entry& entry = GetOrCreateEntry(v.registry, v.key);
    if (v.token > HardInvalidToken(entry)) {
      // Who published it is not journaled: restored values share one
      // tenant of their own, which no caller's identity can name.
      StoreValue(entry, v.value, v.created_time, v.token,
                 GetTenant(kRestoredTenant));
    }
    MaybeCollect(&entry);
  }
  EnforceBudget();  // the room above left out registries' own cost
  RestoreSessions(state);
  replaying_ = false;
}

void Coordinator::RestoreSessions(const PersistedState& state) {
  last_token_ = std::max(last_token_, state.high_water);
  const int64_t now = clock_->NowMs();
  for (const PersistedSession& s : state.sessions) {
    if (s.id == 0 || s.ttl_ms <= 0 || sessions_.count(s.id) != 0) {
      continue;
    }
    Session& session = sessions_[s.id];
    session.id = s.id;
    session.ttl_ms = s.ttl_ms;
    // Keep-alives were the old leader's alone: every session gets one TTL
    // from now to reach this one.
    session.deadline_ms = now + s.ttl_ms;
    session.client_name = s.client_name;
    session.client = s.client;
    session.owner = s.owner;
    session.tenant = GetTenant(s.owner);
    ++session.tenant->sessions;
    ++sessions_per_client_[s.client];
    session.timer = timers_.Add(session.deadline_ms,
                                {TimerTarget::Kind::kSession, s.id, {}, {}});
    AddDeadline(session.deadline_ms);
    // A Publish, Unlock or Abandon answered by the old leader, or lost with
    // it, may be sent again here: a Publish must be answered again, and a
    // release refused as one this session already made.
    for (const PersistedPublish& p : s.recent_publishes) {
      RememberPublish(PublishRequest{p.registry, p.key, s.id, p.token, {},
                                     std::nullopt},
                      p.value_hash, p.created_time);
    }
    for (const PersistedHolderRelease& r : s.recent_releases) {
      RememberRelease(session, r.registry, r.key, r.token,
                      r.kind != GrantKind::kCreator);
    }
  }
  // Oldest first: a request id a session reused names its later grant.
  for (const PersistedGrant& grant : state.grants) {
    RestoreGrant(grant);
  }
  for (const PersistedStamp& stamp : state.stamps) {
    last_token_ = std::max(last_token_, stamp.token);
    if (!CheckRegistry(stamp.registry).ok() ||
        !CheckKey(stamp.key, limits_).ok()) {
      continue;
    }
    Entry& entry = GetOrCreateEntry(stamp.registry, stamp.key);
    entry.lock_only_token = stamp.token;
    entry.lock_only_created_time = stamp.created_time;
    MaybeCollect(&entry);
  }
}

void Coordinator::RestoreGrant(const PersistedGrant& grant) {
  last_token_ = std::max(last_token_, grant.token);
  Session* session = FindSession(grant.session);
  if (session == nullptr || grant.token == 0 ||
      !CheckRegistry(grant.registry).ok() ||
      !CheckKey(grant.key, limits_).ok()) {
    return;
  }
  Entry& entry = GetOrCreateEntry(grant.registry, grant.key);
  const bool is_lock = grant.kind != GrantKind::kCreator;
  if (!is_lock) {
    if (entry.creator) {
      return;  // one creator per key; the log never holds two
    }
    const int64_t now = clock_->NowMs();
    Creator creator;
    creator.session_id = grant.session;
    creator.token = grant.token;
    creator.granted_ms = now;
    creator.deadline_ms = now + grant.timeout_ms;
    creator.lock_only = grant.lock_only;
    creator.request_id = grant.request_id;
    creator.timer = timers_.Add(
        creator.deadline_ms,
        {TimerTarget::Kind::kCreator, creator.token, grant.registry,
         grant.key});
    AddDeadline(creator.deadline_ms);
    entry.creator = creator;
    session->creator_of.insert(&entry);
  } else if (grant.kind == GrantKind::kWriteLock) {
    if (entry.writer_token != 0 || !entry.readers.empty()) {
      return;
    }
    entry.writer_token = grant.token;
    entry.writer_session = grant.session;
    session->locks[grant.token] = &entry;
  } else {
    if (entry.writer_token != 0) {
      return;
    }
    entry.readers[grant.token] = grant.session;
    session->locks[grant.token] = &entry;
  }
  ++session->tenant->grants;
  RememberGrant(grant.session, grant.request_id, entry, grant.token, is_lock);
}

PersistedState Coordinator::Export(const std::function<void()>& at_instant) {
  Op op(this);
  PersistedState state;
  const int64_t now = clock_->NowMs();
  ExportMarks("", "", global_invalidation_, state);
  for (const auto& [name, registry] : registries_) {
    if (registry.invalidation.remember_until_ms > now) {
      ExportMarks(name, "", registry.invalidation, state);
    }
    for (const auto& [key, entry] : registry.entries) {
      if (entry.invalidation.remember_until_ms > now) {
        ExportMarks(name, key, entry.invalidation, state);
      }
    }
  }
  // Least recently used first, as Restore expects. Values are shared, not
  // copied: this lock is held for pointer copies only.
  // A value voided by a mark that is not exported (past the horizon, but
  // still in memory while its entry or registry lives) stays behind: once
  // restored without its mark it would be FRESH again.
  auto voided_unexported = [now](const Invalidation& inv, Token token) {
    return inv.remember_until_ms <= now && token <= inv.soft_token;
  };
  state.values.reserve(lru_.size());
  for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
    const Entry& entry = **it;
    if (voided_unexported(entry.invalidation, entry.value_token) ||
        voided_unexported(entry.registry->invalidation, entry.value_token)) {
      continue;
    }
    state.values.push_back({entry.registry->name, entry.key, entry.value,
                            entry.created_time, entry.value_token});
  }
  at_instant();
  return state;
}

std::vector<PersistedSession> Coordinator::OpenSessions() {
  Op op(this);
  std::vector<PersistedSession> out;
  out.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) {
    out.push_back({id, s.ttl_ms, s.client_name, s.client, s.owner});
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

std::vector<PersistedGrant> Coordinator::HeldGrants() {
  Op op(this);
  std::vector<PersistedGrant> out;
  std::unordered_map<Token, uint64_t> lock_requests;  // token -> request id
  for (const auto& [id, session] : sessions_) {
    lock_requests.insert(session.lock_requests.begin(),
                         session.lock_requests.end());
  }
  auto lock_request = [&lock_requests](Token token) {
    auto it = lock_requests.find(token);
    return it == lock_requests.end() ? uint64_t{0} : it->second;
  };
  for (const auto& [name, registry] : registries_) {
    for (const auto& [key, entry] : registry.entries) {
      if (const auto& c = entry.creator) {
        out.push_back({c->token, GrantKind::kCreator, c->session_id, name,
                       key, c->request_id, c->lock_only,
                       c->deadline_ms - c->granted_ms});
      }
      if (entry.writer_token != 0) {
        out.push_back({entry.writer_token, GrantKind::kWriteLock,
                       entry.writer_session, name, key,
                       lock_request(entry.writer_token),
                       false, 0});
      }
      for (const auto& [token, session] : entry.readers) {
        out.push_back({token, GrantKind::kReadLock, session, name, key,
                       lock_request(token), false, 0});
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.token < b.token; });
  return out;
}

}  // namespace dogpiled::core
