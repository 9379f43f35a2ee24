// Retries are safe; re-entry is not (semantics.md section 2): request ids,
// idempotent Publish, repeated Unlock and Abandon, and grants whose answer
// never left.
#include <string>
#include <vector>

#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

AcquireRequest WithId(AcquireRequest r, uint64_t id) {
  r.request_id = id;
  return r;
}

TEST_F(CoreTest, RetriedAcquireGetsTheSameGrantNotALineBehindItself) {
  SessionId a = Open();
  AcquireResult first = Now(WithId(Req(a), 7));
  ASSERT_EQ(first.outcome, Outcome::kCreate);
  Advance(100);
  AcquireResult again = Now(WithId(Req(a), 7));
  EXPECT_EQ(again.outcome, Outcome::kCreate);
  EXPECT_EQ(again.token, first.token);
  EXPECT_EQ(again.creation_deadline_ms, first.creation_deadline_ms - 100);
  // Another request id of the same session is a new request: not re-entrant.
  EXPECT_EQ(Now(WithId(Req(a), 8)).outcome, Outcome::kNotReady);
  ASSERT_TRUE(Publish(a, first.token, "v").ok());
  // Once the grant ended, the same id is simply a new call.
  EXPECT_EQ(Now(WithId(Req(a), 7)).outcome, Outcome::kFresh);
}

TEST_F(CoreTest, RetriedLockGetsTheSameTokenAndOthersAreNotBlockedForever) {
  SessionId a = Open();
  SessionId b = Open();
  auto holder = Lock(a, LockMode::kWrite);
  ASSERT_TRUE(holder->result->acquired);
  LockRequest r{"reg", "k", b, static_cast<int>(LockMode::kWrite), 5000, 42};
  auto first = std::make_shared<Captured<LockResult>>();
  first->wait_id = core_->Lock(r, [first](StatusOr<LockResult> x) {
    first->done = true;
    first->result = std::move(x);
  });
  ASSERT_FALSE(first->done);
  // The retry takes the parked call's place: the first is told, the line
  // does not grow, and the retry is granted when the holder unlocks.
  auto retry = std::make_shared<Captured<LockResult>>();
  retry->wait_id = core_->Lock(r, [retry](StatusOr<LockResult> x) {
    retry->done = true;
    retry->result = std::move(x);
  });
  ASSERT_TRUE(first->done);
  EXPECT_EQ(first->result.status().code(), Code::kAborted);
  EXPECT_NE(retry->wait_id, first->wait_id);
  core_->CancelWait(first->wait_id);  // a late cancel of the old call
  EXPECT_FALSE(retry->done);
  EXPECT_EQ(core_->GetStats().waiters, 1u);
  ASSERT_TRUE(core_->Unlock("reg", "k", a, holder->result->token).ok());
  ASSERT_TRUE(retry->done);
  ASSERT_TRUE(retry->result.ok());
  const Token granted = retry->result->token;
  // The answer was lost; the same request id gets the same grant back.
  auto again = std::make_shared<Captured<LockResult>>();
  core_->Lock(r, [again](StatusOr<LockResult> x) {
    again->done = true;
    again->result = std::move(x);
  });
  ASSERT_TRUE(again->done && again->result.ok());
  EXPECT_TRUE(again->result->acquired);
  EXPECT_EQ(again->result->token, granted);
}

TEST_F(CoreTest, ParkedAcquireRetryKeepsItsPlaceInLine) {
  SessionId a = Open();
  SessionId b = Open();
  SessionId c = Open();
  Token t = Now(Req(a)).token;
  auto b_first = Acquire(WithId(Req(b, "k", 1000, 5000), 1));
  auto c_parked = Acquire(Req(c, "k", 1000, 5000));
  auto b_retry = Acquire(WithId(Req(b, "k", 1000, 5000), 1));
  EXPECT_EQ(b_first->result.status().code(), Code::kAborted);
  ASSERT_TRUE(Abandon(a, t).ok());
  // b was first in line and stays first: its retry is elected.
  ASSERT_TRUE(b_retry->done);
  EXPECT_EQ(b_retry->result->outcome, Outcome::kCreate);
  EXPECT_FALSE(c_parked->done);
}

TEST_F(CoreTest, RetriedPublishAnswersOkWithTheSameCreatedTime) {
  SessionId a = Open();
  Token t = Now(Req(a)).token;
  PublishRequest p{"reg", "k", a, t, Bytes("v1"), std::nullopt};
  auto first = core_->Publish(p);
  ASSERT_TRUE(first.ok());
  Advance(500);
  auto again = core_->Publish(p);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again.value(), first.value());
  EXPECT_EQ(core_->GetStats().publishes, 1u);
  EXPECT_EQ(core_->GetStats().fencing_rejections, 0u);
  // A second Publish with another value is no retry: the role is spent.
  p.value = Bytes("v2");
  EXPECT_EQ(core_->Publish(p).status().code(), Code::kFailedPrecondition);
  p.value = Bytes("v1");
  // The token is no proof for another key, nor for another session.
  p.key = "other";
  EXPECT_EQ(core_->Publish(p).status().code(), Code::kFailedPrecondition);
  p.key = "k";
  p.session_id = Open();
  EXPECT_EQ(core_->Publish(p).status().code(), Code::kFailedPrecondition);
}

// The answer to an Unlock or Abandon was lost: the same call again is
// refused NOT_HOLDER as the contract says, marked "released" (the SDKs
// count it as released), and never takes away what the release let
// another session have.
TEST_F(CoreTest, RetriedUnlockAndAbandonAreRefusedAsReleasedAndChangeNothing) {
  SessionId a = Open();
  SessionId b = Open();
  Token lock = Lock(a, LockMode::kWrite)->result->token;
  Token role = Now(Req(a, "j")).token;
  auto next_writer = Lock(b, LockMode::kWrite, 5000);
  auto next_creator = Acquire(Req(b, "j", 1000, 5000));
  ASSERT_TRUE(core_->Unlock("reg", "k", a, lock).ok());
  ASSERT_TRUE(Abandon(a, role, "j").ok());
  ASSERT_TRUE(next_writer->done && next_writer->result->acquired);
  ASSERT_TRUE(next_creator->done);
  ASSERT_EQ(next_creator->result->outcome, Outcome::kCreate);

  const Status unlocked = core_->Unlock("reg", "k", a, lock);
  EXPECT_TRUE(RefusedNotHolder(unlocked, /*released=*/true));
  EXPECT_EQ(unlocked.metadata(),
            (Status::Metadata{{"field", "token"},
                              {"token", std::to_string(lock)},
                              {"released", "true"}}));
  EXPECT_TRUE(RefusedNotHolder(Abandon(a, role, "j"), /*released=*/true));
  EXPECT_EQ(core_->GetStats().abandons, 1u);
  // Refusals, as every release of what the session does not hold.
  EXPECT_EQ(core_->GetStats().fencing_rejections, 2u);
  // The token is no proof for another session or key, nor for the other
  // kind of release.
  EXPECT_TRUE(RefusedNotHolder(core_->Unlock("reg", "k", b, lock),
                               /*released=*/false));
  EXPECT_TRUE(RefusedNotHolder(core_->Unlock("reg", "other", a, lock),
                               /*released=*/false));
  EXPECT_TRUE(RefusedNotHolder(Abandon(a, lock, "k"), /*released=*/false));
  EXPECT_TRUE(RefusedNotHolder(core_->Unlock("reg", "j", a, role),
                               /*released=*/false));
  // What the releases handed on is still b's.
  EXPECT_FALSE(Lock(Open(), LockMode::kRead)->result->acquired);
  EXPECT_TRUE(Publish(b, next_creator->result->token, "v", "j").ok());
  EXPECT_TRUE(
      core_->Unlock("reg", "k", b, next_writer->result->token).ok());
}

TEST_F(CoreTest, ASessionRemembersItsLastEightReleases) {
  SessionId a = Open();
  std::vector<Token> unlocked;
  for (int i = 0; i < 9; ++i) {
    unlocked.push_back(Lock(a, LockMode::kWrite)->result->token);
    ASSERT_TRUE(core_->Unlock("reg", "k", a, unlocked.back()).ok());
  }
  EXPECT_TRUE(RefusedNotHolder(core_->Unlock("reg", "k", a, unlocked[0]),
                               /*released=*/false));
  EXPECT_TRUE(RefusedNotHolder(core_->Unlock("reg", "k", a, unlocked[1]),
                               /*released=*/true));
}

TEST_F(CoreTest, UndeliveredGrantIsReleasedAndTheNextWaiterServed) {
  SessionId a = Open();
  SessionId b = Open();
  Token t = Now(Req(a)).token;
  auto parked = Acquire(Req(b, "k", 1000, 5000));
  core_->ReleaseUndelivered("reg", "k", b, t, /*is_lock=*/false);  // not b's
  EXPECT_FALSE(parked->done);
  core_->ReleaseUndelivered("reg", "k", a, t, /*is_lock=*/false);
  ASSERT_TRUE(parked->done);
  EXPECT_EQ(parked->result->outcome, Outcome::kCreate);
  EXPECT_EQ(Publish(a, t, "late").code(), Code::kFailedPrecondition);

  auto w = Lock(a, LockMode::kWrite, 0, "m");
  auto next = Lock(b, LockMode::kWrite, 5000, "m");
  ASSERT_FALSE(next->done);
  core_->ReleaseUndelivered("reg", "m", a, w->result->token, true);
  ASSERT_TRUE(next->done);
  EXPECT_TRUE(next->result->acquired);
}

TEST_F(CoreTest, TokensAreReservedAheadAndNeverHandedOutBeyondDurable) {
  Limits limits;  // one session takes half a block of creator roles
  limits.max_grants_per_session = 1 << 20;
  limits.max_grants_per_tenant = 1 << 20;
  Make(limits);
  SessionId a = Open();
  Token first = Now(Req(a, "k0")).token;  // reserves a block at once
  ASSERT_EQ(store_.persisted.size(), 1u);
  store_.hold = true;  // the state folder is slow from now on
  // Half a block later the core asks ahead, without waiting...
  Token last = first;
  int granted = 0;
  for (int i = 1; store_.requested == store_.durable && i < (1 << 17); ++i) {
    last = Now(Req(a, "k" + std::to_string(i))).token;
    ++granted;
  }
  EXPECT_GT(granted, 1000);
  // ...and goes on granting from what is already durable.
  Token more = Now(Req(a, "more")).token;
  EXPECT_GT(more, last);
  EXPECT_LE(more, store_.durable);
  store_.Complete();
  EXPECT_EQ(store_.persisted.size(), 2u);
}

TEST_F(CoreTest, NothingIsGrantedAboveTheDurableMark) {
  store_.hold = true;
  SessionId a = Open();
  auto c = Acquire(Req(a));
  EXPECT_EQ(c->result.status().code(), Code::kUnavailable);
  EXPECT_EQ(c->result.status().reason(), "TOKENS_NOT_DURABLE");
  store_.Complete();
  EXPECT_EQ(Now(Req(a)).outcome, Outcome::kCreate);
}

}  // namespace
}  // namespace dogpiled::core
