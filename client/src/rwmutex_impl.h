// The read-write mutex protocol for one key: Lock and Unlock on the
// session, plus the grants held through the ReadWriteMutex handle itself
// (guards keep their own).
//
// Thread-safe: every method may be called from any thread at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dogpiled/rwmutex.h"
#include "src/session_impl.h"

namespace dogpiled::internal {

class RwMutexImpl {
 public:
  RwMutexImpl(std::shared_ptr<SessionImpl> session, std::string registry,
              std::string key, ReadWriteMutexOptions options);

  // The grant's token, or 0 if not granted: at once (wait=false) or within
  // the wait_timeout option.
  StatusOr<uint64_t> Lock(LockMode mode, bool wait);
  Status Unlock(uint64_t token);

  // Grants held by the handle (acquire_*_lock / release_*_lock).
  bool AcquireHeld(LockMode mode, bool wait);  // throws Error
  Status ReleaseHeld(LockMode mode);
  void ReleaseAllHeld();

 private:
  StatusOr<uint64_t> LockOnce(LockMode mode, std::chrono::milliseconds wait);

  // Constant after construction.
  const std::shared_ptr<SessionImpl> session_;
  const std::string registry_;
  const std::string key_;
  const ReadWriteMutexOptions options_;

  std::mutex mu_;
  std::vector<uint64_t> read_tokens_;  // guarded by mu_
  // Token -> the lease each lock was granted under (tokens are unique per
  // key). Guarded by mu_.
  std::map<uint64_t, uint64_t> lease_of_;
  uint64_t write_token_ = 0;           // guarded by mu_
};

}  // namespace dogpiled::internal
