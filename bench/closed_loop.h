// A closed-loop load driver: `concurrency` slots, each with one operation in
// flight, each starting the next as soon as the last one ends. Used for every
// throughput figure (the no-op ceiling, fresh reads, elections, scale) so
// that dogpiled and the floor are driven the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace dogpiled::bench {

struct LoopOptions {
  int concurrency = 32;
  // Measured window. It stays open past this until one operation started
  // in it has ended (at most 30 s more), so a starved machine gives a slow
  // figure, never an empty one.
  double seconds = 5;
  double warmup_seconds = 0.5;  // run but not measured, before the window
  // Bounds the run in count as well as time (setup loops use it).
  int64_t max_ops = std::numeric_limits<int64_t>::max();
  // A slot stops after this many errors, so a broken server ends the run.
  int64_t max_errors_per_slot = 100;
  // Called on the driving thread as the window opens and closes, e.g. to
  // read a server's CPU time.
  std::function<void()> on_window_begin;
  std::function<void()> on_window_end;
};

struct LoopResult {
  int64_t ops = 0;     // successful operations started and ended in window
  int64_t errors = 0;  // failed operations, any time
  double seconds = 0;  // length of the window actually measured
  std::vector<int64_t> latencies_ns;
  std::string first_error;
  double ops_per_sec() const { return seconds > 0 ? ops / seconds : 0; }
};

// Called when an operation ends, exactly once, from any thread.
using OpDone = std::function<void(bool ok, const std::string& error)>;
// Starts one operation for `slot` (0 <= slot < concurrency) without
// blocking. `index` counts operations over all slots, from 0. A slot never
// has two operations in flight, so per-slot state needs no lock.
using StartOp = std::function<void(int slot, int64_t index, OpDone done)>;

// Runs until the window closes (or max_ops operations have started) and
// every slot's last operation has ended. Operations must carry their own
// deadline: this waits for them.
LoopResult RunClosedLoop(const LoopOptions& options, const StartOp& start);

}  // namespace dogpiled::bench
