#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

TEST_F(CoreTest, OpenGrantsDefaultTtlForZero) {
  auto opened = core_->Open(0, "c");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->ttl_ms, 10'000);
  EXPECT_NE(opened->session_id, 0u);
}

TEST_F(CoreTest, OpenAcceptsTtlBoundsAndRefusesOutside) {
  EXPECT_TRUE(core_->Open(100, "").ok());
  EXPECT_TRUE(core_->Open(3'600'000, "").ok());
  for (int64_t bad : {int64_t{99}, int64_t{3'600'001}, int64_t{-1}}) {
    auto opened = core_->Open(bad, "");
    EXPECT_EQ(opened.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(opened.status().message().find("ttl_ms"), std::string::npos);
  }
  EXPECT_EQ(core_->GetStats().sessions, 2u);
}

TEST_F(CoreTest, SessionExpiresWithoutKeepAliveAndKeepAliveRenews) {
  SessionId kept = Open(1000);
  SessionId lapsed = Open(1000);
  Advance(600);
  EXPECT_TRUE(core_->KeepAlive(kept).ok());
  Advance(600);  // lapsed: 1200 ms without keep-alive
  EXPECT_EQ(core_->KeepAlive(lapsed).status().code(), Code::kNotFound);
  EXPECT_TRUE(core_->KeepAlive(kept).ok());
  EXPECT_EQ(core_->GetStats().session_expiries, 1u);
  Advance(1001);
  EXPECT_EQ(core_->KeepAlive(kept).status().code(), Code::kNotFound);
  EXPECT_EQ(core_->GetStats().sessions, 0u);
}

TEST_F(CoreTest, CloseEndsSessionOnceAndIsNotAnExpiry) {
  SessionId s = Open();
  EXPECT_TRUE(core_->Close(s).ok());
  EXPECT_EQ(core_->Close(s).code(), Code::kNotFound);
  EXPECT_EQ(core_->GetStats().session_expiries, 0u);
}

TEST_F(CoreTest, SessionCapIsResourceExhausted) {
  Limits limits;
  limits.max_sessions = 2;
  Make(limits);
  Open();
  Open();
  EXPECT_EQ(core_->Open(0, "").status().code(), Code::kResourceExhausted);
}

TEST_F(CoreTest, ClientNameIsBounded) {
  EXPECT_EQ(core_->Open(0, std::string(257, 'x')).status().code(),
            Code::kInvalidArgument);
}

TEST_F(CoreTest, NextDeadlineTracksEarliestTimer) {
  EXPECT_FALSE(core_->NextDeadlineMs().has_value());
  int hooks = 0;
  core_->SetDeadlineHook([&] { ++hooks; });
  Open(5000);
  EXPECT_EQ(hooks, 1);
  EXPECT_EQ(core_->NextDeadlineMs(), 5000);
  Open(2000);  // earlier: the hook fires again
  EXPECT_EQ(hooks, 2);
  Open(4000);  // later: no need to wake the timer
  EXPECT_EQ(hooks, 2);
  EXPECT_EQ(core_->NextDeadlineMs(), 2000);
}

}  // namespace
}  // namespace dogpiled::core

namespace dogpiled::core {
namespace {

TEST_F(CoreTest, PerClientSessionCapCountsOpenSessionsOnly) {
  Limits limits;
  limits.max_sessions_per_client = 2;
  Make(limits);
  auto a1 = core_->Open(0, "", "10.0.0.1");
  ASSERT_TRUE(a1.ok());
  ASSERT_TRUE(core_->Open(0, "", "10.0.0.1").ok());
  auto refused = core_->Open(0, "", "10.0.0.1");
  EXPECT_EQ(refused.status().code(), Code::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("per client"), std::string::npos);
  EXPECT_TRUE(core_->Open(0, "", "10.0.0.2").ok());  // others unaffected
  ASSERT_TRUE(core_->Close(a1->session_id).ok());
  EXPECT_TRUE(core_->Open(0, "", "10.0.0.1").ok());
}

TEST_F(CoreTest, OwnedSessionRefusesOtherIdentities) {
  auto owned = core_->Open(0, "", "alice", "alice");
  ASSERT_TRUE(owned.ok());
  EXPECT_TRUE(core_->CheckOwner(owned->session_id, "alice").ok());
  EXPECT_EQ(core_->CheckOwner(owned->session_id, "mallory").code(),
            Code::kPermissionDenied);
  EXPECT_EQ(core_->CheckOwner(owned->session_id, "").code(),
            Code::kPermissionDenied);
  // The anonymous tenant is an identity too: its sessions are for
  // anonymous callers only.
  SessionId anonymous = Open();
  EXPECT_TRUE(core_->CheckOwner(anonymous, "").ok());
  EXPECT_EQ(core_->CheckOwner(anonymous, "mallory").code(),
            Code::kPermissionDenied);
  EXPECT_TRUE(core_->CheckOwner(12345, "mallory").ok());  // left to the call
}

}  // namespace
}  // namespace dogpiled::core
