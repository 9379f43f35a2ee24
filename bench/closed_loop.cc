#include "closed_loop.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>

#include "stats.h"

namespace dogpiled::bench {
namespace {

struct Slot {
  int64_t started_ns = 0;
  int64_t ops = 0;
  int64_t errors = 0;
  std::string first_error;
  std::vector<int64_t> latencies_ns;
};

// Shared by the driver and every completion callback.
struct Run {
  LoopOptions options;
  const StartOp* start = nullptr;
  int64_t window_begin_ns = 0;
  // Moves only later, and only while no operation has ended in the window
  // (see OnDone).
  std::atomic<int64_t> window_end_ns{0};
  std::atomic<int64_t> window_ops{0};
  int64_t hard_end_ns = 0;  // the window never stays open past this
  std::atomic<int64_t> next_index{0};
  std::vector<Slot> slots;
  std::mutex mutex;
  std::condition_variable idle;
  int active = 0;  // guarded by mutex
};

void Launch(Run* run, int slot_index);

void OnDone(Run* run, int slot_index, bool ok, const std::string& error) {
  const int64_t now = NowNs();
  Slot& slot = run->slots[slot_index];
  if (!ok) {
    if (slot.errors++ == 0) {
      slot.first_error = error;
    }
  } else if (slot.started_ns >= run->window_begin_ns) {
    int64_t end = run->window_end_ns.load();
    // On a starved machine an operation can outlast a short window, which
    // then measured nothing (a quick CI run once reported 0/s). The window
    // stays open until one operation started in it has ended.
    if (now > end && run->window_ops.load() == 0) {
      while (end < now && !run->window_end_ns.compare_exchange_weak(end, now)) {
      }
      end = std::max(end, now);
    }
    if (now <= end) {
      ++slot.ops;
      ++run->window_ops;
      slot.latencies_ns.push_back(now - slot.started_ns);
    }
  }
  const bool open =
      now < run->window_end_ns.load() ||
      (run->window_ops.load() == 0 && now < run->hard_end_ns);
  if (open && slot.errors < run->options.max_errors_per_slot) {
    Launch(run, slot_index);
    return;
  }
  std::lock_guard<std::mutex> lock(run->mutex);
  if (--run->active == 0) {
    run->idle.notify_all();
  }
}

void Launch(Run* run, int slot_index) {
  const int64_t index = run->next_index.fetch_add(1);
  if (index >= run->options.max_ops) {
    std::lock_guard<std::mutex> lock(run->mutex);
    if (--run->active == 0) {
      run->idle.notify_all();
    }
    return;
  }
  run->slots[slot_index].started_ns = NowNs();
  (*run->start)(slot_index, index,
                [run, slot_index](bool ok, const std::string& error) {
                  OnDone(run, slot_index, ok, error);
                });
}

}  // namespace

LoopResult RunClosedLoop(const LoopOptions& options, const StartOp& start) {
  auto run = std::make_unique<Run>();
  run->options = options;
  run->start = &start;
  run->slots.resize(options.concurrency);
  run->active = options.concurrency;
  const int64_t t0 = NowNs();
  run->window_begin_ns =
      t0 + static_cast<int64_t>(options.warmup_seconds * kNsPerSec);
  run->window_end_ns =
      run->window_begin_ns + static_cast<int64_t>(options.seconds * kNsPerSec);
  run->hard_end_ns = run->window_end_ns + 30 * kNsPerSec;
  for (int i = 0; i < options.concurrency; ++i) {
    Launch(run.get(), i);
  }
  {
    std::unique_lock<std::mutex> lock(run->mutex);
    auto all_idle = [&] { return run->active == 0; };
    // Each hook runs at its time, or earlier if every slot has stopped
    // (the last ones may stop just as the window closes).
    for (auto [at, hook] : {std::pair{run->window_begin_ns,
                                      &options.on_window_begin},
                            std::pair{run->window_end_ns.load(),
                                      &options.on_window_end}}) {
      run->idle.wait_for(lock, std::chrono::nanoseconds(at - NowNs()),
                         all_idle);
      if (hook == &options.on_window_end && run->window_ops.load() == 0) {
        // Held open (OnDone): it closes as the slots stop.
        run->idle.wait(lock, all_idle);
      }
      if (*hook) {
        lock.unlock();
        (*hook)();
        lock.lock();
      }
    }
    run->idle.wait(lock, all_idle);
  }
  const int64_t t_end = NowNs();

  LoopResult result;
  // A run cut short by max_ops measured only until it ended.
  result.seconds =
      static_cast<double>(std::min(t_end, run->window_end_ns.load()) -
                          std::min(t_end, run->window_begin_ns)) /
      kNsPerSec;
  for (Slot& slot : run->slots) {
    result.ops += slot.ops;
    result.errors += slot.errors;
    if (result.first_error.empty()) {
      result.first_error = slot.first_error;
    }
    Append(result.latencies_ns, slot.latencies_ns);
  }
  return result;
}

}  // namespace dogpiled::bench
