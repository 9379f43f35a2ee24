// Near-cache tracking and ack bookkeeping (core/near_cache.h), driven
// through the Coordinator on a fake clock.
#include "core/near_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

// Whether an AckWait has been answered, and how.
struct Answered {
  bool done = false;
  Status status;
};

class NearCacheTest : public CoreTest {
 protected:
  NearCacheTest() {
    limits_.watch_ack_timeout_ms = 500;
    limits_.watch_heartbeat_ms = 1000;
    limits_.max_tracked_keys = 3;
    tracker_ = std::make_unique<NearCacheTracker>(&clock_, limits_);
    CoordinatorOptions options;
    options.limits = limits_;
    options.clock = &clock_;
    options.token_store = &store_;
    options.first_token = 100;
    options.near_cache = tracker_.get();
    core_ = std::make_unique<Coordinator>(options);
  }

  // Makes `value` the fresh value of `key` (expires in 1 s).
  void Store(SessionId creator, const std::string& key,
             const std::string& value) {
    AcquireResult r = Now(Req(creator, key, /*expire_ms=*/-1));
    ASSERT_EQ(r.outcome, Outcome::kCreate);
    ASSERT_TRUE(Publish(creator, r.token, value, key).ok());
  }

  uint64_t Watch(SessionId session) {
    StatusOr<uint64_t> id = core_->OpenWatch(session, [this] { ++wakes_; });
    EXPECT_TRUE(id.ok()) << id.status().message();
    std::vector<WatchEvent> first = Drain(id.value());
    EXPECT_EQ(first.size(), 1u);
    if (!first.empty()) {
      EXPECT_EQ(first[0].kind, WatchEventKind::kSubscribed);
      EXPECT_EQ(first[0].watch_id, id.value());
    }
    return id.value();
  }

  std::vector<WatchEvent> Drain(uint64_t watch, Status* closed = nullptr) {
    std::vector<WatchEvent> events;
    Status why;
    while (auto event = tracker_->NextEvent(watch, &why)) {
      events.push_back(*event);
    }
    if (closed != nullptr) {
      *closed = why;
    }
    return events;
  }

  AcquireResult TrackedRead(SessionId session, const std::string& key) {
    AcquireRequest r = Req(session, key);
    r.near_cache = true;
    return Now(r);
  }

  std::shared_ptr<Answered> Watched(const AckWaitPtr& acks) {
    auto answered = std::make_shared<Answered>();
    EXPECT_NE(acks, nullptr);
    acks->Then([answered](Status s) {
      EXPECT_FALSE(answered->done) << "answered twice";
      answered->done = true;
      answered->status = s;
    });
    return answered;
  }

  std::shared_ptr<Answered> Invalidate(const std::string& key,
                                       bool hard = false) {
    InvalidateRequest r;
    r.registry = "reg";
    r.key = key;
    r.hard = hard;
    AckWaitPtr acks;
    EXPECT_TRUE(core_->Invalidate(r, &acks).ok());
    return Watched(acks);
  }

  // A writer stores reg/k; a reader watches and holds it in its near-cache.
  void Hold() {
    writer_ = Open();
    reader_ = Open();
    Store(writer_, "k", "v1");
    watch_ = Watch(reader_);
    TrackedRead(reader_, "k");
  }

  Limits limits_;
  std::unique_ptr<NearCacheTracker> tracker_;
  SessionId writer_ = 0;
  SessionId reader_ = 0;
  uint64_t watch_ = 0;
  int wakes_ = 0;
};

TEST_F(NearCacheTest, InvalidateWaitsForTheHoldersAck) {
  const SessionId writer = Open();
  const SessionId reader = Open();
  Store(writer, "k", "v1");
  const uint64_t watch = Watch(reader);
  clock_.AdvanceMs(200);
  const AcquireResult read = TrackedRead(reader, "k");
  EXPECT_EQ(read.outcome, Outcome::kFresh);
  EXPECT_EQ(read.near_cache_watch_id, watch);
  EXPECT_EQ(read.fresh_for_ms, 800);

  const int wakes_before = wakes_;
  auto invalidated = Invalidate("k");
  EXPECT_FALSE(invalidated->done);
  EXPECT_GT(wakes_, wakes_before) << "the watch's writer must be woken";
  std::vector<WatchEvent> events = Drain(watch);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, WatchEventKind::kInvalidated);
  EXPECT_EQ(events[0].seq, 1u);
  EXPECT_EQ(events[0].registry, "reg");
  EXPECT_EQ(events[0].key, "k");
  EXPECT_TRUE(tracker_->Ack(watch, 1).ok());
  EXPECT_TRUE(invalidated->done);
  EXPECT_TRUE(invalidated->status.ok());
  // The drop untracked it: the next invalidation has nobody to wait for.
  EXPECT_TRUE(Invalidate("k")->done);
}

TEST_F(NearCacheTest, ReadWithoutAWatchIsNotRegistered) {
  const SessionId writer = Open();
  const SessionId reader = Open();
  Store(writer, "k", "v1");
  EXPECT_EQ(TrackedRead(reader, "k").near_cache_watch_id, 0u);
  EXPECT_TRUE(Invalidate("k")->done);
}

TEST_F(NearCacheTest, NeverExpiringValueSaysSo) {
  const SessionId s = Open();
  Store(s, "k", "v1");
  Watch(s);
  AcquireRequest r = Req(s, "k", /*expire_ms=*/0);
  r.near_cache = true;
  EXPECT_EQ(Now(r).fresh_for_ms, -1);
}

TEST_F(NearCacheTest, BrokenWatchWaitsForTheSessionToEnd) {
  const SessionId writer = Open();
  const SessionId reader = Open(/*ttl_ms=*/2000);
  Store(writer, "k", "v1");
  const uint64_t watch = Watch(reader);
  TrackedRead(reader, "k");
  tracker_->WatchGone(watch);
  auto invalidated = Invalidate("k");
  EXPECT_FALSE(invalidated->done);
  // The client may still serve its cache: naming the broken watch keeps the
  // push owed and tells the client to drop everything.
  EXPECT_TRUE(tracker_->KeepAlive(reader, watch));
  EXPECT_FALSE(invalidated->done);
  Advance(1999);
  EXPECT_FALSE(invalidated->done);
  Advance(1);
  EXPECT_TRUE(invalidated->done);
}

TEST_F(NearCacheTest, KeepAliveNamingNoWatchSatisfiesThePush) {
  Hold();
  tracker_->WatchGone(watch_);
  auto invalidated = Invalidate("k");
  EXPECT_FALSE(tracker_->KeepAlive(reader_, 0));
  EXPECT_TRUE(invalidated->done);
  // The broken watch is forgotten: naming it again is "lost".
  EXPECT_TRUE(tracker_->KeepAlive(reader_, watch_));
  EXPECT_EQ(tracker_->GetStats().watches, 0u);
}

TEST_F(NearCacheTest, NewWatchOfTheSessionSatisfiesAndReplacesTheOld) {
  const SessionId writer = Open();
  const SessionId reader = Open();
  Store(writer, "k", "v1");
  const uint64_t first = Watch(reader);
  TrackedRead(reader, "k");
  auto invalidated = Invalidate("k");
  EXPECT_FALSE(invalidated->done);
  const uint64_t second = Watch(reader);
  EXPECT_NE(first, second);
  EXPECT_TRUE(invalidated->done);
  Status closed;
  Drain(first, &closed);
  EXPECT_EQ(closed.code(), Code::kAborted);
  Store(writer, "k", "v2");
  EXPECT_EQ(TrackedRead(reader, "k").near_cache_watch_id, second);
}

TEST_F(NearCacheTest, UnackedPushMakesTheWatchLostAfterTheAckTimeout) {
  Hold();
  auto invalidated = Invalidate("k");
  Drain(watch_);
  Advance(500);
  EXPECT_FALSE(tracker_->KeepAlive(reader_, watch_));
  Advance(1);
  EXPECT_TRUE(tracker_->KeepAlive(reader_, watch_));
  EXPECT_FALSE(invalidated->done);
  EXPECT_FALSE(tracker_->KeepAlive(reader_, 0));  // the client dropped all
  EXPECT_TRUE(invalidated->done);
}

TEST_F(NearCacheTest, RegistryInvalidationReachesEveryTrackedKey) {
  const SessionId writer = Open();
  const SessionId reader = Open();
  Store(writer, "a", "1");
  Store(writer, "b", "2");
  const uint64_t watch = Watch(reader);
  TrackedRead(reader, "a");
  TrackedRead(reader, "b");
  auto invalidated = Invalidate("", /*hard=*/true);
  std::vector<WatchEvent> events = Drain(watch);
  ASSERT_EQ(events.size(), 1u) << "one drop of the registry, not per key";
  EXPECT_EQ(events[0].registry, "reg");
  EXPECT_EQ(events[0].key, "");
  EXPECT_FALSE(invalidated->done);
  EXPECT_TRUE(tracker_->Ack(watch, events[0].seq).ok());
  EXPECT_TRUE(invalidated->done);
  EXPECT_EQ(tracker_->GetStats().tracked_keys, 0u);
}

TEST_F(NearCacheTest, SecondInvalidateWaitsForTheFirstsPush) {
  Hold();
  auto first = Invalidate("k");
  auto second = Invalidate("k");
  auto other_key = Invalidate("x");
  EXPECT_FALSE(first->done);
  EXPECT_FALSE(second->done) << "the old value may still be served";
  EXPECT_TRUE(other_key->done);
  Drain(watch_);
  EXPECT_TRUE(tracker_->Ack(watch_, 1).ok());
  EXPECT_TRUE(first->done);
  EXPECT_TRUE(second->done);
}

TEST_F(NearCacheTest, PublishWaitsForTheHolders) {
  Hold();
  const AcquireResult role = Now(Req(writer_, "k", /*expire_ms=*/-1));
  ASSERT_EQ(role.outcome, Outcome::kCreate);
  PublishRequest p;
  p.registry = "reg";
  p.key = "k";
  p.session_id = writer_;
  p.token = role.token;
  p.value = "v2";
  AckWaitPtr acks;
  ASSERT_TRUE(core_->Publish(p, &acks).ok());
  auto published = Watched(acks);
  EXPECT_FALSE(published->done);
  // A retry of the same Publish waits for the same drop.
  AckWaitPtr retry_acks;
  ASSERT_TRUE(core_->Publish(p, &retry_acks).ok());
  auto retried = Watched(retry_acks);
  EXPECT_FALSE(retried->done);
  Drain(watch_);
  EXPECT_TRUE(tracker_->Ack(watch_, 1).ok());
  EXPECT_TRUE(published->done);
  EXPECT_TRUE(retried->done);
}

TEST_F(NearCacheTest, ParkedReadAnsweredFreshIsRegistered) {
  const SessionId writer = Open();
  const SessionId reader = Open();
  const AcquireResult role = Now(Req(writer, "k"));
  ASSERT_EQ(role.outcome, Outcome::kCreate);
  const uint64_t watch = Watch(reader);
  AcquireRequest r = Req(reader, "k", 1000, /*wait_ms=*/5000);
  r.near_cache = true;
  auto parked = Acquire(r);
  EXPECT_FALSE(parked->done);
  ASSERT_TRUE(Publish(writer, role.token, "v1").ok());
  ASSERT_TRUE(parked->done);
  EXPECT_EQ(parked->result->outcome, Outcome::kFresh);
  EXPECT_EQ(parked->result->near_cache_watch_id, watch);
  EXPECT_FALSE(Invalidate("k")->done);
}

TEST_F(NearCacheTest, PastTheTrackingLimitReadsAreNotRegistered) {
  const SessionId writer = Open();
  const SessionId reader = Open();
  const uint64_t watch = Watch(reader);
  for (const char* key : {"a", "b", "c", "d"}) {
    Store(writer, key, "v");
  }
  EXPECT_EQ(TrackedRead(reader, "a").near_cache_watch_id, watch);
  EXPECT_EQ(TrackedRead(reader, "b").near_cache_watch_id, watch);
  EXPECT_EQ(TrackedRead(reader, "c").near_cache_watch_id, watch);
  EXPECT_EQ(TrackedRead(reader, "d").near_cache_watch_id, 0u);
  EXPECT_EQ(TrackedRead(reader, "a").near_cache_watch_id, watch)
      << "a key already held counts once";
  EXPECT_TRUE(Invalidate("d")->done);
}

TEST_F(NearCacheTest, AckAboveWhatWasSentIsRefused) {
  const SessionId s = Open();
  const uint64_t watch = Watch(s);
  Status refused = tracker_->Ack(watch, 5);
  EXPECT_EQ(refused.code(), Code::kInvalidArgument);
  EXPECT_NE(refused.message().find("ack_seq"), std::string::npos);
}

TEST_F(NearCacheTest, IdleWatchGetsHeartbeats) {
  const SessionId s = Open();
  const uint64_t watch = Watch(s);
  tracker_->Tick();
  EXPECT_TRUE(Drain(watch).empty());
  clock_.AdvanceMs(500);
  tracker_->Tick();
  std::vector<WatchEvent> events = Drain(watch);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, WatchEventKind::kHeartbeat);
  EXPECT_EQ(events[0].heartbeat_ms, 1000);
}

TEST_F(NearCacheTest, SessionEndClosesTheWatchAndAnswersWaits) {
  Hold();
  auto invalidated = Invalidate("k");
  ASSERT_TRUE(core_->Close(reader_).ok());
  EXPECT_TRUE(invalidated->done);
  Status closed;
  Drain(watch_, &closed);
  EXPECT_EQ(closed.code(), Code::kNotFound);
  tracker_->WatchGone(watch_);
  EXPECT_EQ(tracker_->GetStats().watches, 0u);
}

TEST_F(NearCacheTest, ShutdownAnswersWaitsUnavailable) {
  const SessionId writer = Open();
  const SessionId reader = Open();
  Store(writer, "k", "v1");
  Watch(reader);
  TrackedRead(reader, "k");
  auto invalidated = Invalidate("k");
  tracker_->Shutdown();
  EXPECT_TRUE(invalidated->done);
  EXPECT_EQ(invalidated->status.code(), Code::kUnavailable);
}

TEST_F(NearCacheTest, WatchOfAnUnknownSessionIsRefused) {
  StatusOr<uint64_t> id = core_->OpenWatch(12345, [] {});
  EXPECT_EQ(id.status().code(), Code::kNotFound);
}

// A replicated group's new leader inherits sessions that watched under an
// earlier leader: they may still serve anything from their near-caches.
TEST_F(NearCacheTest, InheritedSessionHoldsEveryCallUntilItNamesNoWatch) {
  const SessionId writer = Open();
  const SessionId reader = Open();
  Store(writer, "k", "v1");
  tracker_->Inherit(reader);
  auto invalidated = Invalidate("k");
  auto other = Invalidate("elsewhere");
  EXPECT_FALSE(invalidated->done);
  EXPECT_FALSE(other->done) << "the inherited session may hold any key";
  // It names the watch it trusted at the old leader: that proves nothing,
  // so it is told to drop everything, and the calls wait on.
  EXPECT_TRUE(tracker_->KeepAlive(reader, 7));
  EXPECT_FALSE(invalidated->done);
  EXPECT_FALSE(tracker_->KeepAlive(reader, 0));  // dropped everything
  EXPECT_TRUE(invalidated->done);
  EXPECT_TRUE(invalidated->status.ok());
  EXPECT_TRUE(other->done);
  EXPECT_TRUE(Invalidate("k")->done) << "nothing owed any more";
}

TEST_F(NearCacheTest, InheritedSessionIsClearedByANewWatchOrItsEnd) {
  const SessionId writer = Open();
  const SessionId watcher = Open();
  const SessionId gone = Open(/*ttl_ms=*/2000);
  Store(writer, "k", "v1");
  tracker_->Inherit(watcher);
  tracker_->Inherit(gone);
  auto invalidated = Invalidate("k");
  const uint64_t watch = Watch(watcher);  // dropped all before opening
  EXPECT_FALSE(invalidated->done) << "the other session is still owed";
  Advance(2000);  // `gone` never comes back: its session expires
  EXPECT_TRUE(invalidated->done);
  // The new watch works as any other.
  Store(writer, "j", "v1");
  EXPECT_EQ(TrackedRead(watcher, "j").near_cache_watch_id, watch);
  auto again = Invalidate("j");
  EXPECT_FALSE(again->done);
  EXPECT_TRUE(tracker_->Ack(watch, Drain(watch).at(0).seq).ok());
  EXPECT_TRUE(again->done);
}

TEST_F(NearCacheTest, WatchIdsStartWhereTheTrackerIsTold) {
  NearCacheTracker later(&clock_, limits_, (uint64_t{3} << 32) | 1);
  EXPECT_EQ(later.OpenWatch(1, [] {}), (uint64_t{3} << 32) | 1);
  EXPECT_EQ(later.OpenWatch(2, [] {}), (uint64_t{3} << 32) | 2);
}

}  // namespace
}  // namespace dogpiled::core
