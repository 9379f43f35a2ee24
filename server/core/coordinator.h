// The domain core of dogpiled: sessions, dogpile entries and read-write
// mutexes, driven by an injected clock. It knows nothing about transport.
//
// Thread-safety: every public method may be called from any thread. One
// mutex guards all state. Callbacks of parked calls (and the deadline hook)
// run exactly once, on the thread of whichever call resolved them, after the
// mutex is released, so they may call back into the Coordinator.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/journal.h"
#include "core/limits.h"
#include "core/near_cache.h"
#include "core/observer.h"
#include "core/state.h"
#include "core/status.h"
#include "core/thread_annotations.h"
#include "core/timer_queue.h"
#include "core/types.h"

namespace dogpiled::core {

// Keeps the fencing-token high-water mark durable so tokens never repeat
// across a restart. The core reserves ahead, never waiting: it asks for a
// higher mark well before it needs it, and hands out no token above what
// the store reports durable.
class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // Asks for `high_water` to be made durable soon. Called under the
  // Coordinator's lock: must return at once, never wait on a disk.
  virtual void Reserve(Token high_water) = 0;
  // The highest mark known durable. Thread-safe; called under the lock.
  virtual Token Durable() const = 0;
};

struct CoordinatorOptions {
  Limits limits;
  const Clock* clock = nullptr;  // required; outlives the Coordinator
  TokenStore* token_store = nullptr;  // optional
  Token first_token = 1;  // tokens handed out start above this
  uint64_t seed = 0;      // XFetch draws, and session ids if no source
  // Where session ids come from; the daemon passes a cryptographic source so
  // ids cannot be guessed. Unset: drawn from the seeded generator.
  std::function<uint64_t()> session_id_source;
  Observer* observer = nullptr;  // optional; outlives the Coordinator
  Journal* journal = nullptr;    // optional; outlives the Coordinator
  // Optional; outlives the Coordinator. Without it no watch can be opened
  // and near_cache reads are never registered.
  NearCacheTracker* near_cache = nullptr;
};

class Coordinator {
 public:
  explicit Coordinator(CoordinatorOptions options);
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Sessions.
  // `client` identifies who opens it, for the per-client cap: the caller's
  // identity, else its address. `owner` is the caller's identity ("" for
  // the anonymous tenant): the session is bound to it (see CheckOwner) and
  // counts against that tenant's quotas.
  StatusOr<OpenResult> Open(int64_t ttl_ms, const std::string& client_name,
                            const std::string& client = "",
                            const std::string& owner = "");
  // PERMISSION_DENIED if the session was opened by an identity other than
  // `caller` (the anonymous tenant is an identity too); OK otherwise (an
  // unknown session is left to the call itself).
  Status CheckOwner(SessionId id, const std::string& caller);
  StatusOr<int64_t> KeepAlive(SessionId id);  // returns the granted TTL
  Status Close(SessionId id);

  // Dogpile. Acquire calls `done` exactly once: before it returns when the
  // answer is immediate, later when the call parks. It returns a wait id
  // (0 when already answered) for CancelWait.
  uint64_t Acquire(const AcquireRequest& request, AcquireCallback done);
  StatusOr<double> Publish(const PublishRequest& request,
                           AckWaitPtr* acks = nullptr);
  Status Abandon(const AbandonRequest& request);
  // Invalidate and Publish set `*acks` (when given and a near-cache
  // tracker is attached) to what must be satisfied before answering: the
  // near-caches holding the key have dropped it (near_cache.h).
  Status Invalidate(const InvalidateRequest& request,
                    AckWaitPtr* acks = nullptr);
  StatusOr<PeekResult> Peek(const std::string& registry,
                            const std::string& key, int64_t expire_ms);

  // Opens the near-cache watch of a live session (NearCacheTracker::
  // OpenWatch): under this lock, so no session ends unseen in between.
  // NOT_FOUND for an unknown session, UNAVAILABLE when shutting down or
  // without a tracker.
  StatusOr<uint64_t> OpenWatch(SessionId session, std::function<void()> wake);

  // Read-write mutex; same callback rules as Acquire.
  uint64_t Lock(const LockRequest& request, LockCallback done);
  Status Unlock(const std::string& registry, const std::string& key,
                SessionId session_id, Token token);

  // Takes a parked call out of its line and answers it CANCELLED. No-op if
  // it was answered already.
  void CancelWait(uint64_t wait_id);

  // The answer that carried a grant (a CREATE, or a lock) never reached its
  // caller: the service saw the call cancelled after the core answered it.
  // Releases the grant if `session` still holds it under `token`, as
  // Abandon or Unlock would, so nobody holds a grant it does not know of.
  void ReleaseUndelivered(const std::string& registry, const std::string& key,
                          SessionId session, Token token, bool is_lock);

  // Expires everything due at the clock's now: sessions, creator roles,
  // waits, remembered invalidations.
  void Tick();
  std::optional<int64_t> NextDeadlineMs();
  // Called (outside the lock) whenever a deadline earlier than any reported
  // by NextDeadlineMs() before has been added. Set it before serving.
  void SetDeadlineHook(std::function<void()> hook);

  // New requests get UNAVAILABLE; every parked call is answered UNAVAILABLE
  // (SHUTTING_DOWN, or `why`: a deposed leader says NOT_LEADER).
  void Shutdown();
  void Shutdown(const Status& why);

  // Persistence (persistence.cc). Restore loads values and invalidations
  // before serving; values too old for the memory budget are skipped.
  // Export copies the durable state and, under the same lock, calls
  // `at_instant` (where the journal starts a new log), so the copy and the
  // new log meet exactly.
  // In replicated mode it also takes over the sessions (each with a fresh
  // TTL to reach this leader), held grants (creation timeouts started
  // again), lock-only stamps, and tokens above `high_water`.
  void Restore(const PersistedState& state);
  PersistedState Export(const std::function<void()>& at_instant);
  // Replicated mode: the open sessions and held grants, sorted by id and
  // token, as the journal's records describe them (a follower's committed
  // state must hold exactly these).
  std::vector<PersistedSession> OpenSessions();
  std::vector<PersistedGrant> HeldGrants();

  Stats GetStats();
  const Limits& limits() const { return limits_; }

 private:
  class Op;
  friend class Op;

  // Fires every timer due at the clock's now.
  void FireDue() DP_REQUIRES(mu_);

  // --- sessions (coordinator.cc) ---
  Session* FindSession(SessionId id) DP_REQUIRES(mu_);
  void EndSession(Session* session, bool expired) DP_REQUIRES(mu_);

  // --- entries and registries (coordinator.cc) ---
  Entry& GetOrCreateEntry(const std::string& registry,
                          const std::string& key) DP_REQUIRES(mu_);
  Registry& GetOrCreateRegistry(const std::string& name) DP_REQUIRES(mu_);
  Entry* FindEntry(const std::string& registry, const std::string& key)
      DP_REQUIRES(mu_);
  Registry* FindRegistry(const std::string& name) DP_REQUIRES(mu_);
  // Erases the entry (and its registry) if nothing references it.
  void MaybeCollect(Entry* entry) DP_REQUIRES(mu_);
  void MaybeCollectRegistry(Registry* registry) DP_REQUIRES(mu_);
  StatusOr<Token> NextToken() DP_REQUIRES(mu_);

  // --- request ids (requests.cc) ---
  // A retry of a call with the same request_id as one that is parked or
  // holds its grant: answers it (returns 0) or takes the parked call's place
  // (returns the new wait id). nullopt: not a retry, decide as usual.
  std::optional<uint64_t> RetryAcquire(Session& session,
                                       const AcquireRequest& request,
                                       AcquireCallback& done)
      DP_REQUIRES(mu_);
  std::optional<uint64_t> RetryLock(Session& session,
                                    const LockRequest& request,
                                    LockCallback& done) DP_REQUIRES(mu_);
  // Gives a parked call a new wait id, so a cancel meant for the call it
  // replaced cannot reach it.
  uint64_t Rekey(uint64_t wait_id) DP_REQUIRES(mu_);
  // A retry takes over a parked call: the old one is answered ABORTED, the
  // waiter keeps its place under a new id and waits `wait_ms` from now.
  Waiter& TakeOver(uint64_t wait_id, int64_t wait_ms) DP_REQUIRES(mu_);
  void RememberGrant(SessionId session, uint64_t request_id, Entry& entry,
                     Token token, bool is_lock) DP_REQUIRES(mu_);
  void ForgetGrant(SessionId session, uint64_t request_id, Token token)
      DP_REQUIRES(mu_);
  // Idempotent Publish: what an accepted Publish with this session, token,
  // registry and key answered, if one was.
  std::optional<double> PublishedBefore(const PublishRequest& request,
                                        size_t value_hash) DP_REQUIRES(mu_);
  void RememberPublish(const PublishRequest& request, size_t value_hash,
                       double created_time) DP_REQUIRES(mu_);
  // A repeated Unlock (is_lock) or Abandon: whether this session's own
  // call released `token` on this key lately (its NOT_HOLDER then says
  // "released").
  bool ReleasedBefore(const Session& session, const std::string& registry,
                      const std::string& key, Token token,
                      bool is_lock) const DP_REQUIRES(mu_);
  void RememberRelease(Session& session, const std::string& registry,
                       const std::string& key, Token token, bool is_lock)
      DP_REQUIRES(mu_);
  void Remember(Invalidation& inv, bool hard, TimerTarget target,
                MarkRef holder) DP_REQUIRES(mu_);
  // Applies an invalidation mark (new, restored or folded) with its horizon
  // timer. A null holder registry is the daemon-wide mark.
  void ApplyInvalidation(Invalidation& inv, bool hard, Token mark,
                         double wall, int64_t remember_until_ms,
                         TimerTarget target, MarkRef holder) DP_REQUIRES(mu_);
  // Restore's replicated half (persistence.cc).
  void RestoreSessions(const PersistedState& state) DP_REQUIRES(mu_);
  void RestoreGrant(const PersistedGrant& grant) DP_REQUIRES(mu_);
  void StoreValue(Entry& entry, Bytes value, double created_time,
                  Token token, Tenant* tenant) DP_REQUIRES(mu_);
  void AddDeadline(int64_t deadline_ms) DP_REQUIRES(mu_);
  // A change goes to the journal (none while Restore replays one).
  bool Journaling() const DP_REQUIRES(mu_) {
    return journal_ != nullptr && !replaying_;
  }
  void Defer(std::function<void()> fn) DP_REQUIRES(mu_);

  // --- values and memory budget (memory.cc) ---
  void DropValue(Entry& entry) DP_REQUIRES(mu_);
  bool InUse(const Entry& entry) const;
  // Room for `bytes` of `tenant`'s value in `entry`, beside what `entry`
  // holds now: evicts that tenant's own least recently used values first,
  // then values of tenants above their fair share; RESOURCE_EXHAUSTED
  // (changing nothing) if that is not enough.
  Status MakeRoom(Entry& entry, uint64_t bytes, Tenant* tenant)
      DP_REQUIRES(mu_);
  void TouchLru(Entry& entry) DP_REQUIRES(mu_);
  uint64_t UsedBytes() const DP_REQUIRES(mu_);
  uint64_t EntryCost(const std::string& key) const;
  // Keeps remembered marks within their share (folding the oldest up a
  // level) and everything within the budget (evicting unused values).
  void EnforceBudget() DP_REQUIRES(mu_);
  void TrackMark(Invalidation& inv, MarkRef holder) DP_REQUIRES(mu_);
  void UntrackMark(Invalidation& inv) DP_REQUIRES(mu_);
  void FoldOldestMark() DP_REQUIRES(mu_);
  uint64_t MarkShare() const;

  // --- waiters (coordinator.cc) ---
  Status CheckWaitCaps(const std::list<uint64_t>& line,
                       const Session& session) const DP_REQUIRES(mu_);
  Waiter& Park(Entry& entry, SessionId session, int64_t wait_ms,
               std::list<uint64_t>& line, uint64_t request_id)
      DP_REQUIRES(mu_);
  // Unlinks a waiter everywhere and returns it (for answering).
  Waiter Unpark(uint64_t wait_id) DP_REQUIRES(mu_);
  void Answer(Waiter& waiter, const Status& status) DP_REQUIRES(mu_);
  void FireTimer(const TimerTarget& target) DP_REQUIRES(mu_);

  // --- dogpile (dogpile.cc) ---
  enum class Decision { kFresh, kStale, kCreate, kWait };
  Decision Decide(Entry& entry, const AcquireRequest& request,
                  AcquireResult& result) DP_REQUIRES(mu_);
  // Drops a creator whose token an invalidation doomed, and serves the line.
  void Normalize(Entry& entry) DP_REQUIRES(mu_);
  Status GrantCreator(Entry& entry, const AcquireRequest& request,
                      AcquireResult& result) DP_REQUIRES(mu_);
  // Why a grant ends, for its release record: a Publish (a lock-only
  // one's stamp goes with it), its holder's own Abandon or Unlock (the
  // session remembers it, so a retry's NOT_HOLDER says it was released),
  // or anything else (a timeout, an invalidation, its session's end, an
  // undelivered answer).
  enum class Ending { kOther, kPublished, kByHolder };
  void ReleaseCreator(Entry& entry, Ending why = Ending::kOther)
      DP_REQUIRES(mu_);
  // Re-decides the parked Acquires in arrival order (after the role was
  // freed or a value published).
  void ServeDogpileLine(Entry& entry) DP_REQUIRES(mu_);
  void CountOutcome(Outcome outcome) DP_REQUIRES(mu_);
  // A FRESH answer with a value: its remaining lifetime, and the near-cache
  // registration the request asked for.
  void NoteFresh(const AcquireRequest& request, AcquireResult& result)
      DP_REQUIRES(mu_);
  Token SoftInvalidToken(const Entry& entry) const DP_REQUIRES(mu_);
  Token HardInvalidToken(const Entry& entry) const DP_REQUIRES(mu_);
  // The entry whose creator role `token` of `session` holds (a timed-out
  // role normalized away first); else NOT_HOLDER, counted as a fencing
  // rejection, and the entry collected if nothing else keeps it.
  StatusOr<Entry*> HeldCreator(const std::string& registry,
                               const std::string& key, SessionId session,
                               Token token) DP_REQUIRES(mu_);

  // --- tenants and their quotas (tenants.cc) ---
  Tenant* GetTenant(const std::string& name) DP_REQUIRES(mu_);
  // Forgets a tenant that has nothing open, parked, held or stored.
  void MaybeDropTenant(Tenant* tenant) DP_REQUIRES(mu_);
  // RESOURCE_EXHAUSTED if `session` may take no further lock or role.
  Status CheckGrantCaps(const Session& session) const DP_REQUIRES(mu_);
  // The stored bytes each tenant may keep before others may evict its
  // values: the budget shared among the tenants that store values.
  uint64_t FairShare(const Tenant* publisher) const DP_REQUIRES(mu_);

  // --- rw mutex (rwmutex.cc) ---
  static bool CanGrant(const Entry& entry, LockMode mode);
  StatusOr<Token> GrantLock(Entry& entry, SessionId session, LockMode mode,
                            uint64_t request_id) DP_REQUIRES(mu_);
  void ServeRwLine(Entry& entry) DP_REQUIRES(mu_);
  void ReleaseLock(Entry& entry, Token token, Ending why = Ending::kOther)
      DP_REQUIRES(mu_);

  // Constant after construction.
  const Limits limits_;
  const Clock* const clock_;
  TokenStore* const token_store_;
  const std::function<uint64_t()> session_id_source_;
  Observer default_observer_;
  Observer* const observer_;
  Journal* const journal_;
  NearCacheTracker* const near_cache_;

  Mutex mu_;
  std::function<void()> deadline_hook_ DP_GUARDED_BY(mu_);
  std::optional<int64_t> reported_deadline_ DP_GUARDED_BY(mu_);
  bool deadline_moved_ DP_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> deferred_ DP_GUARDED_BY(mu_);
  bool shutting_down_ DP_GUARDED_BY(mu_) = false;
  bool replaying_ DP_GUARDED_BY(mu_) = false;  // Restore: journal nothing
  std::mt19937_64 rng_ DP_GUARDED_BY(mu_);
  Token last_token_ DP_GUARDED_BY(mu_);
  Token requested_token_ DP_GUARDED_BY(mu_) = 0;  // asked of token_store_
  uint64_t next_wait_id_ DP_GUARDED_BY(mu_) = 1;
  std::unordered_map<SessionId, Session> sessions_ DP_GUARDED_BY(mu_);
  std::unordered_map<std::string, uint64_t> sessions_per_client_
      DP_GUARDED_BY(mu_);
  std::unordered_map<std::string, Tenant> tenants_ DP_GUARDED_BY(mu_);
  std::unordered_map<std::string, Registry> registries_ DP_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, Waiter> waiters_ DP_GUARDED_BY(mu_);
  std::list<Entry*> lru_ DP_GUARDED_BY(mu_);  // front: most recently used
  uint64_t entry_count_ DP_GUARDED_BY(mu_) = 0;
  // Memory: bookkeeping and key bytes of every entry and registry, value
  // bytes, and the remembered marks (oldest first) with what they cost.
  uint64_t entries_bytes_ DP_GUARDED_BY(mu_) = 0;
  uint64_t value_bytes_ DP_GUARDED_BY(mu_) = 0;
  std::list<MarkRef> marks_ DP_GUARDED_BY(mu_);
  uint64_t marks_bytes_ DP_GUARDED_BY(mu_) = 0;
  // Daemon-wide mark that the oldest registry marks fold into.
  Invalidation global_invalidation_ DP_GUARDED_BY(mu_);
  TimerQueue timers_ DP_GUARDED_BY(mu_);
  Stats stats_ DP_GUARDED_BY(mu_);
};

}  // namespace dogpiled::core
