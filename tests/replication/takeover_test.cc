// A new leader restored from the committed state: it must hold what the
// old one answered, and go on from there as the old one would have.
#include "tests/replication/replica_fixture.h"

namespace dogpiled::replication {
namespace {

using core::AcquireResult;
using core::LockMode;
using core::Outcome;
using core::SessionId;

TEST_F(ReplicaTest, ANewLeaderHoldsEverySessionGrantAndValue) {
  SessionId a = Open();
  SessionId b = Open();
  AcquireResult creator = Now(Req(a, "k"));
  auto writer = Lock(b, LockMode::kWrite, 0, "m");
  AcquireResult other = Now(Req(b, "j"));
  ASSERT_TRUE(Publish(b, other.token, "stored", "j").ok());
  const auto sessions = DescribeAll(core_->OpenSessions());
  const auto grants = DescribeAll(core_->HeldGrants());
  const auto values = DescribeAll(LeaderValues());

  Promote();
  EXPECT_EQ(DescribeAll(core_->OpenSessions()), sessions);
  EXPECT_EQ(DescribeAll(core_->HeldGrants()), grants);
  EXPECT_EQ(DescribeAll(LeaderValues()), values);
  ExpectSame();

  // The holders go on with their tokens; nobody else gets what they hold.
  EXPECT_EQ(Now(Req(b, "j")).outcome, Outcome::kFresh);
  auto parked = Acquire(Req(b, "k", 1000, 5000));
  EXPECT_FALSE(parked->done) << "a second creator was elected";
  auto second_writer = Lock(Open(), LockMode::kWrite, 0, "m");
  ASSERT_TRUE(second_writer->done);
  EXPECT_FALSE(second_writer->result->acquired);
  ASSERT_TRUE(Publish(a, creator.token, "made").ok());
  ASSERT_TRUE(parked->done && parked->result.ok());
  EXPECT_EQ(parked->result->outcome, Outcome::kFresh);
  EXPECT_TRUE(core_->Unlock("reg", "m", b, writer->result->token).ok());
  ExpectSame();
}

// The old leader applied a Publish and died before its answer left (or
// the answer was lost): the client sends it again, unchanged, to the new
// leader, which must answer it again, not refuse it for the role the first
// attempt gave up.
TEST_F(ReplicaTest, APublishRetriedAtTheNewLeaderIsAnsweredAgain) {
  SessionId s = Open();
  AcquireResult made = Now(Req(s, "k"));
  ASSERT_EQ(made.outcome, core::Outcome::kCreate);
  core::PublishRequest p;
  p.registry = "reg";
  p.key = "k";
  p.session_id = s;
  p.token = made.token;
  p.value = std::string("made");
  core::StatusOr<double> first = core_->Publish(p);
  ASSERT_TRUE(first.ok());
  // Lock-only: the stamp the first attempt left answers the retry, though
  // the log keeps no value to recognise it by (clients send one anyway).
  core::AcquireRequest lock_only = Req(s, "lo");
  lock_only.client_created_time = 0;
  AcquireResult role = Now(lock_only);
  ASSERT_EQ(role.outcome, core::Outcome::kCreate);
  core::PublishRequest q;
  q.registry = "reg";
  q.key = "lo";
  q.session_id = s;
  q.token = role.token;
  q.value = std::string("L-stamp");
  core::StatusOr<double> stamped = core_->Publish(q);
  ASSERT_TRUE(stamped.ok());

  Promote();
  core::StatusOr<double> again = core_->Publish(p);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again.value(), first.value());
  core::StatusOr<double> restamped = core_->Publish(q);
  ASSERT_TRUE(restamped.ok()) << restamped.status().message();
  EXPECT_EQ(restamped.value(), stamped.value());
  // Not a retry: another value, or another session, under that token.
  core::PublishRequest other = p;
  other.value = std::string("else");
  EXPECT_FALSE(core_->Publish(other).ok());
  other = p;
  other.session_id = Open();
  EXPECT_FALSE(core_->Publish(other).ok());
  EXPECT_EQ(Now(Req(s, "k")).outcome, core::Outcome::kFresh);
  ExpectSame();
}

// An Unlock or an Abandon the old leader committed, sent again to the new
// leader, is refused NOT_HOLDER as on a single node, marked "released" (it
// was this session's own release, so the SDKs count it as released), and
// what the release handed on stays with the session that got it.
TEST_F(ReplicaTest, AnUnlockOrAbandonRetriedAtTheNewLeaderIsMarkedReleased) {
  SessionId a = Open();
  SessionId b = Open();
  const core::Token lock = Lock(a, LockMode::kWrite, 0, "m")->result->token;
  const core::Token role = Now(Req(a, "k")).token;
  auto next_writer = Lock(b, LockMode::kWrite, 5000, "m");
  ASSERT_TRUE(core_->Unlock("reg", "m", a, lock).ok());
  ASSERT_TRUE(Abandon(a, role).ok());
  ASSERT_TRUE(next_writer->done && next_writer->result->acquired);

  Promote();
  EXPECT_TRUE(core::RefusedNotHolder(core_->Unlock("reg", "m", a, lock),
                                     /*released=*/true));
  EXPECT_TRUE(core::RefusedNotHolder(Abandon(a, role), /*released=*/true));
  // Not a retry: another session's, or the other kind of release.
  EXPECT_TRUE(core::RefusedNotHolder(core_->Unlock("reg", "m", b, lock),
                                     /*released=*/false));
  EXPECT_TRUE(core::RefusedNotHolder(Abandon(a, lock, "m"),
                                     /*released=*/false));
  EXPECT_TRUE(core::RefusedNotHolder(core_->Unlock("reg", "k", a, role),
                                     /*released=*/false));
  EXPECT_FALSE(Lock(Open(), LockMode::kRead, 0, "m")->result->acquired);
  ExpectSame();
}

TEST_F(ReplicaTest, TokensKeepIncreasingAcrossANewLeader) {
  SessionId s = Open();
  AcquireResult first = Now(Req(s, "k"));
  ASSERT_TRUE(Abandon(s, first.token).ok());
  ASSERT_TRUE(core_->Invalidate(core::InvalidateRequest{"reg", "", true}).ok());
  const core::Token high = State()->HighWater();
  EXPECT_GE(high, first.token);
  Promote();
  AcquireResult next = Now(Req(s, "k"));
  ASSERT_EQ(next.outcome, Outcome::kCreate);
  EXPECT_GT(next.token, high);
}

TEST_F(ReplicaTest, SessionsGetOneTtlFromTheTakeoverToReachTheNewLeader) {
  SessionId s = Open(5000);
  ASSERT_EQ(Now(Req(s, "k")).outcome, Outcome::kCreate);
  Advance(4000);  // keep-alives are not in the log: the old deadline is lost
  Promote();
  Advance(4999);
  ASSERT_EQ(core_->OpenSessions().size(), 1u);
  ASSERT_TRUE(core_->KeepAlive(s).ok());
  Advance(5001);  // no keep-alive since: it ends, and so does its role
  EXPECT_TRUE(core_->OpenSessions().empty());
  EXPECT_TRUE(core_->HeldGrants().empty());
  EXPECT_EQ(Now(Req(Open(), "k")).outcome, Outcome::kCreate);
  ExpectSame();
}

TEST_F(ReplicaTest, ACreationTimeoutStartsAgainOnTheNewLeader) {
  SessionId s = Open(60'000);
  core::AcquireRequest r = Req(s, "k");
  r.creation_timeout_ms = 2000;
  ASSERT_EQ(Now(r).outcome, Outcome::kCreate);
  Advance(1500);
  Promote();
  Advance(1999);
  EXPECT_EQ(core_->HeldGrants().size(), 1u);
  Advance(2);
  EXPECT_TRUE(core_->HeldGrants().empty());
  ExpectSame();
}

TEST_F(ReplicaTest, ARetriedCallFindsItsGrantOnTheNewLeader) {
  // The answer to a grant was lost in the failover; the SDK retries on the
  // new leader with the same request id and must get the same grant.
  SessionId s = Open();
  core::AcquireRequest r = Req(s, "k");
  r.request_id = 9;
  AcquireResult first = Now(r);
  core::LockRequest l;
  l.registry = "reg";
  l.key = "m";
  l.session_id = s;
  l.mode = static_cast<int>(LockMode::kWrite);
  l.request_id = 10;
  core::Token lock_token = 0;
  core_->Lock(l, [&](auto got) { lock_token = got->token; });
  Promote();
  AcquireResult again = Now(r);
  EXPECT_EQ(again.outcome, Outcome::kCreate);
  EXPECT_EQ(again.token, first.token);
  core::Token relock = 0;
  core_->Lock(l, [&](auto got) { relock = got->token; });
  EXPECT_EQ(relock, lock_token);
  EXPECT_EQ(core_->HeldGrants().size(), 2u);
  ExpectSame();
}

TEST_F(ReplicaTest, AValueInvalidatedBeforeTheFailoverIsNotFreshAfterIt) {
  SessionId s = Open();
  AcquireResult created = Now(Req(s, "k", 60'000));
  ASSERT_TRUE(Publish(s, created.token, "old").ok());
  ASSERT_TRUE(
      core_->Invalidate(core::InvalidateRequest{"reg", "k", false}).ok());
  Promote();
  AcquireResult after = Now(Req(s, "k", 60'000));
  EXPECT_EQ(after.outcome, Outcome::kCreate);  // soft: stale value, a creator
  EXPECT_TRUE(after.is_expired);
}

}  // namespace
}  // namespace dogpiled::replication
