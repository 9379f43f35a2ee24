// Clang thread-safety annotations (no-ops elsewhere) and a Mutex that
// carries them, so a clang build with -Wthread-safety checks that shared
// state is only touched under its lock.
#pragma once

#include <mutex>

#if defined(__clang__)
#define DP_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define DP_THREAD_ANNOTATION(x)
#endif

#define DP_CAPABILITY(x) DP_THREAD_ANNOTATION(capability(x))
#define DP_SCOPED_CAPABILITY DP_THREAD_ANNOTATION(scoped_lockable)
#define DP_GUARDED_BY(x) DP_THREAD_ANNOTATION(guarded_by(x))
#define DP_REQUIRES(...) \
  DP_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define DP_ACQUIRE(...) DP_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define DP_RELEASE(...) DP_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define DP_EXCLUDES(...) DP_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define DP_ASSERT_CAPABILITY(x) DP_THREAD_ANNOTATION(assert_capability(x))

namespace dogpiled::core {

class DP_CAPABILITY("mutex") Mutex {
 public:
  void Lock() DP_ACQUIRE() { mu_.lock(); }
  void Unlock() DP_RELEASE() { mu_.unlock(); }
  // Tells the analysis the lock is held where it cannot see it (lambdas
  // run inside a locked call).
  void AssertHeld() const DP_ASSERT_CAPABILITY(this) {}

 private:
  std::mutex mu_;
};

}  // namespace dogpiled::core
