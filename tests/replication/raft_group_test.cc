// Three replicas on libraft's own test fixture (simulated network, disk and
// time: deterministic, no sleeps): a leader's Coordinator proposes the
// records of each call as one entry; every replica applies the committed
// entries to its CommittedState. A new leader restored from its replica's
// state must hold everything the old one answered.
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "daemon/record_io.h"
#include "replication/raft_fsm.h"
#include "tests/replication/replica_fixture.h"

namespace dogpiled::replication {
namespace {

using core::AcquireResult;
using core::LockMode;
using core::Outcome;
using core::SessionId;

constexpr unsigned kServers = 3;
constexpr unsigned kMaxMs = 10'000;  // simulated time

class RaftGroupTest : public core::CoreTest {
 protected:
  void SetUp() override {
    for (unsigned i = 0; i < kServers; ++i) {
      states_[i] = std::make_unique<CommittedState>(
          core::Limits{}.invalidation_horizon_ms);
      fsms_[i] = std::make_unique<ReplicaFsm>(states_[i].get());
    }
    ASSERT_EQ(raft_fixture_init(&f_), 0);
    for (unsigned i = 0; i < kServers; ++i) {
      ASSERT_EQ(raft_fixture_grow(&f_, fsms_[i]->fsm()), 0);
      raft_fixture_get(&f_, i)->tracer = &silent_;  // its trace is stdout
      raft_set_snapshot_threshold(raft_fixture_get(&f_, i), 8);
      raft_set_snapshot_trailing(raft_fixture_get(&f_, i), 2);
    }
    raft_configuration conf;
    ASSERT_EQ(raft_fixture_configuration(&f_, kServers, &conf), 0);
    ASSERT_EQ(raft_fixture_bootstrap(&f_, &conf), 0);
    raft_configuration_close(&conf);
    ASSERT_EQ(raft_fixture_start(&f_), 0);
    raft_fixture_elect(&f_, 0);
    Lead();
  }
  void TearDown() override { raft_fixture_close(&f_); }

  // The live leader of the highest term (a cut-off leader may still think
  // it leads an older one), or kServers if none.
  static unsigned LeaderOf(raft_fixture* f) {
    unsigned leader = kServers;
    raft_term term = 0;
    for (unsigned i = 0; i < kServers; ++i) {
      raft* r = raft_fixture_get(f, i);
      if (raft_fixture_alive(f, i) && raft_state(r) == RAFT_LEADER &&
          r->current_term > term) {
        leader = i;
        term = r->current_term;
      }
    }
    return leader;
  }
  unsigned Leader() { return LeaderOf(&f_); }

  // Steps until a server other than `old` leads.
  bool StepUntilNewLeader(unsigned old) {
    return raft_fixture_step_until(
        &f_,
        [](raft_fixture* f, void* arg) {
          const unsigned leader = LeaderOf(f);
          return leader != *static_cast<unsigned*>(arg) && leader < kServers;
        },
        &old, kMaxMs);
  }

  // A Coordinator on the current leader, restored from its replica once a
  // barrier of the leader's own term is applied: only then does the new
  // leader's state hold every entry that will ever commit before it (an
  // entry of the old leader's may still commit; replication-notes.md).
  void Lead() {
    raft* leader = raft_fixture_get(&f_, Leader());
    struct raft_barrier barrier {};
    std::optional<int> status;
    barrier.data = &status;
    ASSERT_EQ(raft_barrier(leader, &barrier,
                           [](struct raft_barrier* r, int s) {
                             *static_cast<std::optional<int>*>(r->data) = s;
                           }),
              0);
    ASSERT_TRUE(raft_fixture_step_until_applied(
        &f_, Leader(), raft_last_index(leader), kMaxMs));
    ASSERT_EQ(status, 0);
    core::CoordinatorOptions options;
    options.clock = &clock_;
    options.seed = 7 + Leader();
    options.journal = &encoder_;
    core_ = std::make_unique<core::Coordinator>(options);
    core_->Restore(states_[Leader()]->ToPersisted());
  }

  // Proposes the records of the calls made since the last one as one
  // entry; true once every live replica has applied it.
  bool Commit() {
    const std::string entry = encoder_.Take();
    if (entry.empty()) {
      return true;
    }
    raft* leader = raft_fixture_get(&f_, Leader());
    raft_buffer buf;
    buf.len = entry.size();
    buf.base = raft_malloc(entry.size());
    std::memcpy(buf.base, entry.data(), entry.size());
    auto req = std::make_unique<struct raft_apply>();
    req->data = &last_status_;
    last_status_.reset();
    if (raft_apply(leader, req.get(), &buf, 1, [](struct raft_apply* r, int status,
                                                  void*) {
          *static_cast<std::optional<int>*>(r->data) = status;
        }) != 0) {
      raft_free(buf.base);
      return false;
    }
    const raft_index index = raft_last_index(leader);
    requests_.push_back(std::move(req));
    for (unsigned i = 0; i < kServers; ++i) {
      if (raft_fixture_alive(&f_, i) &&
          !raft_fixture_step_until_applied(&f_, i, index, kMaxMs)) {
        return false;
      }
    }
    return last_status_ == 0;
  }

  std::vector<std::string> Snapshot(unsigned i) {
    std::vector<std::string> out = DescribeAll(states_[i]->Sessions());
    for (auto& g : DescribeAll(states_[i]->Grants())) {
      out.push_back(g);
    }
    for (auto& v : DescribeAll(states_[i]->Values())) {
      out.push_back(v);
    }
    return out;
  }

  raft_tracer silent_{nullptr, 2, [](raft_tracer*, int, const void*) {}};
  raft_fixture f_{};
  std::array<std::unique_ptr<CommittedState>, kServers> states_;
  std::array<std::unique_ptr<ReplicaFsm>, kServers> fsms_;
  daemon::RecordEncoder encoder_;
  std::optional<int> last_status_;
  std::vector<std::unique_ptr<struct raft_apply>> requests_;
};

TEST_F(RaftGroupTest, EveryReplicaAppliesWhatTheLeaderAnswered) {
  SessionId a = Open();
  SessionId b = Open();
  AcquireResult role = Now(Req(a, "k"));
  auto lock = Lock(b, LockMode::kWrite, 0, "m");
  AcquireResult other = Now(Req(b, "j"));
  ASSERT_TRUE(Publish(b, other.token, "stored", "j").ok());
  ASSERT_TRUE(core_->Invalidate({"reg", "x", true}).ok());
  ASSERT_TRUE(Commit());
  ASSERT_EQ(states_[0]->Grants().size(), 2u);
  EXPECT_EQ(Snapshot(1), Snapshot(0));
  EXPECT_EQ(Snapshot(2), Snapshot(0));
  for (const auto& fsm : fsms_) {
    EXPECT_EQ(fsm->bad_entries(), 0u);
  }
  (void)role;
  (void)lock;
}

TEST_F(RaftGroupTest, AKilledLeaderLosesNoSessionGrantOrValue) {
  SessionId a = Open();
  SessionId b = Open();
  AcquireResult role = Now(Req(a, "k"));
  auto lock = Lock(b, LockMode::kWrite, 0, "m");
  ASSERT_TRUE(lock->result.ok());
  AcquireResult other = Now(Req(b, "j"));
  ASSERT_TRUE(Publish(b, other.token, "stored", "j").ok());
  ASSERT_TRUE(Commit());
  const auto sessions = DescribeAll(core_->OpenSessions());
  const auto grants = DescribeAll(core_->HeldGrants());
  const core::Token high = role.token > lock->result->token
                               ? role.token
                               : lock->result->token;

  const unsigned old = Leader();
  raft_fixture_kill(&f_, old);
  ASSERT_TRUE(StepUntilNewLeader(old));
  Lead();
  EXPECT_EQ(DescribeAll(core_->OpenSessions()), sessions);
  EXPECT_EQ(DescribeAll(core_->HeldGrants()), grants);
  EXPECT_EQ(Now(Req(b, "j")).outcome, Outcome::kFresh);

  // The holders go on with their tokens on the new leader; nobody else
  // gets what they hold; new tokens are higher than any handed out.
  auto second = Lock(Open(), LockMode::kWrite, 0, "m");
  ASSERT_TRUE(second->result.ok());
  EXPECT_FALSE(second->result->acquired);
  ASSERT_TRUE(Publish(a, role.token, "made").ok());
  AcquireResult next = Now(Req(a, "n"));
  EXPECT_GT(next.token, high);
  ASSERT_TRUE(Commit());

  // The old leader comes back as a follower and catches up.
  raft_fixture_revive(&f_, old);
  ASSERT_TRUE(raft_fixture_step_until_applied(
      &f_, old, raft_last_index(raft_fixture_get(&f_, Leader())), kMaxMs));
  EXPECT_EQ(Snapshot(old), Snapshot(Leader()));
}

TEST_F(RaftGroupTest, AnEntryOfALeaderCutOffFromItsMajorityIsNeverApplied) {
  SessionId a = Open();
  ASSERT_TRUE(Commit());
  const unsigned old = Leader();
  for (unsigned i = 0; i < kServers; ++i) {
    if (i != old) {
      raft_fixture_disconnect(&f_, old, i);
      raft_fixture_disconnect(&f_, i, old);
    }
  }
  // The cut-off leader decides a grant, but its entry cannot commit (in
  // the daemon the answer waits for the commit, so nobody learns of it).
  AcquireResult role = Now(Req(a, "cut"));
  ASSERT_EQ(role.outcome, Outcome::kCreate);
  const std::string entry = encoder_.Take();
  raft_buffer buf;
  buf.len = entry.size();
  buf.base = raft_malloc(entry.size());
  std::memcpy(buf.base, entry.data(), entry.size());
  struct raft_apply req {};
  std::optional<int> status;
  req.data = &status;
  ASSERT_EQ(raft_apply(raft_fixture_get(&f_, old), &req, &buf, 1,
                       [](struct raft_apply* r, int s, void*) {
                         *static_cast<std::optional<int>*>(r->data) = s;
                       }),
            0);
  // The others elect a leader of their own; the old one steps down and
  // its entry fails.
  ASSERT_TRUE(StepUntilNewLeader(old));
  Lead();  // what the old one decided is not in the new leader's state
  EXPECT_TRUE(core_->HeldGrants().empty());
  raft_fixture_step_until_elapsed(&f_, 2000);
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  for (unsigned i = 0; i < kServers; ++i) {
    raft_fixture_reconnect(&f_, old, i);
    raft_fixture_reconnect(&f_, i, old);
  }
  // The old leader's higher term (it kept campaigning alone) may force one
  // more election; it cannot win it (its log lacks the barrier), and its
  // entry is overwritten.
  raft_fixture_step_until_elapsed(&f_, 3000);
  ASSERT_TRUE(StepUntilNewLeader(old));
  Lead();
  EXPECT_EQ(Now(Req(a, "k")).outcome, Outcome::kCreate);
  ASSERT_TRUE(Commit());
  raft_fixture_step_until_applied(
      &f_, kServers, raft_last_index(raft_fixture_get(&f_, Leader())), kMaxMs);
  for (unsigned i = 0; i < kServers; ++i) {
    ASSERT_EQ(states_[i]->Grants().size(), 1u) << "replica " << i;
    EXPECT_EQ(states_[i]->Grants()[0].key, "k") << "replica " << i;
  }
}

TEST_F(RaftGroupTest, AReplicaThatMissedMuchCatchesUpFromASnapshot) {
  const unsigned lagging = (Leader() + 1) % kServers;
  raft_fixture_kill(&f_, lagging);
  SessionId s = Open();
  for (int i = 0; i < 30; ++i) {
    const std::string key = "k" + std::to_string(i);
    AcquireResult role = Now(Req(s, key));
    ASSERT_TRUE(Publish(s, role.token, "v" + std::to_string(i), key).ok());
    ASSERT_TRUE(Commit());
  }
  ASSERT_TRUE(core_->Invalidate({"reg", "k3", false}).ok());
  ASSERT_TRUE(Commit());
  raft_fixture_revive(&f_, lagging);
  ASSERT_TRUE(raft_fixture_step_until_applied(
      &f_, lagging, raft_last_index(raft_fixture_get(&f_, Leader())), kMaxMs));
  EXPECT_GT(fsms_[lagging]->restores(), 0u);  // it got a snapshot
  EXPECT_EQ(Snapshot(lagging), Snapshot(Leader()));
  EXPECT_EQ(states_[lagging]->HighWater(), states_[Leader()]->HighWater());
  EXPECT_EQ(states_[lagging]->Invalidations().size(),
            states_[Leader()]->Invalidations().size());
}

// What recognizes a retried Publish, Unlock or Abandon travels in snapshots
// too: a replica that caught up from one, once it leads, answers a retried
// Publish whose answer the old leader lost, and refuses a retried release
// NOT_HOLDER marked "released".
TEST_F(RaftGroupTest, ALeaderThatInstalledASnapshotRecognizesRetriedCalls) {
  const unsigned lagging = (Leader() + 1) % kServers;
  raft_fixture_kill(&f_, lagging);
  SessionId s = Open();
  const core::PublishRequest publish{"reg", "k", s, Now(Req(s, "k")).token,
                                     core::Bytes("made"), std::nullopt};
  const core::StatusOr<double> published = core_->Publish(publish);
  ASSERT_TRUE(published.ok());
  const core::Token lock = Lock(s, LockMode::kWrite, 0, "m")->result->token;
  ASSERT_TRUE(core_->Unlock("reg", "m", s, lock).ok());
  const core::Token role = Now(Req(s, "j")).token;
  ASSERT_TRUE(Abandon(s, role, "j").ok());
  ASSERT_TRUE(Commit());
  // Enough entries later, the leader sends a snapshot instead of them.
  SessionId other = Open();
  for (int i = 0; i < 20; ++i) {
    const std::string key = "f" + std::to_string(i);
    ASSERT_TRUE(Publish(other, Now(Req(other, key)).token, "v", key).ok());
    ASSERT_TRUE(Commit());
  }
  raft_fixture_revive(&f_, lagging);
  ASSERT_TRUE(raft_fixture_step_until_applied(
      &f_, lagging, raft_last_index(raft_fixture_get(&f_, Leader())), kMaxMs));
  ASSERT_GT(fsms_[lagging]->restores(), 0u);

  raft_fixture_depose(&f_);
  raft_fixture_elect(&f_, lagging);
  ASSERT_EQ(Leader(), lagging);
  Lead();
  const core::StatusOr<double> again = core_->Publish(publish);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again.value(), published.value());
  EXPECT_TRUE(core::RefusedNotHolder(core_->Unlock("reg", "m", s, lock),
                                     /*released=*/true));
  EXPECT_TRUE(
      core::RefusedNotHolder(Abandon(s, role, "j"), /*released=*/true));
}

}  // namespace
}  // namespace dogpiled::replication
