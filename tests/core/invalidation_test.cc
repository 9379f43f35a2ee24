#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

class InvalidationTest : public CoreTest {
 protected:
  Status Invalidate(const std::string& key, bool hard) {
    InvalidateRequest r;
    r.registry = "reg";
    r.key = key;
    r.hard = hard;
    return core_->Invalidate(r);
  }
  void Store(SessionId s, const std::string& key, const std::string& v) {
    ASSERT_TRUE(Publish(s, Now(Req(s, key, 0)).token, v, key).ok());
  }
};

TEST_F(InvalidationTest, SoftKeepsValueAsStaleFallback) {
  SessionId a = Open();
  Store(a, "k", "v1");
  ASSERT_TRUE(Invalidate("k", false).ok());
  AcquireResult create = Now(Req(a, "k", 0));
  EXPECT_EQ(create.outcome, Outcome::kCreate);
  EXPECT_EQ(create.value, "v1");
  EXPECT_TRUE(create.is_expired);
  EXPECT_EQ(Now(Req(Open(), "k", 0)).outcome, Outcome::kStale);
}

TEST_F(InvalidationTest, HardMakesValueAbsent) {
  SessionId a = Open();
  Store(a, "k", "v1");
  ASSERT_TRUE(Invalidate("k", true).ok());
  AcquireResult create = Now(Req(a, "k", 0));
  EXPECT_EQ(create.outcome, Outcome::kCreate);
  EXPECT_FALSE(create.has_value);
  EXPECT_EQ(Now(Req(Open(), "k", 0)).outcome, Outcome::kNotReady);
  EXPECT_EQ(core_->GetStats().stored_bytes, 0u);
}

TEST_F(InvalidationTest, CreatorElectedBeforeIsRefusedAndRolePasses) {
  SessionId a = Open();
  Token doomed = Now(Req(a, "k", 0)).token;
  auto waiter = Acquire(Req(Open(), "k", 0, 30'000));
  ASSERT_TRUE(Invalidate("k", false).ok());
  ASSERT_TRUE(waiter->done);  // role passed at once for a key invalidation
  EXPECT_EQ(waiter->result->outcome, Outcome::kCreate);
  EXPECT_EQ(Publish(a, doomed, "stale-data").code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(core_->GetStats().stored_bytes, 0u);
}

TEST_F(InvalidationTest, RegistryWideIsLazyButNeverServesOldValuesFresh) {
  SessionId a = Open();
  Store(a, "x", "vx");
  Store(a, "y", "vy");
  Token doomed = Now(Req(a, "z", 0)).token;
  ASSERT_TRUE(Invalidate("", false).ok());
  EXPECT_EQ(Now(Req(a, "x", 0)).outcome, Outcome::kCreate);
  AcquireResult y = Now(Req(Open(), "y", 0));
  EXPECT_EQ(y.outcome, Outcome::kCreate);
  EXPECT_EQ(y.value, "vy");
  EXPECT_EQ(Publish(a, doomed, "old", "z").code(), Code::kFailedPrecondition);
  // A creator elected after the invalidation publishes normally.
  ASSERT_TRUE(Publish(a, Now(Req(a, "z", 0)).token, "new", "z").ok());
  EXPECT_EQ(Now(Req(Open(), "z", 0)).outcome, Outcome::kFresh);
}

TEST_F(InvalidationTest, RegistryWideDoomedCreatorsPublishHandsRoleOn) {
  SessionId a = Open();
  Token doomed = Now(Req(a, "k", 0)).token;
  auto waiter = Acquire(Req(Open(), "k", 0, 30'000));
  ASSERT_TRUE(Invalidate("", true).ok());
  EXPECT_EQ(Publish(a, doomed, "old").code(), Code::kFailedPrecondition);
  ASSERT_TRUE(waiter->done);
  EXPECT_EQ(waiter->result->outcome, Outcome::kCreate);
}

TEST_F(InvalidationTest, RememberedForHorizonThenCollected) {
  Limits limits;
  limits.invalidation_horizon_ms = 5000;
  Make(limits);
  ASSERT_TRUE(Invalidate("never-used", false).ok());
  EXPECT_EQ(core_->GetStats().entries, 1u);
  Advance(4999);
  EXPECT_EQ(core_->GetStats().entries, 1u);
  Advance(1);
  EXPECT_EQ(core_->GetStats().entries, 0u);
  EXPECT_EQ(core_->GetStats().registries, 0u);
}

TEST_F(InvalidationTest, LockOnlyCallerWithOlderStampIsTold) {
  SessionId a = Open();
  AcquireRequest r = Req(a, "k", 0);
  r.client_created_time = clock_.WallSeconds();
  EXPECT_EQ(Now(r).outcome, Outcome::kFresh);
  EXPECT_EQ(core_->GetStats().entries, 0u);  // FRESH leaves nothing behind
  clock_.AdvanceMs(10);
  ASSERT_TRUE(Invalidate("k", false).ok());
  AcquireResult after = Now(r);
  EXPECT_EQ(after.outcome, Outcome::kCreate);
  EXPECT_FALSE(after.has_value);
  EXPECT_TRUE(after.is_expired);
}

TEST_F(InvalidationTest, LockOnlyPublishVouchesForSkewedStamp) {
  SessionId a = Open(60'000);
  clock_.AdvanceMs(10'000);
  ASSERT_TRUE(Invalidate("k", true).ok());
  AcquireRequest r = Req(a, "k", 0);
  r.client_created_time = 0;  // no value
  Token t = Now(r).token;
  PublishRequest p;
  p.registry = "reg";
  p.key = "k";
  p.session_id = a;
  p.token = t;
  // The creator's clock runs 2 s behind ours.
  p.created_time = clock_.WallSeconds() - 2;
  ASSERT_TRUE(core_->Publish(p).ok());
  r.client_created_time = p.created_time;
  EXPECT_EQ(Now(r).outcome, Outcome::kFresh);
}

}  // namespace
}  // namespace dogpiled::core
