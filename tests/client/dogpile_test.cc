// Dogpile with the value held by the daemon.
#include "dogpiled/dogpile.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "daemon_test.h"
#include "test_util.h"

namespace dogpiled {
namespace {

using std::chrono::milliseconds;
using testing::GetStatsOrDie;
using testing::Notification;

using DogpileTest = testing::DaemonTest;

// Waits well short of the daemon's 30 s creation timeout, so a role handed
// on only by that timeout (not by Abandon) fails the test.
DogpileOptions ShortWait() {
  DogpileOptions options;
  options.wait_timeout = milliseconds(5000);
  return options;
}

// A creator that counts its runs and returns "<prefix><run>".
class CountingCreator {
 public:
  explicit CountingCreator(std::string prefix) : prefix_(std::move(prefix)) {}
  Dogpile::Creator fn() {
    return [this] { return prefix_ + std::to_string(++runs_); };
  }
  int runs() const { return runs_; }

 private:
  std::string prefix_;
  std::atomic<int> runs_{0};
};

// Jobs queue up until the test runs them: async creation, step by step.
class ManualExecutor {
 public:
  Executor executor() {
    return [this](std::function<void()> job) {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    };
  }
  size_t pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs_.size();
  }
  void RunAll() {
    std::deque<std::function<void()>> jobs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs.swap(jobs_);
    }
    for (auto& job : jobs) {
      job();
    }
  }

 private:
  std::mutex mu_;
  std::deque<std::function<void()>> jobs_;
};

TEST_F(DogpileTest, CreatesOnceThenServesFresh) {
  Session session = OpenSession();
  Dogpile dogpile(session, "users", "42");
  CountingCreator creator("v");
  EXPECT_FALSE(dogpile.has_value());
  EXPECT_EQ(dogpile.createdtime(), -1);
  EXPECT_TRUE(dogpile.is_expired());

  const AcquireResult first = dogpile.acquire_result(creator.fn());
  EXPECT_EQ(first.value, "v1");
  EXPECT_EQ(first.source, ValueSource::kCreated);
  EXPECT_TRUE(first.stored);
  EXPECT_EQ(dogpile.acquire(creator.fn()), "v1");
  EXPECT_EQ(creator.runs(), 1);

  EXPECT_TRUE(dogpile.has_value());
  EXPECT_FALSE(dogpile.is_expired());
  EXPECT_DOUBLE_EQ(dogpile.createdtime(), first.createdtime);
  const Stats stats = GetStatsOrDie(*client_);
  EXPECT_EQ(stats.acquires_create, 1u);
  EXPECT_EQ(stats.acquires_fresh, 1u);
  EXPECT_EQ(stats.publishes, 1u);
}

TEST_F(DogpileTest, ExpiredValueIsRecreated) {
  Session session = OpenSession();
  Dogpile dogpile(session, "users", "42");
  CountingCreator creator("v");
  dogpile.acquire(creator.fn());
  ASSERT_TRUE(dogpile.invalidate(/*hard=*/false).ok());
  EXPECT_TRUE(dogpile.is_expired());
  EXPECT_TRUE(dogpile.has_value());  // soft: kept as a stale fallback
  const AcquireResult again = dogpile.acquire_result(creator.fn());
  EXPECT_EQ(again.value, "v2");
  EXPECT_EQ(again.source, ValueSource::kCreated);
}

TEST_F(DogpileTest, ExpiretimeIsJudgedByTheDaemon) {
  Session session = OpenSession();
  DogpileOptions options;
  options.expiretime = milliseconds(-1);  // always expired
  Dogpile dogpile(session, "users", "42", options);
  CountingCreator creator("v");
  dogpile.acquire(creator.fn());
  EXPECT_TRUE(dogpile.is_expired());
  EXPECT_EQ(dogpile.acquire(creator.fn()), "v2");
}

TEST_F(DogpileTest, OthersGetTheStaleValueWhileOneRecreates) {
  Session creator_session = OpenSession();
  Session reader_session = OpenSession();
  Dogpile creator_side(creator_session, "users", "42");
  Dogpile reader_side(reader_session, "users", "42");
  creator_side.acquire([] { return std::string("old"); });
  ASSERT_TRUE(creator_side.invalidate(/*hard=*/false).ok());

  Notification creating, finish;
  auto slow = std::async(std::launch::async, [&] {
    return creator_side.acquire([&] {
      creating.Notify();
      finish.WaitFor();
      return std::string("new");
    });
  });
  ASSERT_TRUE(creating.WaitFor());
  const AcquireResult stale =
      reader_side.acquire_result([] { return std::string("unused"); });
  EXPECT_EQ(stale.value, "old");
  EXPECT_EQ(stale.source, ValueSource::kStale);
  finish.Notify();
  EXPECT_EQ(slow.get(), "new");
  EXPECT_EQ(reader_side.acquire([] { return std::string("unused"); }), "new");
}

TEST_F(DogpileTest, WaiterGetsTheValueTheCreatorPublishes) {
  Session a = OpenSession();
  Session b = OpenSession();
  Dogpile first(a, "users", "42");
  Dogpile second(b, "users", "42");
  Notification creating, finish;
  auto creator = std::async(std::launch::async, [&] {
    return first.acquire([&] {
      creating.Notify();
      finish.WaitFor();
      return std::string("made-by-a");
    });
  });
  ASSERT_TRUE(creating.WaitFor());
  std::atomic<bool> b_created{false};
  auto waiter = std::async(std::launch::async, [&] {
    return second.acquire([&] {
      b_created = true;
      return std::string("made-by-b");
    });
  });
  ASSERT_TRUE(testing::WaitersAre(*client_, 1));  // b is parked
  finish.Notify();
  EXPECT_EQ(creator.get(), "made-by-a");
  EXPECT_EQ(waiter.get(), "made-by-a");
  EXPECT_FALSE(b_created);
}

TEST_F(DogpileTest, CreatorThatThrowsAbandonsAndRethrows) {
  Session session = OpenSession();
  Dogpile dogpile(session, "users", "42");
  EXPECT_THROW(dogpile.acquire([]() -> std::string {
    throw std::runtime_error("backend down");
  }),
               std::runtime_error);
  EXPECT_EQ(GetStatsOrDie(*client_).abandons, 1u);
  EXPECT_FALSE(client_->Peek("users", "42")->creating);  // role handed back
  EXPECT_EQ(dogpile.acquire([] { return std::string("ok"); }), "ok");
}

TEST_F(DogpileTest, CreatorThatThrowsHandsTheRoleToTheNextWaiter) {
  Session a = OpenSession();
  Session b = OpenSession();
  Dogpile first(a, "users", "42");
  Dogpile second(b, "users", "42", ShortWait());
  Notification b_parked;
  auto failing = std::async(std::launch::async, [&] {
    return first.acquire([&]() -> std::string {
      b_parked.WaitFor();
      throw std::runtime_error("backend down");
    });
  });
  ASSERT_TRUE(testing::Eventually(
      [&] { return client_->Peek("users", "42")->creating; }));
  auto waiting = std::async(std::launch::async, [&] {
    return second.acquire_result([] { return std::string("made-by-b"); });
  });
  ASSERT_TRUE(testing::WaitersAre(*client_, 1));
  b_parked.Notify();
  EXPECT_THROW(failing.get(), std::runtime_error);
  const AcquireResult got = waiting.get();
  EXPECT_EQ(got.value, "made-by-b");
  EXPECT_EQ(got.source, ValueSource::kCreated);  // b was elected
  const Stats stats = GetStatsOrDie(*client_);
  EXPECT_EQ(stats.acquires_create, 2u);
  EXPECT_EQ(stats.abandons, 1u);
  EXPECT_EQ(stats.creation_timeouts, 0u);
}

TEST_F(DogpileTest, InProcessFollowerTakesOverWhenTheLeaderThrows) {
  Session session = OpenSession();
  Dogpile dogpile(session, "users", "42", ShortWait());
  Notification leading, second_started;
  auto leader = std::async(std::launch::async, [&] {
    return dogpile.acquire([&]() -> std::string {
      leading.Notify();
      second_started.WaitFor();
      throw std::runtime_error("backend down");
    });
  });
  ASSERT_TRUE(leading.WaitFor());
  auto follower = std::async(std::launch::async, [&] {
    second_started.Notify();
    return dogpile.acquire_result([] { return std::string("second"); });
  });
  EXPECT_THROW(leader.get(), std::runtime_error);
  const AcquireResult got = follower.get();
  EXPECT_EQ(got.value, "second");
  EXPECT_EQ(got.source, ValueSource::kCreated);
  EXPECT_EQ(GetStatsOrDie(*client_).abandons, 1u);
}

TEST_F(DogpileTest, NotReadyWithoutWaitIsDeadlineExceeded) {
  Session a = OpenSession();
  Session b = OpenSession();
  Dogpile first(a, "users", "42");
  DogpileOptions no_wait;
  no_wait.wait_timeout = milliseconds(0);
  Dogpile impatient(b, "users", "42", no_wait);
  Notification creating, finish;
  auto creator = std::async(std::launch::async, [&] {
    return first.acquire([&] {
      creating.Notify();
      finish.WaitFor();
      return std::string("v");
    });
  });
  ASSERT_TRUE(creating.WaitFor());
  try {
    impatient.acquire([] { return std::string("x"); });
    ADD_FAILURE() << "expected DEADLINE_EXCEEDED";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), StatusCode::kDeadlineExceeded);
  }
  finish.Notify();
  creator.get();
}

TEST_F(DogpileTest, AsyncCreatorReturnsStaleNowAndPublishesLater) {
  Session session = OpenSession();
  ManualExecutor executor;
  DogpileOptions options;
  options.async_executor = executor.executor();
  Dogpile dogpile(session, "users", "42", options);
  CountingCreator creator("v");
  // No previous value: the creator runs in the caller, like dogpile.
  EXPECT_EQ(dogpile.acquire(creator.fn()), "v1");
  EXPECT_EQ(executor.pending(), 0u);

  ASSERT_TRUE(dogpile.invalidate(/*hard=*/false).ok());
  const AcquireResult now = dogpile.acquire_result(creator.fn());
  EXPECT_EQ(now.value, "v1");
  EXPECT_EQ(now.source, ValueSource::kStale);
  EXPECT_EQ(creator.runs(), 1);
  ASSERT_EQ(executor.pending(), 1u);
  EXPECT_TRUE(client_->Peek("users", "42")->creating);

  executor.RunAll();
  EXPECT_EQ(creator.runs(), 2);
  EXPECT_EQ(dogpile.acquire(creator.fn()), "v2");
  EXPECT_FALSE(dogpile.is_expired());
}

TEST_F(DogpileTest, AsyncCreatorErrorsAreReportedAndAbandon) {
  Session session = OpenSession();
  ManualExecutor executor;
  std::exception_ptr reported;
  DogpileOptions options;
  options.async_executor = executor.executor();
  options.on_async_error = [&](std::exception_ptr e) { reported = e; };
  Dogpile dogpile(session, "users", "42", options);
  dogpile.acquire([] { return std::string("v1"); });
  ASSERT_TRUE(dogpile.invalidate(/*hard=*/false).ok());
  EXPECT_EQ(dogpile.acquire([]() -> std::string {
    throw std::runtime_error("backend down");
  }),
            "v1");
  executor.RunAll();
  ASSERT_TRUE(reported);
  EXPECT_THROW(std::rethrow_exception(reported), std::runtime_error);
  EXPECT_EQ(GetStatsOrDie(*client_).abandons, 1u);
  EXPECT_FALSE(client_->Peek("users", "42")->creating);
}

TEST_F(DogpileTest, EarlyRefreshRecreatesBeforeExpiry) {
  Session session = OpenSession();
  DogpileOptions options;
  options.expiretime = milliseconds(60'000);
  Dogpile plain(session, "users", "42", options);
  // A creation that takes a measurable time gives XFetch its delta.
  plain.acquire([] {
    std::this_thread::sleep_for(milliseconds(20));
    return std::string("v1");
  });
  options.early_refresh_beta = 1e9;  // refresh early with near certainty
  Dogpile eager(session, "users", "42", options);
  const AcquireResult got =
      eager.acquire_result([] { return std::string("v2"); });
  EXPECT_EQ(got.value, "v2");
  EXPECT_EQ(got.source, ValueSource::kCreated);
  EXPECT_EQ(GetStatsOrDie(*client_).early_refreshes, 1u);
}

TEST_F(DogpileTest, NeedRegenerationWhileUsingForcesANewValue) {
  Session session = OpenSession();
  Dogpile dogpile(session, "users", "42");
  CountingCreator creator("v");
  dogpile.acquire(creator.fn());
  std::vector<std::string> seen;
  const size_t length = dogpile.use(creator.fn(), [&](const std::string& v) {
    seen.push_back(v);
    if (v == "v1") {
      throw NeedRegeneration();
    }
    return v.size();
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"v1", "v2"}));
  EXPECT_EQ(length, 2u);
  EXPECT_EQ(client_->Peek("users", "42")->value, "v2");
}

TEST_F(DogpileTest, SecondNeedRegenerationPropagates) {
  Session session = OpenSession();
  Dogpile dogpile(session, "users", "42");
  CountingCreator creator("v");
  EXPECT_THROW(dogpile.use(creator.fn(),
                           [](const std::string&) { throw NeedRegeneration(); }),
               NeedRegeneration);
  EXPECT_EQ(creator.runs(), 2);
}

TEST_F(DogpileTest, ValueMadeAfterLosingTheRoleIsReturnedButNotStored) {
  Session session = OpenSession();
  Dogpile dogpile(session, "users", "42");
  const AcquireResult got = dogpile.acquire_result([&] {
    // An invalidation during creation dooms this creator's token.
    EXPECT_TRUE(client_->Invalidate("users", "42", /*hard=*/true).ok());
    return std::string("too-late");
  });
  EXPECT_EQ(got.value, "too-late");
  EXPECT_FALSE(got.stored);
  EXPECT_FALSE(client_->Peek("users", "42")->has_value);
  EXPECT_EQ(GetStatsOrDie(*client_).fencing_rejections, 1u);
}

TEST_F(DogpileTest, BadRegistryIsInvalidArgument) {
  Session session = OpenSession();
  Dogpile dogpile(session, "no spaces allowed", "42");
  try {
    dogpile.acquire([] { return std::string("v"); });
    ADD_FAILURE() << "expected INVALID_ARGUMENT";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST_F(DogpileTest, MovedDogpileStillWorks) {
  Session session = OpenSession();
  Dogpile original(session, "users", "42");
  Dogpile moved = std::move(original);
  EXPECT_EQ(moved.acquire([] { return std::string("v"); }), "v");
}

}  // namespace
}  // namespace dogpiled
