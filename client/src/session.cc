#include "dogpiled/session.h"

#include <algorithm>
#include <utility>

#include "dogpiled/client.h"
#include "src/session_impl.h"

namespace dogpiled {
namespace internal {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Renew every third of the TTL, as sessions.proto suggests: two renewals
// may fail before the lease is at risk.
milliseconds RenewPeriod(milliseconds ttl) { return ttl / 3; }

// Declare the session lost a fifth of the TTL before the daemon could end
// it, so a caller that stops using its grants on loss never overlaps with
// the next holder.
SteadyTime LostAt(SteadyTime renewed, milliseconds ttl) {
  return renewed + ttl - ttl / 5;
}

}  // namespace

SessionImpl::SessionImpl(std::shared_ptr<ClientImpl> client, uint64_t id,
                         milliseconds ttl, SteadyTime opened,
                         const SessionOptions& options)
    : client_(std::move(client)),
      on_lost_(options.on_lost),
      reopen_(options.reopen),
      options_(options),
      near_cache_(client_->options().near_cache_bytes > 0
                      ? std::make_unique<NearCache>(
                            client_->options().near_cache_bytes,
                            client_->options().max_stale_on_error)
                      : nullptr),
      id_(id),
      ttl_(ttl),
      renew_at_(opened + RenewPeriod(ttl)),
      lost_at_(LostAt(opened, ttl)) {}

SessionImpl::~SessionImpl() { StopThread(); }

namespace {

struct Opened {
  uint64_t id = 0;
  milliseconds ttl{0};
  SteadyTime sent;
};

StatusOr<Opened> OpenLease(ClientImpl& client, const SessionOptions& options) {
  v1::OpenRequest request;
  request.set_ttl_ms(options.ttl.count());
  std::string name = options.client_name;
  if (name.empty()) {
    name = client.options().client_name;
  }
  request.set_client_name(name.empty() ? DefaultClientName() : name);
  v1::OpenResponse response;
  Opened opened;
  // The daemon starts the lease after this instant.
  opened.sent = Clock::now();
  if (Status s = client.Call(&v1::Sessions::Stub::Open,
                             request, &response);
      !s.ok()) {
    return s;
  }
  opened.id = response.session_id();
  opened.ttl = milliseconds(response.ttl_ms());
  return opened;
}

}  // namespace

StatusOr<std::shared_ptr<SessionImpl>> SessionImpl::Open(
    std::shared_ptr<ClientImpl> client, const SessionOptions& options) {
  StatusOr<Opened> opened = OpenLease(*client, options);
  if (!opened.ok()) {
    return opened.status();
  }
  std::shared_ptr<SessionImpl> impl(new SessionImpl(
      std::move(client), opened->id, opened->ttl, opened->sent, options));
  // The thread owns a reference, so the state outlives it whatever order
  // handles are dropped in.
  impl->thread_ = std::thread([self = impl] { self->Run(); });
  return impl;
}

uint64_t SessionImpl::id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return id_;
}

milliseconds SessionImpl::ttl() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ttl_;
}

uint64_t SessionImpl::reopens() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reopens_;
}

SessionState SessionImpl::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) {
    return SessionState::kClosed;
  }
  return lost_ ? SessionState::kLost : SessionState::kAlive;
}

Status SessionImpl::loss_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loss_reason_;
}

StatusOr<uint64_t> SessionImpl::UsableId() const {
  std::unique_lock<std::mutex> lock(mu_);
  if (reopen_) {
    wake_.wait_for(lock, client_->options().rpc_timeout,
                   [this] { return closed_ || stopping_ || !lost_; });
  }
  if (closed_) {
    return Status(StatusCode::kFailedPrecondition,
                  "session " + std::to_string(id_) + " is closed");
  }
  if (lost_) {
    const std::string why = "session " + std::to_string(id_) +
                            " was lost: " + loss_reason_.message();
    if (reopen_) {
      return Status(StatusCode::kUnavailable,
                    why + "; no new session could be opened yet");
    }
    return Status(StatusCode::kNotFound, why, "SESSION_NOT_FOUND",
                  {{"field", "session_id"},
                   {"session_id", std::to_string(id_)}});
  }
  return id_;
}

Status SessionImpl::CheckHolds(uint64_t session_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (session_id == id_ && !lost_) {
    return {};
  }
  return Status(StatusCode::kNotFound,
                "session_id: session " + std::to_string(session_id) +
                    " was lost, and every grant taken under it with it",
                "SESSION_NOT_FOUND",
                {{"field", "session_id"},
                 {"session_id", std::to_string(session_id)}});
}

void SessionImpl::Observe(uint64_t session_id, const Status& status) {
  if (status.code() != StatusCode::kNotFound) {
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  // A call on an older lease says nothing about the current one.
  if (!closed_ && session_id == id_) {
    LoseLocked(status);
  }
}

void SessionImpl::LoseLocked(Status reason) {
  if (lost_) {
    return;
  }
  lost_ = true;
  loss_reason_ = std::move(reason);
  if (near_cache_) {
    near_cache_->DropAll();  // nothing vouches for it any more
  }
  wake_.notify_all();
}

void SessionImpl::OnRenewed(SteadyTime sent, milliseconds ttl,
                            uint64_t watch_id, bool watch_lost) {
  std::lock_guard<std::mutex> lock(mu_);
  if (lost_) {
    return;  // grants may be gone already; a late answer changes nothing
  }
  if (ttl.count() > 0) {
    ttl_ = ttl;
  }
  lost_at_ = std::max(lost_at_, LostAt(sent, ttl_));
  renew_at_ = sent + RenewPeriod(ttl_);
  if (near_cache_) {
    near_cache_->LeaseUntil(lost_at_);
    if (watch_lost) {
      DropNearCacheLocked();
    } else if (watch_id != 0 && watch_id == watch_candidate_) {
      // Every older KeepAlive (naming another watch) was answered before
      // this one: the daemon can no longer take one for a drop of this
      // watch's keys.
      near_cache_->Trust(watch_id);
    } else if (watch_candidate_ != 0 &&
               near_cache_->trusted() != watch_candidate_) {
      renew_at_ = Clock::now();  // name the new watch without waiting
    }
  }
  wake_.notify_all();
}

void SessionImpl::OnBroken() {
  std::lock_guard<std::mutex> lock(mu_);
  broken_ = true;
  wake_.notify_all();
}

void SessionImpl::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    KeepLease(lock);
    if (!lost_) {
      return;  // stopping
    }
    const Status reason = loss_reason_;
    lock.unlock();
    if (on_lost_) {
      on_lost_(reason);
    }
    lock.lock();
    if (!reopen_ || !Reopen(lock)) {
      return;
    }
  }
}

void SessionImpl::KeepLease(std::unique_lock<std::mutex>& lock) {
  const uint64_t id = id_;
  lock.unlock();
  std::unique_ptr<KeepAliveCall> call =
      std::make_unique<KeepAliveCall>(*client_, id, this);
  lock.lock();
  std::unique_ptr<WatchCall> watch;
  milliseconds backoff = kMinBackoff;
  SteadyTime retry_at = Clock::now();
  Status last_error;
  while (!stopping_ && !lost_) {
    if (near_cache_) {
      KeepWatch(lock, id, watch);
    }
    const SteadyTime now = Clock::now();
    if (now >= lost_at_) {
      std::string why = "session " + std::to_string(id_) +
                        ": not renewed within its TTL of " +
                        std::to_string(ttl_.count()) + " ms";
      if (!last_error.ok()) {
        why += " (" + last_error.ToString() + ")";
      }
      LoseLocked(Status(StatusCode::kUnavailable, why));
      break;
    }
    if (call && broken_) {
      lock.unlock();
      call->Release();
      const Status ended = call->AwaitDone();
      call.reset();
      lock.lock();
      broken_ = false;
      if (ended.code() == StatusCode::kNotFound) {
        LoseLocked(ended);
        break;
      }
      // Maybe a blip: reopen the stream while the lease may still be alive.
      last_error = ended;
      retry_at = now + backoff;
      backoff = std::min(backoff * 2, std::max(kMinBackoff, ttl_ / 6));
      continue;
    }
    if (!call && now >= retry_at) {
      lock.unlock();
      call = std::make_unique<KeepAliveCall>(*client_, id, this);
      lock.lock();
      renew_at_ = now;
      continue;
    }
    if (call && now >= renew_at_) {
      // The watch the near-cache trusts, else the one to be trusted.
      uint64_t named = 0;
      if (near_cache_) {
        named = near_cache_->trusted();
        if (named == 0 && !watch_broken_) {
          named = watch_candidate_;
        }
      }
      lock.unlock();
      const bool sent = call->Renew(now, named);
      lock.lock();
      if (sent) {
        backoff = kMinBackoff;
      }
      // OnRenewed moves this on; until then, look again now and then.
      renew_at_ = std::max(renew_at_, now + RenewPeriod(ttl_) / 4);
      continue;
    }
    SteadyTime until = std::min(lost_at_, call ? renew_at_ : retry_at);
    if (near_cache_) {
      until = std::min(until, watch ? heard_until_ : watch_retry_at_);
    }
    wake_.wait_until(lock, until);
  }
  if (near_cache_) {
    EndWatch(lock, watch);
  }
  lock.unlock();
  if (call) {
    call->Cancel();
    call->Release();
    call->AwaitDone();
    call.reset();
  }
  lock.lock();
  broken_ = false;
}

bool SessionImpl::Reopen(std::unique_lock<std::mutex>& lock) {
  const uint64_t old_id = id_;
  // Within a TTL: a silent daemon must not hold the new lease up for long.
  const SteadyTime close_by =
      Clock::now() + std::min(client_->options().rpc_timeout, ttl_);
  lock.unlock();
  // The daemon may still hold the lease (a partition): closing it frees its
  // grants now instead of at its TTL. Refused or unreachable is fine.
  v1::CloseRequest close;
  close.set_session_id(old_id);
  v1::CloseResponse closed;
  client_->CallUntil(&v1::Sessions::Stub::Close, close,
                     &closed, close_by);
  milliseconds backoff = kMinBackoff;
  for (;;) {
    StatusOr<Opened> opened = OpenLease(*client_, options_);
    lock.lock();
    if (stopping_) {
      if (opened.ok()) {
        lock.unlock();
        close.set_session_id(opened->id);
        client_->Call(&v1::Sessions::Stub::Close, close,
                      &closed);
        lock.lock();
      }
      return false;
    }
    if (opened.ok()) {
      id_ = opened->id;
      ttl_ = opened->ttl;
      renew_at_ = opened->sent + RenewPeriod(ttl_);
      lost_at_ = LostAt(opened->sent, ttl_);
      lost_ = false;
      ++reopens_;
      wake_.notify_all();  // callers waiting in UsableId
      return true;
    }
    // The daemon is unreachable or refuses for now: try again, no slower
    // than a few times per TTL.
    wake_.wait_for(lock, backoff, [this] { return stopping_; });
    if (stopping_) {
      return false;
    }
    backoff = std::min(backoff * 2, std::max(kMinBackoff, ttl_ / 3));
    lock.unlock();
  }
}

void SessionImpl::StopThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    wake_.notify_all();
  }
  if (!thread_.joinable()) {
    return;
  }
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();  // the last reference was the thread's own
  } else {
    thread_.join();
  }
}

Status SessionImpl::Close() {
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) {
      return {};
    }
    closed_ = true;
    wake_.notify_all();
  }
  StopThread();
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = id_;
  }
  // Even a session we count as lost may still live on the daemon (a
  // partition): closing it frees its grants now rather than at its TTL.
  v1::CloseRequest request;
  request.set_session_id(id);
  v1::CloseResponse response;
  return client_->Call(&v1::Sessions::Stub::Close,
                       request, &response);
}

}  // namespace internal

const char* SessionStateName(SessionState state) {
  switch (state) {
    case SessionState::kAlive: return "ALIVE";
    case SessionState::kLost: return "LOST";
    case SessionState::kClosed: return "CLOSED";
  }
  return "UNKNOWN";
}

StatusOr<Session> Session::Open(const Client& client, SessionOptions options) {
  StatusOr<std::shared_ptr<internal::SessionImpl>> impl =
      internal::SessionImpl::Open(client.impl_, options);
  if (!impl.ok()) {
    return impl.status();
  }
  return Session(std::move(impl).value());
}

Session::Session(std::shared_ptr<internal::SessionImpl> impl)
    : impl_(std::move(impl)) {}

Session::~Session() {
  if (impl_) {
    impl_->Close();
  }
}

Session::Session(Session&&) noexcept = default;

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      impl_->Close();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

uint64_t Session::id() const { return impl_->id(); }
uint64_t Session::reopens() const { return impl_->reopens(); }
std::chrono::milliseconds Session::ttl() const { return impl_->ttl(); }
SessionState Session::state() const { return impl_->state(); }
Status Session::loss_reason() const { return impl_->loss_reason(); }
Status Session::Close() { return impl_->Close(); }

NearCacheStats Session::near_cache_stats() const {
  NearCacheStats stats;
  if (internal::NearCache* near = impl_->near_cache()) {
    stats.entries = near->size();
    stats.bytes = near->bytes();
    stats.serving = near->trusted() != 0;
  }
  return stats;
}

}  // namespace dogpiled
