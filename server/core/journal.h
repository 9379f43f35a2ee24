// What the core tells durable storage, and what storage gives back at
// start-up, so values and invalidations survive a restart and a restarted
// daemon does not send every client to the backend at once. The core only
// describes changes; the daemon decides files and fsync policy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace dogpiled::core {

struct PersistedValue {
  std::string registry;
  std::string key;
  Bytes value;
  double created_time = 0;
  Token token = 0;  // the creator's token: orders it against invalidations
};

struct PersistedInvalidation {
  std::string registry;
  std::string key;  // empty: the whole registry
  bool hard = false;
  Token mark = 0;   // tokens at or below it are doomed
  double wall = 0;  // when, epoch seconds
};

// Replicated mode (docs/replication.md): the rest of what a client can
// observe, so that a follower applying the log holds every session and
// grant the leader answered, and a new leader can take them over.
enum class GrantKind { kCreator = 1, kReadLock = 2, kWriteLock = 3 };

// How many Publishes, and how many Unlocks and Abandons, a session
// remembers for retries: a client retries the call it just sent, so a few
// cover any pipelining. The Coordinator and the committed state keep alike.
inline constexpr size_t kRecentPerSession = 8;

// A Publish a session made lately: a retry of it (same token, key and
// value) at a new leader is answered again, not refused for the role it
// gave up.
// The value hash of a remembered lock-only publish: it stored no value,
// so a retry with any value matches.
inline constexpr size_t kAnyValue = 0;

struct PersistedPublish {
  Token token = 0;
  std::string registry;
  std::string key;
  size_t value_hash = 0;  // std::hash of the value; kAnyValue: lock-only
  double created_time = 0;
};

// An Unlock or Abandon a session made lately: a retry of it (same token,
// key and kind), here or at a new leader, is refused NOT_HOLDER with
// "released" = "true", which the SDKs count as released.
struct PersistedHolderRelease {
  Token token = 0;
  GrantKind kind = GrantKind::kCreator;  // of the grant it released
  std::string registry;
  std::string key;
};

struct PersistedSession {
  SessionId id = 0;
  int64_t ttl_ms = 0;
  std::string client_name;
  std::string client;  // for the per-client cap
  std::string owner;   // the identity (tenant) it is bound to
  // Replicated mode: rebuilt from the records that made them, and carried
  // in snapshots, so whichever member leads next answers their retries.
  std::vector<PersistedPublish> recent_publishes{};
  std::vector<PersistedHolderRelease> recent_releases{};
  // It opened a near-cache watch (Dogpile.Watch) at some leader: a new
  // leader treats it as holding any key until it shows it dropped them.
  bool watching = false;
};

// A member of a replicated group that led it, and the address its clients
// reach it on: followers name it in their refusals (docs/replication.md).
struct PersistedMember {
  uint64_t id = 0;
  std::string client_address;
};

struct PersistedGrant {
  Token token = 0;
  GrantKind kind = GrantKind::kCreator;
  SessionId session = 0;
  std::string registry;
  std::string key;
  uint64_t request_id = 0;  // of the call it answered (0: none)
  bool lock_only = false;   // a creator role in lock-only mode
  // A creator role's creation timeout: a duration, since monotonic clocks
  // differ between nodes (a new leader starts it again).
  int64_t timeout_ms = 0;
};

struct PersistedRelease {
  Token token = 0;
  // A lock-only creator that published: the created time it presented,
  // against which later lock-only callers are judged.
  std::optional<double> lock_only_created_time;
  // Released by its holder's own Unlock or Abandon (not by a Publish, a
  // timeout, an invalidation or its session's end): a retry of that call
  // is told that it released the grant.
  bool by_holder = false;
};

// Called with the Coordinator's lock held, in the order the changes
// happened: implementations hand the record to a writer and return at once,
// never waiting on a write or a sync (values are shared, not copied).
class Journal {
 public:
  virtual ~Journal() = default;
  virtual void ValueStored(const PersistedValue& value) = 0;
  virtual void ValueDropped(const std::string& registry,
                            const std::string& key) = 0;
  virtual void Invalidated(const PersistedInvalidation& invalidation) = 0;

  // Replicated mode only; a single node's journal keeps none of these (a
  // restart ends every session). A session's grants are released, one
  // record each, before it ends.
  virtual void SessionOpened(const PersistedSession& /*session*/) {}
  virtual void SessionEnded(SessionId /*id*/) {}
  virtual void Granted(const PersistedGrant& /*grant*/) {}
  virtual void Released(const PersistedRelease& /*release*/) {}
  // The session opened a near-cache watch (journaled before the watch's
  // first event, so committed before a KeepAlive naming it is answered).
  virtual void SessionWatching(SessionId /*id*/) {}
  // A new leader's first entry: it leads from here on. Never written by
  // the Coordinator; the replicated journal proposes it on taking the lead.
  virtual void LeaderAnnounced(const PersistedMember& /*member*/) {}
};

// Tells a caller when the changes journaled so far are as durable as the
// fsync policy promises, so an answer that depends on durability goes out
// only then, without any lock held meanwhile.
class DurabilityBarrier {
 public:
  virtual ~DurabilityBarrier() = default;
  // OK, or UNAVAILABLE (reason STORAGE_FAILED) once a write or sync failed:
  // then nothing new can be made durable.
  virtual Status Health() const = 0;
  // Calls `done` exactly once, when every record journaled before this call
  // is durable (OK) or never will be (UNAVAILABLE). It may run at once on
  // this thread, or later on the writer's.
  virtual void AfterDurable(std::function<void(Status)> done) = 0;
};

// The last lock-only publish of a key: lock-only callers presenting this
// created time (or later) hold a value made after any earlier invalidation.
struct PersistedStamp {
  std::string registry;
  std::string key;
  Token token = 0;  // the publishing creator's
  double created_time = 0;
};

// Everything durable, as of one instant.
struct PersistedState {
  std::vector<PersistedValue> values;
  std::vector<PersistedInvalidation> invalidations;
  // Replicated mode only: what a new leader takes over from the committed
  // state (docs/replication.md). Empty on a single node.
  std::vector<PersistedSession> sessions;
  std::vector<PersistedGrant> grants;  // by token, oldest first
  std::vector<PersistedStamp> stamps;
  Token high_water = 0;  // no token at or below it is handed out again
  // Every member that has led, with its client address; the last
  // announced leader is `leader`.
  std::vector<PersistedMember> members;
  uint64_t leader = 0;
};

}  // namespace dogpiled::core
