// The memory budget bounds everything kept per entry (semantics.md
// section 6): remembered marks fold upwards instead of growing without end.
#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

class MemoryTest : public CoreTest {
 protected:
  MemoryTest() {
    Limits limits;
    limits.memory_budget_bytes = 64 << 10;
    limits.invalidation_memory_bytes = 8 << 10;  // about 11 marks of 710 B
    Make(limits);
  }
};

TEST_F(MemoryTest, DistinctInvalidationsStayWithinTheirShare) {
  for (int i = 0; i < 20'000; ++i) {
    ASSERT_TRUE(core_->Invalidate({"users", "u" + std::to_string(i), true})
                    .ok());
  }
  const Stats stats = core_->GetStats();
  // Each mark costs an entry (overhead + key): the share holds ~11.
  EXPECT_LE(stats.entries, 14u);
  EXPECT_GE(stats.entries, 5u);
}

TEST_F(MemoryTest, FoldingInvalidatesMoreNeverFewer) {
  SessionId a = Open(600'000);
  // A value published before the flood of invalidations of other keys...
  ASSERT_TRUE(Publish(a, Now(Req(a, "old")).token, "v-old", "old").ok());
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(core_->Invalidate({"reg", "x" + std::to_string(i), true})
                    .ok());
  }
  // ...and one after.
  ASSERT_TRUE(Publish(a, Now(Req(a, "new")).token, "v-new", "new").ok());
  // The oldest marks were folded into the registry's: "old" predates them,
  // so it counts as invalidated too (a colder cache, never a wrong one).
  EXPECT_FALSE(core_->Peek("reg", "old", 1000)->has_value);
  EXPECT_TRUE(core_->Peek("reg", "new", 1000)->has_value);
  // An explicitly invalidated key is still invalid, folded or not.
  AcquireRequest r = Req(a, "x0");
  r.client_created_time = clock_.WallSeconds() - 1;  // lock-only, before
  EXPECT_EQ(Now(r).outcome, Outcome::kCreate);
}

TEST_F(MemoryTest, RegistryMarksFoldIntoADaemonWideOne) {
  SessionId a = Open(600'000);
  ASSERT_TRUE(Publish(a, Now(Req(a, "k")).token, "v", "k").ok());
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(core_->Invalidate({"r" + std::to_string(i), "", false}).ok());
  }
  EXPECT_LE(core_->GetStats().registries, 14u);
  // "reg" was never invalidated, but its value predates folded marks.
  auto peek = core_->Peek("reg", "k", 0);
  EXPECT_TRUE(peek->has_value);
  EXPECT_TRUE(peek->is_expired);  // soft: kept as a stale fallback
}

TEST_F(MemoryTest, ValuesAreEvictedWhenMarksAndValuesOutgrowTheBudget) {
  SessionId a = Open(600'000);
  for (int i = 0; i < 60; ++i) {
    const std::string key = "k" + std::to_string(i);
    ASSERT_TRUE(Publish(a, Now(Req(a, key)).token, std::string(1000, 'v'),
                        key)
                    .ok());
  }
  const Stats stats = core_->GetStats();
  EXPECT_GT(stats.evictions, 0u);
  // Every entry is counted: bookkeeping, key and value.
  const uint64_t overhead = Limits{}.entry_overhead_bytes;
  EXPECT_LE(stats.entries * (overhead + 3) + stats.stored_bytes, 64u << 10);
}

TEST_F(MemoryTest, ShrunkBudgetRestoresTheMostRecentlyUsedValues) {
  PersistedState state;
  for (int i = 0; i < 10; ++i) {  // least recently used first
    state.values.push_back({"reg", "k" + std::to_string(i),
                            std::string(1000, 'v'), 1.0 + i, 100u + i});
  }
  Limits limits;
  const uint64_t o = limits.entry_overhead_bytes;
  limits.memory_budget_bytes = (3 + o) + 4 * (1000 + 2 + o);  // "reg", four
  Make(limits);
  core_->Restore(state);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(core_->Peek("reg", "k" + std::to_string(i), 0)->has_value,
              i >= 6)
        << i;
  }
  // The LRU order survived: the next eviction takes k6, the oldest kept.
  SessionId a = Open();
  ASSERT_TRUE(
      Publish(a, Now(Req(a, "n")).token, std::string(1000, 'n'), "n").ok());
  EXPECT_FALSE(core_->Peek("reg", "k6", 0)->has_value);
  EXPECT_TRUE(core_->Peek("reg", "k7", 0)->has_value);
}

TEST_F(CoreTest, AnswersShareTheStoredValueInsteadOfCopyingIt) {
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a)).token, std::string(1 << 20, 'v')).ok());
  AcquireResult one = Now(Req(a));
  AcquireResult two = Now(Req(Open()));
  EXPECT_TRUE(one.value.SharesWith(two.value));
  EXPECT_TRUE(one.value.SharesWith(core_->Peek("reg", "k", 0)->value));
}

}  // namespace
}  // namespace dogpiled::core
