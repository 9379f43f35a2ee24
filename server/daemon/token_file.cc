#include "daemon/token_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

namespace dogpiled::daemon {
namespace {

core::Status Errno(const std::string& what) {
  return core::Unavailable(what + ": " + std::strerror(errno));
}

core::Status SyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) {
    return Errno("open " + path);
  }
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? core::Status() : Errno("fsync " + path);
}

}  // namespace

core::StatusOr<std::unique_ptr<TokenFile>> TokenFile::Open(
    const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return core::Unavailable("state-dir " + dir + ": " + ec.message());
  }
  std::unique_ptr<TokenFile> file(new TokenFile(dir));
  std::ifstream in(dir + "/fencing-token");
  if (in) {
    if (!(in >> file->stored_)) {
      return core::Unavailable("state-dir " + dir +
                               ": fencing-token is unreadable");
    }
  }
  // Fail now, not at the first grant, if the folder is not writable.
  if (core::Status s = file->Persist(file->stored_); !s.ok()) {
    return s;
  }
  return file;
}

core::Status TokenFile::Persist(core::Token high_water) {
  const std::string path = dir_ + "/fencing-token";
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << high_water << "\n";
    out.flush();
    if (!out) {
      return Errno("write " + tmp);
    }
  }
  if (core::Status s = SyncPath(tmp, O_RDONLY); !s.ok()) {
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Errno("rename " + tmp);
  }
  if (core::Status s = SyncPath(dir_, O_RDONLY | O_DIRECTORY); !s.ok()) {
    return s;
  }
  stored_ = high_water;
  return {};
}

}  // namespace dogpiled::daemon
