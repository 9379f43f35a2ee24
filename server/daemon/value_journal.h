// Keeps stored values and invalidation marks under --state-dir, so a
// restarted daemon (graceful or after a crash) still has them and does not
// send every client to the backend at once.
//
// Files: values.<gen>.snap (the whole state at one instant, written to a
// temporary name, fsynced, then renamed: present means complete) and
// values.<gen>.log (every change after that instant, appended). Recovery
// loads the newest snapshot and replays the logs from its generation on;
// a torn record at a log's tail ends that log. Compaction writes a new
// snapshot when the log outgrows a threshold, then deletes older files.
//
// fsync policy (like Redis appendfsync): "always" syncs each change before
// the call returns; "everysec" syncs once a second from a background thread
// (a crash loses at most about a second of changes); "no" leaves it to the
// kernel.
//
// Thread-safety: the core calls the Journal methods under its own lock; the
// background thread syncs and compacts; a mutex guards the open log.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/coordinator.h"
#include "core/journal.h"

namespace dogpiled::daemon {

enum class FsyncPolicy { kAlways, kEverySecond, kNo };

// Parses "always", "everysec" or "no".
core::StatusOr<FsyncPolicy> ParseFsyncPolicy(const std::string& text);

class ValueJournal final : public core::Journal {
 public:
  // Reads what the folder holds. Call Start() once the core is restored.
  static core::StatusOr<std::unique_ptr<ValueJournal>> Open(
      const std::string& dir, FsyncPolicy policy, uint64_t compact_bytes);
  ~ValueJournal() override;

  const core::PersistedState& loaded() const { return loaded_; }
  // Writes a fresh snapshot of `core`, opens its log and starts the
  // background thread.
  core::Status Start(core::Coordinator* core);
  // Final snapshot and sync, for a graceful shutdown; call it while the
  // core is still alive. Destroying the journal without it only syncs.
  void Stop();

  void ValueStored(const core::PersistedValue& value) override;
  void ValueDropped(const std::string& registry,
                    const std::string& key) override;
  void Invalidated(const core::PersistedInvalidation& inv) override;

 private:
  ValueJournal(std::string dir, FsyncPolicy policy, uint64_t compact_bytes)
      : dir_(std::move(dir)), policy_(policy), compact_bytes_(compact_bytes) {}
  core::Status Load();
  core::Status Compact();
  void Append(const std::string& record);
  void Background();
  std::string Path(uint64_t gen, const char* ext) const;

  // Constant after construction.
  const std::string dir_;
  const FsyncPolicy policy_;
  const uint64_t compact_bytes_;

  core::PersistedState loaded_;
  core::Coordinator* core_ = nullptr;
  std::mutex mu_;  // guards the fields below
  int fd_ = -1;
  uint64_t gen_ = 0;
  uint64_t log_bytes_ = 0;
  uint64_t snapshot_bytes_ = 0;
  bool dirty_ = false;
  bool failed_ = false;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace dogpiled::daemon
