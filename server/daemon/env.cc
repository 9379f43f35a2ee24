#include "daemon/env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace dogpiled::daemon {
namespace {

core::Status Errno(const std::string& what) {
  return core::Unavailable(what + ": " + std::strerror(errno))
      .WithReason("STORAGE_FAILED");
}

class PosixFile final : public WritableFile {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  core::Status Append(std::string_view data) override {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        return Errno("write " + path_);
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }
  core::Status Sync() override {
    return ::fdatasync(fd_) == 0 ? core::Status() : Errno("fdatasync " + path_);
  }
  core::Status Close() override {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0 ? core::Status() : Errno("close " + path_);
  }

 private:
  int fd_;
  const std::string path_;
};

class PosixEnv final : public Env {
 public:
  core::StatusOr<std::unique_ptr<WritableFile>> NewAppendableFile(
      const std::string& path) override {
    return Open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC);
  }
  core::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    return Open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC);
  }
  core::StatusOr<std::string> ReadFile(const std::string& path) override {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return core::NotFound(path + ": cannot be read");
    }
    return std::string(std::istreambuf_iterator<char>(in),
                       std::istreambuf_iterator<char>());
  }
  core::Status RenameFile(const std::string& from,
                          const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0
               ? core::Status()
               : Errno("rename " + from);
  }
  core::Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      return Errno("open " + dir);
    }
    const int rc = ::fsync(fd);
    ::close(fd);
    return rc == 0 ? core::Status() : Errno("fsync " + dir);
  }
  core::Status RemoveFile(const std::string& path) override {
    return ::unlink(path.c_str()) == 0 || errno == ENOENT
               ? core::Status()
               : Errno("unlink " + path);
  }
  core::Status CreateDir(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    return ec ? core::Unavailable("state-dir " + dir + ": " + ec.message())
              : core::Status();
  }
  core::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    std::error_code ec;
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      names.push_back(e.path().filename().string());
    }
    if (ec) {
      return core::Unavailable("state-dir " + dir + ": " + ec.message());
    }
    return names;
  }

 private:
  static core::StatusOr<std::unique_ptr<WritableFile>> Open(
      const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags, 0600);
    if (fd < 0) {
      return Errno("open " + path);
    }
    return std::unique_ptr<WritableFile>(new PosixFile(fd, path));
  }
};

}  // namespace

Env* Env::Default() {
  static Env* env = new PosixEnv();  // never destroyed: threads may use it
  return env;
}

}  // namespace dogpiled::daemon
