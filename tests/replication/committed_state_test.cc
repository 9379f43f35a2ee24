// Scripted cases of the committed state against the real core: each one
// the follower must get exactly right for a new leader to lose nothing.
#include <zlib.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "tests/replication/replica_fixture.h"

namespace dogpiled::replication {
namespace {

using core::AcquireResult;
using core::GrantKind;
using core::InvalidateRequest;
using core::LockMode;
using core::Outcome;
using core::SessionId;

TEST_F(ReplicaTest, FollowsSessionsGrantsAndValues) {
  SessionId a = Open();
  SessionId b = Open();
  AcquireResult created = Now(Req(a, "k"));
  ASSERT_EQ(created.outcome, Outcome::kCreate);
  auto writer = Lock(b, LockMode::kWrite, 0, "m");
  ASSERT_TRUE(writer->done && writer->result.ok());
  ASSERT_EQ(State()->Grants().size(), 2u);
  EXPECT_EQ(State()->Grants()[0].kind, GrantKind::kCreator);
  EXPECT_EQ(State()->Grants()[0].timeout_ms, 30'000);
  EXPECT_EQ(State()->Grants()[1].kind, GrantKind::kWriteLock);
  ExpectSame();

  ASSERT_TRUE(Publish(a, created.token, "v").ok());
  ASSERT_TRUE(core_->Unlock("reg", "m", b, writer->result->token).ok());
  EXPECT_TRUE(State()->Grants().empty());
  ASSERT_EQ(State()->Values().size(), 1u);
  EXPECT_EQ(State()->Values()[0].value.str(), "v");
  EXPECT_EQ(State()->Values()[0].token, created.token);
  ExpectSame();

  ASSERT_TRUE(core_->Close(a).ok());
  EXPECT_EQ(State()->Sessions().size(), 1u);
  ExpectSame();
}

TEST_F(ReplicaTest, AnExpiredSessionReleasesEverythingItHeld) {
  SessionId holder = Open(1000);
  SessionId waiter = Open(60'000);
  ASSERT_EQ(Now(Req(holder, "k")).outcome, Outcome::kCreate);
  ASSERT_TRUE(Lock(holder, LockMode::kRead, 0, "m")->done);
  ASSERT_TRUE(Lock(holder, LockMode::kRead, 0, "n")->done);
  auto parked = Lock(waiter, LockMode::kWrite, 60'000, "m");
  ASSERT_FALSE(parked->done);
  ExpectSame();

  Advance(1001);  // the holder's lease runs out; the writer gets "m"
  ASSERT_TRUE(parked->done && parked->result.ok());
  ExpectSame();
  ASSERT_EQ(State()->Grants().size(), 1u);
  EXPECT_EQ(State()->Grants()[0].session, waiter);
  EXPECT_EQ(counts_->ended, 1);
  EXPECT_EQ(State()->unmatched(), 0u);
}

TEST_F(ReplicaTest, ARequestIdReusedForASecondCallHoldsBothGrants) {
  // A new call (another key, or a lock after a role) is not a retry: the
  // leader grants and holds both, and so must a follower, or a new leader
  // would hand a held role to a second creator.
  SessionId s = Open();
  core::LockRequest lock;
  lock.registry = "reg";
  lock.key = "k";
  lock.session_id = s;
  lock.mode = static_cast<int>(LockMode::kWrite);
  lock.request_id = 7;
  core_->Lock(lock, [](auto) {});
  core::AcquireRequest acquire = Req(s, "k");
  acquire.request_id = 7;
  ASSERT_EQ(Now(acquire).outcome, Outcome::kCreate);
  ASSERT_EQ(core_->HeldGrants().size(), 2u);
  ExpectSame();
}

TEST_F(ReplicaTest, AnUndeliveredGrantIsReleasedOnTheFollowerToo) {
  SessionId s = Open();
  AcquireResult created = Now(Req(s, "k"));
  core_->ReleaseUndelivered("reg", "k", s, created.token, /*is_lock=*/false);
  EXPECT_TRUE(State()->Grants().empty());
  ExpectSame();
}

TEST_F(ReplicaTest, ALockOnlyPublishKeepsItsStampUntilAnInvalidation) {
  SessionId s = Open();
  core::AcquireRequest r = Req(s, "k");
  r.client_created_time = clock_.WallSeconds() - 100;
  AcquireResult created = Now(r);
  ASSERT_EQ(created.outcome, Outcome::kCreate);
  core::PublishRequest p;
  p.registry = "reg";
  p.key = "k";
  p.session_id = s;
  p.token = created.token;
  p.created_time = clock_.WallSeconds() - 5;
  ASSERT_TRUE(core_->Publish(p).ok());
  ASSERT_TRUE(State()->LockOnlyStamp("reg", "k").has_value());
  EXPECT_DOUBLE_EQ(*State()->LockOnlyStamp("reg", "k"), *p.created_time);
  EXPECT_TRUE(State()->Values().empty());  // lock-only: no bytes stored
  ExpectSame();

  ASSERT_TRUE(core_->Invalidate(InvalidateRequest{"reg", "", false}).ok());
  EXPECT_FALSE(State()->LockOnlyStamp("reg", "k").has_value());
}

TEST_F(ReplicaTest, MarksAreForgottenPastTheHorizonAsTheLeaderForgetsThem) {
  core::Limits limits;
  limits.invalidation_horizon_ms = 10'000;
  Remake(limits);
  ASSERT_TRUE(core_->Invalidate(InvalidateRequest{"reg", "old", true}).ok());
  Advance(5'000);
  // Hard: a soft registry mark later does not cover it.
  ASSERT_TRUE(core_->Invalidate(InvalidateRequest{"reg", "mid", true}).ok());
  Advance(5'000);  // "old" is exactly the horizon old
  ASSERT_TRUE(core_->Invalidate(InvalidateRequest{"reg", "", false}).ok());
  auto marks = State()->Invalidations();
  ASSERT_EQ(marks.size(), 2u);
  EXPECT_EQ(marks[0].key, "");
  EXPECT_EQ(marks[1].key, "mid");
  EXPECT_TRUE(marks[1].hard);
  // The leader remembers the same marks, with the same tokens.
  auto leader = core_->Export([] {}).invalidations;
  std::vector<std::string> want, got;
  for (const auto& m : leader) {
    if (!m.registry.empty()) {
      want.push_back(m.key + "@" + std::to_string(m.mark));
    }
  }
  for (const auto& m : marks) {
    got.push_back(m.key + "@" + std::to_string(m.mark));
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST_F(ReplicaTest, TheHighWaterMarkCoversEveryTokenHandedOut) {
  SessionId s = Open();
  core::Token last = 0;
  for (const char* key : {"a", "b", "c"}) {
    AcquireResult created = Now(Req(s, key));
    ASSERT_TRUE(Abandon(s, created.token, key).ok());
    last = created.token;
  }
  auto lock = Lock(s, LockMode::kRead, 0, "m");
  ASSERT_TRUE(lock->result.ok());
  last = std::max(last, lock->result->token);
  EXPECT_EQ(State()->HighWater(), last);
}

TEST_F(ReplicaTest, ARecordNamingNothingChangesNothingAndIsCounted) {
  SessionId s = Open();
  Now(Req(s, "k"));
  const auto before = DescribeAll(State()->Grants());
  State()->Released({999'999, std::nullopt});
  State()->SessionEnded(12345);
  EXPECT_EQ(DescribeAll(State()->Grants()), before);
  EXPECT_EQ(State()->Sessions().size(), 1u);
  EXPECT_EQ(State()->unmatched(), 2u);
  // A drop of an absent value is normal (a forgotten mark's values are
  // erased first) and not counted.
  State()->ValueDropped("reg", "nothing");
  EXPECT_EQ(State()->unmatched(), 2u);
}

// Only the holder's own Unlock or Abandon is kept for its retries: a role
// that timed out was not given up by a call that could be retried.
TEST_F(ReplicaTest, OnlyAHoldersOwnReleaseIsKeptForRetries) {
  SessionId s = Open(120'000);
  const core::Token lock = Lock(s, LockMode::kWrite, 0, "m")->result->token;
  ASSERT_EQ(Now(Req(s, "k")).outcome, Outcome::kCreate);
  Advance(30'000);  // the role times out
  ASSERT_TRUE(core_->Unlock("reg", "m", s, lock).ok());
  ExpectSame();
  const std::vector<core::PersistedSession> sessions = State()->Sessions();
  ASSERT_EQ(sessions.size(), 1u);
  const auto& kept = sessions[0].recent_releases;
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].token, lock);
  EXPECT_EQ(kept[0].kind, GrantKind::kWriteLock);
  EXPECT_EQ(kept[0].key, "m");
}

// A release record written before records said whose call released
// (one byte shorter) still applies, as a release by anything else.
TEST(CommittedStateTest, AReleaseRecordOfAnOlderVersionStillApplies) {
  CommittedState state(core::Limits{}.invalidation_horizon_ms);
  state.SessionOpened({7, 10'000, "c", "c", ""});
  state.Granted({50, GrantKind::kWriteLock, 7, "reg", "m", 0, false, 0});
  const std::string record =
      daemon::EncodeReleased({50, std::nullopt, /*by_holder=*/true});
  const std::string payload = record.substr(8, record.size() - 9);
  std::string older(8, '\0');
  const uint32_t length = static_cast<uint32_t>(payload.size());
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(payload.data()),
            static_cast<uInt>(payload.size())));
  std::memcpy(older.data(), &length, 4);
  std::memcpy(older.data() + 4, &crc, 4);
  older += payload;
  ASSERT_TRUE(daemon::ApplyEntry(older, state));
  EXPECT_TRUE(state.Grants().empty());
  EXPECT_EQ(state.unmatched(), 0u);
  EXPECT_TRUE(state.Sessions()[0].recent_releases.empty());
}

// A session that opened a near-cache watch is marked in the committed
// state and its snapshots, so a new leader knows it may hold values.
TEST(CommittedStateTest, AWatchingSessionIsMarkedAndKeptAcrossASnapshot) {
  CommittedState state(core::Limits{}.invalidation_horizon_ms);
  state.SessionOpened({7, 10'000, "c", "c", ""});
  state.SessionOpened({8, 10'000, "c", "c", ""});
  ASSERT_TRUE(daemon::ApplyEntry(daemon::EncodeSessionWatching(8), state));
  ASSERT_TRUE(daemon::ApplyEntry(daemon::EncodeSessionWatching(99), state));
  EXPECT_EQ(state.unmatched(), 1u) << "session 99 does not exist";
  std::optional<core::PersistedState> back =
      daemon::DecodeState(daemon::EncodeState(state.ToPersisted()));
  ASSERT_TRUE(back.has_value());
  CommittedState restored(core::Limits{}.invalidation_horizon_ms);
  restored.Load(*back);
  const std::vector<core::PersistedSession> sessions = restored.Sessions();
  ASSERT_EQ(sessions.size(), 2u);
  EXPECT_FALSE(sessions[0].watching);
  EXPECT_TRUE(sessions[1].watching);
}

}  // namespace
}  // namespace dogpiled::replication
