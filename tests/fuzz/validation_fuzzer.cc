// Request validation: arbitrary fields into every core entry point. A bad
// request must be refused with INVALID_ARGUMENT (or its documented code)
// and change nothing; nothing may crash.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

#include "core/coordinator.h"
#include "core/validation.h"
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

}  // namespace
}  // namespace dogpiled::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dogpiled;
  fuzz::FuzzInput in(data, size);
  core::FakeClock clock;
  core::Limits limits;
  limits.max_key_bytes = 16;
  limits.max_value_bytes = 16;
  core::CoordinatorOptions options;
  options.limits = limits;
  options.clock = &clock;
  core::Coordinator core(options);
  const core::SessionId session = core.Open(0, "fuzz")->session_id;

  while (!in.empty()) {
    const std::string registry = in.String(8);
    const std::string key = in.String(20);
    const bool names_ok = core::CheckRegistry(registry).ok() &&
                          core::CheckKey(key, limits).ok();
    const core::Stats before = core.GetStats();
    switch (in.Below(5)) {
      case 0: {
        core::AcquireRequest r{registry, key, session, in.Int64(),
                               in.Int64() % 2000, in.Int64() % 2000,
                               std::nullopt, in.Double(), in.Int64()};
        if (in.Byte() & 1) {
          r.client_created_time = in.Double();
        }
        // Parked calls answer later: the callback owns what it writes.
        auto seen = std::make_shared<std::pair<int, core::Code>>(0,
                                                                 core::Code::kOk);
        core.Acquire(r, [seen](core::StatusOr<core::AcquireResult> got) {
          ++seen->first;
          seen->second = got.status().code();
        });
        if (!names_ok) {
          Require(seen->first == 1 &&
                        seen->second == core::Code::kInvalidArgument);
        }
        break;
      }
      case 1: {
        core::PublishRequest p{registry, key, session,
                               static_cast<core::Token>(in.Int64()),
                               in.String(20), std::nullopt};
        if (in.Byte() & 1) {
          p.created_time = in.Double();
        }
        auto got = core.Publish(p);
        if (!names_ok) {
          Require(got.status().code() == core::Code::kInvalidArgument);
        }
        break;
      }
      case 2: {
        auto got = core.Invalidate({registry, key, (in.Byte() & 1) != 0});
        Require(got.ok() == (core::CheckRegistry(registry).ok() &&
                                   core::CheckKeyOrEmpty(key, limits).ok()));
        break;
      }
      case 3: {
        core::LockRequest r{registry, key, session,
                            static_cast<int>(in.Int64() % 4),
                            in.Int64() % 2000};
        auto calls = std::make_shared<int>(0);
        core.Lock(r, [calls](core::StatusOr<core::LockResult>) {
          Require(++*calls == 1);
        });
        break;
      }
      default: {
        auto got = core.Peek(registry, key, in.Int64());
        Require(got.ok() == names_ok);
        if (got.ok()) {
          Require(!got->has_value || got->value.size() <= 16);
        }
        break;
      }
    }
    if (!names_ok) {
      const core::Stats after = core.GetStats();
      Require(after.entries == before.entries &&
                    after.stored_bytes == before.stored_bytes &&
                    after.waiters == before.waiters);
    }
    clock.AdvanceMs(in.Below(50));
    core.Tick();
  }
  core.Shutdown();
  return 0;
}
