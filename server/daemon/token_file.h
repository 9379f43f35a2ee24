// Keeps the fencing-token high-water mark in <state-dir>/fencing-token, so a
// restarted daemon never hands out a token it handed out before. Written
// with write-to-temp, fsync, rename, fsync of the folder: a crash leaves
// either the old or the new mark, never a torn one.
//
// The core reserves ahead (core::TokenStore): Reserve only records the wish
// and wakes this store's own thread, which writes; the core hands out no
// token above Durable(). A failed write is reported once through the
// failure hook (the daemon turns NOT_SERVING) and nothing higher becomes
// durable after it.
//
// Thread-safety: Reserve and Durable from any thread (the core calls them
// under its lock); the rest from the thread that owns the store.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/coordinator.h"
#include "daemon/env.h"

namespace dogpiled::daemon {

// The token floor when starting (or taking a group's lead): above anything
// stored, and above the wall clock in microseconds, so even a lost state
// folder is unlikely to repeat a token.
inline core::Token FirstToken(core::Token stored) {
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return std::max<core::Token>(stored, static_cast<core::Token>(micros));
}

class TokenFile final : public core::TokenStore {
 public:
  // Creates the folder if needed and reads the mark (0 if none yet).
  static core::StatusOr<std::unique_ptr<TokenFile>> Open(
      const std::string& dir, Env* env = Env::Default());
  ~TokenFile() override;

  core::Token stored() const { return stored_; }
  // Writes `high_water` now, on the calling thread: for start-up, before
  // serving. Starts the background writer on first use.
  core::Status PersistNow(core::Token high_water);
  void SetFailureHook(std::function<void(const core::Status&)> hook);

  void Reserve(core::Token high_water) override;
  core::Token Durable() const override { return durable_.load(); }

 private:
  TokenFile(std::string dir, Env* env) : dir_(std::move(dir)), env_(env) {}
  core::Status Write(core::Token high_water);
  void Run();

  // Constant after construction.
  const std::string dir_;
  Env* const env_;
  core::Token stored_ = 0;

  std::atomic<core::Token> durable_{0};
  std::mutex mu_;  // guards the fields below; never held across I/O
  std::condition_variable wake_;
  core::Token requested_ = 0;
  bool failed_ = false;
  bool stopping_ = false;
  std::function<void(const core::Status&)> on_failure_;
  std::thread thread_;
};

}  // namespace dogpiled::daemon
