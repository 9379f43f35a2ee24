#include "dogpiled/client.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "daemon_test.h"
#include "dogpiled/dogpile.h"
#include "test_util.h"

namespace dogpiled {
namespace {

using std::chrono::milliseconds;

using ClientTest = testing::DaemonTest;

TEST_F(ClientTest, HealthIsServing) {
  StatusOr<HealthStatus> health = client_->CheckHealth();
  ASSERT_TRUE(health.ok()) << health.status().ToString();
  EXPECT_EQ(*health, HealthStatus::kServing);
}

TEST_F(ClientTest, HealthOfAnUnknownServiceIsNotFound) {
  // The standard health service answers NOT_FOUND for names it never heard.
  StatusOr<HealthStatus> health = client_->CheckHealth("no.such.Service");
  ASSERT_FALSE(health.ok());
  EXPECT_EQ(health.status().code(), StatusCode::kNotFound);
}

TEST_F(ClientTest, UnreachableDaemonIsUnavailable) {
  daemon_->Signal(SIGKILL);
  EXPECT_EQ(client_->CheckHealth().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(client_->GetStats().status().code(), StatusCode::kUnavailable);
}

TEST_F(ClientTest, StatsCountWhatHappened) {
  Session session = OpenSession();
  Dogpile dogpile(session, "users", "42");
  dogpile.acquire([] { return std::string("12345"); });
  dogpile.acquire([] { return std::string("unused"); });
  StatusOr<Stats> stats = client_->GetStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->sessions, 1u);
  EXPECT_EQ(stats->registries, 1u);
  EXPECT_EQ(stats->entries, 1u);
  EXPECT_EQ(stats->acquires_create, 1u);
  EXPECT_EQ(stats->acquires_fresh, 1u);
  EXPECT_EQ(stats->publishes, 1u);
  EXPECT_EQ(stats->stored_bytes, std::string("12345").size() + 2);
}

TEST_F(ClientTest, KeysAreBytesOfAnything) {
  // Not UTF-8, with a NUL inside: the wire type is bytes.
  const std::string key("\xff\xfe\0key", 6);
  Session session = OpenSession();
  Dogpile dogpile(session, "users", key);
  EXPECT_EQ(dogpile.acquire([] { return std::string("v"); }), "v");
  StatusOr<PeekResult> peek = client_->Peek("users", key);
  ASSERT_TRUE(peek.ok()) << peek.status().ToString();
  EXPECT_EQ(peek->value, "v");
  EXPECT_FALSE(client_->Peek("users", std::string("\xff\xfe", 2))->has_value);
}

TEST_F(ClientTest, PeekTakesNoRole) {
  StatusOr<PeekResult> missing = client_->Peek("users", "42");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value);
  EXPECT_TRUE(missing->is_expired);

  Session session = OpenSession();
  Dogpile dogpile(session, "users", "42");
  dogpile.acquire([] { return std::string("v"); });
  StatusOr<PeekResult> found = client_->Peek("users", "42", milliseconds(0));
  ASSERT_TRUE(found.ok());
  EXPECT_TRUE(found->has_value);
  EXPECT_EQ(found->value, "v");
  EXPECT_FALSE(found->is_expired);
  EXPECT_FALSE(found->creating);
  EXPECT_GT(found->created_time, 0);
  EXPECT_TRUE(client_->Peek("users", "42", milliseconds(-1))->is_expired);
  EXPECT_EQ(testing::TotalAcquires(testing::GetStatsOrDie(*client_)), 1u);
}

TEST_F(ClientTest, InvalidateOneKeyOrTheWholeRegistry) {
  Session session = OpenSession();
  Dogpile a(session, "users", "a");
  Dogpile b(session, "users", "b");
  a.acquire([] { return std::string("1"); });
  b.acquire([] { return std::string("2"); });

  ASSERT_TRUE(client_->Invalidate("users", "a", /*hard=*/true).ok());
  EXPECT_FALSE(client_->Peek("users", "a")->has_value);
  EXPECT_FALSE(client_->Peek("users", "b")->is_expired);

  ASSERT_TRUE(client_->Invalidate("users", "", /*hard=*/false).ok());
  StatusOr<PeekResult> peek_b = client_->Peek("users", "b");
  EXPECT_TRUE(peek_b->has_value);  // soft: still a stale fallback
  EXPECT_TRUE(peek_b->is_expired);
}

TEST_F(ClientTest, TwiceTheValueLimitIsRefusedByTheDaemonNamingValue) {
  Session session = OpenSession();
  Dogpile dogpile(session, "users", "big");
  constexpr size_t kMiB = 1 << 20;
  try {
    dogpile.acquire([] { return std::string(2 * kMiB, 'x'); });
    FAIL() << "a 2 MiB value was stored";
  } catch (const Error& e) {
    const Status& s = e.status();
    EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
    EXPECT_EQ(s.reason(), "VALUE_TOO_LARGE");
    EXPECT_EQ(s.metadata().at("field"), "value");
    EXPECT_EQ(s.metadata().at("limit"), std::to_string(kMiB));
    EXPECT_EQ(s.metadata().at("size"), std::to_string(2 * kMiB));
    EXPECT_FALSE(s.retry_delay().has_value());
  }
  // The creator role was handed on, not left to time out.
  EXPECT_FALSE(client_->Peek("users", "big")->creating);
}

TEST_F(ClientTest, CapsCarryAReasonAndARetryDelay) {
  daemon_ = testing::Daemon::Start({"--max-waiters-per-key", "1"});
  client_ = std::make_unique<Client>(daemon_->target());
  Session holder = OpenSession();
  // Hold the creator role from a second thread, so one call parks.
  Session waiter = OpenSession();
  Session third = OpenSession();
  testing::Notification created;
  testing::Notification publish;
  std::thread creator([&] {
    Dogpile(holder, "users", "k").acquire([&] {
      created.Notify();
      EXPECT_TRUE(publish.WaitFor());
      return std::string("v");
    });
  });
  ASSERT_TRUE(created.WaitFor());
  std::thread parked([&] { Dogpile(waiter, "users", "k").acquire([] {
    return std::string("never");
  }); });
  ASSERT_TRUE(testing::Eventually(
      [&] { return testing::GetStatsOrDie(*client_).waiters == 1; }));
  try {
    Dogpile(third, "users", "k").acquire([] { return std::string("no"); });
    ADD_FAILURE() << "a second waiter was parked";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(e.status().reason(), "WAITERS_PER_KEY");
    EXPECT_EQ(e.status().metadata().at("limit"), "1");
    ASSERT_TRUE(e.status().retry_delay().has_value());
    EXPECT_EQ(*e.status().retry_delay(), milliseconds(1000));
  }
  publish.Notify();
  creator.join();
  parked.join();
}

TEST_F(ClientTest, BadNamesAreInvalidArgument) {
  EXPECT_EQ(client_->Peek("", "k").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->Invalidate("bad name", "", false).code(),
            StatusCode::kInvalidArgument);
}

TEST(StatusTest, ToStringNamesTheCode) {
  EXPECT_EQ(Status().ToString(), "OK");
  EXPECT_EQ(Status(StatusCode::kNotFound, "session").ToString(),
            "NOT_FOUND: session");
  const Error error(Status(StatusCode::kUnavailable, "down"));
  EXPECT_STREQ(error.what(), "UNAVAILABLE: down");
  StatusOr<int> failed = Status(StatusCode::kAborted, "x");
  EXPECT_FALSE(failed.ok());
  try {
    failed.value();
    ADD_FAILURE() << "value() of an error did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), StatusCode::kAborted);
  }
  StatusOr<int> fine = 3;
  EXPECT_EQ(*fine, 3);
}

}  // namespace
}  // namespace dogpiled
