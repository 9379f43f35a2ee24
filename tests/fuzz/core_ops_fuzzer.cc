// The core as a state machine: random sequences of operations from several
// sessions on a few keys, checked after every step against invariants that
// follow from the contract:
//   - every callback runs exactly once (by the end, after Shutdown);
//   - grant tokens strictly increase;
//   - an accepted Publish carries the key's latest CREATE token, from the
//     session that got it, or repeats one accepted before (a retry: the
//     same session, token, key and value are answered again);
//   - an accepted Unlock names a lock the model holds; a refused one is
//     marked "released" only if it repeats one accepted before (the same
//     session, token and key);
//   - never a writer beside another lock holder on one key;
//   - Stats.waiters equals the calls parked and not yet answered.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include "core/coordinator.h"
#include "core/errors.h"
#include "tests/fuzz/fuzz_input.h"

namespace dogpiled::fuzz {
namespace {

// Names the broken invariant, then crashes so libFuzzer keeps the input.
void RequireAt(bool ok, const char* what, int line) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken at line %d: %s\n", line, what);
    std::abort();
  }
}
#define Require(cond) ::dogpiled::fuzz::RequireAt((cond), #cond, __LINE__)

struct Call {
  int answers = 0;
  uint64_t wait_id = 0;
};

struct Grant {  // a lock grant the model believes is held
  core::SessionId session;
  core::Token token;
  bool write;
};

class Harness {
 public:
  explicit Harness(FuzzInput& in) : in_(in) {
    core::Limits limits;
    limits.min_ttl_ms = 1;
    limits.max_waiters = 16;
    limits.max_value_bytes = 8;
    limits.memory_budget_bytes = 64;
    limits.invalidation_horizon_ms = 500;
    core::CoordinatorOptions options;
    options.limits = limits;
    options.clock = &clock_;
    core_ = std::make_unique<core::Coordinator>(options);
  }

  void Step() {
    const uint64_t op = in_.Below(11);
    if (trace_) {
      std::fprintf(stderr, "op %llu at %lld ms\n", (unsigned long long)op,
                   (long long)clock_.NowMs());
    }
    switch (op) {
      case 0: Open(); break;
      case 1: KeepAlive(); break;
      case 2: Close(); break;
      case 3: Acquire(); break;
      case 4: Publish(); break;
      case 5: Abandon(); break;
      case 6: Invalidate(); break;
      case 7: Lock(); break;
      case 8: Unlock(); break;
      case 9: Advance(); break;
      default: Cancel(); break;
    }
    Check();
  }

  void Finish() {
    core_->Shutdown();
    for (const auto& call : calls_) {
      Require(call->answers == 1);
    }
  }

 private:
  std::string Key() { return std::string(1, static_cast<char>('a' + in_.Below(3))); }
  core::SessionId Session() {
    if (sessions_.empty() || in_.Below(16) == 0) {
      return 12345;  // unknown
    }
    auto it = sessions_.begin();
    std::advance(it, static_cast<long>(in_.Below(sessions_.size())));
    return it->first;
  }

  std::shared_ptr<Call> NewCall() {
    calls_.push_back(std::make_shared<Call>());
    return calls_.back();
  }

  void SawToken(core::Token t) {
    Require(t > last_token_);
    last_token_ = t;
  }

  void Open() {
    const int64_t ttl = 1 + static_cast<int64_t>(in_.Below(200));
    auto opened = core_->Open(ttl, "f");
    if (opened.ok()) {
      sessions_[opened->session_id] = clock_.NowMs() + ttl;
      ttl_[opened->session_id] = ttl;
    }
  }

  void KeepAlive() {
    const core::SessionId s = Session();
    auto renewed = core_->KeepAlive(s);
    Require(renewed.ok() == (sessions_.count(s) == 1));
    if (renewed.ok()) {
      sessions_[s] = clock_.NowMs() + ttl_[s];
    }
  }

  void Ended(core::SessionId s) {
    if (trace_) {
      std::fprintf(stderr, "  session %llu ended\n", (unsigned long long)s);
    }
    sessions_.erase(s);
    for (auto& [key, grants] : locks_) {
      std::erase_if(grants, [s](const Grant& g) { return g.session == s; });
    }
  }

  void Close() {
    const core::SessionId s = Session();
    Require(core_->Close(s).ok() == (sessions_.count(s) == 1));
    Ended(s);
  }

  void Acquire() {
    core::AcquireRequest r;
    r.registry = "r";
    r.key = Key();
    r.session_id = Session();
    r.expire_ms = static_cast<int64_t>(in_.Below(300)) - 50;
    r.wait_timeout_ms = static_cast<int64_t>(in_.Below(4)) * 50;
    r.creation_timeout_ms = static_cast<int64_t>(in_.Below(4)) * 40;
    if (in_.Below(4) == 0) {
      r.client_created_time =
          clock_.WallSeconds() - static_cast<double>(in_.Below(3));
    }
    r.early_refresh_beta = static_cast<double>(in_.Below(3));
    r.max_stale_ms = static_cast<int64_t>(in_.Below(3)) * 100;
    auto call = NewCall();
    const std::string key = r.key;
    const core::SessionId session = r.session_id;
    const bool lock_only = r.client_created_time.has_value();
    call->wait_id = core_->Acquire(
        r, [this, call, key, session,
            lock_only](core::StatusOr<core::AcquireResult> got) {
          ++call->answers;
          if (trace_) {
            std::fprintf(stderr, "  acquire %s s=%llu -> %s outcome=%d token=%llu\n",
                         key.c_str(), (unsigned long long)session,
                         got.status().message().c_str(),
                         got.ok() ? (int)got->outcome : -1,
                         got.ok() ? (unsigned long long)got->token : 0ULL);
          }
          if (got.ok() && got->outcome == core::Outcome::kCreate) {
            SawToken(got->token);
            creators_[key] = {session, got->token};
            create_log_.push_back({key, session, got->token});
            if (lock_only) {
              lock_only_tokens_.insert(got->token);
            }
          }
        });
  }

  void Publish() {
    const std::string key = Key();
    core::PublishRequest p{"r", key, Session(), 0,
                           std::string(in_.Below(10), 'v'), std::nullopt};
    // A copy: callbacks run inside Publish may elect the next creator.
    const auto found = creators_.find(key);
    const std::optional<std::pair<core::SessionId, core::Token>> latest =
        found == creators_.end() ? std::nullopt
                                 : std::make_optional(found->second);
    if (latest && in_.Below(4) != 0) {
      p.token = latest->second;
      if (in_.Below(3) != 0) {
        p.session_id = latest->first;
      }
    } else {
      p.token = in_.Below(last_token_ + 2);
    }
    const size_t log_mark = create_log_.size();
    const bool accepted = core_->Publish(p).ok();
    if (trace_) {
      std::fprintf(stderr, "  publish %s s=%llu t=%llu -> %d\n", key.c_str(),
                   (unsigned long long)p.session_id,
                   (unsigned long long)p.token, accepted);
    }
    if (accepted) {
      // The role it publishes for is the latest one granted before the
      // call, or one granted inside it (a doomed creator's role passed on
      // first) to this very session.
      bool granted_within = false;
      for (size_t i = log_mark; i < create_log_.size(); ++i) {
        const auto& [k, s, t] = create_log_[i];
        granted_within |= k == key && s == p.session_id && t == p.token;
      }
      // A lock-only role stores no value: its retry is known without one.
      const auto publish = std::make_tuple(
          key, p.session_id, p.token,
          lock_only_tokens_.count(p.token) != 0 ? std::string()
                                                : p.value.str());
      Require(granted_within ||
              (latest && p.token == latest->second &&
               p.session_id == latest->first) ||
              accepted_publishes_.count(publish) == 1);
      accepted_publishes_.insert(publish);
    }
  }

  void Abandon() {
    const std::string key = Key();
    const auto found = creators_.find(key);
    const std::optional<std::pair<core::SessionId, core::Token>> latest =
        found == creators_.end() ? std::nullopt
                                 : std::make_optional(found->second);
    core::AbandonRequest a{"r", key, Session(), 0, "",
                           static_cast<int64_t>(in_.Below(3)) * 60};
    if (latest && in_.Below(3) != 0) {
      a.session_id = latest->first;
      a.token = latest->second;
    }
    if (core_->Abandon(a).ok()) {
      Require(latest && a.token == latest->second &&
              a.session_id == latest->first);
    }
  }

  void Invalidate() {
    const std::string key = in_.Below(4) == 0 ? "" : Key();
    Require(core_->Invalidate({"r", key, in_.Below(2) == 0}).ok());
  }

  void Lock() {
    core::LockRequest r{"r", Key(), Session(),
                        static_cast<int>(1 + in_.Below(2)),
                        static_cast<int64_t>(in_.Below(3)) * 50};
    auto call = NewCall();
    const std::string key = r.key;
    const core::SessionId session = r.session_id;
    const bool write = r.mode == 2;
    call->wait_id = core_->Lock(
        r, [this, call, key, session, write](core::StatusOr<core::LockResult> got) {
          ++call->answers;
          if (trace_) {
            std::fprintf(stderr, "  lock %s s=%llu w=%d -> %s acquired=%d t=%llu\n",
                         key.c_str(), (unsigned long long)session, write,
                         got.status().message().c_str(),
                         got.ok() && got->acquired,
                         got.ok() ? (unsigned long long)got->token : 0ULL);
          }
          if (got.ok() && got->acquired) {
            SawToken(got->token);
            locks_[key].push_back({session, got->token, write});
          }
        });
  }

  void Unlock() {
    const std::string key = Key();
    auto& grants = locks_[key];
    core::SessionId s = Session();
    core::Token t = in_.Below(last_token_ + 2);
    if (!grants.empty() && in_.Below(4) != 0) {
      const Grant& g = grants[in_.Below(grants.size())];
      s = g.session;
      t = g.token;
    }
    const bool held = std::any_of(grants.begin(), grants.end(), [&](const Grant& g) {
      return g.session == s && g.token == t;
    });
    const core::Status status = core_->Unlock("r", key, s, t);
    const bool unlocked = status.ok();
    if (trace_) {
      std::fprintf(stderr, "  unlock %s s=%llu t=%llu -> %d (model: %d)\n",
                   key.c_str(), (unsigned long long)s, (unsigned long long)t,
                   unlocked, held);
    }
    const auto unlock = std::make_tuple(key, s, t);
    Require(unlocked == held);
    Require(!core::MarkedReleased(status) ||
            accepted_unlocks_.count(unlock) == 1);
    if (unlocked) {
      std::erase_if(grants, [&](const Grant& g) { return g.token == t; });
      accepted_unlocks_.insert(unlock);
    }
  }

  void Advance() {
    clock_.AdvanceMs(static_cast<int64_t>(in_.Below(120)));
    core_->Tick();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      const core::SessionId s = it->first;
      const bool expired = it->second <= clock_.NowMs();
      ++it;
      if (expired) {
        Ended(s);
      }
    }
  }

  void Cancel() {
    if (!calls_.empty()) {
      core_->CancelWait(calls_[in_.Below(calls_.size())]->wait_id);
    }
  }

  void Check() {
    uint64_t parked = 0;
    for (const auto& call : calls_) {
      Require(call->answers <= 1);
      parked += call->answers == 0 ? 1 : 0;
    }
    const core::Stats stats = core_->GetStats();
    Require(stats.waiters == parked);
    Require(stats.sessions == sessions_.size());
    Require(stats.stored_bytes <= 64);
    for (const auto& [key, grants] : locks_) {
      const bool writer = std::any_of(grants.begin(), grants.end(),
                                      [](const Grant& g) { return g.write; });
      Require(!writer || grants.size() == 1);
    }
  }

  FuzzInput& in_;
  const bool trace_ = std::getenv("DOGPILED_FUZZ_TRACE") != nullptr;
  core::FakeClock clock_;
  std::unique_ptr<core::Coordinator> core_;
  std::map<core::SessionId, int64_t> sessions_;  // id -> deadline
  std::map<core::SessionId, int64_t> ttl_;
  std::vector<std::shared_ptr<Call>> calls_;
  std::map<std::string, std::pair<core::SessionId, core::Token>> creators_;
  std::set<core::Token> lock_only_tokens_;  // CREATE answers to lock-only
  std::map<std::string, std::vector<Grant>> locks_;
  std::vector<std::tuple<std::string, core::SessionId, core::Token>>
      create_log_;
  // key, session, token, value of every accepted Publish.
  std::set<std::tuple<std::string, core::SessionId, core::Token, std::string>>
      accepted_publishes_;
  // key, session, token of every accepted Unlock (only the last eight of a
  // session's releases are marked when repeated; none other ever is).
  std::set<std::tuple<std::string, core::SessionId, core::Token>>
      accepted_unlocks_;
  core::Token last_token_ = 0;
};

}  // namespace
}  // namespace dogpiled::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dogpiled::fuzz::FuzzInput in(data, size);
  dogpiled::fuzz::Harness harness(in);
  for (int steps = 0; !in.empty() && steps < 400; ++steps) {
    harness.Step();
  }
  harness.Finish();
  return 0;
}
