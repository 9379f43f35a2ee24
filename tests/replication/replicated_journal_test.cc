// ReplicatedJournal on a one-member group (it leads at once; libraft's TCP
// transport and on-disk log, real time): records handed over from many
// threads are answered only once committed and applied, in order, with
// fewer entries than records under load; a read waits for the lead to be
// confirmed; a deposed journal answers every waiter, now and later, with
// the reason. Waits poll with a generous deadline: load slows them only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "replication/raft_node.h"
#include "tests/replication/member_setup.h"
#include "replication/replicated_journal.h"

namespace dogpiled::replication {
namespace {

namespace fs = std::filesystem;

class ReplicatedJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("dogpiled-rjournal-");
    fs::create_directories(dir_);
    const int port = FreePort();
    ASSERT_NE(port, 0);
    RaftNodeOptions options;
    options.id = 1;
    options.address = "127.0.0.1:" + std::to_string(port);
    options.members = {{1, options.address}};
    options.dir = dir_.string();
    options.election_timeout_ms = 300;
    options.heartbeat_timeout_ms = 50;
    node_ = std::make_unique<RaftNode>(options);
    ASSERT_EQ(node_->Start(), "");
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::seconds(60);
    bool leads = false;
    while (!leads && std::chrono::steady_clock::now() < deadline) {
      node_->Run([&](raft& r, CommittedState&) {
        leads = raft_state(&r) == RAFT_LEADER;
      });
      std::this_thread::yield();
    }
    ASSERT_TRUE(leads);
  }
  void TearDown() override {
    node_.reset();
    fs::remove_all(dir_);
  }

  static core::PersistedSession Session(core::SessionId id) {
    return {id, 5000, "rjournal-test", "", ""};
  }

  fs::path dir_;
  std::unique_ptr<RaftNode> node_;
};

TEST_F(ReplicatedJournalTest, AnswersComeAfterTheCommitInOrderAndShareEntries) {
  auto journal = std::make_shared<ReplicatedJournal>(node_.get(), 1'000'000);
  journal->Confirm();
  constexpr int kThreads = 4;
  constexpr int kEach = 50;
  std::mutex mu;
  std::vector<core::SessionId> answered;  // in answer order
  int not_applied = 0;
  int failed = 0;
  std::promise<void> all;
  std::atomic<int> left{kThreads * kEach};
  std::mutex core_lock;  // stands in for the Coordinator's lock
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const core::SessionId id = 1 + t * kEach + i;
        {
          std::lock_guard lock(core_lock);
          journal->SessionOpened(Session(id));
        }
        journal->AfterDurable([&, id](core::Status s) {
          {
            std::lock_guard lock(mu);
            answered.push_back(id);
            failed += s.ok() ? 0 : 1;
            // Answers run on the Raft loop: the applied state may be read.
            bool found = false;
            for (const auto& open : node_->state_on_loop().Sessions()) {
              found |= open.id == id;
            }
            not_applied += found ? 0 : 1;
          }
          if (--left == 0) {
            all.set_value();
          }
        });
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  ASSERT_EQ(all.get_future().wait_for(std::chrono::seconds(60)),
            std::future_status::ready);
  std::lock_guard lock(mu);
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(not_applied, 0) << "an answer came before its record applied";
  EXPECT_EQ(answered.size(), static_cast<size_t>(kThreads * kEach));
  // Each thread's answers come in the order it journaled.
  std::vector<core::SessionId> last(kThreads, 0);
  for (core::SessionId id : answered) {
    const auto t = static_cast<size_t>((id - 1) / kEach);
    EXPECT_GT(id, last[t]);
    last[t] = id;
  }
  EXPECT_LE(journal->entries_proposed(), static_cast<uint64_t>(kThreads * kEach));
  EXPECT_GE(journal->entries_proposed(), 1u);
  EXPECT_TRUE(journal->Health().ok());
}

TEST_F(ReplicatedJournalTest, AReadWaitsUntilTheLeadIsConfirmed) {
  auto journal = std::make_shared<ReplicatedJournal>(node_.get(), 1'000'000);
  std::atomic<int> answers{0};
  journal->AfterDurable([&](core::Status s) {
    EXPECT_TRUE(s.ok());
    ++answers;
  });
  EXPECT_EQ(answers.load(), 0) << "never confirmed: a read must wait";
  journal->Confirm();
  EXPECT_EQ(answers.load(), 1);
  journal->AfterDurable([&](core::Status s) {
    EXPECT_TRUE(s.ok());
    ++answers;
  });
  EXPECT_EQ(answers.load(), 2) << "confirmed within the lease: at once";
}

TEST_F(ReplicatedJournalTest, ADeposedJournalAnswersEveryWaiterWithTheReason) {
  auto journal = std::make_shared<ReplicatedJournal>(node_.get(), 1'000'000);
  journal->Confirm();
  node_->Stop();  // nothing proposed from here on commits
  journal->SessionOpened(Session(7));
  std::vector<core::Status> got;
  journal->AfterDurable([&](core::Status s) { got.push_back(s); });
  ASSERT_TRUE(got.empty()) << "the record is not committed";
  const core::Status why =
      core::Unavailable("lost the lead")
          .WithReason(std::string(core::reason::kNotLeader));
  journal->Depose(why);
  journal->AfterDurable([&](core::Status s) { got.push_back(s); });
  ASSERT_EQ(got.size(), 2u);
  for (const core::Status& s : got) {
    EXPECT_EQ(s.code(), core::Code::kUnavailable);
    EXPECT_EQ(s.reason(), "NOT_LEADER");
  }
  EXPECT_FALSE(journal->Health().ok());
}

}  // namespace
}  // namespace dogpiled::replication
