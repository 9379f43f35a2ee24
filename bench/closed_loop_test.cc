// The closed loop's window on a machine too slow for it: operations that
// outlast the window must still give a figure, never an empty one.
#include "closed_loop.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace dogpiled::bench {
namespace {

TEST(ClosedLoopTest, AWindowShorterThanOneOperationStillMeasuresOne) {
  LoopOptions options;
  options.concurrency = 1;
  options.warmup_seconds = 0.01;
  options.seconds = 0.02;
  std::vector<std::thread> ops;  // one slot: one thread at a time adds
  LoopResult result = RunClosedLoop(options, [&](int, int64_t, OpDone done) {
    // Each operation takes ten windows (a starved server, as seen in CI).
    ops.emplace_back([done = std::move(done)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      done(true, "");
    });
  });
  for (std::thread& t : ops) {
    t.join();
  }
  EXPECT_GE(result.ops, 1);
  EXPECT_GT(result.ops_per_sec(), 0);
  EXPECT_GE(result.seconds, 0.15);  // the window held open for it
  ASSERT_EQ(result.latencies_ns.size(), static_cast<size_t>(result.ops));
  EXPECT_GE(result.latencies_ns[0], 150'000'000);
}

TEST(ClosedLoopTest, AFastLoopKeepsItsWindow) {
  LoopOptions options;
  options.concurrency = 2;
  options.warmup_seconds = 0.01;
  options.seconds = 0.05;
  std::mutex mu;
  std::vector<std::thread> ops;
  LoopResult result = RunClosedLoop(options, [&](int, int64_t, OpDone done) {
    std::lock_guard<std::mutex> lock(mu);
    ops.emplace_back([done = std::move(done)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      done(true, "");
    });
  });
  for (std::thread& t : ops) {
    t.join();
  }
  // The whole window is measured (more only if nothing ended in it).
  EXPECT_GE(result.ops, 1);
  EXPECT_GE(result.seconds, 0.0499);
  EXPECT_EQ(result.latencies_ns.size(), static_cast<size_t>(result.ops));
}

}  // namespace
}  // namespace dogpiled::bench
