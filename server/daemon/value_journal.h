// Keeps stored values and invalidation marks under --state-dir, so a
// restarted daemon (graceful or after a crash) still has them and does not
// send every client to the backend at once.
//
// Files: values.<gen>.snap (the whole state at one instant, written to a
// temporary name, synced, then renamed: present means complete) and
// values.<gen>.log (every change after that instant, appended). Recovery
// loads the newest snapshot and replays the logs from its generation on.
// A torn record at the tail of the last log ends it quietly; a damaged
// record anywhere else is reported loudly, every value read before it is
// dropped (an invalidation may have been lost with it) and every remaining
// lock-only stamp counts as expired: a colder cache, never a wrong one.
//
// The write pipeline: the core hands records over under its lock (values
// are shared, never copied there) and returns; one writer thread encodes
// and appends whatever has queued up, and with "always" syncs once per
// batch (group commit), then answers the AfterDurable callbacks the batch
// covers. Compaction exports the core's state (pointer copies under the
// core's lock), rotates the log at that instant in the same queue, and
// writes the snapshot on its own thread. No lock is ever held across a
// write or a sync.
//
// fsync policy (like Redis appendfsync): "always": Publish and Invalidate
// answer once their record is synced; "everysec": synced about once a
// second (a crash loses at most about a second); "no": left to the kernel.
// A write or sync error is never ignored: the journal stops writing,
// reports it through the failure hook (the daemon turns NOT_SERVING), and
// Health() and every AfterDurable answer UNAVAILABLE from then on.
//
// Thread-safety: the Journal methods are called by the core under its lock;
// AfterDurable and Health from any thread; Start, Stop and the destructor
// from the thread that owns the journal.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/coordinator.h"
#include "core/journal.h"
#include "daemon/env.h"

namespace dogpiled::daemon {

enum class FsyncPolicy { kAlways, kEverySecond, kNo };

// Parses "always", "everysec" or "no".
core::StatusOr<FsyncPolicy> ParseFsyncPolicy(const std::string& text);

class ValueJournal final : public core::Journal,
                           public core::DurabilityBarrier {
 public:
  // Reads what the folder holds. Call Start() once the core is restored.
  static core::StatusOr<std::unique_ptr<ValueJournal>> Open(
      const std::string& dir, FsyncPolicy policy, uint64_t compact_bytes,
      Env* env = Env::Default());
  ~ValueJournal() override;

  const core::PersistedState& loaded() const { return loaded_; }
  // Damaged records found while loading (0: none, or only a torn tail).
  uint64_t damaged_records() const { return damaged_; }
  // Writes a fresh snapshot of `core`, opens its log and starts the writer.
  core::Status Start(core::Coordinator* core);
  // Drains the queue, writes a last snapshot and syncs, for a graceful
  // shutdown; call it while the core is still alive.
  void Stop();
  void SetFailureHook(std::function<void(const core::Status&)> hook);

  // core::Journal
  void ValueStored(const core::PersistedValue& value) override;
  void ValueDropped(const std::string& registry,
                    const std::string& key) override;
  void Invalidated(const core::PersistedInvalidation& inv) override;

  // core::DurabilityBarrier
  core::Status Health() const override;
  void AfterDurable(std::function<void(core::Status)> done) override;

 private:
  enum class ItemKind { kValue, kDrop, kInvalidation, kRotate };
  struct Item {
    ItemKind kind = ItemKind::kValue;
    core::PersistedValue value;  // kValue; registry and key for kDrop
    core::PersistedInvalidation invalidation;
    uint64_t gen = 0;  // kRotate: the log to switch to
  };
  using Waiter = std::pair<uint64_t, std::function<void(core::Status)>>;

  ValueJournal(std::string dir, FsyncPolicy policy, uint64_t compact_bytes,
               Env* env)
      : dir_(std::move(dir)),
        policy_(policy),
        compact_bytes_(compact_bytes),
        env_(env) {}
  core::Status Load();
  void Enqueue(Item item);
  void WriterLoop();
  // Writer thread: appends a batch (rotating where it says so) and syncs.
  core::Status WriteBatch(std::vector<Item>& batch, bool sync);
  core::Status OpenLog(uint64_t gen);
  // Exports the core, rotating the log at that instant through the queue
  // (or directly when the writer is not running), and writes the snapshot.
  core::Status Compact(bool writer_running);
  void Fail(const core::Status& status);
  std::string Path(uint64_t gen, const char* ext) const;

  // Constant after construction.
  const std::string dir_;
  const FsyncPolicy policy_;
  const uint64_t compact_bytes_;
  Env* const env_;

  core::PersistedState loaded_;
  uint64_t damaged_ = 0;
  core::Coordinator* core_ = nullptr;

  mutable std::mutex mu_;  // guards the fields below; never held over I/O
  std::condition_variable wake_;
  std::vector<Item> queue_;
  uint64_t appended_ = 0;  // records handed over so far
  uint64_t durable_ = 0;   // of those, durable as the policy promises
  std::vector<Waiter> waiters_;
  core::Status failure_;
  bool stopping_ = false;
  bool writer_running_ = false;
  uint64_t next_gen_ = 0;
  uint64_t snapshot_bytes_ = 0;
  std::function<void(const core::Status&)> on_failure_;

  // The writer thread's own.
  std::unique_ptr<WritableFile> log_;
  uint64_t log_bytes_ = 0;
  std::chrono::steady_clock::time_point last_sync_;
  bool dirty_ = false;

  std::atomic<bool> compacting_{false};
  std::thread compactor_;
  std::thread writer_;
};

}  // namespace dogpiled::daemon
