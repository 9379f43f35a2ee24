// dogpile's ReadWriteMutex, over the network.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "dogpiled/export.h"
#include "dogpiled/session.h"
#include "dogpiled/status.h"

namespace dogpiled {

namespace internal {
class RwMutexImpl;
}  // namespace internal

enum class LockMode { kRead, kWrite };

struct ReadWriteMutexOptions {
  // How long acquire_*_lock(true) and the blocking guards wait before
  // giving up (they then return false / throw DEADLINE_EXCEEDED). Negative:
  // wait as long as it takes.
  std::chrono::milliseconds wait_timeout{-1};
};

// Many readers or one writer per (registry, key), across every process
// that uses the daemon. A waiting writer blocks new readers; writers are
// served in arrival order. Every grant hangs on the Session and ends with
// it. Grants are not re-entrant: asking again for a lock this handle holds
// waits (or, with wait=false, fails) like any other caller.
//
// Each grant has its own fencing token. release_read_lock() releases one
// read grant this handle holds; the guards below release exactly their
// own, which is what threads sharing one handle want.
//
// Errors other than "not granted in time" (the session is gone, the daemon
// is unreachable) are thrown as Error by acquire_*; release_* return them.
// The destructor releases whatever this handle still holds.
//
// Thread-safe: every method may be called from any thread at once.
class DOGPILED_EXPORT ReadWriteMutex {
 public:
  ReadWriteMutex(const Session& session, std::string registry,
                 std::string key, ReadWriteMutexOptions options = {});
  ~ReadWriteMutex();
  ReadWriteMutex(ReadWriteMutex&&) noexcept;
  ReadWriteMutex& operator=(ReadWriteMutex&&) noexcept;
  ReadWriteMutex(const ReadWriteMutex&) = delete;
  ReadWriteMutex& operator=(const ReadWriteMutex&) = delete;

  // wait=false is a try-lock. Returns whether the lock was granted.
  bool acquire_read_lock(bool wait = true);
  bool acquire_write_lock(bool wait = true);
  // FAILED_PRECONDITION if this handle holds no such lock; NOT_FOUND if the
  // session ended (the lock is gone anyway). OK when the release, sent
  // again after a lost answer, finds the lock released by its first try.
  Status release_read_lock();
  Status release_write_lock();

 private:
  template <LockMode>
  friend class LockGuard;
  std::shared_ptr<internal::RwMutexImpl> impl_;
};

// Holds one lock of `kMode` for its scope, like std::unique_lock; use the
// ReadLockGuard and WriteLockGuard names below. The waiting constructor
// throws Error (DEADLINE_EXCEEDED when not granted within the mutex's
// wait_timeout); the try_to_lock one sets owns_lock() instead. The
// destructor releases, also while an exception unwinds. Move-only.
//
// Thread-compatible: one guard belongs to one thread at a time.
template <LockMode kMode>
class DOGPILED_EXPORT LockGuard {
 public:
  explicit LockGuard(ReadWriteMutex& mutex);
  LockGuard(ReadWriteMutex& mutex, std::try_to_lock_t);
  ~LockGuard();
  LockGuard(LockGuard&& other) noexcept;
  LockGuard& operator=(LockGuard&& other) noexcept;
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

  bool owns_lock() const { return token_ != 0; }
  explicit operator bool() const { return owns_lock(); }
  uint64_t token() const { return token_; }  // fencing token, 0 if none
  // Releases now; OK if nothing is held.
  Status release();

 private:
  std::shared_ptr<internal::RwMutexImpl> impl_;
  uint64_t token_ = 0;
};

// Both modes are compiled into the library.
extern template class LockGuard<LockMode::kRead>;
extern template class LockGuard<LockMode::kWrite>;

using ReadLockGuard = LockGuard<LockMode::kRead>;
using WriteLockGuard = LockGuard<LockMode::kWrite>;

}  // namespace dogpiled
