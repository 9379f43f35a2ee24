// Section 4 of the contract: bad input is refused in order (fields, then
// session, then token) and changes nothing; limits hold.
#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

TEST_F(CoreTest, RegistryAndKeyAreValidated) {
  SessionId a = Open();
  struct Case {
    std::string registry, key, field;
  } cases[] = {
      {"", "k", "registry"},
      {std::string(129, 'r'), "k", "registry"},
      {"has space", "k", "registry"},
      {"reg/x", "k", "registry"},
      {"reg", "", "key"},
      {"reg", std::string(1025, 'k'), "key"},
  };
  for (const Case& c : cases) {
    AcquireRequest r = Req(a);
    r.registry = c.registry;
    r.key = c.key;
    auto got = Acquire(r);
    EXPECT_EQ(got->result.status().code(), Code::kInvalidArgument) << c.field;
    EXPECT_EQ(got->result.status().message().rfind(c.field + ":", 0), 0u)
        << got->result.status().message();
  }
  AcquireRequest edge = Req(a);
  edge.registry = std::string(128, 'r');
  edge.key = std::string(1024, '\0');  // keys are bytes
  EXPECT_TRUE(Acquire(edge)->result.ok());
}

TEST_F(CoreTest, NegativeTimeoutsAndNonFiniteNumbersAreInvalid) {
  SessionId a = Open();
  AcquireRequest r = Req(a);
  r.wait_timeout_ms = -1;
  EXPECT_EQ(Acquire(r)->result.status().code(), Code::kInvalidArgument);
  r = Req(a);
  r.creation_timeout_ms = -5;
  EXPECT_EQ(Acquire(r)->result.status().message().rfind(
                "creation_timeout_ms", 0), 0u);
  r = Req(a);
  r.client_created_time = std::nan("");
  EXPECT_EQ(Acquire(r)->result.status().code(), Code::kInvalidArgument);
  r = Req(a);
  r.early_refresh_beta = -1;
  EXPECT_EQ(Acquire(r)->result.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(core_->GetStats().entries, 0u);
}

TEST_F(CoreTest, FieldsAreCheckedBeforeSessionBeforeToken) {
  SessionId a = Open();
  Token t = Now(Req(a)).token;
  PublishRequest p;
  p.registry = "";
  p.key = "k";
  p.session_id = 999;  // unknown
  p.token = 1;         // wrong
  EXPECT_EQ(core_->Publish(p).status().code(), Code::kInvalidArgument);
  p.registry = "reg";
  EXPECT_EQ(core_->Publish(p).status().code(), Code::kNotFound);
  p.session_id = a;
  EXPECT_EQ(core_->Publish(p).status().code(), Code::kFailedPrecondition);
  p.token = t;
  EXPECT_TRUE(core_->Publish(p).ok());
}

TEST_F(CoreTest, OversizedValueIsRefusedAndStoredValueIntact) {
  Limits limits;
  limits.max_value_bytes = 16;
  Make(limits);
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a, "k", -1)).token, "kept").ok());
  Token t = Now(Req(a, "k", -1)).token;
  Status too_big = Publish(a, t, std::string(17, 'x'));
  EXPECT_EQ(too_big.code(), Code::kResourceExhausted);
  EXPECT_EQ(too_big.message().rfind("value:", 0), 0u);
  auto peek = core_->Peek("reg", "k", 0);
  EXPECT_EQ(peek->value, "kept");
  EXPECT_TRUE(Publish(a, t, std::string(16, 'y')).ok());  // role still held
}

TEST_F(CoreTest, MemoryBudgetEvictsLeastRecentlyUnusedValues) {
  Limits limits;
  limits.memory_budget_bytes = 30;  // "reg" (3), three 9-byte values
  limits.entry_overhead_bytes = 0;
  Make(limits);
  SessionId a = Open();
  for (std::string k : {"a", "b", "c"}) {
    ASSERT_TRUE(Publish(a, Now(Req(a, k, 0)).token, "12345678", k).ok());
  }
  Now(Req(a, "a", 0));  // a is now more recent than b
  ASSERT_TRUE(Publish(a, Now(Req(a, "d", 0)).token, "12345678", "d").ok());
  EXPECT_TRUE(core_->Peek("reg", "a", 0)->has_value);
  EXPECT_FALSE(core_->Peek("reg", "b", 0)->has_value);
  EXPECT_TRUE(core_->Peek("reg", "c", 0)->has_value);
  Stats stats = core_->GetStats();
  EXPECT_EQ(stats.evictions, 1u);
  EXPECT_EQ(stats.stored_bytes, 27u);  // values and their keys
  EXPECT_EQ(stats.entries, 3u);  // b's entry went with its value
}

TEST_F(CoreTest, MemoryBudgetFullOfValuesInUseIsResourceExhausted) {
  Limits limits;
  limits.memory_budget_bytes = 20;
  limits.entry_overhead_bytes = 0;
  Make(limits);
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a, "a", 0)).token, "123456789", "a").ok());
  auto held = Lock(a, LockMode::kRead, 0, "a");  // "a" is now in use
  ASSERT_TRUE(held->result->acquired);
  Token t = Now(Req(a, "b", 0)).token;
  EXPECT_EQ(Publish(a, t, "123456789xx", "b").code(),
            Code::kResourceExhausted);
  EXPECT_TRUE(core_->Peek("reg", "a", 0)->has_value);
  EXPECT_EQ(core_->GetStats().evictions, 0u);
}

TEST_F(CoreTest, WaiterCapsAreResourceExhausted) {
  Limits limits;
  limits.max_waiters = 3;
  limits.max_waiters_per_key = 2;
  Make(limits);
  SessionId a = Open();
  Now(Req(a, "x"));
  Now(Req(a, "y"));
  EXPECT_FALSE(Acquire(Req(Open(), "x", 0, 1000))->done);
  EXPECT_FALSE(Acquire(Req(Open(), "x", 0, 1000))->done);
  auto per_key = Acquire(Req(Open(), "x", 0, 1000));
  EXPECT_EQ(per_key->result.status().code(), Code::kResourceExhausted);
  EXPECT_FALSE(Acquire(Req(Open(), "y", 0, 1000))->done);
  auto total = Acquire(Req(Open(), "y", 0, 1000));
  EXPECT_EQ(total->result.status().code(), Code::kResourceExhausted);
  EXPECT_EQ(core_->GetStats().waiters, 3u);
}

TEST_F(CoreTest, EntriesDisappearWhenNothingReferencesThem) {
  SessionId a = Open();
  Token t = Now(Req(a, "k")).token;
  auto w = Lock(a, LockMode::kWrite, 0, "m");
  EXPECT_EQ(core_->GetStats().entries, 2u);
  ASSERT_TRUE(Abandon(a, t, "k").ok());
  ASSERT_TRUE(core_->Unlock("reg", "m", a, w->result->token).ok());
  Stats stats = core_->GetStats();
  EXPECT_EQ(stats.entries, 0u);
  EXPECT_EQ(stats.registries, 0u);
  // Failed calls on unknown keys create nothing either.
  EXPECT_EQ(Publish(a, 12345, "v", "ghost").code(), Code::kFailedPrecondition);
  EXPECT_FALSE(core_->Peek("reg", "ghost", 0)->has_value);
  EXPECT_EQ(core_->GetStats().entries, 0u);
}

TEST_F(CoreTest, StoredValueKeepsEntryAliveAndCountsBytes) {
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a, "key")).token, "value", "key").ok());
  ASSERT_TRUE(core_->Close(a).ok());
  Stats stats = core_->GetStats();
  EXPECT_EQ(stats.entries, 1u);
  EXPECT_EQ(stats.stored_bytes, 8u);
}

}  // namespace
}  // namespace dogpiled::core
