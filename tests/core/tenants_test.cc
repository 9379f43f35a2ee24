// Tenants: sessions bound to the identity that opened them, and quotas per
// tenant that one tenant can exhaust without the others noticing.
#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

class TenantTest : public CoreTest {
 protected:
  SessionId OpenAs(const std::string& owner) {
    auto opened = core_->Open(10'000, "test", owner, owner);
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    return opened.ok() ? opened->session_id : 0;
  }

  Status PublishAs(SessionId s, const std::string& key,
                   const std::string& value) {
    const Token token = Now(Req(s, key, 0)).token;
    return Publish(s, token, value, key);
  }

  bool Stored(const std::string& key) {
    auto peek = core_->Peek("reg", key, 0);
    return peek.ok() && peek->has_value;
  }
};

TEST_F(TenantTest, OnlyTheOpeningIdentityMayNameASession) {
  const SessionId alice = OpenAs("token:alice");
  const SessionId anonymous = OpenAs("");
  EXPECT_TRUE(core_->CheckOwner(alice, "token:alice").ok());
  EXPECT_EQ(core_->CheckOwner(alice, "").code(), Code::kPermissionDenied);
  EXPECT_EQ(core_->CheckOwner(alice, "token:bob").code(),
            Code::kPermissionDenied);
  // The anonymous tenant is an identity too: a token holder may not use
  // an anonymous session, nor the reverse.
  EXPECT_TRUE(core_->CheckOwner(anonymous, "").ok());
  EXPECT_EQ(core_->CheckOwner(anonymous, "token:alice").code(),
            Code::kPermissionDenied);
  // The refusal does not echo the id back.
  EXPECT_EQ(core_->CheckOwner(alice, "").message().find(
                std::to_string(alice)),
            std::string::npos);
}

TEST_F(TenantTest, SessionQuotaIsPerTenant) {
  Limits limits;
  limits.max_sessions_per_tenant = 2;
  Make(limits);
  OpenAs("");
  OpenAs("");
  auto third = core_->Open(10'000, "test", "", "");
  EXPECT_EQ(third.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(third.status().reason(), "TENANT_SESSIONS_QUOTA");
  EXPECT_NE(OpenAs("token:alice"), 0u);  // another tenant is untouched
}

TEST_F(TenantTest, WaiterQuotaIsPerTenant) {
  Limits limits;
  limits.max_waiters_per_tenant = 1;
  Make(limits);
  const SessionId holder = OpenAs("token:alice");
  Now(Req(holder, "k", 1000));  // holds the role
  const SessionId anon = OpenAs("");
  auto parked = Acquire(Req(anon, "k", 1000, 5000));
  EXPECT_FALSE(parked->done);
  auto refused = Acquire(Req(anon, "k", 1000, 5000));
  ASSERT_TRUE(refused->done);
  EXPECT_EQ(refused->result.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(refused->result.status().reason(), "TENANT_WAITERS_QUOTA");
  // Alice's own tenant can still park.
  const SessionId alice2 = OpenAs("token:alice");
  EXPECT_FALSE(Acquire(Req(alice2, "k", 1000, 5000))->done);
  EXPECT_EQ(core_->GetStats().waiters, 2u);
}

TEST_F(TenantTest, GrantCapsPerSessionAndPerTenant) {
  Limits limits;
  limits.max_grants_per_session = 2;
  limits.max_grants_per_tenant = 3;
  Make(limits);
  const SessionId a = OpenAs("");
  EXPECT_TRUE(Lock(a, LockMode::kWrite, 0, "l1")->result->acquired);
  EXPECT_TRUE(Lock(a, LockMode::kWrite, 0, "l2")->result->acquired);
  auto third = Lock(a, LockMode::kWrite, 0, "l3");
  EXPECT_EQ(third->result.status().reason(), "SESSION_GRANTS_CAP");
  auto role = Acquire(Req(a, "k"));
  EXPECT_EQ(role->result.status().code(), Code::kResourceExhausted);
  const SessionId b = OpenAs("");
  EXPECT_TRUE(Lock(b, LockMode::kWrite, 0, "l3")->result->acquired);
  auto over = Lock(b, LockMode::kWrite, 0, "l4");
  EXPECT_EQ(over->result.status().reason(), "TENANT_GRANTS_QUOTA");
  EXPECT_EQ(core_->GetStats().entries, 3u);  // refusals left nothing behind
  const SessionId c = OpenAs("token:alice");
  EXPECT_TRUE(Lock(c, LockMode::kWrite, 0, "l4")->result->acquired);
  // Released grants give the quota back.
  ASSERT_TRUE(core_->Close(a).ok());
  EXPECT_TRUE(Lock(b, LockMode::kWrite, 0, "l5")->result->acquired);
}

TEST_F(TenantTest, OneTenantsFloodDoesNotEvictAnotherWithinItsShare) {
  Limits limits;
  limits.memory_budget_bytes = 1000;
  limits.entry_overhead_bytes = 0;  // count value and key bytes only
  Make(limits);
  const SessionId alice = OpenAs("token:alice");
  const SessionId anon = OpenAs("");
  ASSERT_TRUE(PublishAs(alice, "a1", std::string(200, 'a')).ok());
  ASSERT_TRUE(PublishAs(alice, "a2", std::string(200, 'a')).ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(
        PublishAs(anon, "n" + std::to_string(i), std::string(200, 'n')).ok());
  }
  EXPECT_TRUE(Stored("a1"));
  EXPECT_TRUE(Stored("a2"));
  EXPECT_TRUE(Stored("n19"));
  EXPECT_FALSE(Stored("n0"));  // the flood evicted its own values
  EXPECT_LE(core_->GetStats().stored_bytes, 1000u);
}

TEST_F(TenantTest, TenantAboveItsFairShareCanBeEvicted) {
  Limits limits;
  limits.memory_budget_bytes = 1000;
  limits.entry_overhead_bytes = 0;  // count value and key bytes only
  Make(limits);
  const SessionId anon = OpenAs("");
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        PublishAs(anon, "n" + std::to_string(i), std::string(200, 'n')).ok());
  }
  const SessionId alice = OpenAs("token:alice");
  ASSERT_TRUE(PublishAs(alice, "a1", std::string(300, 'a')).ok());
  EXPECT_TRUE(Stored("a1"));
  EXPECT_FALSE(Stored("n0"));  // anonymous held 800 of 1000, share 500
  EXPECT_TRUE(Stored("n3"));
}

TEST_F(TenantTest, TenantMemoryQuota) {
  Limits limits;
  limits.memory_budget_bytes = 10'000;
  limits.entry_overhead_bytes = 0;  // count value and key bytes only
  limits.tenant_memory_bytes = 500;
  Make(limits);
  const SessionId anon = OpenAs("");
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(
        PublishAs(anon, "n" + std::to_string(i), std::string(200, 'n')).ok());
  }
  EXPECT_EQ(core_->GetStats().stored_bytes, 2u * 202);  // its own went first
  EXPECT_EQ(core_->GetStats().evictions, 2u);
}

TEST_F(TenantTest, TimesFarInTheFutureAreRefused) {
  const SessionId s = OpenAs("");
  AcquireRequest r = Req(s);
  r.client_created_time = clock_.WallSeconds() + 3 * 3600;
  auto got = Acquire(r);
  EXPECT_EQ(got->result.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(got->result.status().message().rfind("client_created_time:", 0),
            0u);
  r.client_created_time = clock_.WallSeconds() + 1800;  // within the skew
  EXPECT_TRUE(Acquire(r)->result.ok());
  const Token token = Now(Req(s, "v", 0)).token;
  PublishRequest p;
  p.registry = "reg";
  p.key = "v";
  p.session_id = s;
  p.token = token;
  p.created_time = 1e300;
  const Status refused = core_->Publish(p).status();
  EXPECT_EQ(refused.code(), Code::kInvalidArgument);
  EXPECT_EQ(refused.message().rfind("created_time:", 0), 0u);
  p.created_time.reset();
  EXPECT_TRUE(core_->Publish(p).ok());  // the role survived the refusal
}

}  // namespace
}  // namespace dogpiled::core
