// dogpilectl, run as a user would, against the real daemon.
#include <gtest/gtest.h>
#include <signal.h>

#include <future>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "daemon_test.h"
#include "dogpiled/dogpile.h"
#include "test_util.h"

namespace dogpiled {
namespace {

using nlohmann::json;
using testing::CliResult;
using testing::RunCli;

class DogpilectlTest : public testing::DaemonTest {
 protected:
  CliResult Run(const std::vector<std::string>& args) {
    return RunCli(daemon_->target(), args);
  }
  // Exit 0, or a failure that shows dogpilectl's stderr.
  ::testing::AssertionResult Succeeds(const std::vector<std::string>& args) {
    const CliResult r = Run(args);
    if (r.exit_code == 0) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "exit " << r.exit_code << ": " << r.err;
  }
};

TEST_F(DogpilectlTest, HealthIsServing) {
  const CliResult r = Run({"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  const CliResult j = Run({"health", "--json"});
  EXPECT_EQ(json::parse(j.out)["status"], "SERVING");
}

TEST_F(DogpilectlTest, TargetFlagBeatsTheEnvironment) {
  const CliResult r =
      RunCli("127.0.0.1:1", {"--target", daemon_->target(), "health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(DogpilectlTest, UnreachableDaemonExits3) {
  const std::string target = daemon_->target();
  daemon_->Signal(SIGKILL);
  const CliResult r = RunCli(target, {"stats"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("UNAVAILABLE"), std::string::npos) << r.err;
}

TEST_F(DogpilectlTest, UsageErrorsExit2AndHelpListsExitCodes) {
  CliResult r = Run({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = Run({"lock", "r", "k", "--", "true"});  // no --read or --write
  EXPECT_EQ(r.exit_code, 2) << r.err;
  const CliResult help = Run({"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("Exit codes:"), std::string::npos);
}

TEST_F(DogpilectlTest, RefusedRequestExits4) {
  const CliResult r = Run({"peek", "bad name", "k"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("INVALID_ARGUMENT"), std::string::npos) << r.err;
}

TEST_F(DogpilectlTest, GetCreatesWithTheCommandThenServesIt) {
  CliResult r = Run({"get", "users", "42", "--create", "printf hello"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello");
  r = Run({"get", "users", "42", "--create", "printf other", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["value"], "hello");
  EXPECT_EQ(j["source"], "FRESH");
  EXPECT_EQ(testing::GetStatsOrDie(*client_).acquires_create, 1u);
}

TEST_F(DogpilectlTest, GetWithoutCreateOnAMissingKeyExits1) {
  const CliResult r = Run({"get", "users", "42"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(r.out.empty());
  // The role it was handed went straight back.
  EXPECT_FALSE(client_->Peek("users", "42")->creating);
}

TEST_F(DogpilectlTest, FailingCreateCommandExits6AndAbandons) {
  const CliResult r = Run({"get", "users", "42", "--create", "exit 3"});
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_EQ(testing::GetStatsOrDie(*client_).abandons, 1u);
  EXPECT_FALSE(client_->Peek("users", "42")->creating);
}

TEST_F(DogpilectlTest, GetWaitingInVainExits5) {
  Session session = OpenSession();
  Dogpile holder(session, "users", "42");
  testing::Notification creating, finish;
  auto held = std::async(std::launch::async, [&] {
    return holder.acquire([&] {
      creating.Notify();
      finish.WaitFor();
      return std::string("v");
    });
  });
  ASSERT_TRUE(creating.WaitFor());
  const CliResult r = Run({"get", "users", "42", "--wait", "100"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  finish.Notify();
  held.get();
}

TEST_F(DogpilectlTest, PeekShowsTheValueOrExits1) {
  CliResult r = Run({"peek", "users", "42"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("(none)"), std::string::npos) << r.out;
  ASSERT_TRUE(Succeeds({"get", "users", "42", "--create", "echo hi"}));
  r = Run({"peek", "users", "42"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("hi"), std::string::npos) << r.out;
  r = Run({"peek", "users", "42", "--json"});
  const json j = json::parse(r.out);
  EXPECT_EQ(j["value"], "hi\n");
  EXPECT_EQ(j["has_value"], true);
  EXPECT_EQ(j["is_expired"], false);
}

TEST_F(DogpilectlTest, InvalidateOneKeyHardOrTheRegistrySoft) {
  ASSERT_TRUE(Succeeds({"get", "users", "a", "--create", "echo 1"}));
  ASSERT_TRUE(Succeeds({"get", "users", "b", "--create", "echo 2"}));
  CliResult r = Run({"invalidate", "users", "a", "--hard"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(client_->Peek("users", "a")->has_value);
  r = Run({"invalidate", "users", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["hard"], false);
  const StatusOr<PeekResult> b = client_->Peek("users", "b");
  EXPECT_TRUE(b->has_value);
  EXPECT_TRUE(b->is_expired);
}

TEST_F(DogpilectlTest, LockHoldsWhileTheCommandRunsAndPassesItsStatus) {
  const std::string ctl = testing::BinaryFromEnv("DOGPILECTL_BIN");
  // Inside the write lock, another try-lock on the same key fails (1), and
  // that status comes back out.
  CliResult r = Run({"lock", "--write", "jobs", "nightly", "--", ctl, "lock",
                     "--write", "-n", "jobs", "nightly", "--", "true"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  r = Run({"lock", "--write", "jobs", "nightly", "--", "sh", "-c", "exit 5"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  // Released after the command: a try-lock now succeeds.
  EXPECT_TRUE(Succeeds({"lock", "-n", "--write", "jobs", "nightly", "--",
                        "true"}));
  EXPECT_EQ(testing::GetStatsOrDie(*client_).sessions, 0u);
}

TEST_F(DogpilectlTest, ReadLocksShare) {
  const std::string ctl = testing::BinaryFromEnv("DOGPILECTL_BIN");
  const CliResult r =
      Run({"lock", "--read", "jobs", "nightly", "--", ctl, "lock", "--read",
           "-n", "jobs", "nightly", "--", "echo", "both"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "both\n");
}

TEST_F(DogpilectlTest, LockOnAMissingCommandExits127) {
  CliResult r;
  r = Run({"lock", "--write", "jobs", "nightly", "--", "/no/such/command"});
  EXPECT_EQ(r.exit_code, 127) << r.err;
  EXPECT_NE(r.err.find("/no/such/command"), std::string::npos) << r.err;
}

TEST_F(DogpilectlTest, LostSessionStopsTheCommandAndExits7) {
  testing::TempDir dir;
  const std::string started = dir.path() + "/started";
  testing::BackgroundCli cli(
      daemon_->target(),
      {"lock", "--write", "--ttl", "500", "jobs", "nightly", "--", "sh", "-c",
       "touch " + started + "; exec sleep 30"});
  ASSERT_TRUE(testing::WaitForFile(started, 10'000));
  daemon_->Signal(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  const CliResult r = cli.Wait();
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(5));
}

TEST_F(DogpilectlTest, StatsJsonHasTheCounters) {
  ASSERT_TRUE(Succeeds({"get", "users", "42", "--create", "echo 1"}));
  CliResult r = Run({"stats", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["acquires_create"], 1);
  EXPECT_EQ(j["publishes"], 1);
  r = Run({"stats"});
  EXPECT_NE(r.out.find("acquires_create"), std::string::npos);
}

}  // namespace
}  // namespace dogpiled
