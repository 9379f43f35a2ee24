#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

TEST_F(CoreTest, ManyReadersOrOneWriter) {
  SessionId a = Open(), b = Open(), c = Open();
  auto r1 = Lock(a, LockMode::kRead);
  auto r2 = Lock(b, LockMode::kRead);
  EXPECT_TRUE(r1->result->acquired);
  EXPECT_TRUE(r2->result->acquired);
  EXPECT_FALSE(Lock(c, LockMode::kWrite)->result->acquired);  // try-lock
  ASSERT_TRUE(core_->Unlock("reg", "k", a, r1->result->token).ok());
  ASSERT_TRUE(core_->Unlock("reg", "k", b, r2->result->token).ok());
  auto w = Lock(c, LockMode::kWrite);
  EXPECT_TRUE(w->result->acquired);
  EXPECT_FALSE(Lock(a, LockMode::kRead)->result->acquired);
  EXPECT_FALSE(Lock(c, LockMode::kWrite)->result->acquired);  // not re-entrant
}

TEST_F(CoreTest, WaitingWriterBlocksNewReaders) {
  SessionId r = Open(), w = Open(), late = Open();
  auto reader = Lock(r, LockMode::kRead);
  auto writer = Lock(w, LockMode::kWrite, 30'000);
  EXPECT_FALSE(writer->done);
  // A stream of readers must not starve the writer.
  EXPECT_FALSE(Lock(late, LockMode::kRead)->result->acquired);
  auto late_reader = Lock(late, LockMode::kRead, 30'000);
  EXPECT_FALSE(late_reader->done);
  ASSERT_TRUE(core_->Unlock("reg", "k", r, reader->result->token).ok());
  ASSERT_TRUE(writer->done);
  EXPECT_TRUE(writer->result->acquired);
  EXPECT_FALSE(late_reader->done);
  ASSERT_TRUE(core_->Unlock("reg", "k", w, writer->result->token).ok());
  ASSERT_TRUE(late_reader->done);
  EXPECT_TRUE(late_reader->result->acquired);
}

TEST_F(CoreTest, WritersServedInArrivalOrderAndReadersGrantedTogether) {
  SessionId holder = Open();
  auto first = Lock(holder, LockMode::kWrite);
  SessionId s[4] = {Open(), Open(), Open(), Open()};
  auto w1 = Lock(s[0], LockMode::kWrite, 30'000);
  auto r1 = Lock(s[1], LockMode::kRead, 30'000);
  auto r2 = Lock(s[2], LockMode::kRead, 30'000);
  auto w2 = Lock(s[3], LockMode::kWrite, 30'000);
  ASSERT_TRUE(core_->Unlock("reg", "k", holder, first->result->token).ok());
  ASSERT_TRUE(w1->done);
  EXPECT_FALSE(r1->done);
  ASSERT_TRUE(core_->Unlock("reg", "k", s[0], w1->result->token).ok());
  // Both readers together, the second writer still waits for them.
  ASSERT_TRUE(r1->done && r2->done);
  EXPECT_TRUE(r1->result->acquired && r2->result->acquired);
  EXPECT_FALSE(w2->done);
  ASSERT_TRUE(core_->Unlock("reg", "k", s[1], r1->result->token).ok());
  EXPECT_FALSE(w2->done);
  ASSERT_TRUE(core_->Unlock("reg", "k", s[2], r2->result->token).ok());
  ASSERT_TRUE(w2->done);
  EXPECT_TRUE(w2->result->acquired);
  EXPECT_GT(w2->result->token, r2->result->token);
}

TEST_F(CoreTest, SessionEndReleasesLocksAndServesLine) {
  SessionId dying = Open(1000);
  auto w = Lock(dying, LockMode::kWrite);
  ASSERT_TRUE(w->result->acquired);
  auto r1 = Lock(Open(60'000), LockMode::kRead, 30'000);
  auto r2 = Lock(Open(60'000), LockMode::kRead, 30'000);
  Advance(1000);
  EXPECT_TRUE(r1->result->acquired);
  EXPECT_TRUE(r2->result->acquired);
  EXPECT_GT(r2->result->token, r1->result->token);
}

TEST_F(CoreTest, LockWaitTimeoutAnswersNotAcquired) {
  SessionId a = Open(60'000);
  Lock(a, LockMode::kWrite);
  auto waiter = Lock(Open(60'000), LockMode::kRead, 250);
  Advance(250);
  ASSERT_TRUE(waiter->done);
  ASSERT_TRUE(waiter->result.ok());
  EXPECT_FALSE(waiter->result->acquired);
  EXPECT_EQ(core_->GetStats().waiters, 0u);
}

TEST_F(CoreTest, AWaiterWhoseWaitRanOutIsNeverGranted) {
  // As after the daemon was paused past the wait: the Unlock arrives before
  // the timer thread has run the wait's timer. Every call fires what is due
  // first, so the waiter, which gave up, is not granted a lock it would
  // never hear of.
  SessionId a = Open(60'000), b = Open(60'000), c = Open(60'000);
  auto held = Lock(a, LockMode::kWrite);
  auto gave_up = Lock(b, LockMode::kWrite, 1000);
  auto next = Lock(c, LockMode::kWrite, 30'000);
  clock_.AdvanceMs(1000);  // time passes; the timer thread has not run
  ASSERT_TRUE(core_->Unlock("reg", "k", a, held->result->token).ok());
  ASSERT_TRUE(gave_up->done);
  EXPECT_FALSE(gave_up->result->acquired);
  ASSERT_TRUE(next->done);
  EXPECT_TRUE(next->result->acquired);
  EXPECT_EQ(core_->GetStats().wait_timeouts, 1u);
  Advance(0);  // the timer thread, when it runs, finds nothing to answer
  EXPECT_EQ(gave_up->calls, 1);
}

TEST_F(CoreTest, TimedOutWriterUnblocksReadersQueuedBehindIt) {
  SessionId reader = Open(60'000);
  Lock(reader, LockMode::kRead);
  auto writer = Lock(Open(60'000), LockMode::kWrite, 100);
  auto blocked = Lock(Open(60'000), LockMode::kRead, 30'000);
  EXPECT_FALSE(blocked->done);
  Advance(100);
  EXPECT_FALSE(writer->result->acquired);
  ASSERT_TRUE(blocked->done);
  EXPECT_TRUE(blocked->result->acquired);
}

TEST_F(CoreTest, UnlockOfLockNotHeldIsFailedPrecondition) {
  SessionId a = Open(), b = Open();
  auto w = Lock(a, LockMode::kWrite);
  Token t = w->result->token;
  EXPECT_EQ(core_->Unlock("reg", "k", b, t).code(), Code::kFailedPrecondition);
  EXPECT_EQ(core_->Unlock("reg", "other", a, t).code(),
            Code::kFailedPrecondition);
  ASSERT_TRUE(core_->Unlock("reg", "k", a, t).ok());
  EXPECT_EQ(core_->Unlock("reg", "k", a, t).code(), Code::kFailedPrecondition);
  EXPECT_EQ(core_->GetStats().entries, 0u);
}

TEST_F(CoreTest, UnknownLockModeIsInvalid) {
  SessionId a = Open();
  LockRequest r;
  r.registry = "reg";
  r.key = "k";
  r.session_id = a;
  for (int mode : {0, 3, -1}) {
    r.mode = mode;
    StatusOr<LockResult> got{Status()};
    core_->Lock(r, [&](StatusOr<LockResult> x) { got = std::move(x); });
    EXPECT_EQ(got.status().code(), Code::kInvalidArgument) << mode;
    EXPECT_NE(got.status().message().find("mode"), std::string::npos);
  }
}

}  // namespace
}  // namespace dogpiled::core

namespace dogpiled::core {
namespace {

// Found by core_ops_fuzzer: ending a session whose queued writer blocked its
// own queued reader used to serve the line mid-way and meet the reader twice.
TEST_F(CoreTest, EndingSessionWithTwoQueuedCallsOnOneKey) {
  SessionId reader = Open(60'000);
  ASSERT_TRUE(Lock(reader, LockMode::kRead)->result->acquired);
  SessionId both = Open(60'000);
  auto writer = Lock(both, LockMode::kWrite, 30'000);
  auto queued_reader = Lock(both, LockMode::kRead, 30'000);
  auto other = Lock(Open(60'000), LockMode::kRead, 30'000);
  ASSERT_TRUE(core_->Close(both).ok());
  EXPECT_EQ(writer->result.status().code(), Code::kNotFound);
  EXPECT_EQ(queued_reader->result.status().code(), Code::kNotFound);
  EXPECT_EQ(writer->calls + queued_reader->calls, 2);
  ASSERT_TRUE(other->done);  // the writer no longer blocks it
  EXPECT_TRUE(other->result->acquired);
  EXPECT_EQ(core_->GetStats().waiters, 0u);
}

}  // namespace
}  // namespace dogpiled::core
