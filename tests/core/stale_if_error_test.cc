// Stale-if-error: after a failed creation, readers keep the previous value
// (within max_stale_ms) and re-election is throttled by retry_after_ms.
#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

class StaleIfErrorTest : public CoreTest {
 protected:
  // Stores "prev" under "k" (fresh for 1 s), then lets it expire.
  SessionId StoreAndExpire() {
    SessionId a = Open(600'000);
    EXPECT_TRUE(Publish(a, Now(Req(a)).token, "prev").ok());
    Advance(1500);
    return a;
  }
  Status AbandonWithRetry(SessionId s, Token t, int64_t retry_after_ms) {
    AbandonRequest r;
    r.registry = "reg";
    r.key = "k";
    r.session_id = s;
    r.token = t;
    r.reason = "backend down";
    r.retry_after_ms = retry_after_ms;
    return core_->Abandon(r);
  }
};

TEST_F(StaleIfErrorTest, ThrottledKeyServesStaleWithAgeThenElectsOnce) {
  SessionId a = StoreAndExpire();
  AcquireResult create = Now(Req(a));
  ASSERT_EQ(create.outcome, Outcome::kCreate);
  EXPECT_EQ(create.age_ms, 1500);
  ASSERT_TRUE(AbandonWithRetry(a, create.token, 1000).ok());
  // For the next second nobody is elected: everyone gets the old value.
  for (int i = 0; i < 10; ++i) {
    AcquireResult r = Now(Req(Open(600'000)));
    EXPECT_EQ(r.outcome, Outcome::kStale);
    EXPECT_EQ(r.value, "prev");
    EXPECT_EQ(r.age_ms, 1500 + 100 * i);
    EXPECT_EQ(r.retry_in_ms, 1000 - 100 * i);
    Advance(100);
  }
  AcquireResult retry = Now(Req(a));
  EXPECT_EQ(retry.outcome, Outcome::kCreate);  // one attempt per interval
  EXPECT_EQ(retry.retry_in_ms, 0);
  EXPECT_EQ(Now(Req(a)).outcome, Outcome::kStale);
  EXPECT_EQ(core_->GetStats().acquires_create, 3u);
}

TEST_F(StaleIfErrorTest, MaxStaleTurnsTooOldValueIntoAbsence) {
  SessionId a = StoreAndExpire();  // 500 ms past expiry
  Token t = Now(Req(a)).token;
  ASSERT_TRUE(AbandonWithRetry(a, t, 10'000).ok());
  AcquireRequest tolerant = Req(Open(600'000));
  tolerant.max_stale_ms = 600;
  EXPECT_EQ(Now(tolerant).outcome, Outcome::kStale);
  AcquireRequest strict = Req(Open(600'000));
  strict.max_stale_ms = 400;
  AcquireResult refused = Now(strict);
  EXPECT_EQ(refused.outcome, Outcome::kNotReady);
  EXPECT_FALSE(refused.has_value);
  EXPECT_EQ(refused.retry_in_ms, 10'000);
}

TEST_F(StaleIfErrorTest, ParkedCallersAreElectedWhenTheThrottleEnds) {
  SessionId a = Open(600'000);
  Token t = Now(Req(a)).token;  // no value at all
  auto waiter = Acquire(Req(Open(600'000), "k", 1000, 30'000));
  ASSERT_TRUE(AbandonWithRetry(a, t, 2000).ok());
  EXPECT_FALSE(waiter->done);
  EXPECT_EQ(Now(Req(Open(600'000))).outcome, Outcome::kNotReady);
  Advance(1999);
  EXPECT_FALSE(waiter->done);
  Advance(1);
  ASSERT_TRUE(waiter->done);
  EXPECT_EQ(waiter->result->outcome, Outcome::kCreate);
}

TEST_F(StaleIfErrorTest, ThrottleOutlivesAnUnreferencedEntry) {
  SessionId a = Open(600'000);
  Token t = Now(Req(a)).token;
  ASSERT_TRUE(AbandonWithRetry(a, t, 500).ok());
  EXPECT_EQ(core_->GetStats().entries, 1u);
  EXPECT_EQ(Now(Req(a)).outcome, Outcome::kNotReady);
  Advance(500);
  EXPECT_EQ(core_->GetStats().entries, 0u);
  EXPECT_EQ(Now(Req(a)).outcome, Outcome::kCreate);
}

TEST_F(StaleIfErrorTest, NegativeRetryAndMaxStaleAreInvalid) {
  SessionId a = Open();
  Token t = Now(Req(a)).token;
  Status s = AbandonWithRetry(a, t, -1);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("retry_after_ms", 0), 0u);
  AcquireRequest r = Req(a);
  r.max_stale_ms = -1;
  EXPECT_EQ(Acquire(r)->result.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Abandon(a, t).ok());  // the refused call changed nothing
}

}  // namespace
}  // namespace dogpiled::core
