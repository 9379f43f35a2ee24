// The file-system seam of the daemon's durable state, after leveldb's Env:
// the value journal and the token file do all their I/O through it, so
// tests can make a disk slow, full or failing without a real one.
//
// Thread-safety: an Env may be used from any thread; a WritableFile by one
// thread at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace dogpiled::daemon {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual core::Status Append(std::string_view data) = 0;
  // Makes what was appended durable (fdatasync).
  virtual core::Status Sync() = 0;
  virtual core::Status Close() = 0;
};

class Env {
 public:
  virtual ~Env() = default;
  // The real file system. Never destroyed.
  static Env* Default();

  // Opens for appending, creating it if needed.
  virtual core::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) = 0;
  // Creates or truncates.
  virtual core::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // The whole file; NOT_FOUND if it does not exist.
  virtual core::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  virtual core::Status RenameFile(const std::string& from,
                                  const std::string& to) = 0;
  // Makes renames and creations in the folder durable.
  virtual core::Status SyncDir(const std::string& dir) = 0;
  virtual core::Status RemoveFile(const std::string& path) = 0;
  virtual core::Status CreateDir(const std::string& dir) = 0;
  // Names (not paths) of the folder's entries.
  virtual core::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
};

// An Env that passes everything to another. Tests derive from it and
// override what they want to slow down or fail.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  core::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return target_->NewAppendableFile(path);
  }
  core::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  core::StatusOr<std::string> ReadFile(const std::string& path) override {
    return target_->ReadFile(path);
  }
  core::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  core::Status SyncDir(const std::string& dir) override {
    return target_->SyncDir(dir);
  }
  core::Status RemoveFile(const std::string& path) override {
    return target_->RemoveFile(path);
  }
  core::Status CreateDir(const std::string& dir) override {
    return target_->CreateDir(dir);
  }
  core::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    return target_->ListDir(dir);
  }

 private:
  Env* const target_;
};

}  // namespace dogpiled::daemon
