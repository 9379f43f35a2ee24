// Near-cache tracking (docs/near-cache.md): which session's near-cache
// holds which key, the watches that carry invalidations to those caches,
// and the acks an Invalidate or Publish waits for before it is answered.
//
// A push is satisfied when its watch acks it, when the session ends, when
// the session opens a new watch (the client dropped everything first), or
// when a KeepAlive of the session names another watch (the client trusts a
// watch only after a KeepAlive naming it was answered, so naming another
// one proves it no longer serves what this one covered).
//
// Thread-safety: every public method may be called from any thread; one
// mutex guards all state. The Coordinator calls OpenWatch, Track,
// Invalidate and SessionEnded under its own lock (lock order: Coordinator,
// then tracker); the tracker never calls into the Coordinator. Callbacks
// (watch wake-ups, satisfied AckWaits) never run under the tracker's lock:
// those methods queue them and Flush() runs them, which the Coordinator
// does after releasing its lock; every other method flushes by itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/limits.h"
#include "core/status.h"
#include "core/thread_annotations.h"
#include "core/types.h"

namespace dogpiled::core {

// What one Invalidate or Publish waits for: a count of pushes not yet
// satisfied. Thread-safe.
class AckWait {
 public:
  // Calls `done` exactly once: OK when every push is satisfied, or
  // UNAVAILABLE when the daemon shuts down first. May run at once, on this
  // thread.
  void Then(std::function<void(Status)> done);

 private:
  friend class NearCacheTracker;
  // Returns the callback to run (outside any lock) if this completed it.
  std::function<void()> Resolve(const Status& status);
  std::function<void()> Release();  // one push satisfied

  Mutex mu_;
  uint64_t remaining_ DP_GUARDED_BY(mu_) = 0;
  std::optional<Status> result_ DP_GUARDED_BY(mu_);
  std::function<void(Status)> done_ DP_GUARDED_BY(mu_);
};
using AckWaitPtr = std::shared_ptr<AckWait>;

enum class WatchEventKind { kSubscribed = 1, kInvalidated = 2, kHeartbeat = 3 };

// One event for a watch's stream (dogpiled.v1.WatchEvent).
struct WatchEvent {
  WatchEventKind kind = WatchEventKind::kHeartbeat;
  uint64_t seq = 0;
  std::string registry;  // kInvalidated: empty registry and key: everything
  std::string key;       // kInvalidated: empty: the whole registry
  uint64_t watch_id = 0;
  int64_t heartbeat_ms = 0;
};

struct NearCacheStats {
  uint64_t watches = 0;        // live or broken, not yet forgotten
  uint64_t tracked_keys = 0;   // (session, key) pairs
  uint64_t unacked_pushes = 0;
};

class NearCacheTracker {
 public:
  // `clock` outlives the tracker. Uses watch_heartbeat_ms,
  // watch_ack_timeout_ms and max_tracked_keys of `limits`. Watch ids start
  // at `first_watch_id`: each term of a replicated group's leadership has
  // its own tracker and range, so an id never names two watches.
  NearCacheTracker(const Clock* clock, const Limits& limits,
                   uint64_t first_watch_id = 1);
  NearCacheTracker(const NearCacheTracker&) = delete;
  NearCacheTracker& operator=(const NearCacheTracker&) = delete;

  // --- under the Coordinator's lock (queue callbacks for Flush) ---

  // A new watch for a live session; an earlier one is closed (ABORTED,
  // WATCH_REPLACED), its pushes satisfied and the session's keys forgotten.
  // `wake` is called (outside every lock) whenever the watch has something
  // to send or has closed. Returns the watch id (non-zero).
  uint64_t OpenWatch(SessionId session, std::function<void()> wake);
  // A FRESH near_cache read: registers (registry, key) as held by the
  // session under its live watch and returns that watch id; 0 (nothing
  // registered) without a live watch or past max_tracked_keys.
  uint64_t Track(SessionId session, const std::string& registry,
                 const std::string& key);
  // Pushes a drop of (registry, key) (empty key: the registry; both empty:
  // everything) to every holder, and returns what to wait for: those pushes
  // and every earlier unsatisfied push the scope overlaps (a concurrent or
  // retried call must not return while an older drop is unapplied).
  AckWaitPtr Invalidate(const std::string& registry, const std::string& key);
  void SessionEnded(SessionId session);

  // A replicated group's new leader, before it serves: the session opened
  // a watch at an earlier leader, which this tracker never saw, and may
  // still serve values under it. It counts as holding everything under a
  // broken watch with one unacked push of everything, so every Invalidate
  // and Publish waits until the session shows it dropped them: it ends,
  // opens a watch here, or names no watch in a KeepAlive. Naming a watch
  // of an earlier leader proves nothing; that KeepAlive is answered
  // watch_lost, and the client then drops and names none.
  void Inherit(SessionId session);

  // Runs queued callbacks. Call without holding any lock.
  void Flush();

  // --- from the transport, without the Coordinator's lock ---

  // The next event to write on `watch_id`; nullopt when there is none.
  // When the watch is closed and nothing is left, `*closed` gets why.
  std::optional<WatchEvent> NextEvent(uint64_t watch_id, Status* closed);
  // Cumulative ack. INVALID_ARGUMENT naming ack_seq if above what was sent.
  Status Ack(uint64_t watch_id, uint64_t seq);
  // The watch's stream ended. Its unacked pushes stay unsatisfied (the
  // client may still be serving its cache) until the session ends, opens a
  // new watch or names another in a KeepAlive.
  void WatchGone(uint64_t watch_id);
  // A KeepAlive of `session` naming `watch_id` (0: none). Returns
  // watch_lost: the named watch is broken, replaced, or has a push unacked
  // for longer than the ack timeout.
  bool KeepAlive(SessionId session, uint64_t watch_id);
  // Queues a heartbeat on each live watch that sent nothing for half the
  // interval. The daemon calls it every heartbeat interval.
  void Tick();
  // Every wait is answered `why`, every watch closed with it (UNAVAILABLE:
  // shutting down, or a replicated leader deposed).
  void Shutdown(const Status& why);
  void Shutdown();

  NearCacheStats GetStats();
  int64_t heartbeat_ms() const { return heartbeat_ms_; }

 private:
  struct Push {
    std::string registry;
    std::string key;
    int64_t sent_ms = 0;
    std::vector<AckWaitPtr> waits;
  };
  struct Watch {
    uint64_t id = 0;
    SessionId session = 0;
    std::function<void()> wake;
    bool broken = false;  // its stream ended
    bool inherited = false;  // Inherit(): a watch of an earlier leader
    std::optional<Status> closed;  // the daemon ended it
    uint64_t next_seq = 1;
    uint64_t handed_seq = 0;  // highest seq given to the writer
    int64_t last_sent_ms = 0;
    std::deque<WatchEvent> outbox;
    std::map<uint64_t, Push> unacked;  // by seq
  };
  struct SessionState {
    uint64_t watch_id = 0;  // current watch (live or broken), 0: none
    std::set<std::pair<std::string, std::string>> keys;
  };

  Watch* FindWatch(uint64_t id) DP_REQUIRES(mu_);
  void Enqueue(Watch& watch, WatchEvent event) DP_REQUIRES(mu_);
  // Satisfies every unacked push of the watch (seq <= up_to).
  void Satisfy(Watch& watch, uint64_t up_to) DP_REQUIRES(mu_);
  // The session no longer serves what `watch` covered: satisfy, forget
  // its keys, and detach the watch from it.
  void Disown(SessionState& state, Watch& watch) DP_REQUIRES(mu_);
  void Close(Watch& watch, Status why) DP_REQUIRES(mu_);
  void Untrack(SessionId session, const std::string& registry,
               const std::string& key) DP_REQUIRES(mu_);
  void MaybeForget(Watch& watch) DP_REQUIRES(mu_);
  void Queue(std::function<void()> fn) DP_REQUIRES(mu_);
  bool Unresponsive(const Watch& watch) const DP_REQUIRES(mu_);

  // Constant after construction.
  const Clock* const clock_;
  const int64_t heartbeat_ms_;
  const int64_t ack_timeout_ms_;
  const uint64_t max_tracked_;

  Mutex mu_;
  std::atomic<bool> has_queued_{false};
  std::vector<std::function<void()>> queued_ DP_GUARDED_BY(mu_);
  uint64_t next_watch_id_ DP_GUARDED_BY(mu_);
  std::unordered_map<uint64_t, Watch> watches_ DP_GUARDED_BY(mu_);
  std::unordered_map<SessionId, SessionState> sessions_ DP_GUARDED_BY(mu_);
  // registry -> key -> holders.
  std::unordered_map<std::string,
                     std::unordered_map<std::string, std::set<SessionId>>>
      holders_ DP_GUARDED_BY(mu_);
  uint64_t tracked_ DP_GUARDED_BY(mu_) = 0;
};

}  // namespace dogpiled::core
