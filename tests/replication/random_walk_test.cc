// The committed state fuzzed against the core: random calls on a real
// Coordinator (fake clock), each record applied to a follower's state;
// after every call the follower must hold exactly the leader's sessions,
// grants and values. Seeds make every walk repeatable.
#include <random>

#include "tests/replication/replica_fixture.h"

namespace dogpiled::replication {
namespace {

using core::AcquireResult;
using core::GrantKind;
using core::LockMode;
using core::SessionId;

class RandomWalkTest : public ReplicaTest {
 protected:
  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(
        rng_)];
  }
  int Roll(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  // A live session most of the time, sometimes one that never was.
  SessionId AnySession() {
    auto sessions = core_->OpenSessions();
    if (sessions.empty() || Roll(20) == 0) {
      return 4242;
    }
    return Pick(sessions).id;
  }
  std::optional<core::PersistedGrant> AnyGrant(bool creator) {
    std::vector<core::PersistedGrant> held;
    for (const auto& g : core_->HeldGrants()) {
      if ((g.kind == GrantKind::kCreator) == creator) {
        held.push_back(g);
      }
    }
    if (held.empty()) {
      return std::nullopt;
    }
    return Pick(held);
  }

  void Step() {
    const std::vector<std::string> registries = {"r1", "r2"};
    const std::vector<std::string> keys = {"a", "b", "c"};
    switch (Roll(12)) {
      case 0:
      case 1:
        (void)core_->Open(Pick(std::vector<int64_t>{1000, 5000, 60'000}),
                          "walk", "client-" + std::to_string(Roll(3)),
                          Roll(2) == 0 ? "" : "tenant");
        break;
      case 2:
        (void)core_->Close(AnySession());
        break;
      case 3:
        (void)core_->KeepAlive(AnySession());
        break;
      case 4: {
        core::AcquireRequest r;
        r.registry = Pick(registries);
        r.key = Pick(keys);
        r.session_id = AnySession();
        r.expire_ms = Pick(std::vector<int64_t>{500, 5000, 0});
        r.wait_timeout_ms = Pick(std::vector<int64_t>{0, 0, 2000});
        r.creation_timeout_ms = Pick(std::vector<int64_t>{0, 1000});
        r.request_id = static_cast<uint64_t>(Roll(3));
        if (Roll(4) == 0) {
          r.client_created_time = clock_.WallSeconds() - Roll(10);
        }
        auto call = Acquire(r);
        if (!call->done) {
          parked_.push_back(call->wait_id);
        }
        break;
      }
      case 5: {
        auto grant = AnyGrant(/*creator=*/true);
        core::PublishRequest p;
        p.registry = grant ? grant->registry : Pick(registries);
        p.key = grant ? grant->key : Pick(keys);
        p.session_id = grant ? grant->session : AnySession();
        p.token = grant ? grant->token : 77;
        p.value = std::string(static_cast<size_t>(Roll(3000)), 'x') +
                  std::to_string(Roll(1000));
        if (grant && grant->lock_only) {
          p.created_time = clock_.WallSeconds() - Roll(5);
        }
        (void)core_->Publish(p);
        break;
      }
      case 6:
        if (auto grant = AnyGrant(/*creator=*/true)) {
          core::AbandonRequest a;
          a.registry = grant->registry;
          a.key = grant->key;
          a.session_id = grant->session;
          a.token = grant->token;
          a.retry_after_ms = Pick(std::vector<int64_t>{0, 500});
          (void)core_->Abandon(a);
        }
        break;
      case 7: {
        core::LockRequest r;
        r.registry = Pick(registries);
        r.key = Pick(keys);
        r.session_id = AnySession();
        r.mode = static_cast<int>(Roll(2) == 0 ? LockMode::kRead
                                               : LockMode::kWrite);
        r.wait_timeout_ms = Pick(std::vector<int64_t>{0, 2000});
        r.request_id = static_cast<uint64_t>(Roll(3));
        uint64_t wait = core_->Lock(r, [](auto) {});
        if (wait != 0) {
          parked_.push_back(wait);
        }
        break;
      }
      case 8:
        if (auto grant = AnyGrant(/*creator=*/false)) {
          (void)core_->Unlock(grant->registry, grant->key, grant->session,
                              grant->token);
        }
        break;
      case 9:
        (void)core_->Invalidate(core::InvalidateRequest{
            Pick(registries), Roll(3) == 0 ? "" : Pick(keys), Roll(2) == 0});
        break;
      case 10:
        if (Roll(2) == 0) {
          if (auto grant = AnyGrant(Roll(2) == 0)) {
            core_->ReleaseUndelivered(grant->registry, grant->key,
                                      grant->session, grant->token,
                                      grant->kind != GrantKind::kCreator);
          }
        } else if (!parked_.empty()) {
          core_->CancelWait(Pick(parked_));
        }
        break;
      default:
        Advance(Pick(std::vector<int64_t>{1, 100, 700, 1500, 6000}));
        break;
    }
  }

  std::mt19937_64 rng_;
  std::vector<uint64_t> parked_;
};

TEST_F(RandomWalkTest, TheFollowerHoldsExactlyWhatTheLeaderHolds) {
  constexpr int kSeeds = 100;
  constexpr int kSteps = 3000;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    core::Limits limits;
    limits.memory_budget_bytes = 64 * 1024;  // values get evicted too
    limits.invalidation_horizon_ms = 20'000;
    limits.invalidation_memory_bytes = 600;  // marks fold up, to the top
    Remake(limits, static_cast<uint64_t>(seed));
    rng_.seed(static_cast<uint64_t>(seed));
    parked_.clear();
    int promotions = 0;
    for (int step = 0; step < kSteps; ++step) {
      if (Roll(300) == 0) {
        // A failover: the new leader must hold what the old one held.
        // Parked calls are not in the log (their callers retry).
        const auto sessions = DescribeAll(core_->OpenSessions());
        const auto grants = DescribeAll(core_->HeldGrants());
        const auto values = DescribeAll(LeaderValues());
        Promote(limits);
        parked_.clear();
        ++promotions;
        ASSERT_EQ(DescribeAll(core_->OpenSessions()), sessions) << step;
        ASSERT_EQ(DescribeAll(core_->HeldGrants()), grants) << step;
        ASSERT_EQ(DescribeAll(LeaderValues()), values) << step;
      }
      Step();
      const std::string what = Divergence();
      if (!what.empty()) {
        ExpectSame();
        FAIL() << what << " after step " << step;
      }
    }
    // Every kind of record went by in this walk: the comparison above was
    // not vacuous.
    EXPECT_GT(counts_->opened, 0);
    EXPECT_GT(counts_->ended, 0);
    EXPECT_GT(counts_->granted[static_cast<int>(GrantKind::kCreator)], 0);
    EXPECT_GT(counts_->granted[static_cast<int>(GrantKind::kReadLock)], 0);
    EXPECT_GT(counts_->granted[static_cast<int>(GrantKind::kWriteLock)], 0);
    EXPECT_GT(counts_->released, 0);
    EXPECT_GT(counts_->stamped, 0);
    EXPECT_GT(counts_->stored, 0);
    EXPECT_GT(counts_->dropped, 0);
    EXPECT_GT(counts_->invalidated, 0);
    EXPECT_GT(counts_->folded_to_global, 0);
    EXPECT_GT(promotions, 0);
    if (HasFailure()) {
      return;
    }
  }
}

}  // namespace
}  // namespace dogpiled::replication
