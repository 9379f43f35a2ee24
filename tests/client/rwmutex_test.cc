#include "dogpiled/rwmutex.h"

#include <gtest/gtest.h>

#include <future>
#include <optional>
#include <stdexcept>

#include "daemon_test.h"
#include "test_util.h"

namespace dogpiled {
namespace {

using std::chrono::milliseconds;

// Most tests need two holders of one key: two sessions, as two processes
// would have, each with its own handle.
class ReadWriteMutexTest : public testing::DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    session_a_.emplace(OpenSession());
    session_b_.emplace(OpenSession());
  }
  ReadWriteMutex HandleA(ReadWriteMutexOptions options = {}) {
    return ReadWriteMutex(*session_a_, "jobs", "nightly", options);
  }
  ReadWriteMutex HandleB(ReadWriteMutexOptions options = {}) {
    return ReadWriteMutex(*session_b_, "jobs", "nightly", options);
  }
  static ReadWriteMutexOptions WaitAtMost(milliseconds wait) {
    ReadWriteMutexOptions options;
    options.wait_timeout = wait;
    return options;
  }

  std::optional<Session> session_a_;
  std::optional<Session> session_b_;
};

TEST_F(ReadWriteMutexTest, WriteLockIsNotReentrant) {
  ReadWriteMutex mutex = HandleA();
  ASSERT_TRUE(mutex.acquire_write_lock(false));
  // dogpile.cache's own test: a second try through the same handle fails.
  EXPECT_FALSE(mutex.acquire_write_lock(false));
  EXPECT_TRUE(mutex.release_write_lock().ok());
  EXPECT_TRUE(mutex.acquire_write_lock(false));
}

TEST_F(ReadWriteMutexTest, ReadersShareWritersExclude) {
  ReadWriteMutex first = HandleA();
  ReadWriteMutex second = HandleB();
  ASSERT_TRUE(first.acquire_read_lock(false));
  EXPECT_TRUE(second.acquire_read_lock(false));
  EXPECT_FALSE(second.acquire_write_lock(false));
  EXPECT_TRUE(first.release_read_lock().ok());
  EXPECT_TRUE(second.release_read_lock().ok());
  ASSERT_TRUE(first.acquire_write_lock(false));
  EXPECT_FALSE(second.acquire_read_lock(false));
}

TEST_F(ReadWriteMutexTest, WaitingWriterIsGrantedOnRelease) {
  ReadWriteMutex reader = HandleA();
  ReadWriteMutex writer = HandleB();
  ASSERT_TRUE(reader.acquire_read_lock(false));
  auto waiting = std::async(std::launch::async,
                            [&] { return writer.acquire_write_lock(true); });
  ASSERT_TRUE(testing::WaitersAre(*client_, 1));
  EXPECT_TRUE(reader.release_read_lock().ok());
  EXPECT_TRUE(waiting.get());
}

TEST_F(ReadWriteMutexTest, WaitingWriterBlocksNewReaders) {
  Session c = OpenSession();
  ReadWriteMutex reader = HandleA();
  ReadWriteMutex writer = HandleB();
  ReadWriteMutex late_reader(c, "jobs", "nightly");
  ASSERT_TRUE(reader.acquire_read_lock(false));
  auto waiting = std::async(std::launch::async,
                            [&] { return writer.acquire_write_lock(true); });
  ASSERT_TRUE(testing::WaitersAre(*client_, 1));
  EXPECT_FALSE(late_reader.acquire_read_lock(false));  // no starvation
  EXPECT_TRUE(reader.release_read_lock().ok());
  EXPECT_TRUE(waiting.get());
}

TEST_F(ReadWriteMutexTest, WaitTimeoutGivesUp) {
  ReadWriteMutex holder = HandleA();
  ReadWriteMutex impatient = HandleB(WaitAtMost(milliseconds(100)));
  ASSERT_TRUE(holder.acquire_write_lock(false));
  EXPECT_FALSE(impatient.acquire_read_lock(true));
  EXPECT_EQ(testing::GetStatsOrDie(*client_).wait_timeouts, 1u);
}

TEST_F(ReadWriteMutexTest, ReleasingWhatIsNotHeldIsFailedPrecondition) {
  ReadWriteMutex mutex = HandleA();
  EXPECT_EQ(mutex.release_read_lock().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(mutex.release_write_lock().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(ReadWriteMutexTest, DestructorReleasesHeldLocks) {
  {
    ReadWriteMutex mutex = HandleA();
    ASSERT_TRUE(mutex.acquire_write_lock(false));
  }
  ReadWriteMutex other = HandleB();
  EXPECT_TRUE(other.acquire_write_lock(false));
}

TEST_F(ReadWriteMutexTest, GuardReleasesOnScopeExit) {
  ReadWriteMutex mutex = HandleA();
  ReadWriteMutex other = HandleB();
  {
    WriteLockGuard guard(mutex);
    EXPECT_TRUE(guard.owns_lock());
    EXPECT_NE(guard.token(), 0u);
    EXPECT_FALSE(other.acquire_read_lock(false));
  }
  EXPECT_TRUE(other.acquire_read_lock(false));
}

TEST_F(ReadWriteMutexTest, GuardReleasesWhenAnExceptionIsThrown) {
  ReadWriteMutex mutex = HandleA();
  ReadWriteMutex other = HandleB();
  try {
    ReadLockGuard guard(mutex);
    EXPECT_FALSE(other.acquire_write_lock(false));
    throw std::runtime_error("work failed");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(other.acquire_write_lock(false));
}

TEST_F(ReadWriteMutexTest, TryGuardReportsWhetherItOwnsTheLock) {
  ReadWriteMutex mutex = HandleA();
  ReadWriteMutex other = HandleB();
  WriteLockGuard held(mutex, std::try_to_lock);
  ASSERT_TRUE(held);
  WriteLockGuard refused(other, std::try_to_lock);
  EXPECT_FALSE(refused.owns_lock());
  EXPECT_TRUE(refused.release().ok());  // nothing held: nothing to do
  WriteLockGuard moved = std::move(held);
  EXPECT_FALSE(held.owns_lock());  // NOLINT: checking the moved-from state
  EXPECT_TRUE(moved.owns_lock());
  EXPECT_TRUE(moved.release().ok());
  EXPECT_TRUE(other.acquire_write_lock(false));
}

TEST_F(ReadWriteMutexTest, BlockingGuardThrowsWhenNotGrantedInTime) {
  ReadWriteMutex holder = HandleA();
  ReadWriteMutex impatient = HandleB(WaitAtMost(milliseconds(50)));
  ASSERT_TRUE(holder.acquire_write_lock(false));
  try {
    ReadLockGuard guard(impatient);
    ADD_FAILURE() << "guard constructed without the lock";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), StatusCode::kDeadlineExceeded);
  }
}

TEST_F(ReadWriteMutexTest, GuardsOfOneHandleReleaseTheirOwnGrant) {
  ReadWriteMutex mutex = HandleA();
  ReadLockGuard first(mutex);
  {
    ReadLockGuard second(mutex);
    EXPECT_NE(first.token(), second.token());
  }
  // first still holds its read lock: a writer elsewhere is refused.
  ReadWriteMutex other = HandleB();
  EXPECT_FALSE(other.acquire_write_lock(false));
}

}  // namespace
}  // namespace dogpiled
