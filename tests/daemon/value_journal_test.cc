// The value journal with real files in a temporary folder: what a daemon
// kept survives a graceful stop and a crash (a torn tail included).
#include "daemon/value_journal.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/clock.h"
#include "daemon/record_io.h"

namespace dogpiled::daemon {
namespace {

namespace fs = std::filesystem;

class ValueJournalTest : public ::testing::Test {
 protected:
  ValueJournalTest() {
    dir_ = fs::temp_directory_path() /
           ("dogpiled-journal-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  ~ValueJournalTest() override { fs::remove_all(dir_); }

  // A daemon's worth of state: journal opened, core restored, journal
  // started.
  void Boot(FsyncPolicy policy = FsyncPolicy::kEverySecond,
            uint64_t compact_bytes = 64 << 20) {
    auto opened = ValueJournal::Open(dir_.string(), policy, compact_bytes);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    journal_ = std::move(opened.value());
    core::CoordinatorOptions options;
    options.clock = &clock_;
    options.journal = journal_.get();
    core_ = std::make_unique<core::Coordinator>(options);
    core_->Restore(journal_->loaded());
    ASSERT_TRUE(journal_->Start(core_.get()).ok());
    session_ = core_->Open(0, "t")->session_id;
  }

  // Runs `work` in a child process that then dies without any cleanup,
  // as under kill -9.
  template <typename Fn>
  void InCrashingChild(Fn work) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      work();
      ::_exit(testing::Test::HasFailure() ? 1 : 0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }

  void Put(const std::string& key, const std::string& value) {
    core::AcquireRequest r;
    r.registry = "reg";
    r.key = key;
    r.session_id = session_;
    r.expire_ms = -1;
    core::Token token = 0;
    core_->Acquire(r, [&](const core::StatusOr<core::AcquireResult>& got) {
      if (got.ok()) {
        token = got.value().token;
      }
    });
    ASSERT_NE(token, 0u);
    ASSERT_TRUE(core_->Publish({"reg", key, session_, token, value, {}}).ok());
  }

  std::string Get(const std::string& key) {
    return core_->Peek("reg", key, 0)->value;
  }

  core::SystemClock clock_;
  fs::path dir_;
  std::unique_ptr<ValueJournal> journal_;
  std::unique_ptr<core::Coordinator> core_;
  core::SessionId session_ = 0;
};

TEST_F(ValueJournalTest, GracefulRestartKeepsValuesAndInvalidations) {
  Boot();
  Put("a", "1");
  Put("b", "2");
  Put("a", "3");
  ASSERT_TRUE(core_->Invalidate({"reg", "b", true}).ok());
  journal_->Stop();
  journal_.reset();
  core_.reset();
  Boot();
  EXPECT_EQ(Get("a"), "3");
  EXPECT_FALSE(core_->Peek("reg", "b", 0)->has_value);
  EXPECT_EQ(core_->GetStats().entries, 2u);  // b's invalidation is remembered
}

TEST_F(ValueJournalTest, CrashKeepsLoggedValuesAndIgnoresTornTail) {
  InCrashingChild([&] {
    Boot(FsyncPolicy::kAlways);
    Put("a", "kept");
    Put("b", "also kept");
  });
  // A crash mid-append leaves half a record at the end of the log.
  fs::path log;
  for (const auto& f : fs::directory_iterator(dir_)) {
    if (f.path().extension() == ".log") {
      log = f.path();
    }
  }
  ASSERT_FALSE(log.empty());
  const std::string half = EncodeValue({"reg", "c", "torn", 1, 99});
  std::ofstream(log, std::ios::app | std::ios::binary)
      << half.substr(0, half.size() / 2);
  Boot();
  EXPECT_EQ(Get("a"), "kept");
  EXPECT_EQ(Get("b"), "also kept");
  EXPECT_FALSE(core_->Peek("reg", "c", 0)->has_value);
  Put("d", "after recovery");
  journal_->Stop();
  journal_.reset();
  core_.reset();
  Boot();
  EXPECT_EQ(Get("d"), "after recovery");
}

TEST_F(ValueJournalTest, CompactionBoundsTheLogAndKeepsTheLatestValues) {
  Boot(FsyncPolicy::kNo, /*compact_bytes=*/1024);
  for (int i = 0; i < 200; ++i) {
    Put("k" + std::to_string(i % 5), std::string(100, 'a' + i % 26));
  }
  journal_->Stop();  // compacts once more on the way out
  uint64_t total = 0;
  int files = 0;
  for (const auto& f : fs::directory_iterator(dir_)) {
    total += fs::file_size(f.path());
    ++files;
  }
  EXPECT_LE(files, 2);      // one snapshot and one (empty) log
  EXPECT_LT(total, 2000u);  // five values, not two hundred
  journal_.reset();
  core_.reset();
  Boot();
  EXPECT_EQ(Get("k4"), std::string(100, 'a' + 199 % 26));
}

TEST(RecordReaderTest, StopsAtCorruption) {
  std::string data = EncodeDrop("r", "k1") + EncodeDrop("r", "k2");
  data[data.size() - 1] ^= 0x40;  // flip a bit in the second record
  RecordReader reader(data);
  auto first = reader.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->value.key, "k1");
  EXPECT_FALSE(reader.Next().has_value());
  EXPECT_EQ(reader.consumed(), EncodeDrop("r", "k1").size());
}

}  // namespace
}  // namespace dogpiled::daemon
