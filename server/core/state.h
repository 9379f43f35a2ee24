// The Coordinator's internal records. Not thread-safe: every field is
// touched only under Coordinator::mu_. Entries and registries live in
// unordered_maps, whose nodes never move, so Session and Waiter may point at
// an Entry for as long as they reference it (which also keeps it alive).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/status.h"
#include "core/timer_queue.h"
#include "core/types.h"

namespace dogpiled::core {

struct Entry;
struct Registry;
struct MarkRef;

// The tenant of values restored from disk: who published them is not
// journaled, and no caller's identity can have this name.
inline constexpr char kRestoredTenant[] = "(restored)";

// What one tenant (an identity: see Session::owner) has open, parked, held
// and stored, for its quotas. Kept while any count is non-zero; Sessions,
// Waiters and Entries point at it (unordered_map nodes never move).
struct Tenant {
  std::string name;
  uint64_t sessions = 0;
  uint64_t waiters = 0;
  uint64_t grants = 0;  // held locks and creator roles
  uint64_t stored_bytes = 0;
};

using AcquireCallback = std::function<void(StatusOr<AcquireResult>)>;
using LockCallback = std::function<void(StatusOr<LockResult>)>;

// A grant made for a call that carried a request_id, so a retry of that
// call finds it again (semantics.md section 2).
struct RequestGrant {
  Entry* entry = nullptr;
  Token token = 0;
  bool is_lock = false;
};

struct Session {
  SessionId id = 0;
  int64_t ttl_ms = 0;
  int64_t deadline_ms = 0;
  std::string client_name;
  std::string client;  // for the per-client cap
  // The identity that opened it, and its tenant ("" is the anonymous
  // tenant): every call naming this session must present the same one.
  std::string owner;
  Tenant* tenant = nullptr;
  TimerQueue::TimerId timer = 0;
  std::unordered_set<Entry*> creator_of;
  std::unordered_map<Token, Entry*> locks;
  std::unordered_set<uint64_t> waits;
  // request_id -> the grant it got, while held; request_id -> wait id,
  // while parked; lock token -> request_id, to forget it at release.
  std::unordered_map<uint64_t, RequestGrant> granted_requests;
  std::unordered_map<uint64_t, uint64_t> parked_requests;
  std::unordered_map<Token, uint64_t> lock_requests;
  // The last few accepted Publishes, so a retry of one (same token, same
  // registry and key) answers OK again with the same created_time.
  struct Published {
    Token token = 0;
    size_t name_hash = 0;
    size_t value_hash = 0;  // a retry carries the same value
    double created_time = 0;
  };
  std::deque<Published> recent_publishes;
  // The last few Unlocks and Abandons it made, so a retry of one (same
  // token, registry, key and kind) is refused NOT_HOLDER with "released",
  // which the SDKs count as released. Tokens are never handed out twice,
  // so a retry never touches a later grant.
  struct Released {
    Token token = 0;
    size_t name_hash = 0;
    bool is_lock = false;  // an Unlock, not an Abandon
  };
  std::deque<Released> recent_releases;
};

// A parked Acquire or Lock call.
struct Waiter {
  uint64_t id = 0;
  SessionId session_id = 0;
  Tenant* tenant = nullptr;  // its session's
  Entry* entry = nullptr;
  TimerQueue::TimerId timer = 0;
  int64_t parked_ms = 0;
  bool is_lock = false;
  uint64_t request_id = 0;
  AcquireRequest acquire;      // !is_lock
  AcquireCallback acquire_done;
  LockMode mode = LockMode::kRead;  // is_lock
  LockCallback lock_done;
  std::list<uint64_t>::iterator pos;  // in the entry's line
};

struct Creator {
  SessionId session_id = 0;
  Token token = 0;
  int64_t granted_ms = 0;
  int64_t deadline_ms = 0;
  bool lock_only = false;
  uint64_t request_id = 0;  // of the call it was granted to, if any
  TimerQueue::TimerId timer = 0;
};

// Invalidation marks: every token issued at or before `*_token` is doomed;
// the wall time serves lock-only callers, who present times, not tokens.
struct Invalidation {
  Token soft_token = 0;
  Token hard_token = 0;
  double soft_wall = 0;
  double hard_wall = 0;
  int64_t remember_until_ms = 0;
  TimerQueue::TimerId timer = 0;
  // Place among the remembered marks, oldest first, while remembered: the
  // oldest are folded into the level above when they outgrow their share
  // of the memory budget.
  std::optional<std::list<MarkRef>::iterator> fold_pos;
};

// Who holds a remembered mark: an entry, or a registry (entry null).
struct MarkRef {
  Registry* registry = nullptr;
  Entry* entry = nullptr;
};

struct Entry {
  Registry* registry = nullptr;
  std::string key;

  // The stored value (value mode only).
  bool has_value = false;
  Bytes value;
  double created_time = 0;
  Token value_token = 0;  // token of the creator that published it
  Tenant* value_tenant = nullptr;  // whose memory share it counts against
  std::list<Entry*>::iterator lru_pos;


  // Last accepted lock-only publish: a lock-only caller presenting this
  // stamp (or later) holds a value made after any earlier invalidation,
  // even if its clock is behind ours.
  Token lock_only_token = 0;
  double lock_only_created_time = 0;

  std::optional<Creator> creator;
  // Stale-if-error: no creator is elected before this (monotonic ms).
  int64_t backoff_until_ms = 0;
  TimerQueue::TimerId backoff_timer = 0;
  std::list<uint64_t> dogpile_line;  // waiter ids, first come first served

  Invalidation invalidation;
  // Smoothed creation duration, for XFetch early refresh.
  std::optional<double> creation_ms;

  // Read-write mutex.
  Token writer_token = 0;
  SessionId writer_session = 0;
  std::unordered_map<Token, SessionId> readers;
  std::list<uint64_t> rw_line;
};

struct Registry {
  std::string name;
  std::unordered_map<std::string, Entry> entries;
  Invalidation invalidation;
};

}  // namespace dogpiled::core
