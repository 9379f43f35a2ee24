// Many threads on one Coordinator at once, as gRPC's threads and the timer
// thread call it in the daemon. Run under TSan (scripts/sanitize.sh) this
// proves the locking; in any build it checks that every call is answered
// exactly once and the counts add up. No sleeps: the clock is advanced by
// one of the threads.
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "tests/core/core_fixture.h"

namespace dogpiled::core {
namespace {

// FakeClock is single-threaded; this one may be read from any thread.
class AtomicClock final : public Clock {
 public:
  int64_t NowMs() const override { return now_ms_.load(); }
  double WallSeconds() const override {
    return 1.7e9 + static_cast<double>(now_ms_.load()) / 1000.0;
  }
  void AdvanceMs(int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<int64_t> now_ms_{0};
};

TEST(ConcurrencyTest, ThreadsHammeringOneCoordinatorAnswerEachCallOnce) {
  AtomicClock clock;
  CoordinatorOptions options;
  options.clock = &clock;
  Coordinator core(options);
  constexpr int kThreads = 6;
  constexpr int kOpsPerThread = 3000;
  std::atomic<int64_t> issued{0};
  std::atomic<int64_t> answered{0};
  std::atomic<int64_t> twice{0};

  auto worker = [&](int seed) {
    std::mt19937 rng(seed);
    SessionId session = core.Open(1000, "w")->session_id;
    std::vector<std::pair<std::string, Token>> roles, locks;
    for (int i = 0; i < kOpsPerThread; ++i) {
      const std::string key(1, static_cast<char>('a' + rng() % 4));
      switch (rng() % 7) {
        case 0:
        case 1: {
          AcquireRequest r{"reg", key, session, 50, 20, 100, std::nullopt,
                           0, 0};
          ++issued;
          auto seen = std::make_shared<std::atomic<int>>(0);
          core.Acquire(r, [&, seen, key](StatusOr<AcquireResult> got) {
            if (++*seen > 1) {
              ++twice;
            }
            ++answered;
            if (got.ok() && got->outcome == Outcome::kCreate) {
              // Publish from whichever thread answered: that is what
              // happens when a waiter is woken by another client's call.
              core.Publish({"reg", key, session, got->token, "v", {}});
            }
          });
          break;
        }
        case 2: {
          LockRequest r{"reg", key, session, 1 + static_cast<int>(rng() % 2),
                        10};
          ++issued;
          auto seen = std::make_shared<std::atomic<int>>(0);
          core.Lock(r, [&, seen, key](StatusOr<LockResult> got) {
            if (++*seen > 1) {
              ++twice;
            }
            ++answered;
            if (got.ok() && got->acquired) {
              core.Unlock("reg", key, session, got->token);
            }
          });
          break;
        }
        case 3:
          core.Invalidate({"reg", rng() % 3 == 0 ? "" : key, rng() % 2 == 0});
          break;
        case 4:
          core.Peek("reg", key, 50);
          break;
        case 5:
          if (!core.KeepAlive(session).ok()) {  // expired under us: reopen
            session = core.Open(1000, "w")->session_id;
          }
          break;
        default:
          if (seed == 0) {  // one thread plays the timer
            clock.AdvanceMs(1 + rng() % 5);
            core.Tick();
          }
          core.GetStats();
          break;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(worker, t);
  }
  for (auto& t : threads) {
    t.join();
  }
  core.Shutdown();  // answers whatever is still parked
  EXPECT_EQ(twice.load(), 0);
  EXPECT_EQ(answered.load(), issued.load());
  EXPECT_EQ(core.GetStats().waiters, 0u);
}

}  // namespace
}  // namespace dogpiled::core
