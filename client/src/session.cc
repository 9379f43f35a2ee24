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

constexpr milliseconds kMinBackoff{20};

}  // namespace

SessionImpl::SessionImpl(std::shared_ptr<ClientImpl> client, uint64_t id,
                         milliseconds ttl, SteadyTime opened,
                         std::function<void(const Status&)> on_lost)
    : client_(std::move(client)),
      id_(id),
      on_lost_(std::move(on_lost)),
      ttl_(ttl),
      renew_at_(opened + RenewPeriod(ttl)),
      lost_at_(LostAt(opened, ttl)) {}

SessionImpl::~SessionImpl() { StopThread(); }

StatusOr<std::shared_ptr<SessionImpl>> SessionImpl::Open(
    std::shared_ptr<ClientImpl> client, const SessionOptions& options) {
  v1::OpenRequest request;
  request.set_ttl_ms(options.ttl.count());
  std::string name = options.client_name;
  if (name.empty()) {
    name = client->options().client_name;
  }
  request.set_client_name(name.empty() ? DefaultClientName() : name);
  v1::OpenResponse response;
  // The daemon starts the lease after this instant.
  const SteadyTime sent = Clock::now();
  if (Status s = client->Call(client->sessions(), &v1::Sessions::Stub::Open,
                              request, &response);
      !s.ok()) {
    return s;
  }
  std::shared_ptr<SessionImpl> impl(
      new SessionImpl(std::move(client), response.session_id(),
                      milliseconds(response.ttl_ms()), sent, options.on_lost));
  // The thread owns a reference, so the state outlives it whatever order
  // handles are dropped in.
  impl->thread_ = std::thread([self = impl] { self->Run(); });
  return impl;
}

milliseconds SessionImpl::ttl() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ttl_;
}

SessionState SessionImpl::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (lost_) {
    return SessionState::kLost;
  }
  return closed_ ? SessionState::kClosed : SessionState::kAlive;
}

Status SessionImpl::loss_reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return loss_reason_;
}

Status SessionImpl::CheckUsable() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (lost_) {
    return Status(StatusCode::kNotFound,
                  "session " + std::to_string(id_) +
                      " was lost: " + loss_reason_.message());
  }
  if (closed_) {
    return Status(StatusCode::kFailedPrecondition,
                  "session " + std::to_string(id_) + " is closed");
  }
  return {};
}

void SessionImpl::Observe(const Status& status) {
  if (status.code() != StatusCode::kNotFound) {
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!closed_) {
    LoseLocked(status);
  }
}

void SessionImpl::LoseLocked(Status reason) {
  if (lost_) {
    return;
  }
  lost_ = true;
  loss_reason_ = std::move(reason);
  wake_.notify_all();
}

void SessionImpl::OnRenewed(SteadyTime sent, milliseconds ttl) {
  std::lock_guard<std::mutex> lock(mu_);
  if (lost_) {
    return;  // grants may be gone already; a late answer changes nothing
  }
  if (ttl.count() > 0) {
    ttl_ = ttl;
  }
  lost_at_ = std::max(lost_at_, LostAt(sent, ttl_));
  renew_at_ = sent + RenewPeriod(ttl_);
  wake_.notify_all();
}

void SessionImpl::OnBroken() {
  std::lock_guard<std::mutex> lock(mu_);
  broken_ = true;
  wake_.notify_all();
}

void SessionImpl::Run() {
  std::unique_ptr<KeepAliveCall> call =
      std::make_unique<KeepAliveCall>(*client_, id_, this);
  milliseconds backoff = kMinBackoff;
  SteadyTime retry_at = Clock::now();
  Status last_error;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_ && !lost_) {
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
      // Maybe a blip: reopen while the lease may still be alive.
      last_error = ended;
      retry_at = now + backoff;
      backoff = std::min(backoff * 2, std::max(kMinBackoff, ttl_ / 6));
      continue;
    }
    if (!call && now >= retry_at) {
      lock.unlock();
      call = std::make_unique<KeepAliveCall>(*client_, id_, this);
      lock.lock();
      renew_at_ = now;
      continue;
    }
    if (call && now >= renew_at_) {
      lock.unlock();
      const bool sent = call->Renew(now);
      lock.lock();
      if (sent) {
        backoff = kMinBackoff;
      }
      // OnRenewed moves this on; until then, look again now and then.
      renew_at_ = std::max(renew_at_, now + RenewPeriod(ttl_) / 4);
      continue;
    }
    wake_.wait_until(lock, std::min(lost_at_, call ? renew_at_ : retry_at));
  }
  const bool lost = lost_;
  const Status reason = loss_reason_;
  lock.unlock();
  if (call) {
    call->Cancel();
    call->Release();
    call->AwaitDone();
    call.reset();
  }
  if (lost && on_lost_) {
    on_lost_(reason);
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) {
      return {};
    }
    closed_ = true;
  }
  StopThread();
  // Even a session we count as lost may still live on the daemon (a
  // partition): closing it frees its grants now rather than at its TTL.
  v1::CloseRequest request;
  request.set_session_id(id_);
  v1::CloseResponse response;
  return client_->Call(client_->sessions(), &v1::Sessions::Stub::Close,
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
std::chrono::milliseconds Session::ttl() const { return impl_->ttl(); }
SessionState Session::state() const { return impl_->state(); }
Status Session::loss_reason() const { return impl_->loss_reason(); }
Status Session::Close() { return impl_->Close(); }

}  // namespace dogpiled
