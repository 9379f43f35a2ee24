#include "daemon/value_journal.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "daemon/record_io.h"

namespace dogpiled::daemon {
namespace fs = std::filesystem;
namespace {

core::Status Errno(const std::string& what) {
  return core::Unavailable(what + ": " + std::strerror(errno));
}

core::Status WriteAll(int fd, const std::string& data, const std::string& p) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return Errno("write " + p);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

core::Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) {
    return Errno("open " + dir);
  }
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? core::Status() : Errno("fsync " + dir);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// "values.<gen>.snap" or "values.<gen>.log"; anything else is not ours.
bool ParseName(const std::string& name, uint64_t& gen, std::string& ext) {
  constexpr std::string_view kPrefix = "values.";
  if (!name.starts_with(kPrefix)) {
    return false;
  }
  const size_t dot = name.find('.', kPrefix.size());
  if (dot == std::string::npos || dot == kPrefix.size()) {
    return false;
  }
  const std::string digits = name.substr(kPrefix.size(), dot - kPrefix.size());
  if (digits.size() > 18 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  ext = name.substr(dot + 1);
  if (ext != "snap" && ext != "log") {
    return false;
  }
  gen = std::stoull(digits);
  return true;
}

// Applies records in order to a state keyed by (registry, key).
class Replay {
 public:
  void Feed(const std::string& data) {
    RecordReader reader(data);
    while (auto r = reader.Next()) {
      auto id = std::make_pair(r->value.registry, r->value.key);
      switch (r->type) {
        case RecordType::kValue:
          values_[id] = std::move(r->value);
          break;
        case RecordType::kDrop:
          values_.erase(id);
          break;
        case RecordType::kInvalidation:
          state_.invalidations.push_back(std::move(r->invalidation));
          break;
      }
    }
  }
  core::PersistedState Take() {
    for (auto& [id, v] : values_) {
      state_.values.push_back(std::move(v));
    }
    return std::move(state_);
  }

 private:
  std::map<std::pair<std::string, std::string>, core::PersistedValue> values_;
  core::PersistedState state_;
};

}  // namespace

core::StatusOr<FsyncPolicy> ParseFsyncPolicy(const std::string& text) {
  if (text == "always") {
    return FsyncPolicy::kAlways;
  }
  if (text == "everysec") {
    return FsyncPolicy::kEverySecond;
  }
  if (text == "no") {
    return FsyncPolicy::kNo;
  }
  return core::InvalidArgument("fsync: must be always, everysec or no");
}

core::StatusOr<std::unique_ptr<ValueJournal>> ValueJournal::Open(
    const std::string& dir, FsyncPolicy policy, uint64_t compact_bytes) {
  std::unique_ptr<ValueJournal> journal(
      new ValueJournal(dir, policy, compact_bytes));
  if (core::Status s = journal->Load(); !s.ok()) {
    return s;
  }
  return journal;
}

// No final snapshot here: the core may already be gone. Stop() is the
// graceful path; this only joins the thread and closes the log.
ValueJournal::~ValueJournal() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
  }
}

std::string ValueJournal::Path(uint64_t gen, const char* ext) const {
  return dir_ + "/values." + std::to_string(gen) + "." + ext;
}

core::Status ValueJournal::Load() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    return core::Unavailable("state-dir " + dir_ + ": " + ec.message());
  }
  std::map<uint64_t, bool> logs;  // gen -> present
  uint64_t newest_snap = 0;
  bool have_snap = false;
  for (const auto& file : fs::directory_iterator(dir_, ec)) {
    uint64_t gen = 0;
    std::string ext;
    if (!ParseName(file.path().filename().string(), gen, ext)) {
      continue;
    }
    if (ext == "snap" && (!have_snap || gen > newest_snap)) {
      newest_snap = gen;
      have_snap = true;
    } else if (ext == "log") {
      logs[gen] = true;
    }
    gen_ = std::max(gen_, gen);
  }
  Replay replay;
  if (have_snap) {
    replay.Feed(ReadFile(Path(newest_snap, "snap")));
  }
  for (const auto& [gen, present] : logs) {
    if (!have_snap || gen >= newest_snap) {
      replay.Feed(ReadFile(Path(gen, "log")));
    }
  }
  loaded_ = replay.Take();
  return {};
}

core::Status ValueJournal::Start(core::Coordinator* core) {
  core_ = core;
  if (core::Status s = Compact(); !s.ok()) {
    return s;
  }
  loaded_ = {};
  thread_ = std::thread([this] { Background(); });
  return {};
}

core::Status ValueJournal::Compact() {
  // Under the core's lock: copy the state and switch appends to a new log,
  // so the snapshot and that log meet exactly.
  uint64_t gen = 0;
  core::Status opened;
  core::PersistedState state = core_->Export([&] {
    std::lock_guard<std::mutex> lock(mu_);
    gen = gen_ + 1;
    const std::string path = Path(gen, "log");
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                    0600);
    if (fd < 0) {
      opened = Errno("open " + path);
      return;
    }
    if (fd_ >= 0) {
      ::fsync(fd_);
      ::close(fd_);
    }
    fd_ = fd;
    gen_ = gen;
    log_bytes_ = 0;
  });
  if (!opened.ok()) {
    return opened;
  }
  std::string data;
  for (const auto& inv : state.invalidations) {
    data += EncodeInvalidation(inv);
  }
  for (const auto& v : state.values) {
    data += EncodeValue(v);
  }
  const std::string tmp = Path(gen, "snap.tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Errno("open " + tmp);
  }
  core::Status s = WriteAll(fd, data, tmp);
  if (s.ok() && ::fsync(fd) != 0) {
    s = Errno("fsync " + tmp);
  }
  ::close(fd);
  if (!s.ok()) {
    return s;
  }
  if (::rename(tmp.c_str(), Path(gen, "snap").c_str()) != 0) {
    return Errno("rename " + tmp);
  }
  if (s = SyncDir(dir_); !s.ok()) {
    return s;
  }
  // The new snapshot is durable: everything older is redundant.
  std::error_code ec;
  for (uint64_t old = 0; old < gen; ++old) {
    fs::remove(Path(old, "snap"), ec);
    fs::remove(Path(old, "log"), ec);
  }
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_bytes_ = data.size();
  spdlog::debug("value journal: snapshot {} with {} values ({} bytes)", gen,
                state.values.size(), data.size());
  return {};
}

void ValueJournal::Append(const std::string& record) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) {
    return;
  }
  if (core::Status s = WriteAll(fd_, record, "value log"); !s.ok()) {
    if (!failed_) {
      spdlog::error("value journal: {}; changes are no longer durable",
                    s.message());
    }
    failed_ = true;
    return;
  }
  log_bytes_ += record.size();
  if (policy_ == FsyncPolicy::kAlways) {
    ::fdatasync(fd_);
  } else {
    dirty_ = true;
  }
  if (log_bytes_ > compact_bytes_ && log_bytes_ > 2 * snapshot_bytes_) {
    wake_.notify_one();
  }
}

void ValueJournal::ValueStored(const core::PersistedValue& value) {
  Append(EncodeValue(value));
}

void ValueJournal::ValueDropped(const std::string& registry,
                                const std::string& key) {
  Append(EncodeDrop(registry, key));
}

void ValueJournal::Invalidated(const core::PersistedInvalidation& inv) {
  Append(EncodeInvalidation(inv));
}

void ValueJournal::Background() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, std::chrono::seconds(1));
    if (dirty_ && fd_ >= 0 && policy_ == FsyncPolicy::kEverySecond) {
      ::fdatasync(fd_);
      dirty_ = false;
    }
    if (!stopping_ && log_bytes_ > compact_bytes_ &&
        log_bytes_ > 2 * snapshot_bytes_) {
      lock.unlock();  // Compact takes the core's lock, then ours
      if (core::Status s = Compact(); !s.ok()) {
        spdlog::error("value journal: compaction failed: {}", s.message());
      }
      lock.lock();
    }
  }
}

void ValueJournal::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || core_ == nullptr) {
      stopping_ = true;
      return;
    }
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
  if (core::Status s = Compact(); !s.ok()) {
    spdlog::error("value journal: final snapshot failed: {}", s.message());
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace dogpiled::daemon
