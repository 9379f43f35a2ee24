// A real Coordinator on a fake clock whose journal feeds a CommittedState,
// as a follower applying the leader's log would: the records of each call
// are encoded into one log entry, decoded and applied. After any call the
// follower must hold exactly what the leader holds.
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "daemon/record_io.h"
#include "replication/committed_state.h"
#include "tests/core/core_fixture.h"

namespace dogpiled::replication {

// Forwards every record and counts what kinds went by, so a test can tell
// it exercised them.
class CountingJournal final : public core::Journal {
 public:
  explicit CountingJournal(core::Journal* next) : next_(next) {}
  void ValueStored(const core::PersistedValue& v) override {
    ++stored;
    next_->ValueStored(v);
  }
  void ValueDropped(const std::string& r, const std::string& k) override {
    ++dropped;
    next_->ValueDropped(r, k);
  }
  void Invalidated(const core::PersistedInvalidation& i) override {
    ++invalidated;
    folded_to_global += i.registry.empty() ? 1 : 0;  // only a fold does
    next_->Invalidated(i);
  }
  void SessionOpened(const core::PersistedSession& s) override {
    ++opened;
    next_->SessionOpened(s);
  }
  void SessionEnded(core::SessionId id) override {
    ++ended;
    next_->SessionEnded(id);
  }
  void Granted(const core::PersistedGrant& g) override {
    ++granted[static_cast<int>(g.kind)];
    next_->Granted(g);
  }
  void Released(const core::PersistedRelease& r) override {
    ++released;
    stamped += r.lock_only_created_time.has_value() ? 1 : 0;
    next_->Released(r);
  }
  int stored = 0, dropped = 0, invalidated = 0, opened = 0, ended = 0;
  int folded_to_global = 0;
  int granted[4] = {0, 0, 0, 0};  // by GrantKind
  int released = 0, stamped = 0;

 private:
  core::Journal* next_;
};

inline std::string Describe(const core::PersistedSession& s) {
  std::ostringstream out;
  out << "session " << s.id << " ttl " << s.ttl_ms << " " << s.client_name
      << "/" << s.client << "/" << s.owner;
  return out.str();
}

inline std::string Describe(const core::PersistedGrant& g) {
  std::ostringstream out;
  out << "grant " << g.token << " kind " << static_cast<int>(g.kind)
      << " session " << g.session << " " << g.registry << "/" << g.key
      << " request " << g.request_id << (g.lock_only ? " lock-only" : "")
      << " timeout " << g.timeout_ms;
  return out.str();
}

inline std::string Describe(const core::PersistedValue& v) {
  std::ostringstream out;
  out.precision(17);
  out << "value " << v.registry << "/" << v.key << " = " << v.value.str()
      << " created " << v.created_time << " token " << v.token;
  return out.str();
}

template <typename T>
std::vector<std::string> DescribeAll(const std::vector<T>& items) {
  std::vector<std::string> out;
  for (const T& item : items) {
    out.push_back(Describe(item));
  }
  return out;
}

class ReplicaTest : public core::CoreTest {
 protected:
  ReplicaTest() { Remake(core::Limits{}); }

  void Remake(const core::Limits& limits, uint64_t seed = 42) {
    core_.reset();  // it journals into what is replaced below
    state_ = std::make_unique<CommittedState>(limits.invalidation_horizon_ms);
    (void)encoder_.Take();
    counts_ = std::make_unique<CountingJournal>(&encoder_);
    Make(limits, seed, counts_.get());
  }

  // A failover: the leader is gone, and a new one restores everything from
  // the committed state, then journals to the same followers.
  void Promote(const core::Limits& limits = core::Limits{}) {
    core::PersistedState committed = State()->ToPersisted();
    core::CoordinatorOptions options;
    options.limits = limits;
    options.clock = &clock_;
    options.seed = 4242;
    options.journal = counts_.get();
    core_ = std::make_unique<core::Coordinator>(options);
    core_->Restore(committed);
  }

  // The values no invalidation voided (those are the ones that must
  // match: a voided value is kept or dropped as each side's memory and
  // clock decide), in the follower's order (registry, key).
  static std::vector<core::PersistedValue> Live(
      std::vector<core::PersistedValue> values,
      const std::vector<core::PersistedInvalidation>& marks) {
    auto voided = [&](const core::PersistedValue& v) {
      for (const auto& m : marks) {
        if (v.token <= m.mark &&
            (m.registry.empty() ||
             (m.registry == v.registry && (m.key.empty() || m.key == v.key)))) {
          return true;
        }
      }
      return false;
    };
    values.erase(std::remove_if(values.begin(), values.end(), voided),
                 values.end());
    std::sort(values.begin(), values.end(), [](const auto& a, const auto& b) {
      return std::tie(a.registry, a.key) < std::tie(b.registry, b.key);
    });
    return values;
  }
  std::vector<core::PersistedValue> LeaderValues() {
    core::PersistedState exported = core_->Export([] {});
    return Live(std::move(exported.values), exported.invalidations);
  }
  std::vector<core::PersistedValue> FollowerValues() {
    CommittedState* state = State();
    return Live(state->Values(), state->Invalidations());
  }

  // Empty when the follower holds exactly the leader's sessions, grants
  // and values; else what differs first.
  std::string Divergence() {
    if (DescribeAll(core_->OpenSessions()) != DescribeAll(State()->Sessions())) {
      return "sessions differ";
    }
    if (DescribeAll(core_->HeldGrants()) != DescribeAll(State()->Grants())) {
      return "grants differ";
    }
    if (DescribeAll(LeaderValues()) != DescribeAll(FollowerValues())) {
      return "values differ";
    }
    if (State()->unmatched() != 0) {
      return "a record named a session or grant the follower lacks";
    }
    for (const core::PersistedGrant& g : core_->HeldGrants()) {
      if (g.token > State()->HighWater()) {
        return "a held token is above the follower's high-water mark";
      }
    }
    return "";
  }

  void ExpectSame() {
    const std::string what = Divergence();
    EXPECT_EQ(what, "");
    if (!what.empty()) {
      EXPECT_EQ(DescribeAll(core_->OpenSessions()),
                DescribeAll(State()->Sessions()));
      EXPECT_EQ(DescribeAll(core_->HeldGrants()),
                DescribeAll(State()->Grants()));
      EXPECT_EQ(DescribeAll(LeaderValues()), DescribeAll(FollowerValues()));
    }
  }

  // The follower, once the entry of the calls made so far is applied.
  CommittedState* State() {
    const std::string entry = encoder_.Take();
    EXPECT_TRUE(daemon::ApplyEntry(entry, *state_)) << "an undecodable entry";
    return state_.get();
  }

  daemon::RecordEncoder encoder_;
  std::unique_ptr<CommittedState> state_;
  std::unique_ptr<CountingJournal> counts_;
};

}  // namespace dogpiled::replication
