#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

class LockOnlyTest : public CoreTest {
 protected:
  AcquireRequest LockOnly(SessionId s, double created, int64_t wait_ms = 0) {
    AcquireRequest r = Req(s, "k", 1000, wait_ms);
    r.client_created_time = created;
    return r;
  }
};

TEST_F(LockOnlyTest, DecidesFromCallersTimeAndReturnsNoValue) {
  SessionId a = Open();
  const double now = clock_.WallSeconds();
  AcquireResult fresh = Now(LockOnly(a, now - 0.5));
  EXPECT_EQ(fresh.outcome, Outcome::kFresh);
  EXPECT_FALSE(fresh.has_value);
  AcquireResult create = Now(LockOnly(a, now - 2));
  EXPECT_EQ(create.outcome, Outcome::kCreate);
  EXPECT_FALSE(create.has_value);
  EXPECT_EQ(Now(LockOnly(Open(), now - 2)).outcome, Outcome::kStale);
  EXPECT_EQ(Now(LockOnly(Open(), 0)).outcome, Outcome::kNotReady);
  EXPECT_EQ(Now(LockOnly(Open(), -1)).outcome, Outcome::kNotReady);
}

TEST_F(LockOnlyTest, ParkedLockOnlyWaitersGetFreshOnPublishNoValueStored) {
  SessionId a = Open();
  Token t = Now(LockOnly(a, 0)).token;
  auto waiter = Acquire(LockOnly(Open(), 0, 30'000));
  EXPECT_FALSE(waiter->done);
  PublishRequest p;
  p.registry = "reg";
  p.key = "k";
  p.session_id = a;
  p.token = t;
  p.created_time = clock_.WallSeconds();
  ASSERT_TRUE(core_->Publish(p).ok());
  ASSERT_TRUE(waiter->done);
  EXPECT_EQ(waiter->result->outcome, Outcome::kFresh);
  EXPECT_FALSE(waiter->result->has_value);
  EXPECT_DOUBLE_EQ(waiter->result->created_time, *p.created_time);
  EXPECT_EQ(core_->GetStats().stored_bytes, 0u);
  EXPECT_EQ(core_->GetStats().entries, 0u);  // nothing references it now
}

TEST_F(LockOnlyTest, AbandonElectsNextLockOnlyWaiter) {
  SessionId a = Open();
  Token t = Now(LockOnly(a, 0)).token;
  auto waiter = Acquire(LockOnly(Open(), 0, 30'000));
  ASSERT_TRUE(Abandon(a, t).ok());
  ASSERT_TRUE(waiter->done);
  EXPECT_EQ(waiter->result->outcome, Outcome::kCreate);
}

}  // namespace
}  // namespace dogpiled::core
