#include "replication/committed_state.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace dogpiled::replication {
namespace {

template <typename Map>
std::vector<typename Map::mapped_type> MappedValues(const Map& map) {
  std::vector<typename Map::mapped_type> out;
  out.reserve(map.size());
  for (const auto& [key, value] : map) {
    out.push_back(value);
  }
  return out;
}

// Keeps the newest few of a session's calls, as the leader's Coordinator
// does.
template <typename T>
void KeepNewest(std::vector<T>& recent, T call) {
  recent.push_back(std::move(call));
  if (recent.size() > core::kRecentPerSession) {
    recent.erase(recent.begin());
  }
}

}  // namespace

using core::PersistedGrant;
using core::PersistedInvalidation;
using core::PersistedSession;
using core::PersistedValue;

void CommittedState::Raise(Marks& marks, const PersistedInvalidation& inv) {
  marks.soft = std::max(marks.soft, inv.mark);
  marks.soft_wall = std::max(marks.soft_wall, inv.wall);
  if (inv.hard) {
    marks.hard = std::max(marks.hard, inv.mark);
    marks.hard_wall = std::max(marks.hard_wall, inv.wall);
  }
}

CommittedState::CommittedState(int64_t invalidation_horizon_ms)
    : horizon_s_(static_cast<double>(invalidation_horizon_ms) / 1000.0) {}

void CommittedState::ValueStored(const PersistedValue& value) {
  values_[{value.registry, value.key}] = value;
  high_water_ = std::max(high_water_, value.token);
  // Stored by a Publish under a grant still held: its release follows.
  RememberPublish(value.token, std::hash<std::string>()(value.value.str()),
                  value.created_time);
}

void CommittedState::RememberPublish(core::Token token, size_t value_hash,
                                     double created_time) {
  auto grant = grants_.find(token);
  if (grant == grants_.end()) {
    return;
  }
  if (PersistedSession* session = HolderOf(grant->second)) {
    KeepNewest(session->recent_publishes,
               core::PersistedPublish{token, grant->second.registry,
                                      grant->second.key, value_hash,
                                      created_time});
  }
}

PersistedSession* CommittedState::HolderOf(const PersistedGrant& grant) {
  auto session = sessions_.find(grant.session);
  return session == sessions_.end() ? nullptr : &session->second;
}

void CommittedState::ValueDropped(const std::string& registry,
                                  const std::string& key) {
  // Not counted when absent: a value voided by a forgotten mark is erased
  // here (Prune) before the leader, which drops it lazily, says so.
  values_.erase({registry, key});
}

void CommittedState::Invalidated(const PersistedInvalidation& inv) {
  high_water_ = std::max(high_water_, inv.mark);
  if (Covered(inv)) {
    return;  // a wider mark voids as much already (a fold came first)
  }
  Marks& marks = marks_[{inv.registry, inv.key}];
  Raise(marks, inv);
  if (!inv.registry.empty()) {  // the daemon-wide mark is never pruned
    by_wall_.emplace(marks.soft_wall, Name{inv.registry, inv.key});
  }
  newest_wall_ = std::max(newest_wall_, inv.wall);
  if (inv.key.empty()) {
    DropCovered(inv.registry);
  }
  Prune();
  // A stamp vouches only for what is newer than every invalidation: the
  // leader's check (dogpile.cc) fails from now on, so it can go.
  if (!inv.key.empty()) {
    lock_only_.erase({inv.registry, inv.key});
  } else if (inv.registry.empty()) {
    lock_only_.clear();
  } else {
    auto first = lock_only_.lower_bound({inv.registry, ""});
    auto last = first;
    while (last != lock_only_.end() && last->first.first == inv.registry) {
      ++last;
    }
    lock_only_.erase(first, last);
  }
}

bool CommittedState::Covered(const PersistedInvalidation& inv) const {
  auto covers = [&](const Name& wider) {
    auto it = marks_.find(wider);
    return it != marks_.end() && inv.mark <= it->second.soft &&
           (!inv.hard || inv.mark <= it->second.hard);
  };
  if (inv.registry.empty()) {
    return false;
  }
  return covers({"", ""}) || (!inv.key.empty() && covers({inv.registry, ""}));
}

void CommittedState::DropCovered(const std::string& registry) {
  // A fold moves marks up a level (the leader keeps its memory share of
  // marks so): the narrower marks a wider one now covers go, as they do on
  // the leader, so a new leader restoring these marks folds no further.
  const Marks wide = marks_.at({registry, ""});
  auto first = registry.empty() ? marks_.begin()
                                : marks_.lower_bound({registry, ""});
  for (auto it = first; it != marks_.end() &&
                        (registry.empty() || it->first.first == registry);) {
    const bool narrower = it->first != Name{registry, ""};
    if (narrower && it->second.soft <= wide.soft &&
        it->second.hard <= wide.hard) {
      it = marks_.erase(it);
    } else {
      ++it;
    }
  }
}

void CommittedState::Prune() {
  // The leader forgets a mark `horizon` after it was made; the newest
  // record's wall time stands in for "now", which a state machine lacks.
  while (!by_wall_.empty() &&
         by_wall_.begin()->first + horizon_s_ <= newest_wall_) {
    auto oldest = by_wall_.begin();
    auto it = marks_.find(oldest->second);
    if (it != marks_.end() && it->second.soft_wall == oldest->first) {
      // What the mark voided goes with it: restored without its mark, a
      // value would be FRESH again.
      EraseVoided(it->first, it->second.soft);
      marks_.erase(it);
    }
    by_wall_.erase(oldest);
  }
}

void CommittedState::EraseVoided(const Name& scope, core::Token mark) {
  if (!scope.second.empty()) {
    auto it = values_.find(scope);
    if (it != values_.end() && it->second.token <= mark) {
      values_.erase(it);
    }
    return;
  }
  for (auto it = values_.lower_bound({scope.first, ""});
       it != values_.end() && it->first.first == scope.first;) {
    it = it->second.token <= mark ? values_.erase(it) : std::next(it);
  }
}

void CommittedState::SessionOpened(const PersistedSession& session) {
  sessions_[session.id] = session;
}

void CommittedState::SessionWatching(core::SessionId id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    ++unmatched_;
    return;
  }
  it->second.watching = true;
}

void CommittedState::SessionEnded(core::SessionId id) {
  if (sessions_.erase(id) == 0) {
    ++unmatched_;
  }
  // The leader releases a session's grants, one record each, before it
  // ends it; any left here would be a grant nobody could release.
  for (auto it = grants_.begin(); it != grants_.end();) {
    if (it->second.session == id) {
      ++unmatched_;
      it = grants_.erase(it);
    } else {
      ++it;
    }
  }
}

void CommittedState::Granted(const PersistedGrant& grant) {
  if (sessions_.count(grant.session) == 0) {
    ++unmatched_;
  }
  // Held by token: a request id a session reuses for a second call names
  // a second grant, and the leader holds both.
  grants_[grant.token] = grant;
  high_water_ = std::max(high_water_, grant.token);
}

void CommittedState::Released(const core::PersistedRelease& release) {
  auto it = grants_.find(release.token);
  if (it == grants_.end()) {
    ++unmatched_;
    return;
  }
  if (release.lock_only_created_time) {
    lock_only_[{it->second.registry, it->second.key}] = {
        it->second.registry, it->second.key, release.token,
        *release.lock_only_created_time};
    RememberPublish(release.token, core::kAnyValue,
                    *release.lock_only_created_time);
  }
  // Released by its holder's own call: a retry of it is told so.
  PersistedSession* holder = HolderOf(it->second);
  if (release.by_holder && holder != nullptr) {
    KeepNewest(holder->recent_releases,
               core::PersistedHolderRelease{release.token, it->second.kind,
                                            it->second.registry,
                                            it->second.key});
  }
  grants_.erase(it);
}

std::vector<PersistedSession> CommittedState::Sessions() const {
  return MappedValues(sessions_);
}

std::vector<PersistedGrant> CommittedState::Grants() const {
  return MappedValues(grants_);
}

std::vector<PersistedValue> CommittedState::Values() const {
  return MappedValues(values_);
}

std::vector<PersistedInvalidation> CommittedState::Invalidations() const {
  std::vector<PersistedInvalidation> out;
  for (const auto& [name, m] : marks_) {
    if (m.hard != 0) {
      out.push_back({name.first, name.second, true, m.hard, m.hard_wall});
    }
    if (m.soft > m.hard) {
      out.push_back({name.first, name.second, false, m.soft, m.soft_wall});
    }
  }
  return out;
}

std::optional<double> CommittedState::LockOnlyStamp(
    const std::string& registry, const std::string& key) const {
  auto it = lock_only_.find({registry, key});
  if (it == lock_only_.end()) {
    return std::nullopt;
  }
  return it->second.created_time;
}

void CommittedState::Load(const core::PersistedState& state) {
  const uint64_t unmatched = unmatched_;
  *this = CommittedState(static_cast<int64_t>(horizon_s_ * 1000.0));
  unmatched_ = unmatched;  // an alarm is not reset by a snapshot
  for (const auto& s : state.sessions) {
    sessions_[s.id] = s;
  }
  for (const auto& g : state.grants) {
    grants_[g.token] = g;
  }
  for (const auto& v : state.values) {
    values_[{v.registry, v.key}] = v;
  }
  for (const auto& inv : state.invalidations) {
    Raise(marks_[{inv.registry, inv.key}], inv);
    newest_wall_ = std::max(newest_wall_, inv.wall);
  }
  for (const auto& [name, marks] : marks_) {
    if (!name.first.empty()) {
      by_wall_.emplace(marks.soft_wall, name);
    }
  }
  for (const auto& s : state.stamps) {
    lock_only_[{s.registry, s.key}] = s;
  }
  high_water_ = state.high_water;
  for (const auto& m : state.members) {
    members_[m.id] = m;
  }
  leader_ = state.leader;
}

core::PersistedState CommittedState::ToPersisted() const {
  core::PersistedState out;
  out.values = Values();
  out.invalidations = Invalidations();
  out.sessions = Sessions();
  out.grants = Grants();
  out.stamps = MappedValues(lock_only_);
  out.high_water = high_water_;
  out.members = MappedValues(members_);
  out.leader = leader_;
  return out;
}

void CommittedState::LeaderAnnounced(const core::PersistedMember& member) {
  members_[member.id] = member;
  leader_ = member.id;
}

std::string CommittedState::ClientAddress(uint64_t id) const {
  auto it = members_.find(id);
  return it == members_.end() ? "" : it->second.client_address;
}

}  // namespace dogpiled::replication
