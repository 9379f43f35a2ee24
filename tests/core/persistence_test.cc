// Values and invalidations survive a restart: Export (or the journal's
// record of changes) restored into a fresh Coordinator behaves the same.
#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

// Replays journal calls into a PersistedState, as the daemon's log does.
class StateJournal : public Journal {
 public:
  void ValueStored(const PersistedValue& v) override {
    Drop(v.registry, v.key);
    state.values.push_back(v);
    ++calls;
  }
  void ValueDropped(const std::string& registry,
                    const std::string& key) override {
    Drop(registry, key);
    ++calls;
  }
  void Invalidated(const PersistedInvalidation& inv) override {
    state.invalidations.push_back(inv);
    ++calls;
  }
  PersistedState state;
  int calls = 0;

 private:
  void Drop(const std::string& registry, const std::string& key) {
    std::erase_if(state.values, [&](const PersistedValue& v) {
      return v.registry == registry && v.key == key;
    });
  }
};

class PersistenceTest : public CoreTest {
 protected:
  void MakeJournaled(const Limits& limits = {}) {
    CoordinatorOptions options;
    options.limits = limits;
    options.clock = &clock_;
    options.token_store = &store_;
    options.first_token = 100;
    options.journal = &journal_;
    core_ = std::make_unique<Coordinator>(options);
  }
  // A "restarted" daemon: new Coordinator, same clock, restored state.
  void Restart(const PersistedState& state, const Limits& limits = {}) {
    CoordinatorOptions options;
    options.limits = limits;
    options.clock = &clock_;
    options.first_token = 100;  // the token file would be higher; see below
    core_ = std::make_unique<Coordinator>(options);
    core_->Restore(state);
  }
  Status Invalidate(const std::string& key, bool hard) {
    return core_->Invalidate({"reg", key, hard});
  }
  StateJournal journal_;
};

TEST_F(PersistenceTest, JournalRecordsChangesAndRestoreReproducesThem) {
  MakeJournaled();
  SessionId a = Open();
  for (std::string k : {"fresh", "soft", "hard", "gone"}) {
    ASSERT_TRUE(Publish(a, Now(Req(a, k, 60'000)).token, "v-" + k, k).ok());
  }
  ASSERT_TRUE(Invalidate("soft", false).ok());
  ASSERT_TRUE(Invalidate("hard", true).ok());
  Token doomed = Now(Req(a, "gone", -1)).token;
  ASSERT_TRUE(Invalidate("", true).ok());  // registry-wide, after "gone"...
  SessionId b = Open();
  ASSERT_TRUE(Publish(b, Now(Req(b, "fresh", 60'000)).token, "v2", "fresh")
                  .ok());  // ...but "fresh" is recreated after it
  (void)doomed;
  Token recorded = 0;
  for (const auto& v : journal_.state.values) {
    recorded = std::max(recorded, v.token);
  }
  for (const auto& i : journal_.state.invalidations) {
    recorded = std::max(recorded, i.mark);
  }

  Restart(journal_.state);
  SessionId c = Open();
  AcquireResult fresh = Now(Req(c, "fresh", 60'000));
  EXPECT_EQ(fresh.outcome, Outcome::kFresh);
  EXPECT_EQ(fresh.value, "v2");
  AcquireResult soft = Now(Req(c, "soft", 60'000));
  EXPECT_EQ(soft.outcome, Outcome::kCreate);  // hard registry-wide mark
  EXPECT_FALSE(soft.has_value);
  // Even without the token file, tokens continue above what was recorded.
  EXPECT_GT(soft.token, recorded);
  EXPECT_FALSE(core_->Peek("reg", "gone", 0)->has_value);
}

TEST_F(PersistenceTest, SoftInvalidationSurvivesAsStaleFallback) {
  MakeJournaled();
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a, "k", 0)).token, "old").ok());
  ASSERT_TRUE(Invalidate("k", false).ok());
  Restart(core_->Export([] {}));
  AcquireResult r = Now(Req(Open(), "k", 0));
  EXPECT_EQ(r.outcome, Outcome::kCreate);
  EXPECT_EQ(r.value, "old");
  EXPECT_TRUE(r.is_expired);
}

TEST_F(PersistenceTest, ExportCallsTheInstantHookUnderTheSameLock) {
  MakeJournaled();
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a)).token, "v").ok());
  int hooked = 0;
  PersistedState state = core_->Export([&] { ++hooked; });
  EXPECT_EQ(hooked, 1);
  ASSERT_EQ(state.values.size(), 1u);
  EXPECT_EQ(state.values[0].value, "v");
  EXPECT_GT(state.values[0].token, 100u);
}

TEST_F(PersistenceTest, EvictionIsJournaledAndRestoreRespectsLimits) {
  Limits limits;
  limits.memory_budget_bytes = 23;  // "reg" (3) and two 9-byte values
  limits.entry_overhead_bytes = 0;
  MakeJournaled(limits);
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a, "a", 0)).token, "123456789", "a").ok());
  ASSERT_TRUE(Publish(a, Now(Req(a, "b", 0)).token, "123456789", "b").ok());
  ASSERT_TRUE(Publish(a, Now(Req(a, "c", 0)).token, "123456789", "c").ok());
  ASSERT_EQ(journal_.state.values.size(), 2u);  // "a" was evicted
  PersistedState big = journal_.state;
  big.values.push_back({"reg", "huge", std::string(2 << 20, 'x'), 1, 5});
  big.values.push_back({"bad registry", "k", "v", 1, 6});
  Restart(big);
  EXPECT_TRUE(core_->Peek("reg", "b", 0)->has_value);
  EXPECT_FALSE(core_->Peek("reg", "huge", 0)->has_value);
  EXPECT_EQ(core_->GetStats().entries, 2u);
}

TEST_F(PersistenceTest, ExpiredInvalidationsAreNotRestored) {
  Limits limits;
  limits.invalidation_horizon_ms = 1000;
  PersistedState state;
  state.invalidations.push_back({"reg", "k", true, 50, clock_.WallSeconds()});
  Make(limits);
  core_->Restore(state);
  EXPECT_EQ(core_->GetStats().entries, 1u);
  Advance(1000);
  EXPECT_EQ(core_->GetStats().entries, 0u);
  clock_.AdvanceMs(5000);
  Make(limits);
  core_->Restore(state);  // 6 s after the invalidation: past its horizon
  EXPECT_EQ(core_->GetStats().entries, 0u);
}

TEST_F(PersistenceTest, AValueVoidedByAMarkPastTheHorizonIsNotRestored) {
  // The log holds a never-expiring value and, after it, an invalidation;
  // the daemon stays down past the horizon. The mark is not restored, and
  // the value must not come back FRESH without it.
  Limits limits;
  limits.invalidation_horizon_ms = 1000;
  MakeJournaled(limits);
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a, "k", 0)).token, "old").ok());
  ASSERT_TRUE(Invalidate("k", false).ok());
  clock_.AdvanceMs(5000);
  Restart(journal_.state, limits);
  AcquireResult r = Now(Req(Open(), "k", 0));
  EXPECT_EQ(r.outcome, Outcome::kCreate);
  EXPECT_FALSE(r.has_value);
}

TEST_F(PersistenceTest, ExportLeavesOutWhatAMarkPastTheHorizonVoided) {
  // In memory the entry keeps its mark as long as it keeps the value; the
  // export (a snapshot) leaves the mark out past the horizon, so it must
  // leave the value out too.
  Limits limits;
  limits.invalidation_horizon_ms = 1000;
  MakeJournaled(limits);
  SessionId a = Open();
  ASSERT_TRUE(Publish(a, Now(Req(a, "k", 0)).token, "old").ok());
  ASSERT_TRUE(Publish(a, Now(Req(a, "other", 0)).token, "kept", "other").ok());
  ASSERT_TRUE(Invalidate("k", false).ok());
  Advance(5000);
  PersistedState exported = core_->Export([] {});
  ASSERT_EQ(exported.values.size(), 1u);
  EXPECT_EQ(exported.values[0].key, "other");
  Restart(exported, limits);
  EXPECT_FALSE(Now(Req(Open(), "k", 0)).has_value);
  EXPECT_EQ(Now(Req(Open(), "other", 0)).outcome, Outcome::kFresh);
}

TEST_F(PersistenceTest, RestoreDoesNotJournal) {
  MakeJournaled();
  PersistedState state;
  state.values.push_back({"reg", "k", "v", clock_.WallSeconds(), 7});
  core_->Restore(state);
  EXPECT_EQ(journal_.calls, 0);
  EXPECT_EQ(Now(Req(Open(), "k", 60'000)).value, "v");
}

}  // namespace
}  // namespace dogpiled::core
