#include "dogpiled/rwmutex.h"

#include <utility>

#include "src/error_details.h"
#include "src/request_id.h"
#include "src/rwmutex_impl.h"

namespace dogpiled {
namespace internal {
namespace {

using std::chrono::milliseconds;

// "Wait forever" is a series of long waits, each well under the daemon's
// default cap on wait_timeout_ms (24 h).
constexpr milliseconds kForeverChunk{5 * 60 * 1000};

const char* ModeName(LockMode mode) {
  return mode == LockMode::kRead ? "read" : "write";
}

}  // namespace

RwMutexImpl::RwMutexImpl(std::shared_ptr<SessionImpl> session,
                         std::string registry, std::string key,
                         ReadWriteMutexOptions options)
    : session_(std::move(session)),
      registry_(std::move(registry)),
      key_(std::move(key)),
      options_(options) {}

StatusOr<uint64_t> RwMutexImpl::LockOnce(LockMode mode, milliseconds wait) {
  StatusOr<uint64_t> session_id = session_->UsableId();
  if (!session_id.ok()) {
    return session_id.status();
  }
  v1::LockRequest request;
  request.set_registry(registry_);
  request.set_key(key_);
  request.set_session_id(*session_id);
  // Lets the daemon answer a retry with this call's grant.
  request.set_request_id(NewRequestId());
  request.set_mode(mode == LockMode::kRead ? v1::LockRequest::MODE_READ
                                           : v1::LockRequest::MODE_WRITE);
  request.set_wait_timeout_ms(wait.count());
  v1::LockResponse r;
  const Status status =
      session_->CallRetrying(&v1::RWMutex::Stub::Lock, request, &r, wait);
  if (!status.ok()) {
    return status;
  }
  if (!r.acquired()) {
    return uint64_t{0};
  }
  std::lock_guard<std::mutex> lock(mu_);
  lease_of_[r.token()] = *session_id;
  return r.token();
}

StatusOr<uint64_t> RwMutexImpl::Lock(LockMode mode, bool wait) {
  if (!wait) {
    return LockOnce(mode, milliseconds(0));
  }
  if (options_.wait_timeout.count() >= 0) {
    return LockOnce(mode, options_.wait_timeout);
  }
  for (;;) {
    StatusOr<uint64_t> token = LockOnce(mode, kForeverChunk);
    if (!token.ok() || *token != 0) {
      return token;
    }
  }
}

Status RwMutexImpl::Unlock(uint64_t token) {
  uint64_t session_id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = lease_of_.find(token);
    if (it != lease_of_.end()) {
      session_id = it->second;
      lease_of_.erase(it);
    }
  }
  // A lock of a lost lease is gone; it is never unlocked (or kept) through
  // the lease that replaced it.
  if (Status s = session_->CheckHolds(session_id); !s.ok()) {
    return s;
  }
  v1::UnlockRequest request;
  request.set_registry(registry_);
  request.set_key(key_);
  request.set_session_id(session_id);
  request.set_token(token);
  v1::UnlockResponse r;
  // Sent again after a lost answer (at a new leader), it may meet its own
  // earlier release.
  return ReleaseAnswer(
      session_->Call(&v1::RWMutex::Stub::Unlock, request, &r));
}

bool RwMutexImpl::AcquireHeld(LockMode mode, bool wait) {
  StatusOr<uint64_t> token = Lock(mode, wait);
  if (!token.ok()) {
    throw Error(token.status());
  }
  if (*token == 0) {
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (mode == LockMode::kRead) {
    read_tokens_.push_back(*token);
  } else {
    write_token_ = *token;
  }
  return true;
}

Status RwMutexImpl::ReleaseHeld(LockMode mode) {
  uint64_t token = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (mode == LockMode::kRead && !read_tokens_.empty()) {
      token = read_tokens_.back();
      read_tokens_.pop_back();
    } else if (mode == LockMode::kWrite) {
      token = std::exchange(write_token_, 0);
    }
  }
  if (token == 0) {
    return Status(StatusCode::kFailedPrecondition,
                  std::string("release_") + ModeName(mode) +
                      "_lock: this handle holds no " + ModeName(mode) +
                      " lock on " + registry_ + "/" + key_);
  }
  return Unlock(token);
}

void RwMutexImpl::ReleaseAllHeld() {
  std::vector<uint64_t> tokens;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tokens.swap(read_tokens_);
    if (write_token_ != 0) {
      tokens.push_back(std::exchange(write_token_, 0));
    }
  }
  for (uint64_t token : tokens) {
    Unlock(token);
  }
}

// Takes a lock for a guard: throws on errors, and on a blocking wait that
// ran out.
uint64_t LockForGuard(RwMutexImpl& impl, LockMode mode, bool wait) {
  StatusOr<uint64_t> token = impl.Lock(mode, wait);
  if (!token.ok()) {
    throw Error(token.status());
  }
  if (wait && *token == 0) {
    throw Error(Status(StatusCode::kDeadlineExceeded,
                       std::string(ModeName(mode)) +
                           " lock not granted within wait_timeout"));
  }
  return *token;
}

}  // namespace internal

ReadWriteMutex::ReadWriteMutex(const Session& session, std::string registry,
                               std::string key, ReadWriteMutexOptions options)
    : impl_(std::make_shared<internal::RwMutexImpl>(
          session.impl_, std::move(registry), std::move(key), options)) {}

ReadWriteMutex::~ReadWriteMutex() {
  if (impl_) {
    impl_->ReleaseAllHeld();
  }
}

ReadWriteMutex::ReadWriteMutex(ReadWriteMutex&&) noexcept = default;

ReadWriteMutex& ReadWriteMutex::operator=(ReadWriteMutex&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      impl_->ReleaseAllHeld();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

bool ReadWriteMutex::acquire_read_lock(bool wait) {
  return impl_->AcquireHeld(LockMode::kRead, wait);
}

bool ReadWriteMutex::acquire_write_lock(bool wait) {
  return impl_->AcquireHeld(LockMode::kWrite, wait);
}

Status ReadWriteMutex::release_read_lock() {
  return impl_->ReleaseHeld(LockMode::kRead);
}

Status ReadWriteMutex::release_write_lock() {
  return impl_->ReleaseHeld(LockMode::kWrite);
}

template <LockMode kMode>
LockGuard<kMode>::LockGuard(ReadWriteMutex& mutex)
    : impl_(mutex.impl_),
      token_(internal::LockForGuard(*impl_, kMode, /*wait=*/true)) {}

template <LockMode kMode>
LockGuard<kMode>::LockGuard(ReadWriteMutex& mutex, std::try_to_lock_t)
    : impl_(mutex.impl_),
      token_(internal::LockForGuard(*impl_, kMode, /*wait=*/false)) {}

template <LockMode kMode>
LockGuard<kMode>::~LockGuard() {
  release();
}

template <LockMode kMode>
LockGuard<kMode>::LockGuard(LockGuard&& other) noexcept
    : impl_(std::move(other.impl_)), token_(std::exchange(other.token_, 0)) {}

template <LockMode kMode>
LockGuard<kMode>& LockGuard<kMode>::operator=(LockGuard&& other) noexcept {
  if (this != &other) {
    release();
    impl_ = std::move(other.impl_);
    token_ = std::exchange(other.token_, 0);
  }
  return *this;
}

template <LockMode kMode>
Status LockGuard<kMode>::release() {
  if (token_ == 0) {
    return {};
  }
  return impl_->Unlock(std::exchange(token_, 0));
}

template class LockGuard<LockMode::kRead>;
template class LockGuard<LockMode::kWrite>;

}  // namespace dogpiled
