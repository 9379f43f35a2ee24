// The value journal with real files in a temporary folder: what a daemon
// kept survives a graceful stop and a crash (a torn tail included).
#include "daemon/value_journal.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
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
            uint64_t compact_bytes = 64 << 20, Env* env = Env::Default(),
            core::Limits limits = {}) {
    auto opened =
        ValueJournal::Open(dir_.string(), policy, compact_bytes, env);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    journal_ = std::move(opened.value());
    core::CoordinatorOptions options;
    options.limits = limits;
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

  // Waits until what was journaled so far is durable, as the service does
  // before it answers a Publish under --fsync always.
  void AwaitDurable() {
    std::promise<core::Status> done;
    journal_->AfterDurable([&](core::Status s) { done.set_value(s); });
    ASSERT_TRUE(done.get_future().get().ok());
  }

  std::string Get(const std::string& key) {
    return core_->Peek("reg", key, 0)->value.str();
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
    AwaitDurable();  // what the daemon does before it answers
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

// An Env whose syncs wait at a gate the test opens, or fail: a slow or
// failing disk, made deterministic.
class GatedEnv final : public EnvWrapper {
 public:
  GatedEnv() : EnvWrapper(Env::Default()) {}

  core::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return Wrap(EnvWrapper::NewAppendableFile(path));
  }
  core::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    return Wrap(EnvWrapper::NewWritableFile(path));
  }

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void FailSyncs() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fail_ = true;
    }
    cv_.notify_all();
  }
  // Waits until some sync is held at the gate.
  void AwaitBlockedSync() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return blocked_ > 0; });
  }

 private:
  class File final : public WritableFile {
   public:
    File(GatedEnv* env, std::unique_ptr<WritableFile> inner)
        : env_(env), inner_(std::move(inner)) {}
    core::Status Append(std::string_view data) override {
      return inner_->Append(data);
    }
    core::Status Sync() override {
      std::unique_lock<std::mutex> lock(env_->mu_);
      ++env_->blocked_;
      env_->cv_.notify_all();
      env_->cv_.wait(lock, [this] { return env_->open_ || env_->fail_; });
      --env_->blocked_;
      if (env_->fail_) {
        return core::Unavailable("fdatasync: Input/output error (injected)");
      }
      lock.unlock();
      return inner_->Sync();
    }
    core::Status Close() override { return inner_->Close(); }

   private:
    GatedEnv* const env_;
    std::unique_ptr<WritableFile> inner_;
  };

  core::StatusOr<std::unique_ptr<WritableFile>> Wrap(
      core::StatusOr<std::unique_ptr<WritableFile>> file) {
    if (!file.ok()) {
      return file;
    }
    return std::unique_ptr<WritableFile>(
        new File(this, std::move(file.value())));
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  bool fail_ = false;
  int blocked_ = 0;
};

TEST_F(ValueJournalTest, ASlowSyncHoldsBackOnlyTheAnswersThatNeedIt) {
  GatedEnv env;
  Boot(FsyncPolicy::kAlways, 64 << 20, &env);
  env.Close();
  Put("a", "1");  // the core hands the record over and returns
  env.AwaitBlockedSync();
  std::atomic<int> answered{0};
  journal_->AfterDurable([&](core::Status s) {
    EXPECT_TRUE(s.ok());
    ++answered;
  });
  // While the disk is stuck, the core serves everything else: this thread
  // would hang here otherwise.
  Put("b", "2");
  EXPECT_EQ(Get("a"), "1");
  ASSERT_TRUE(core_->Invalidate({"reg", "zz", false}).ok());
  EXPECT_EQ(answered.load(), 0);
  env.Open();
  std::atomic<bool> second{false};
  std::mutex m;
  std::condition_variable cv;
  journal_->AfterDurable([&](core::Status s) {
    EXPECT_TRUE(s.ok());
    std::lock_guard<std::mutex> lock(m);
    second = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return second.load(); });
  EXPECT_EQ(answered.load(), 1);  // covered by an earlier batch's sync
  EXPECT_TRUE(journal_->Health().ok());
  lock.unlock();
  journal_.reset();  // before the Env it writes through
  core_.reset();
}

TEST_F(ValueJournalTest, AFailedSyncIsReportedAndNothingIsAcknowledged) {
  GatedEnv env;
  Boot(FsyncPolicy::kAlways, 64 << 20, &env);
  std::mutex m;
  std::condition_variable cv;
  std::optional<core::Status> reported;
  journal_->SetFailureHook([&](const core::Status& s) {
    std::lock_guard<std::mutex> lock(m);
    reported = s;
    cv.notify_all();
  });
  env.FailSyncs();
  Put("a", "1");
  std::optional<core::Status> answer;
  journal_->AfterDurable([&](core::Status s) {
    std::lock_guard<std::mutex> lock(m);
    answer = s;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return reported.has_value() && answer.has_value(); });
  EXPECT_EQ(answer->code(), core::Code::kUnavailable);
  EXPECT_EQ(answer->reason(), "STORAGE_FAILED");
  EXPECT_NE(reported->message().find("Input/output error"),
            std::string::npos);
  EXPECT_EQ(journal_->Health().code(), core::Code::kUnavailable);
  lock.unlock();
  // From now on every answer that needs durability is refused at once.
  bool refused = false;
  journal_->AfterDurable([&](core::Status s) { refused = !s.ok(); });
  EXPECT_TRUE(refused);
  journal_.reset();  // before the Env it writes through
  core_.reset();
}

TEST_F(ValueJournalTest, DamageInTheMiddleIsLoudAndLeavesAColderCacheNotAWrongOne) {
  InCrashingChild([&] {
    Boot(FsyncPolicy::kAlways);
    Put("before", "v1");
    ASSERT_TRUE(core_->Invalidate({"reg", "gone", true}).ok());
    Put("after", "v2");
    journal_.reset();  // drains and syncs, as the kernel would keep it
  });
  fs::path log;
  for (const auto& f : fs::directory_iterator(dir_)) {
    if (f.path().extension() == ".log") {
      log = f.path();
    }
  }
  ASSERT_FALSE(log.empty());
  // Flip a byte inside the second record (the invalidation).
  std::string data;
  {
    std::ifstream in(log, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  RecordReader reader(data);
  ASSERT_TRUE(reader.Next().has_value());
  const size_t second = reader.consumed();
  data[second + 12] ^= 0x5a;
  std::ofstream(log, std::ios::binary | std::ios::trunc) << data;
  Boot();
  EXPECT_EQ(journal_->damaged_records(), 1u);
  // The value read before the damage may have been voided by what was lost:
  // it is gone. The one written after it survives.
  EXPECT_FALSE(core_->Peek("reg", "before", 0)->has_value);
  EXPECT_EQ(Get("after"), "v2");
  // A lock-only caller's stamp from before the restart counts as expired.
  core::AcquireRequest r;
  r.registry = "reg";
  r.key = "gone";
  r.session_id = session_;
  r.expire_ms = 600'000;
  r.client_created_time = clock_.WallSeconds() - 1;
  core::Outcome outcome{};
  core_->Acquire(r, [&](const core::StatusOr<core::AcquireResult>& got) {
    ASSERT_TRUE(got.ok());
    outcome = got.value().outcome;
  });
  EXPECT_EQ(outcome, core::Outcome::kCreate);
}

TEST_F(ValueJournalTest, AShrunkBudgetKeepsTheMostRecentlyUsedValues) {
  Boot();
  for (int i = 0; i < 10; ++i) {
    Put("k" + std::to_string(i), std::string(1000, 'v'));
  }
  EXPECT_EQ(Get("k0"), std::string(1000, 'v'));  // k0 is now the most recent
  journal_->Stop();
  journal_.reset();
  core_.reset();
  core::Limits small;
  const uint64_t o = small.entry_overhead_bytes;
  small.memory_budget_bytes = 3 * (1000 + 2 + o) + 3 + o;
  Boot(FsyncPolicy::kEverySecond, 64 << 20, Env::Default(), small);
  EXPECT_TRUE(core_->Peek("reg", "k0", 0)->has_value);
  EXPECT_TRUE(core_->Peek("reg", "k9", 0)->has_value);
  EXPECT_TRUE(core_->Peek("reg", "k8", 0)->has_value);
  EXPECT_FALSE(core_->Peek("reg", "k7", 0)->has_value);
  EXPECT_FALSE(core_->Peek("reg", "k1", 0)->has_value);
}

TEST(RecordReaderTest, ResyncFindsTheNextWholeRecord) {
  std::string data =
      EncodeDrop("r", "k1") + EncodeDrop("r", "k2") + EncodeDrop("r", "k3");
  data[EncodeDrop("r", "k1").size() + 9] ^= 0x40;  // damage k2
  RecordReader reader(data);
  ASSERT_EQ(reader.Next()->value.key, "k1");
  EXPECT_FALSE(reader.Next().has_value());
  ASSERT_TRUE(reader.Resync());
  EXPECT_EQ(reader.Next()->value.key, "k3");
  EXPECT_TRUE(reader.at_end());
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

// Remembers what it is given, one line per record.
class ListingJournal : public core::Journal {
 public:
  void ValueStored(const core::PersistedValue& v) override {
    seen.push_back("value " + v.key + "=" + v.value.str());
  }
  void ValueDropped(const std::string&, const std::string& key) override {
    seen.push_back("drop " + key);
  }
  void Invalidated(const core::PersistedInvalidation& i) override {
    seen.push_back("mark " + i.key + " " + std::to_string(i.mark));
  }
  void SessionOpened(const core::PersistedSession& s) override {
    seen.push_back("open " + std::to_string(s.id) + " " +
                   std::to_string(s.ttl_ms) + " " + s.client_name + "/" +
                   s.client + "/" + s.owner);
  }
  void SessionEnded(core::SessionId id) override {
    seen.push_back("end " + std::to_string(id));
  }
  void Granted(const core::PersistedGrant& g) override {
    seen.push_back("grant " + std::to_string(g.token) + " " +
                   std::to_string(static_cast<int>(g.kind)) + " " +
                   std::to_string(g.session) + " " + g.registry + "/" + g.key +
                   " " + std::to_string(g.request_id) + " " +
                   (g.lock_only ? "lock-only " : "") +
                   std::to_string(g.timeout_ms));
  }
  void Released(const core::PersistedRelease& r) override {
    seen.push_back("release " + std::to_string(r.token) +
                   (r.lock_only_created_time
                        ? " at " + std::to_string(*r.lock_only_created_time)
                        : ""));
  }
  std::vector<std::string> seen;
};

TEST(RecordEncoderTest, AnEntryCarriesEveryKindOfRecordInOrder) {
  RecordEncoder encoder;
  ListingJournal want;
  for (core::Journal* j : {static_cast<core::Journal*>(&encoder),
                           static_cast<core::Journal*>(&want)}) {
    j->SessionOpened({7, 5000, "name", "10.0.0.1", "tenant"});
    j->Granted({101, core::GrantKind::kCreator, 7, "r", "k", 3, true, 2500});
    j->Granted({102, core::GrantKind::kWriteLock, 7, "r", "m", 0, false, 0});
    j->ValueStored({"r", "k", "v", 1.5, 101});
    j->Released({101, 1234.25});
    j->Released({102, std::nullopt});
    j->Invalidated({"r", "k", true, 102, 99.5});
    j->ValueDropped("r", "k");
    j->SessionEnded(7);
  }
  ListingJournal got;
  ASSERT_TRUE(ApplyEntry(encoder.Take(), got));
  EXPECT_EQ(got.seen, want.seen);
  EXPECT_EQ(encoder.Take(), "");  // taken: the next entry starts empty
}

TEST(RecordEncoderTest, AStateSurvivesItsSnapshotEncoding) {
  core::PersistedState state;
  state.sessions.push_back({7, 5000, "n", "c", "o"});
  state.sessions.push_back({8, 5000, "w", "c", "o"});
  state.sessions.back().watching = true;
  state.grants.push_back(
      {101, core::GrantKind::kCreator, 7, "r", "k", 3, true, 2500});
  state.values.push_back({"r", "j", "bytes", 12.5, 99});
  state.invalidations.push_back({"r", "", true, 100, 11.0});
  state.stamps.push_back({"r", "s", 98, 10.25});
  state.high_water = 4242;
  std::optional<core::PersistedState> back = DecodeState(EncodeState(state));
  ASSERT_TRUE(back.has_value());
  ASSERT_EQ(back->sessions.size(), 2u);
  EXPECT_EQ(back->sessions[0].owner, "o");
  EXPECT_FALSE(back->sessions[0].watching);
  EXPECT_TRUE(back->sessions[1].watching);
  ASSERT_EQ(back->grants.size(), 1u);
  EXPECT_EQ(back->grants[0].timeout_ms, 2500);
  EXPECT_TRUE(back->grants[0].lock_only);
  ASSERT_EQ(back->values.size(), 1u);
  EXPECT_EQ(back->values[0].value.str(), "bytes");
  ASSERT_EQ(back->invalidations.size(), 1u);
  EXPECT_TRUE(back->invalidations[0].hard);
  ASSERT_EQ(back->stamps.size(), 1u);
  EXPECT_EQ(back->stamps[0].created_time, 10.25);
  EXPECT_EQ(back->high_water, 4242u);
  // A change record is not state: a log is not taken for a snapshot.
  EXPECT_FALSE(DecodeState(EncodeDrop("r", "k")).has_value());
  std::string torn = EncodeState(state);
  EXPECT_FALSE(DecodeState(torn.substr(0, torn.size() - 2)).has_value());
}

TEST(RecordEncoderTest, ADamagedEntryAppliesNothing) {
  RecordEncoder encoder;
  encoder.SessionOpened({7, 5000, "", "", ""});
  encoder.Granted({101, core::GrantKind::kReadLock, 7, "r", "k", 0, false, 0});
  std::string entry = encoder.Take();
  ListingJournal got;
  EXPECT_FALSE(ApplyEntry(entry.substr(0, entry.size() - 1), got));
  entry[entry.size() - 3] ^= 0x10;
  EXPECT_FALSE(ApplyEntry(entry, got));
  EXPECT_TRUE(got.seen.empty());
}

}  // namespace
}  // namespace dogpiled::daemon
