// The near-cache side of a session: the watch that keeps its near-cache
// coherent (docs/near-cache.md). The keep-alive thread (session.cc) opens
// it, replaces it when it breaks or goes silent, and drops the near-cache
// whenever the watch can no longer be trusted.
#include <memory>

#include "src/session_impl.h"

namespace dogpiled::internal {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A watch not heard from (event or heartbeat) for this many heartbeat
// intervals counts as broken.
constexpr int kMissedHeartbeats = 3;

}  // namespace

void SessionImpl::DropNearCacheLocked() {
  near_cache_->DropAll();
  watch_broken_ = true;  // never trusted again: a new one is opened
  watch_candidate_ = 0;
  renew_at_ = Clock::now();  // tell the daemon at once (watch id 0)
  wake_.notify_all();
}

void SessionImpl::OnSubscribed(uint64_t watch_id, milliseconds heartbeat) {
  std::lock_guard<std::mutex> lock(mu_);
  watch_candidate_ = watch_id;
  if (heartbeat.count() > 0) {
    heartbeat_ = heartbeat;
  }
  renew_at_ = Clock::now();  // a KeepAlive naming it makes it trusted
  wake_.notify_all();
}

void SessionImpl::OnHeard() {
  std::lock_guard<std::mutex> lock(mu_);
  heard_until_ = Clock::now() + kMissedHeartbeats * heartbeat_;
  near_cache_->HeardUntil(heard_until_);
  // No wake-up: the thread looks again at the old deadline and sees the
  // new one (one event per push would otherwise wake it each time).
}

void SessionImpl::OnWatchBroken() {
  std::lock_guard<std::mutex> lock(mu_);
  DropNearCacheLocked();
}

void SessionImpl::KeepWatch(std::unique_lock<std::mutex>& lock, uint64_t id,
                            std::unique_ptr<WatchCall>& call) {
  const SteadyTime now = Clock::now();
  if (call && !watch_broken_ && now >= heard_until_) {
    DropNearCacheLocked();  // silent: as good as broken
  }
  if (call && watch_broken_) {
    const Status ended = EndWatch(lock, call);
    // A daemon that serves no watch (an older replicated one) is asked again
    // now and then, not at once: reads go through it meanwhile.
    watch_retry_at_ = Clock::now() + (ended.code() == StatusCode::kUnimplemented
                                          ? kUnservedWatchRetry
                                          : kMinBackoff);
    return;
  }
  if (!call && now >= watch_retry_at_) {
    watch_broken_ = false;
    watch_candidate_ = 0;
    heard_until_ = now + kMissedHeartbeats * heartbeat_;
    lock.unlock();
    call = std::make_unique<WatchCall>(*client_, id, near_cache_.get(), this);
    lock.lock();
  }
}

Status SessionImpl::EndWatch(std::unique_lock<std::mutex>& lock,
                             std::unique_ptr<WatchCall>& call) {
  if (!call) {
    return Status();
  }
  lock.unlock();
  call->Cancel();
  call->Release();
  Status ended = call->AwaitDone();
  call.reset();
  lock.lock();
  near_cache_->DropAll();
  return ended;
}

}  // namespace dogpiled::internal
