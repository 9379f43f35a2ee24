// Keeps the fencing-token high-water mark in <state-dir>/fencing-token, so a
// restarted daemon never hands out a token it handed out before. Written
// with write-to-temp, fsync, rename, fsync of the folder: a crash leaves
// either the old or the new mark, never a torn one.
#pragma once

#include <memory>
#include <string>

#include "core/coordinator.h"

namespace dogpiled::daemon {

class TokenFile final : public core::TokenStore {
 public:
  // Creates the folder if needed and reads the mark (0 if none yet).
  static core::StatusOr<std::unique_ptr<TokenFile>> Open(
      const std::string& dir);

  core::Token stored() const { return stored_; }
  core::Status Persist(core::Token high_water) override;

 private:
  explicit TokenFile(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  core::Token stored_ = 0;
};

}  // namespace dogpiled::daemon
