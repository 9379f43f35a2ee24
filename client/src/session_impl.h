// The state behind a Session handle: its id, its lease, and the thread that
// keeps the lease alive on one KeepAlive stream.
//
// Thread-safe: every public method may be called from any thread at once.
// Kept alive by the handle, by every Dogpile/ReadWriteMutex made from it,
// and by its own keep-alive thread while that runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

#include "dogpiled/session.h"
#include "src/client_impl.h"
#include "src/keepalive_call.h"
#include "src/near_cache.h"
#include "src/watch_call.h"

namespace dogpiled::internal {

// The first wait before retrying a broken KeepAlive or watch.
inline constexpr std::chrono::milliseconds kMinBackoff{20};
// The wait before asking again for a watch the daemon does not serve.
inline constexpr std::chrono::milliseconds kUnservedWatchRetry{5000};

class SessionImpl final : public KeepAliveCall::Listener,
                          public WatchCall::Listener,
                          public std::enable_shared_from_this<SessionImpl> {
 public:
  // Opens the session on the daemon and starts the keep-alive thread.
  static StatusOr<std::shared_ptr<SessionImpl>> Open(
      std::shared_ptr<ClientImpl> client, const SessionOptions& options);
  ~SessionImpl() override;

  ClientImpl& client() { return *client_; }
  // The current lease's id (it changes when a lost lease is replaced).
  uint64_t id() const;
  std::chrono::milliseconds ttl() const;
  SessionState state() const;
  Status loss_reason() const;
  uint64_t reopens() const;

  // The id to take new grants under. While a lost lease is being replaced,
  // waits for the new one up to the client's rpc_timeout (then
  // UNAVAILABLE). NOT_FOUND when lost and re-opening is off;
  // FAILED_PRECONDITION when closed.
  StatusOr<uint64_t> UsableId() const;
  // OK if a grant taken under `session_id` may still be used: that lease
  // is the current one and not lost. Else NOT_FOUND (SESSION_NOT_FOUND),
  // so a grant of a lost lease is never carried into its successor.
  Status CheckHolds(uint64_t session_id) const;
  // Every call that names a session reports its status here: NOT_FOUND
  // means the daemon no longer knows it, so that lease is lost.
  void Observe(uint64_t session_id, const Status& status);

  // A unary call that names a session (request.session_id()), observed as
  // above.
  template <typename Stub, typename Request, typename Response>
  Status Call(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                           const Request&, Response*),
              const Request& request, Response* response,
              std::chrono::milliseconds wait = std::chrono::milliseconds(0)) {
    const Status status =
        client_->Call(method, request, response, wait);
    Observe(request.session_id(), status);
    return status;
  }

  // Like Call, for a grant-taking call that carries a request_id: a call
  // that meets UNAVAILABLE (the connection dropped, the daemon restarts) is
  // sent again, unchanged, so the daemon can recognise it. Bounded: a few
  // tries with growing pauses, all before the deadline the first try had
  // (rpc_timeout + wait).
  template <typename Stub, typename Request, typename Response>
  Status CallRetrying(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                   const Request&, Response*),
                      const Request& request, Response* response,
                      std::chrono::milliseconds wait) {
    const SteadyTime deadline =
        std::chrono::steady_clock::now() + client_->options().rpc_timeout +
        wait;
    Status status;
    std::chrono::milliseconds pause = kFirstRetryPause;
    for (int attempt = 1;; ++attempt) {
      status = client_->CallUntil(method, request, response, deadline);
      if (status.code() != StatusCode::kUnavailable ||
          attempt == kMaxAttempts ||
          std::chrono::steady_clock::now() + pause >= deadline) {
        break;
      }
      std::this_thread::sleep_for(pause);  // backoff, not ordering
      pause *= 2;
    }
    Observe(request.session_id(), status);
    return status;
  }
  static constexpr int kMaxAttempts = 4;
  static constexpr std::chrono::milliseconds kFirstRetryPause{50};

  // Stops the keep-alive thread and closes the session on the daemon.
  Status Close();

  // KeepAliveCall::Listener.
  void OnRenewed(SteadyTime sent, std::chrono::milliseconds ttl,
                 uint64_t watch_id, bool watch_lost) override;
  void OnBroken() override;
  // WatchCall::Listener.
  void OnSubscribed(uint64_t watch_id,
                    std::chrono::milliseconds heartbeat) override;
  void OnHeard() override;
  void OnWatchBroken() override;

  // The near-cache, or null when ClientOptions::near_cache_bytes is 0.
  NearCache* near_cache() { return near_cache_.get(); }

 private:
  SessionImpl(std::shared_ptr<ClientImpl> client, uint64_t id,
              std::chrono::milliseconds ttl, SteadyTime opened,
              const SessionOptions& options);
  void Run();
  // Keeps the current lease alive until it is lost or the thread stops.
  void KeepLease(std::unique_lock<std::mutex>& lock);
  // Replaces a lost lease: closes the old one (best effort, so the daemon
  // frees its grants now), then opens a new one, retrying with backoff.
  // Returns false if stopped first.
  bool Reopen(std::unique_lock<std::mutex>& lock);
  // Marks the current lease lost (once) and wakes the keep-alive thread.
  void LoseLocked(Status reason);
  // Near-cache: keeps one watch open for lease `id` while the lease lives;
  // a broken, silent or lost watch is dropped with the whole cache and
  // replaced. Called by KeepLease with the lock held; `call` is its own.
  void KeepWatch(std::unique_lock<std::mutex>& lock, uint64_t id,
                 std::unique_ptr<WatchCall>& call);
  // Returns how the watch ended.
  Status EndWatch(std::unique_lock<std::mutex>& lock,
                  std::unique_ptr<WatchCall>& call);
  // Drops the near-cache and asks for a KeepAlive naming no watch at once.
  void DropNearCacheLocked();
  // Stops the keep-alive thread and waits for it (unless called from it).
  void StopThread();

  // Constant after construction.
  const std::shared_ptr<ClientImpl> client_;
  const std::function<void(const Status&)> on_lost_;
  const bool reopen_;
  const SessionOptions options_;
  const std::unique_ptr<NearCache> near_cache_;  // null: off

  mutable std::mutex mu_;
  mutable std::condition_variable wake_;  // the thread and UsableId wait
  uint64_t id_;                    // guarded by mu_
  uint64_t reopens_ = 0;           // guarded by mu_
  std::chrono::milliseconds ttl_;  // guarded by mu_
  SteadyTime renew_at_;            // guarded by mu_
  SteadyTime lost_at_;             // guarded by mu_; if not renewed by then
  bool broken_ = false;            // guarded by mu_; the stream needs redoing
  bool stopping_ = false;          // guarded by mu_
  bool lost_ = false;              // guarded by mu_; the current lease
  bool closed_ = false;            // guarded by mu_
  Status loss_reason_;             // guarded by mu_
  // Near-cache watch, all guarded by mu_: the id SUBSCRIBED gave (trusted
  // once a KeepAlive naming it is answered), its heartbeat, when it must
  // be heard from next, and whether it must be replaced.
  uint64_t watch_candidate_ = 0;
  std::chrono::milliseconds heartbeat_{1000};
  SteadyTime heard_until_{};
  bool watch_broken_ = false;
  SteadyTime watch_retry_at_{};
  std::thread thread_;
};

}  // namespace dogpiled::internal
