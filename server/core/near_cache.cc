#include "core/near_cache.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "core/errors.h"

namespace dogpiled::core {
namespace {

constexpr uint64_t kAll = std::numeric_limits<uint64_t>::max();

// Do two drop scopes (empty key: a registry; both empty: everything)
// share a key?
bool Overlap(const std::string& reg_a, const std::string& key_a,
             const std::string& reg_b, const std::string& key_b) {
  if (reg_a.empty() || reg_b.empty()) {
    return true;
  }
  return reg_a == reg_b && (key_a.empty() || key_b.empty() || key_a == key_b);
}

}  // namespace

void AckWait::Then(std::function<void(Status)> done) {
  mu_.Lock();
  if (!result_ && remaining_ == 0) {
    result_ = Status();
  }
  if (result_) {
    const Status result = *result_;
    mu_.Unlock();
    done(result);
    return;
  }
  done_ = std::move(done);
  mu_.Unlock();
}

std::function<void()> AckWait::Resolve(const Status& status) {
  mu_.Lock();
  std::function<void()> run;
  if (!result_) {
    result_ = status;
    if (done_) {
      run = [done = std::move(done_), status] { done(status); };
    }
  }
  mu_.Unlock();
  return run;
}

std::function<void()> AckWait::Release() {
  mu_.Lock();
  const bool last = remaining_ > 0 && --remaining_ == 0;
  mu_.Unlock();
  return last ? Resolve(Status()) : nullptr;
}

NearCacheTracker::NearCacheTracker(const Clock* clock, const Limits& limits,
                                   uint64_t first_watch_id)
    : clock_(clock),
      heartbeat_ms_(limits.watch_heartbeat_ms),
      ack_timeout_ms_(limits.watch_ack_timeout_ms),
      max_tracked_(limits.max_tracked_keys),
      next_watch_id_(std::max<uint64_t>(first_watch_id, 1)) {}

NearCacheTracker::Watch* NearCacheTracker::FindWatch(uint64_t id) {
  auto it = watches_.find(id);
  return it == watches_.end() ? nullptr : &it->second;
}

void NearCacheTracker::Queue(std::function<void()> fn) {
  if (fn) {
    queued_.push_back(std::move(fn));
    has_queued_.store(true, std::memory_order_release);
  }
}

void NearCacheTracker::Flush() {
  if (!has_queued_.load(std::memory_order_acquire)) {
    return;
  }
  std::vector<std::function<void()>> run;
  mu_.Lock();
  run.swap(queued_);
  has_queued_.store(false, std::memory_order_release);
  mu_.Unlock();
  for (auto& fn : run) {
    fn();
  }
}

void NearCacheTracker::Enqueue(Watch& watch, WatchEvent event) {
  const bool was_empty = watch.outbox.empty();
  watch.outbox.push_back(std::move(event));
  // The writer drains the outbox before it idles, so only the first event
  // after an empty outbox needs to wake it.
  if (was_empty && watch.wake) {
    Queue(watch.wake);
  }
}

void NearCacheTracker::Satisfy(Watch& watch, uint64_t up_to) {
  auto end = watch.unacked.upper_bound(up_to);
  for (auto it = watch.unacked.begin(); it != end; ++it) {
    for (AckWaitPtr& wait : it->second.waits) {
      Queue(wait->Release());
    }
  }
  watch.unacked.erase(watch.unacked.begin(), end);
}

void NearCacheTracker::Untrack(SessionId session, const std::string& registry,
                               const std::string& key) {
  auto reg = holders_.find(registry);
  if (reg == holders_.end()) {
    return;
  }
  auto entry = reg->second.find(key);
  if (entry == reg->second.end()) {
    return;
  }
  if (entry->second.erase(session) > 0) {
    --tracked_;
  }
  if (entry->second.empty()) {
    reg->second.erase(entry);
    if (reg->second.empty()) {
      holders_.erase(reg);
    }
  }
}

void NearCacheTracker::Disown(SessionState& state, Watch& watch) {
  Satisfy(watch, kAll);
  for (const auto& [registry, key] : state.keys) {
    Untrack(watch.session, registry, key);
  }
  state.keys.clear();
}

void NearCacheTracker::Close(Watch& watch, Status why) {
  watch.closed = std::move(why);
  Satisfy(watch, kAll);
  watch.outbox.clear();  // nothing it says matters any more
  if (watch.wake) {
    Queue(watch.wake);
  }
}

void NearCacheTracker::MaybeForget(Watch& watch) {
  // Kept while its writer may still ask for events (not broken) or while
  // it is its session's current watch (its pushes may still be owed).
  if (!watch.broken) {
    return;
  }
  auto state = sessions_.find(watch.session);
  if (state != sessions_.end() && state->second.watch_id == watch.id) {
    return;
  }
  watches_.erase(watch.id);
}

bool NearCacheTracker::Unresponsive(const Watch& watch) const {
  return !watch.unacked.empty() &&
         clock_->NowMs() - watch.unacked.begin()->second.sent_ms >
             ack_timeout_ms_;
}

uint64_t NearCacheTracker::OpenWatch(SessionId session,
                                     std::function<void()> wake) {
  mu_.Lock();
  SessionState& state = sessions_[session];
  if (Watch* old = FindWatch(state.watch_id)) {
    // The client dropped everything before opening this one.
    Disown(state, *old);
    state.watch_id = 0;
    Close(*old, Status(Code::kAborted,
                       "session_id: replaced by a newer watch of the session")
                    .WithReason(std::string(reason::kWatchReplaced),
                                {{std::string(kFieldKey), "session_id"}}));
    MaybeForget(*old);
  }
  const uint64_t id = next_watch_id_++;
  Watch& watch = watches_[id];
  watch.id = id;
  watch.session = session;
  watch.wake = std::move(wake);
  watch.last_sent_ms = clock_->NowMs();
  state.watch_id = id;
  Enqueue(watch, {WatchEventKind::kSubscribed, 0, {}, {}, id, heartbeat_ms_});
  mu_.Unlock();
  return id;
}

uint64_t NearCacheTracker::Track(SessionId session,
                                 const std::string& registry,
                                 const std::string& key) {
  mu_.Lock();
  uint64_t id = 0;
  auto state = sessions_.find(session);
  Watch* watch =
      state == sessions_.end() ? nullptr : FindWatch(state->second.watch_id);
  if (watch != nullptr && !watch->broken && !watch->closed) {
    auto& keys = state->second.keys;
    if (keys.contains({registry, key})) {
      id = watch->id;
    } else if (tracked_ < max_tracked_) {
      keys.emplace(registry, key);
      holders_[registry][key].insert(session);
      ++tracked_;
      id = watch->id;
    }
  }
  mu_.Unlock();
  return id;
}

AckWaitPtr NearCacheTracker::Invalidate(const std::string& registry,
                                        const std::string& key) {
  auto wait = std::make_shared<AckWait>();
  uint64_t count = 0;
  mu_.Lock();
  const int64_t now = clock_->NowMs();
  // Older drops still owed in this scope: this call returns after them too.
  for (auto& [id, watch] : watches_) {
    for (auto& [seq, push] : watch.unacked) {
      if (Overlap(registry, key, push.registry, push.key)) {
        push.waits.push_back(wait);
        ++count;
      }
    }
  }
  // The holders, and what each of them holds in the scope.
  std::map<SessionId, std::vector<std::pair<std::string, std::string>>> hit;
  auto collect = [&](const std::string& reg, const auto& keys) {
    mu_.AssertHeld();
    for (const auto& [k, sessions] : keys) {
      for (SessionId s : sessions) {
        hit[s].emplace_back(reg, k);
      }
    }
  };
  if (registry.empty()) {
    for (const auto& [reg, keys] : holders_) {
      collect(reg, keys);
    }
  } else if (auto reg = holders_.find(registry); reg != holders_.end()) {
    if (key.empty()) {
      collect(registry, reg->second);
    } else if (auto k = reg->second.find(key); k != reg->second.end()) {
      for (SessionId s : k->second) {
        hit[s].emplace_back(registry, key);
      }
    }
  }
  for (const auto& [session, keys] : hit) {
    SessionState& state = sessions_[session];
    for (const auto& [reg, k] : keys) {
      Untrack(session, reg, k);
      state.keys.erase({reg, k});
    }
    Watch* watch = FindWatch(state.watch_id);
    if (watch == nullptr) {
      continue;  // cannot happen: keys are forgotten with their watch
    }
    const uint64_t seq = watch->next_seq++;
    Push& push = watch->unacked[seq];
    push.registry = registry;
    push.key = key;
    push.sent_ms = now;
    push.waits.push_back(wait);
    ++count;
    if (!watch->broken) {
      Enqueue(*watch,
              {WatchEventKind::kInvalidated, seq, registry, key, 0, 0});
    }
  }
  wait->mu_.Lock();
  wait->remaining_ = count;
  wait->mu_.Unlock();
  mu_.Unlock();
  return wait;
}

void NearCacheTracker::Inherit(SessionId session) {
  mu_.Lock();
  SessionState& state = sessions_[session];
  if (state.watch_id == 0) {
    const uint64_t id = next_watch_id_++;
    Watch& watch = watches_[id];
    watch.id = id;
    watch.session = session;
    watch.broken = true;
    watch.inherited = true;
    watch.next_seq = 2;
    Push& everything = watch.unacked[1];
    everything.sent_ms = clock_->NowMs();
    state.watch_id = id;
  }
  mu_.Unlock();
}

void NearCacheTracker::SessionEnded(SessionId session) {
  mu_.Lock();
  auto state = sessions_.find(session);
  if (state != sessions_.end()) {
    Watch* watch = FindWatch(state->second.watch_id);
    if (watch != nullptr) {
      Disown(state->second, *watch);
      Close(*watch, SessionNotFound(session, "the session ended"));
    }
    sessions_.erase(state);
    if (watch != nullptr) {
      MaybeForget(*watch);
    }
  }
  mu_.Unlock();
}

std::optional<WatchEvent> NearCacheTracker::NextEvent(uint64_t watch_id,
                                                      Status* closed) {
  std::optional<WatchEvent> event;
  mu_.Lock();
  Watch* watch = FindWatch(watch_id);
  if (watch == nullptr) {
    *closed = Status(Code::kCancelled, "watch: forgotten");
  } else if (!watch->outbox.empty()) {
    event = std::move(watch->outbox.front());
    watch->outbox.pop_front();
    watch->last_sent_ms = clock_->NowMs();
    if (event->kind == WatchEventKind::kInvalidated) {
      watch->handed_seq = event->seq;
    }
  } else if (watch->closed) {
    *closed = *watch->closed;
  }
  mu_.Unlock();
  return event;
}

Status NearCacheTracker::Ack(uint64_t watch_id, uint64_t seq) {
  Status status;
  mu_.Lock();
  if (Watch* watch = FindWatch(watch_id)) {
    if (seq > watch->handed_seq) {
      status = FieldInvalid("ack_seq", "acks seq " + std::to_string(seq) +
                                           ", above the last one sent (" +
                                           std::to_string(watch->handed_seq) +
                                           ")");
    } else {
      Satisfy(*watch, seq);
    }
  }
  mu_.Unlock();
  Flush();
  return status;
}

void NearCacheTracker::WatchGone(uint64_t watch_id) {
  mu_.Lock();
  if (Watch* watch = FindWatch(watch_id)) {
    watch->broken = true;
    watch->wake = nullptr;
    watch->outbox.clear();
    MaybeForget(*watch);
  }
  mu_.Unlock();
}

bool NearCacheTracker::KeepAlive(SessionId session, uint64_t watch_id) {
  bool lost = watch_id != 0;
  mu_.Lock();
  auto state = sessions_.find(session);
  Watch* watch =
      state == sessions_.end() ? nullptr : FindWatch(state->second.watch_id);
  if (watch != nullptr && watch->id == watch_id) {
    lost = watch->broken || Unresponsive(*watch);
  } else if (watch != nullptr && watch->inherited && watch_id != 0) {
    // A watch of an earlier leader, which the client may still trust: it
    // must drop everything and name none (lost is true).
  } else if (watch != nullptr) {
    // The client trusts a watch only once a KeepAlive naming it was
    // answered, and never again after dropping it: naming another proves
    // it serves nothing this one covered.
    Disown(state->second, *watch);
    if (watch->broken) {
      state->second.watch_id = 0;
      MaybeForget(*watch);
    }
  }
  mu_.Unlock();
  Flush();
  return lost;
}

void NearCacheTracker::Tick() {
  mu_.Lock();
  const int64_t now = clock_->NowMs();
  for (auto& [id, watch] : watches_) {
    if (!watch.broken && !watch.closed && watch.outbox.empty() &&
        now - watch.last_sent_ms >= heartbeat_ms_ / 2) {
      Enqueue(watch, {WatchEventKind::kHeartbeat, 0, {}, {}, 0, heartbeat_ms_});
    }
  }
  mu_.Unlock();
  Flush();
}

void NearCacheTracker::Shutdown() { Shutdown(ShuttingDown()); }

void NearCacheTracker::Shutdown(const Status& down) {
  mu_.Lock();
  for (auto& [id, watch] : watches_) {
    for (auto& [seq, push] : watch.unacked) {
      for (AckWaitPtr& wait : push.waits) {
        Queue(wait->Resolve(down));
      }
    }
    watch.unacked.clear();
    if (!watch.closed) {
      Close(watch, down);
    }
  }
  mu_.Unlock();
  Flush();
}

NearCacheStats NearCacheTracker::GetStats() {
  NearCacheStats stats;
  mu_.Lock();
  stats.watches = watches_.size();
  stats.tracked_keys = tracked_;
  for (const auto& [id, watch] : watches_) {
    stats.unacked_pushes += watch.unacked.size();
  }
  mu_.Unlock();
  return stats;
}

}  // namespace dogpiled::core
