// One session's near-cache (docs/near-cache.md): FRESH values kept in
// process memory, bounded in bytes with LRU, served only while the watch
// that carries their invalidations is trusted and heard from.
//
// No gRPC here: the session's watch and keep-alive feed it events, the
// Dogpile path asks it. Thread-safe: every method may be called from any
// thread at once; one mutex guards all state.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace dogpiled::internal {

class NearCache {
 public:
  using Time = std::chrono::steady_clock::time_point;
  using Ms = std::chrono::milliseconds;

  // What one key costs beside its key and value bytes (map and list nodes,
  // the entry's fields).
  static constexpr uint64_t kEntryOverheadBytes = 160;

  // `max_stale_on_error` > 0 keeps values dropped because the watch was
  // lost (never those an invalidation dropped), to serve them marked stale
  // up to that long past their expiry when the daemon is unreachable.
  NearCache(uint64_t max_bytes, Ms max_stale_on_error);

  struct Hit {
    std::string value;
    double created_time = 0;
  };
  // A FRESH value, if one is kept for this expire and everything still
  // vouches for it at `now`.
  std::optional<Hit> Lookup(const std::string& registry,
                            const std::string& key, int64_t expire_ms,
                            Time now);
  // The daemon is unreachable: a kept value (trusted or not) no more than
  // max_stale_on_error past its expiry.
  std::optional<Hit> LookupStale(const std::string& registry,
                                 const std::string& key, int64_t expire_ms,
                                 Time now);

  // A tracked read about to be sent: returns its ticket; watch is the
  // watch trusted now (0: send the read without near_cache).
  struct Ticket {
    uint64_t id = 0;
    uint64_t watch = 0;
    Time sent;
  };
  Ticket BeginRead(const std::string& registry, const std::string& key,
                   Time now);
  // Its FRESH answer: kept if the daemon registered it under the watch the
  // read was sent under, that watch is still trusted, and no drop of the
  // key came in meanwhile. `fresh_for_ms` -1: never expires.
  void EndRead(const Ticket& ticket, const std::string& registry,
               const std::string& key, int64_t expire_ms,
               uint64_t registered_watch, int64_t fresh_for_ms,
               const std::string& value, double created_time);
  // The read failed or was not FRESH.
  void AbandonRead(const Ticket& ticket);

  // An INVALIDATED event (empty key: the registry; both empty: all):
  // applied before it is acked.
  void Drop(const std::string& registry, const std::string& key);
  // The watch is lost (or the lease): nothing is served until a new watch
  // is trusted; reads in flight are not kept.
  void DropAll();
  // A KeepAlive naming `watch` was answered without watch_lost: serve
  // values read under it, until `heard_until` (heartbeats move it on) and
  // the lease's local deadline.
  void Trust(uint64_t watch);
  uint64_t trusted() const;
  void HeardUntil(Time until);
  void LeaseUntil(Time until);

  uint64_t bytes() const;
  size_t size() const;

 private:
  struct Entry {
    std::string registry;
    std::string key;
    std::string value;
    double created_time = 0;
    int64_t expire_ms = 0;
    std::optional<Time> fresh_until;  // nullopt: never expires
    bool trusted = true;  // false: kept only for max_stale_on_error
    std::list<std::string>::iterator lru;  // front: most recent
  };
  struct Pending {
    std::string registry;
    std::string key;
    uint64_t generation = 0;
    bool poisoned = false;
  };

  static std::string Name(const std::string& registry,
                          const std::string& key);
  bool Serving(Time now) const;  // requires mu_
  void Erase(std::unordered_map<std::string, Entry>::iterator it);
  void Evict();  // requires mu_: to max_bytes_

  // Constant after construction.
  const uint64_t max_bytes_;
  const Ms max_stale_on_error_;

  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::list<std::string> lru_;                      // guarded by mu_
  std::map<uint64_t, Pending> pending_;             // guarded by mu_
  uint64_t bytes_ = 0;                              // guarded by mu_
  uint64_t next_ticket_ = 1;                        // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_; bumped by DropAll
  uint64_t trusted_ = 0;     // guarded by mu_
  Time heard_until_{};       // guarded by mu_
  Time lease_until_{};       // guarded by mu_
};

}  // namespace dogpiled::internal
