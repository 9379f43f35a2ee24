#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

TEST_F(CoreTest, MissingKeyElectsOneCreatorAndParksTheRest) {
  SessionId creator = Open();
  AcquireResult first = Now(Req(creator, "k", 1000, 5000));
  EXPECT_EQ(first.outcome, Outcome::kCreate);
  EXPECT_FALSE(first.has_value);
  EXPECT_GT(first.token, 100u);
  EXPECT_EQ(first.creation_deadline_ms, 30'000);

  std::vector<std::shared_ptr<Captured<AcquireResult>>> waiters;
  for (int i = 0; i < 49; ++i) {
    waiters.push_back(Acquire(Req(Open(), "k", 1000, 5000)));
    EXPECT_FALSE(waiters.back()->done);
  }
  EXPECT_EQ(core_->GetStats().waiters, 49u);
  ASSERT_TRUE(Publish(creator, first.token, "v").ok());
  for (auto& w : waiters) {
    ASSERT_TRUE(w->done);
    EXPECT_EQ(w->calls, 1);
    EXPECT_EQ(w->result->outcome, Outcome::kFresh);
    EXPECT_EQ(w->result->value, "v");
  }
  Stats stats = core_->GetStats();
  EXPECT_EQ(stats.acquires_create, 1u);
  EXPECT_EQ(stats.acquires_fresh, 49u);
  EXPECT_EQ(stats.waiters, 0u);
  EXPECT_EQ(stats.publishes, 1u);
}

TEST_F(CoreTest, NotReadyWhenNoWaitAndRoleHeld) {
  SessionId a = Open();
  Now(Req(a));
  AcquireResult r = Now(Req(Open()));
  EXPECT_EQ(r.outcome, Outcome::kNotReady);
  EXPECT_EQ(core_->GetStats().acquires_not_ready, 1u);
}

TEST_F(CoreTest, ExpiredValueGivesCreateWithPreviousThenStale) {
  SessionId a = Open(), b = Open(), c = Open();
  Token t = Now(Req(a)).token;
  ASSERT_TRUE(Publish(a, t, "old").ok());
  EXPECT_EQ(Now(Req(b)).outcome, Outcome::kFresh);
  clock_.AdvanceMs(1000);
  AcquireResult create = Now(Req(b));
  EXPECT_EQ(create.outcome, Outcome::kCreate);
  EXPECT_TRUE(create.has_value);
  EXPECT_EQ(create.value, "old");
  EXPECT_TRUE(create.is_expired);
  AcquireResult stale = Now(Req(c, "k", 1000, 5000));
  EXPECT_EQ(stale.outcome, Outcome::kStale);
  EXPECT_EQ(stale.value, "old");
  EXPECT_EQ(stale.token, 0u);
  ASSERT_TRUE(Publish(b, create.token, "new").ok());
  EXPECT_EQ(Now(Req(c)).value, "new");
}

TEST_F(CoreTest, ExpireZeroNeverExpiresNegativeAlwaysExpires) {
  SessionId a = Open(3'600'000);  // outlives the 1000 s below
  Token t = Now(Req(a)).token;
  ASSERT_TRUE(Publish(a, t, "v").ok());
  clock_.AdvanceMs(1'000'000);
  EXPECT_EQ(Now(Req(a, "k", 0)).outcome, Outcome::kFresh);
  AcquireResult r = Now(Req(a, "k", -1));
  EXPECT_EQ(r.outcome, Outcome::kCreate);
  EXPECT_TRUE(r.is_expired);
}

TEST_F(CoreTest, CreatedTimeZeroOrNegativeCountsAsNoValue) {
  SessionId a = Open();
  PublishRequest p;
  p.registry = "reg";
  p.key = "k";
  p.session_id = a;
  p.token = Now(Req(a)).token;
  p.created_time = -1;
  ASSERT_TRUE(core_->Publish(p).ok());
  AcquireResult r = Now(Req(a, "k", 0));
  EXPECT_EQ(r.outcome, Outcome::kCreate);
  EXPECT_FALSE(r.has_value);
}

TEST_F(CoreTest, CreatorSuppliedCreatedTimeDecidesExpiry) {
  SessionId a = Open();
  PublishRequest p;
  p.registry = "reg";
  p.key = "k";
  p.session_id = a;
  p.token = Now(Req(a)).token;
  p.value = "from-elsewhere";
  p.created_time = clock_.WallSeconds() - 5;  // made 5 s ago
  auto stored = core_->Publish(p);
  ASSERT_TRUE(stored.ok());
  EXPECT_DOUBLE_EQ(stored.value(), clock_.WallSeconds() - 5);
  EXPECT_EQ(Now(Req(a, "k", 4000)).outcome, Outcome::kCreate);
}

TEST_F(CoreTest, GrantsAreNotReentrant) {
  SessionId a = Open();
  EXPECT_EQ(Now(Req(a)).outcome, Outcome::kCreate);
  EXPECT_EQ(Now(Req(a)).outcome, Outcome::kNotReady);
}

TEST_F(CoreTest, AbandonPassesRoleToFirstWaiterInArrivalOrder) {
  SessionId a = Open();
  Token t = Now(Req(a)).token;
  auto w1 = Acquire(Req(Open(), "k", 1000, 5000));
  auto w2 = Acquire(Req(Open(), "k", 1000, 5000));
  ASSERT_TRUE(Abandon(a, t).ok());
  ASSERT_TRUE(w1->done);
  EXPECT_EQ(w1->result->outcome, Outcome::kCreate);
  EXPECT_GT(w1->result->token, t);
  EXPECT_FALSE(w2->done);
  EXPECT_EQ(Publish(a, t, "late").code(), Code::kFailedPrecondition);
  EXPECT_EQ(core_->GetStats().abandons, 1u);
  EXPECT_EQ(core_->GetStats().fencing_rejections, 1u);
}

TEST_F(CoreTest, AbandonKeepsServingPreviousValueAsStale) {
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a)).token, "prev").ok());
  clock_.AdvanceMs(2000);
  Token t = Now(Req(a)).token;
  ASSERT_TRUE(Abandon(a, t).ok());
  AcquireResult again = Now(Req(Open()));
  EXPECT_EQ(again.outcome, Outcome::kCreate);
  EXPECT_EQ(again.value, "prev");
  EXPECT_EQ(Now(Req(Open())).outcome, Outcome::kStale);
}

TEST_F(CoreTest, CreationTimeoutRevokesRoleAndToken) {
  SessionId a = Open(60'000);
  AcquireRequest r = Req(a);
  r.creation_timeout_ms = 500;
  AcquireResult first = Now(r);
  EXPECT_EQ(first.creation_deadline_ms, 500);
  auto waiter = Acquire(Req(Open(60'000), "k", 1000, 10'000));
  Advance(499);
  EXPECT_FALSE(waiter->done);
  Advance(1);
  ASSERT_TRUE(waiter->done);
  EXPECT_EQ(waiter->result->outcome, Outcome::kCreate);
  EXPECT_EQ(Publish(a, first.token, "v").code(), Code::kFailedPrecondition);
  EXPECT_EQ(core_->GetStats().creation_timeouts, 1u);
}

TEST_F(CoreTest, DeadSessionsRoleGoesToNextWaiterAtTtl) {
  SessionId dying = Open(1000);
  Token t = Now(Req(dying)).token;
  SessionId live = Open(60'000);
  auto waiter = Acquire(Req(live, "k", 1000, 30'000));
  Advance(999);
  EXPECT_FALSE(waiter->done);
  Advance(1);
  ASSERT_TRUE(waiter->done);
  EXPECT_EQ(waiter->result->outcome, Outcome::kCreate);
  EXPECT_EQ(Publish(dying, t, "v").code(), Code::kNotFound);
  EXPECT_EQ(core_->GetStats().session_expiries, 1u);
}

TEST_F(CoreTest, WaitTimeoutIsDeadlineExceededAndLeavesLine) {
  SessionId a = Open(60'000);
  Token t = Now(Req(a)).token;
  auto waiter = Acquire(Req(Open(60'000), "k", 1000, 300));
  Advance(300);
  ASSERT_TRUE(waiter->done);
  EXPECT_EQ(waiter->result.status().code(), Code::kDeadlineExceeded);
  EXPECT_NE(waiter->result.status().message().find("wait_timeout_ms"),
            std::string::npos);
  EXPECT_EQ(core_->GetStats().waiters, 0u);
  ASSERT_TRUE(Publish(a, t, "v").ok());
  EXPECT_EQ(waiter->calls, 1);
}

TEST_F(CoreTest, AWaiterWhoseWaitRanOutIsNeverElected) {
  // As AWaiterWhoseWaitRanOutIsNeverGranted, for the creator role.
  SessionId a = Open(60'000);
  Token t = Now(Req(a)).token;
  auto gave_up = Acquire(Req(Open(60'000), "k", 1000, 300));
  auto next = Acquire(Req(Open(60'000), "k", 1000, 30'000));
  clock_.AdvanceMs(300);  // time passes; the timer thread has not run
  ASSERT_TRUE(Abandon(a, t).ok());
  ASSERT_TRUE(gave_up->done);
  EXPECT_EQ(gave_up->result.status().code(), Code::kDeadlineExceeded);
  ASSERT_TRUE(next->done);
  EXPECT_EQ(next->result->outcome, Outcome::kCreate);
  Advance(0);
  EXPECT_EQ(gave_up->calls, 1);
}

TEST_F(CoreTest, CancelledWaiterLeavesLineAndIsAnsweredOnce) {
  SessionId a = Open(60'000);
  Token t = Now(Req(a)).token;
  auto gone = Acquire(Req(Open(60'000), "k", 1000, 30'000));
  auto next = Acquire(Req(Open(60'000), "k", 1000, 30'000));
  core_->CancelWait(gone->wait_id);
  ASSERT_TRUE(gone->done);
  EXPECT_EQ(gone->result.status().code(), Code::kCancelled);
  core_->CancelWait(gone->wait_id);  // no second answer
  ASSERT_TRUE(Abandon(a, t).ok());
  EXPECT_EQ(next->result->outcome, Outcome::kCreate);
  EXPECT_EQ(gone->calls, 1);
}

TEST_F(CoreTest, ClosingWaitersSessionAnswersNotFound) {
  SessionId a = Open();
  Now(Req(a));
  SessionId b = Open();
  auto waiter = Acquire(Req(b, "k", 1000, 30'000));
  ASSERT_TRUE(core_->Close(b).ok());
  ASSERT_TRUE(waiter->done);
  EXPECT_EQ(waiter->result.status().code(), Code::kNotFound);
}

TEST_F(CoreTest, PublishFromAnotherSessionIsRefused) {
  SessionId a = Open(), b = Open();
  Token t = Now(Req(a)).token;
  EXPECT_EQ(Publish(b, t, "hijack").code(), Code::kFailedPrecondition);
  EXPECT_EQ(Abandon(b, t).code(), Code::kFailedPrecondition);
  ASSERT_TRUE(Publish(a, t, "mine").ok());
  EXPECT_EQ(Now(Req(b)).value, "mine");
}

TEST_F(CoreTest, TokensStrictlyIncreaseAndArePersistedAhead) {
  SessionId a = Open();
  Token last = 100;
  for (int i = 0; i < 20; ++i) {
    AcquireResult r = Now(Req(a, "k" + std::to_string(i)));
    EXPECT_GT(r.token, last);
    last = r.token;
    auto lock = Lock(a, LockMode::kRead, 0, "k" + std::to_string(i));
    EXPECT_GT(lock->result->token, last);
    last = lock->result->token;
  }
  ASSERT_FALSE(store_.persisted.empty());
  EXPECT_GE(store_.persisted.back(), last);
}

TEST_F(CoreTest, UnpersistableTokenIsUnavailableAndChangesNothing) {
  store_.fail = true;
  SessionId a = Open();
  auto c = Acquire(Req(a));
  EXPECT_EQ(c->result.status().code(), Code::kUnavailable);
  EXPECT_EQ(core_->GetStats().entries, 0u);
}

TEST_F(CoreTest, EarlyRefreshHandsOutOneCreatorBeforeExpiry) {
  SessionId a = Open(600'000);
  AcquireRequest r = Req(a, "k", 10'000);
  Token t = Now(r).token;
  Advance(2000);  // creation took 2 s: the XFetch delta
  ASSERT_TRUE(Publish(a, t, "v").ok());
  Advance(9000);  // 1 s before expiry, with a 2 s delta
  r.early_refresh_beta = 50;  // makes the early refresh near-certain
  int creates = 0;
  int fresh = 0;
  for (int i = 0; i < 20; ++i) {
    AcquireResult got = Now(r);
    creates += got.outcome == Outcome::kCreate;
    fresh += got.outcome == Outcome::kFresh;
    if (got.outcome == Outcome::kCreate) {
      EXPECT_FALSE(got.is_expired);
      EXPECT_EQ(got.value, "v");
    }
  }
  EXPECT_EQ(creates, 1);
  EXPECT_EQ(fresh, 19);
  EXPECT_EQ(core_->GetStats().early_refreshes, 1u);
}

TEST_F(CoreTest, NoEarlyRefreshFarFromExpiryOrWithoutBeta) {
  SessionId a = Open(600'000);
  AcquireRequest r = Req(a, "k", 3'600'000);
  Token t = Now(r).token;
  Advance(10);
  ASSERT_TRUE(Publish(a, t, "v").ok());
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(Now(r).outcome, Outcome::kFresh);
  }
  r.early_refresh_beta = 1;
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(Now(r).outcome, Outcome::kFresh);
  }
}

TEST_F(CoreTest, ShutdownAnswersParkedCallsUnavailable) {
  SessionId a = Open();
  Now(Req(a));
  auto waiter = Acquire(Req(Open(), "k", 1000, 30'000));
  auto lock_holder = Lock(a, LockMode::kWrite);
  auto lock_waiter = Lock(Open(), LockMode::kRead, 30'000);
  core_->Shutdown();
  EXPECT_EQ(waiter->result.status().code(), Code::kUnavailable);
  EXPECT_EQ(lock_waiter->result.status().code(), Code::kUnavailable);
  EXPECT_EQ(Acquire(Req(a))->result.status().code(), Code::kUnavailable);
  EXPECT_EQ(core_->Open(0, "").status().code(), Code::kUnavailable);
}

}  // namespace
}  // namespace dogpiled::core

namespace dogpiled::core {
namespace {

// Found by the reliability suite on a CPU-starved daemon: a Publish that
// arrived after the creation timeout, before the timer thread ran, was
// accepted. Every call now expires what is due first.
TEST_F(CoreTest, LatePublishIsRefusedEvenBeforeTheTimerRuns) {
  SessionId a = Open(60'000);
  AcquireRequest r = Req(a);
  r.creation_timeout_ms = 100;
  Token t = Now(r).token;
  clock_.AdvanceMs(101);  // no Tick: the timer thread is late
  EXPECT_EQ(Publish(a, t, "late").code(), Code::kFailedPrecondition);
  EXPECT_EQ(core_->GetStats().creation_timeouts, 1u);

  SessionId short_lived = Open(200);
  Token t2 = Now(Req(short_lived, "j")).token;
  clock_.AdvanceMs(201);  // the lease has passed, still no Tick
  EXPECT_EQ(Publish(short_lived, t2, "late", "j").code(), Code::kNotFound);
  EXPECT_EQ(core_->GetStats().session_expiries, 1u);
}

}  // namespace
}  // namespace dogpiled::core
