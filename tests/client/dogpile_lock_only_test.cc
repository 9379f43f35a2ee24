// Dogpile in lock-only mode: the caller keeps the value in its own cache
// and the daemon only decides who regenerates.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "daemon_test.h"
#include "dogpiled/dogpile.h"
#include "test_util.h"

namespace dogpiled {
namespace {

using std::chrono::milliseconds;
using testing::GetStatsOrDie;
using testing::Notification;

using DogpileLockOnlyTest = testing::DaemonTest;

double Now() {
  return std::chrono::duration<double>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The caller's own cache (memcached, say), shared by every "process".
class Cache {
 public:
  std::pair<int, double> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!entry_) {
      throw NeedRegeneration();
    }
    return *entry_;
  }
  void Put(int value, double created) {
    std::lock_guard<std::mutex> lock(mu_);
    entry_ = {value, created};
  }

 private:
  std::mutex mu_;
  std::optional<std::pair<int, double>> entry_;
};

// A creator storing run number * 10 into the cache.
class Creator {
 public:
  explicit Creator(Cache& cache) : cache_(cache) {}
  std::pair<int, double> operator()() {
    const int value = 10 * ++runs_;
    const double created = Now();
    cache_.Put(value, created);
    return {value, created};
  }
  int runs() const { return runs_; }

 private:
  Cache& cache_;
  std::atomic<int> runs_{0};
};

TEST_F(DogpileLockOnlyTest, CreatesWhenTheCacheIsEmptyThenReadsIt) {
  Session session = OpenSession();
  DogpileOptions options;
  options.expiretime = milliseconds(60'000);
  Dogpile dogpile(session, "pricing", "sku-1", options);
  Cache cache;
  Creator creator(cache);
  auto get = [&] { return cache.Get(); };
  EXPECT_EQ(dogpile.acquire(std::ref(creator), get), 10);
  EXPECT_EQ(dogpile.acquire(std::ref(creator), get), 10);
  EXPECT_EQ(creator.runs(), 1);
  // The daemon holds no value in this mode.
  EXPECT_FALSE(client_->Peek("pricing", "sku-1")->has_value);
  const Stats stats = GetStatsOrDie(*client_);
  EXPECT_EQ(stats.acquires_create, 1u);
  EXPECT_EQ(stats.acquires_fresh, 1u);
}

TEST_F(DogpileLockOnlyTest, OldCacheStampIsExpired) {
  Session session = OpenSession();
  DogpileOptions options;
  options.expiretime = milliseconds(1000);
  Dogpile dogpile(session, "pricing", "sku-1", options);
  Cache cache;
  cache.Put(7, Now() - 10);  // created ten seconds ago
  Creator creator(cache);
  EXPECT_EQ(dogpile.acquire(std::ref(creator), [&] { return cache.Get(); }),
            10);
  EXPECT_EQ(creator.runs(), 1);
}

TEST_F(DogpileLockOnlyTest, ZeroCreatedtimeMeansNoValue) {
  Session session = OpenSession();
  Dogpile dogpile(session, "pricing", "sku-1");
  Cache cache;
  cache.Put(7, 0);  // dogpile: createdtime <= 0 has no value
  Creator creator(cache);
  EXPECT_EQ(dogpile.acquire(std::ref(creator), [&] { return cache.Get(); }),
            10);
}

TEST_F(DogpileLockOnlyTest, WaiterReadsWhatAnotherProcessCreated) {
  Session a = OpenSession();
  Session b = OpenSession();
  Dogpile first(a, "pricing", "sku-1");
  Dogpile second(b, "pricing", "sku-1");
  Cache cache;
  Notification creating, finish;
  auto slow = std::async(std::launch::async, [&] {
    return first.acquire(
        [&] {
          creating.Notify();
          finish.WaitFor();
          cache.Put(42, Now());
          return std::make_pair(42, Now());
        },
        [&] { return cache.Get(); });
  });
  ASSERT_TRUE(creating.WaitFor());
  std::atomic<bool> b_created{false};
  auto waiter = std::async(std::launch::async, [&] {
    return second.acquire(
        [&] {
          b_created = true;
          return std::make_pair(-1, Now());
        },
        [&] { return cache.Get(); });
  });
  ASSERT_TRUE(testing::WaitersAre(*client_, 1));
  finish.Notify();
  EXPECT_EQ(slow.get(), 42);
  EXPECT_EQ(waiter.get(), 42);
  EXPECT_FALSE(b_created);
}

TEST_F(DogpileLockOnlyTest, InvalidationReachesLockOnlyCallers) {
  Session session = OpenSession();
  Dogpile dogpile(session, "pricing", "sku-1");
  Cache cache;
  Creator creator(cache);
  auto get = [&] { return cache.Get(); };
  dogpile.acquire(std::ref(creator), get);
  ASSERT_TRUE(dogpile.invalidate(/*hard=*/false).ok());
  EXPECT_EQ(dogpile.acquire(std::ref(creator), get), 20);
  EXPECT_EQ(creator.runs(), 2);
}

TEST_F(DogpileLockOnlyTest, CreatorThatThrowsAbandons) {
  Session session = OpenSession();
  Dogpile dogpile(session, "pricing", "sku-1");
  Cache cache;
  EXPECT_THROW(dogpile.acquire(
                   []() -> std::pair<int, double> {
                     throw std::runtime_error("backend down");
                   },
                   [&] { return cache.Get(); }),
               std::runtime_error);
  EXPECT_EQ(GetStatsOrDie(*client_).abandons, 1u);
}

TEST_F(DogpileLockOnlyTest, AsyncCreatorReturnsTheCachedValueAtOnce) {
  Session session = OpenSession();
  std::function<void()> queued;
  DogpileOptions options;
  options.async_executor = [&](std::function<void()> job) {
    queued = std::move(job);
  };
  Dogpile dogpile(session, "pricing", "sku-1", options);
  Cache cache;
  Creator creator(cache);
  auto get = [&] { return cache.Get(); };
  EXPECT_EQ(dogpile.acquire(std::ref(creator), get), 10);  // inline: no value
  ASSERT_FALSE(queued);
  ASSERT_TRUE(dogpile.invalidate(/*hard=*/false).ok());
  EXPECT_EQ(dogpile.acquire(std::ref(creator), get), 10);  // stale, at once
  ASSERT_TRUE(queued);
  EXPECT_EQ(creator.runs(), 1);
  queued();
  EXPECT_EQ(creator.runs(), 2);
  EXPECT_EQ(dogpile.acquire(std::ref(creator), get), 20);
  EXPECT_EQ(creator.runs(), 2);  // the async publish made it fresh
}

}  // namespace
}  // namespace dogpiled
