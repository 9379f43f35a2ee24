// What a follower holds in replicated mode: the leader's observable state
// (sessions, grants, values, invalidations), rebuilt by applying the log's
// records in order. It is the Raft state machine, so it is deterministic:
// no clock and no randomness; every node applying the same records holds
// the same state. A new leader restores its Coordinator from it
// (docs/replication.md).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/journal.h"

namespace dogpiled::replication {

class CommittedState final : public core::Journal {
 public:
  // Marks this much older than the newest one applied are forgotten, as the
  // leader forgets them (Limits::invalidation_horizon_ms). Wall times come
  // from the records, stamped by the leader, so every node prunes alike.
  explicit CommittedState(int64_t invalidation_horizon_ms);

  // Journal: one record each, in log order. None can fail: a record that
  // names an unknown session or grant changes what it can and is counted.
  void ValueStored(const core::PersistedValue& value) override;
  void ValueDropped(const std::string& registry,
                    const std::string& key) override;
  void Invalidated(const core::PersistedInvalidation& invalidation) override;
  void SessionOpened(const core::PersistedSession& session) override;
  void SessionEnded(core::SessionId id) override;
  void Granted(const core::PersistedGrant& grant) override;
  void Released(const core::PersistedRelease& release) override;
  void SessionWatching(core::SessionId id) override;
  void LeaderAnnounced(const core::PersistedMember& member) override;

  // Sorted by id, token, and (registry, key).
  std::vector<core::PersistedSession> Sessions() const;
  std::vector<core::PersistedGrant> Grants() const;
  std::vector<core::PersistedValue> Values() const;
  // Key and registry marks still within the horizon, hard and soft as
  // Coordinator::Export gives them; the daemon-wide mark (registry "")
  // is kept however old.
  std::vector<core::PersistedInvalidation> Invalidations() const;
  // The created time of the last lock-only publish of a key.
  std::optional<double> LockOnlyStamp(const std::string& registry,
                                      const std::string& key) const;
  // Everything, for a new leader's Coordinator::Restore and for snapshots;
  // Load replaces this state with one so exported (a snapshot installed).
  core::PersistedState ToPersisted() const;
  void Load(const core::PersistedState& state);
  // The highest token any record carried: a new leader hands out tokens
  // above it, so fencing tokens keep increasing across leaders.
  core::Token HighWater() const { return high_water_; }
  // The member whose announcement was applied last (0: none yet), and the
  // client address a member announced when it led ("" if it never did).
  uint64_t leader() const { return leader_; }
  std::string ClientAddress(uint64_t id) const;
  // Records that named a session or grant this state does not hold (a drop
  // of an absent value is not counted: see ValueDropped). The
  // leader never writes one; a non-zero count is a bug worth an alarm.
  uint64_t unmatched() const { return unmatched_; }

 private:
  using Name = std::pair<std::string, std::string>;  // registry, key
  struct Marks {
    core::Token soft = 0;
    core::Token hard = 0;
    double soft_wall = 0;
    double hard_wall = 0;
  };
  // Raises a key's or registry's marks to an invalidation's.
  static void Raise(Marks& marks, const core::PersistedInvalidation& inv);
  void Prune();
  // Whether a wider mark (the registry's, or the daemon-wide one) already
  // voids all that `inv` would; and dropping the narrower marks a wider one
  // (registry "" for the daemon-wide mark) now covers.
  bool Covered(const core::PersistedInvalidation& inv) const;
  void DropCovered(const std::string& registry);
  // Adds a Publish under grant `token` to its session's recent ones (the
  // leader's Coordinator keeps as many).
  void RememberPublish(core::Token token, size_t value_hash,
                       double created_time);
  // The session that holds `grant` (null if this state lacks it).
  core::PersistedSession* HolderOf(const core::PersistedGrant& grant);
  // Erases the values of a key, or of a registry (key ""), at or below
  // `mark`.
  void EraseVoided(const Name& scope, core::Token mark);

  double horizon_s_;  // not const: Load assigns a whole state
  std::map<core::SessionId, core::PersistedSession> sessions_;
  std::map<core::Token, core::PersistedGrant> grants_;
  std::map<Name, core::PersistedValue> values_;
  std::map<Name, Marks> marks_;
  // Each mark's newest wall time, oldest first; an element whose time is
  // no longer its mark's newest is stale and skipped.
  std::multimap<double, Name> by_wall_;
  double newest_wall_ = 0;
  // Lock-only stamps: the created time, kept until an invalidation of the
  // key or its registry voids it (the leader's judgment needs no more).
  std::map<Name, core::PersistedStamp> lock_only_;
  core::Token high_water_ = 0;
  std::map<uint64_t, core::PersistedMember> members_;
  uint64_t leader_ = 0;
  uint64_t unmatched_ = 0;
};

}  // namespace dogpiled::replication
