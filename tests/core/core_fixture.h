// A Coordinator on a FakeClock, with helpers that capture callbacks. Tests
// move time with Advance() and never sleep.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/coordinator.h"
#include "core/errors.h"

namespace dogpiled::core {

// An Unlock or Abandon refused FAILED_PRECONDITION NOT_HOLDER, with
// "released" = "true" (a repeat of this session's own release) or without.
inline testing::AssertionResult RefusedNotHolder(const Status& s,
                                                 bool released) {
  const bool marked = MarkedReleased(s);
  if (s.code() == Code::kFailedPrecondition && s.reason() == "NOT_HOLDER" &&
      marked == released) {
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure()
         << "code " << static_cast<int>(s.code()) << ", reason '"
         << s.reason() << "', released " << (marked ? "true" : "absent")
         << ": " << s.message();
}

template <typename T>
struct Captured {
  bool done = false;
  int calls = 0;
  StatusOr<T> result{Status(Code::kInternal, "not answered")};
  uint64_t wait_id = 0;
};

// A token store that makes every reservation durable at once, unless told
// to fail (never durable) or to hold (durable only on Complete()).
class RecordingTokenStore : public TokenStore {
 public:
  void Reserve(Token high_water) override {
    requested = high_water;
    if (!fail && !hold) {
      Complete();
    }
  }
  Token Durable() const override { return durable; }
  void Complete() {
    durable = std::max(durable, requested);
    persisted.push_back(durable);
  }
  bool fail = false;
  bool hold = false;
  Token requested = 0;
  Token durable = 0;
  std::vector<Token> persisted;
};

class CoreTest : public ::testing::Test {
 protected:
  CoreTest() { Make(Limits{}); }

  void Make(const Limits& limits, uint64_t seed = 42,
            Journal* journal = nullptr) {
    CoordinatorOptions options;
    options.limits = limits;
    options.clock = &clock_;
    options.token_store = &store_;
    options.first_token = 100;
    options.seed = seed;
    options.journal = journal;
    core_ = std::make_unique<Coordinator>(options);
  }

  SessionId Open(int64_t ttl_ms = 10'000) {
    auto opened = core_->Open(ttl_ms, "test");
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    return opened.ok() ? opened->session_id : 0;
  }

  AcquireRequest Req(SessionId session, const std::string& key = "k",
                     int64_t expire_ms = 1000, int64_t wait_ms = 0) {
    AcquireRequest r;
    r.registry = "reg";
    r.key = key;
    r.session_id = session;
    r.expire_ms = expire_ms;
    r.wait_timeout_ms = wait_ms;
    return r;
  }

  std::shared_ptr<Captured<AcquireResult>> Acquire(const AcquireRequest& r) {
    auto c = std::make_shared<Captured<AcquireResult>>();
    c->wait_id = core_->Acquire(r, [c](StatusOr<AcquireResult> result) {
      c->done = true;
      ++c->calls;
      c->result = std::move(result);
    });
    return c;
  }

  // Acquire that must answer at once, successfully.
  AcquireResult Now(const AcquireRequest& r) {
    auto c = Acquire(r);
    EXPECT_TRUE(c->done);
    EXPECT_TRUE(c->result.ok()) << c->result.status().message();
    return c->result.ok() ? c->result.value() : AcquireResult{};
  }

  Status Publish(SessionId session, Token token, const std::string& value,
                 const std::string& key = "k") {
    PublishRequest p;
    p.registry = "reg";
    p.key = key;
    p.session_id = session;
    p.token = token;
    p.value = value;
    return core_->Publish(p).status();
  }

  Status Abandon(SessionId session, Token token, const std::string& key = "k") {
    AbandonRequest a;
    a.registry = "reg";
    a.key = key;
    a.session_id = session;
    a.token = token;
    return core_->Abandon(a);
  }

  std::shared_ptr<Captured<LockResult>> Lock(SessionId session, LockMode mode,
                                             int64_t wait_ms = 0,
                                             const std::string& key = "k") {
    LockRequest r;
    r.registry = "reg";
    r.key = key;
    r.session_id = session;
    r.mode = static_cast<int>(mode);
    r.wait_timeout_ms = wait_ms;
    auto c = std::make_shared<Captured<LockResult>>();
    c->wait_id = core_->Lock(r, [c](StatusOr<LockResult> result) {
      c->done = true;
      ++c->calls;
      c->result = std::move(result);
    });
    return c;
  }

  void Advance(int64_t ms) {
    clock_.AdvanceMs(ms);
    core_->Tick();
  }

  FakeClock clock_;
  RecordingTokenStore store_;
  std::unique_ptr<Coordinator> core_;
};

}  // namespace dogpiled::core
