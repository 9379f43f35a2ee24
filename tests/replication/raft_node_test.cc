// Three RaftNodes as separate members on loopback (libraft's TCP transport
// and on-disk log, real time): what the leader commits reaches every
// member; a stopped leader is replaced and loses nothing committed; a
// restarted member catches up from its own log and its peers. Waits poll a
// condition with a generous deadline: a busy machine slows them, never
// fails them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <thread>

#include "daemon/record_io.h"
#include "replication/raft_node.h"
#include "tests/replication/member_setup.h"

namespace dogpiled::replication {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kMembers = 3;
constexpr auto kPatience = std::chrono::seconds(60);

template <typename Pred>
bool Eventually(Pred pred) {
  const auto deadline = steady_clock::now() + kPatience;
  while (steady_clock::now() < deadline) {
    if (pred()) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return pred();
}

class RaftNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = FreshTestDir("dogpiled-raft-");
    for (int i = 0; i < kMembers; ++i) {
      const int port = FreePort();
      ASSERT_NE(port, 0);
      members_.emplace_back(i + 1, "127.0.0.1:" + std::to_string(port));
    }
    for (int i = 0; i < kMembers; ++i) {
      Launch(i);
    }
  }
  void TearDown() override {
    nodes_.clear();
    fs::remove_all(root_);
  }

  void Launch(int i) {
    RaftNodeOptions options;
    options.id = members_[i].first;
    options.address = members_[i].second;
    options.members = members_;
    options.dir = (root_ / std::to_string(i + 1)).string();
    options.election_timeout_ms = 300;
    options.heartbeat_timeout_ms = 50;
    fs::create_directories(options.dir);
    if (nodes_.size() <= static_cast<size_t>(i)) {
      nodes_.resize(i + 1);
    }
    nodes_[i] = std::make_unique<RaftNode>(options);
    ASSERT_EQ(nodes_[i]->Start(), "");
  }

  // The running member that leads, or -1.
  int Leader() {
    for (int i = 0; i < kMembers; ++i) {
      bool leads = false;
      if (nodes_[i] && nodes_[i]->Run([&](raft& r, CommittedState&) {
            leads = raft_state(&r) == RAFT_LEADER;
          }) &&
          leads) {
        return i;
      }
    }
    return -1;
  }
  int AwaitLeader() {
    int leader = -1;
    EXPECT_TRUE(Eventually([&] { return (leader = Leader()) >= 0; }));
    return leader;
  }

  size_t Sessions(int i) {
    size_t n = 0;
    nodes_[i]->Run([&](raft&, CommittedState& s) { n = s.Sessions().size(); });
    return n;
  }

  // Opens a session on the replicated state through the leader; true once
  // the leader has it committed and applied.
  bool OpenSession(core::SessionId id) {
    daemon::RecordEncoder encoder;
    encoder.SessionOpened({id, 5000, "raft-node-test", "", ""});
    const std::string entry = encoder.Take();
    return Eventually([&] {
      const int leader = Leader();
      if (leader < 0) {
        return false;
      }
      std::promise<bool> committed;
      nodes_[leader]->Propose(entry,
                              [&](bool ok) { committed.set_value(ok); });
      // A retry after a lost lead may apply the entry twice; opening the
      // same session again is harmless here.
      return committed.get_future().get();
    });
  }

  fs::path root_;
  std::vector<std::pair<raft_id, std::string>> members_;
  std::vector<std::unique_ptr<RaftNode>> nodes_;
};

TEST_F(RaftNodeTest, CommittedEntriesReachEveryMemberAndSurviveTheLeader) {
  ASSERT_GE(AwaitLeader(), 0);
  for (core::SessionId id = 1; id <= 5; ++id) {
    ASSERT_TRUE(OpenSession(id));
  }
  for (int i = 0; i < kMembers; ++i) {
    EXPECT_TRUE(Eventually([&] { return Sessions(i) == 5; })) << i;
  }

  const int old = Leader();
  ASSERT_GE(old, 0);
  nodes_[old]->Stop();
  nodes_[old].reset();
  const int next = AwaitLeader();
  ASSERT_GE(next, 0);
  ASSERT_NE(next, old);
  EXPECT_EQ(Sessions(next), 5u);  // nothing committed was lost
  for (core::SessionId id = 6; id <= 8; ++id) {
    ASSERT_TRUE(OpenSession(id));
  }

  // The old leader comes back from its own log and catches up.
  Launch(old);
  EXPECT_TRUE(Eventually([&] { return Sessions(old) == 8; }));
}

TEST_F(RaftNodeTest, AFollowerRefusesAProposal) {
  const int leader = AwaitLeader();
  ASSERT_GE(leader, 0);
  const int follower = (leader + 1) % kMembers;
  std::promise<bool> result;
  nodes_[follower]->Propose("x", [&](bool ok) { result.set_value(ok); });
  EXPECT_FALSE(result.get_future().get());
  EXPECT_EQ(Sessions(follower), 0u);
}

}  // namespace
}  // namespace dogpiled::replication
