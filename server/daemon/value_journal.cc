#include "daemon/value_journal.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <string_view>

#include "daemon/journal_replay.h"
#include "daemon/record_io.h"

namespace dogpiled::daemon {
namespace {

using Clock = std::chrono::steady_clock;

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
    const std::string& dir, FsyncPolicy policy, uint64_t compact_bytes,
    Env* env) {
  std::unique_ptr<ValueJournal> journal(
      new ValueJournal(dir, policy, compact_bytes, env));
  if (core::Status s = journal->Load(); !s.ok()) {
    return s;
  }
  return journal;
}

ValueJournal::~ValueJournal() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (writer_.joinable()) {
    writer_.join();
  }
  if (compactor_.joinable()) {
    compactor_.join();
  }
  if (log_) {
    (void)log_->Sync();  // best effort: the graceful path is Stop()
    (void)log_->Close();
  }
}

std::string ValueJournal::Path(uint64_t gen, const char* ext) const {
  return dir_ + "/values." + std::to_string(gen) + "." + ext;
}

core::Status ValueJournal::Load() {
  if (core::Status s = env_->CreateDir(dir_); !s.ok()) {
    return s;
  }
  auto names = env_->ListDir(dir_);
  if (!names.ok()) {
    return names.status();
  }
  std::map<uint64_t, bool> logs;
  uint64_t newest_snap = 0;
  bool have_snap = false;
  for (const std::string& name : names.value()) {
    uint64_t gen = 0;
    std::string ext;
    if (!ParseName(name, gen, ext)) {
      continue;
    }
    if (ext == "snap" && (!have_snap || gen > newest_snap)) {
      newest_snap = gen;
      have_snap = true;
    } else if (ext == "log") {
      logs[gen] = true;
    }
    next_gen_ = std::max(next_gen_, gen);
  }
  Replay replay;
  if (have_snap) {
    auto data = env_->ReadFile(Path(newest_snap, "snap"));
    if (!data.ok()) {
      return data.status();
    }
    replay.Feed(data.value(), Path(newest_snap, "snap"), /*snapshot=*/true,
                /*last=*/false);
  }
  const uint64_t last = logs.empty() ? 0 : logs.rbegin()->first;
  for (const auto& [gen, present] : logs) {
    if (have_snap && gen < newest_snap) {
      continue;
    }
    auto data = env_->ReadFile(Path(gen, "log"));
    if (!data.ok()) {
      return data.status();
    }
    replay.Feed(data.value(), Path(gen, "log"), /*snapshot=*/false,
                gen == last);
  }
  damaged_ = replay.damaged();
  loaded_ = replay.Take();
  return {};
}

void ValueJournal::SetFailureHook(
    std::function<void(const core::Status&)> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  on_failure_ = std::move(hook);
}

core::Status ValueJournal::Start(core::Coordinator* core) {
  core_ = core;
  if (core::Status s = Compact(/*writer_running=*/false); !s.ok()) {
    return s;
  }
  loaded_ = {};
  last_sync_ = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    writer_running_ = true;
  }
  writer_ = std::thread([this] { WriterLoop(); });
  return {};
}

void ValueJournal::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!writer_running_) {
      return;
    }
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();  // it drains the queue and syncs
  if (compactor_.joinable()) {
    compactor_.join();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    writer_running_ = false;
    if (!failure_.ok()) {
      return;  // nothing more can be made durable
    }
  }
  if (core::Status s = Compact(/*writer_running=*/false); !s.ok()) {
    spdlog::error("value journal: final snapshot failed: {}", s.message());
  }
  if (log_) {
    (void)log_->Sync();
    (void)log_->Close();
    log_.reset();
  }
}

void ValueJournal::Enqueue(Item item) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.ok()) {
      return;  // nothing is written after a failure: no holes
    }
    queue_.push_back(std::move(item));
    ++appended_;
  }
  wake_.notify_one();
}

void ValueJournal::ValueStored(const core::PersistedValue& value) {
  Item item;
  item.kind = ItemKind::kValue;
  item.value = value;  // shares the bytes
  Enqueue(std::move(item));
}

void ValueJournal::ValueDropped(const std::string& registry,
                                const std::string& key) {
  Item item;
  item.kind = ItemKind::kDrop;
  item.value.registry = registry;
  item.value.key = key;
  Enqueue(std::move(item));
}

void ValueJournal::Invalidated(const core::PersistedInvalidation& inv) {
  Item item;
  item.kind = ItemKind::kInvalidation;
  item.invalidation = inv;
  Enqueue(std::move(item));
}

core::Status ValueJournal::Health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

void ValueJournal::AfterDurable(std::function<void(core::Status)> done) {
  core::Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_.ok() && policy_ == FsyncPolicy::kAlways &&
        writer_running_ && durable_ < appended_) {
      waiters_.emplace_back(appended_, std::move(done));
      return;
    }
    status = failure_;
  }
  done(status);
}

core::Status ValueJournal::OpenLog(uint64_t gen) {
  if (log_) {
    core::Status s = log_->Sync();
    if (core::Status closed = log_->Close(); s.ok()) {
      s = closed;
    }
    log_.reset();
    if (!s.ok()) {
      return s;
    }
  }
  auto opened = env_->NewAppendableFile(Path(gen, "log"));
  if (!opened.ok()) {
    return opened.status();
  }
  log_ = std::move(opened.value());
  log_bytes_ = 0;
  dirty_ = false;
  return {};
}

core::Status ValueJournal::WriteBatch(std::vector<Item>& batch, bool sync) {
  std::string buffer;
  const auto flush = [&]() -> core::Status {
    if (buffer.empty()) {
      return {};
    }
    if (!log_) {
      return core::Unavailable("value journal: no log is open")
          .WithReason("STORAGE_FAILED");
    }
    core::Status s = log_->Append(buffer);
    log_bytes_ += buffer.size();
    dirty_ = true;
    buffer.clear();
    return s;
  };
  for (Item& item : batch) {
    switch (item.kind) {
      case ItemKind::kValue:
        buffer += EncodeValue(item.value);
        break;
      case ItemKind::kDrop:
        buffer += EncodeDrop(item.value.registry, item.value.key);
        break;
      case ItemKind::kInvalidation:
        buffer += EncodeInvalidation(item.invalidation);
        break;
      case ItemKind::kRotate:
        if (core::Status s = flush(); !s.ok()) {
          return s;
        }
        if (core::Status s = OpenLog(item.gen); !s.ok()) {
          return s;
        }
        break;
    }
  }
  if (core::Status s = flush(); !s.ok()) {
    return s;
  }
  if (sync && dirty_ && log_) {
    if (core::Status s = log_->Sync(); !s.ok()) {
      return s;
    }
    dirty_ = false;
    last_sync_ = Clock::now();
  }
  return {};
}

void ValueJournal::WriterLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    while (queue_.empty() && !stopping_) {
      if (policy_ == FsyncPolicy::kEverySecond && dirty_) {
        if (wake_.wait_until(lock, last_sync_ + std::chrono::seconds(1)) ==
            std::cv_status::timeout) {
          break;
        }
      } else {
        wake_.wait(lock);
      }
    }
    std::vector<Item> batch;
    batch.swap(queue_);
    const uint64_t end = appended_;
    const bool stop = stopping_;
    const bool failed = !failure_.ok();
    lock.unlock();

    core::Status s;
    if (!failed) {
      const bool due = Clock::now() - last_sync_ >= std::chrono::seconds(1);
      const bool sync = stop || policy_ == FsyncPolicy::kAlways ||
                        (policy_ == FsyncPolicy::kEverySecond && due);
      s = WriteBatch(batch, sync);
    }
    batch.clear();  // drops shared values outside the lock

    if (!s.ok()) {
      Fail(s);
      lock.lock();
      if (stop) {
        return;
      }
      continue;
    }
    std::vector<Waiter> ready;
    bool compact = false;
    lock.lock();
    if (!failed) {
      durable_ = end;
      auto covered = std::partition(
          waiters_.begin(), waiters_.end(),
          [&](const Waiter& w) { return w.first > durable_; });
      std::move(covered, waiters_.end(), std::back_inserter(ready));
      waiters_.erase(covered, waiters_.end());
      compact = !stop && log_bytes_ > compact_bytes_ &&
                log_bytes_ > 2 * snapshot_bytes_ && !compacting_.load();
    }
    const core::Status answer = failure_;
    lock.unlock();
    for (Waiter& w : ready) {
      w.second(answer);
    }
    if (compact) {
      if (compactor_.joinable()) {
        compactor_.join();
      }
      compacting_ = true;
      compactor_ = std::thread([this] {
        if (core::Status c = Compact(/*writer_running=*/true); !c.ok()) {
          Fail(c);
        }
        compacting_ = false;
      });
    }
    lock.lock();
    if (stop && queue_.empty()) {
      return;
    }
  }
}

void ValueJournal::Fail(const core::Status& cause) {
  std::vector<Waiter> ready;
  std::function<void(const core::Status&)> hook;
  core::Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.ok()) {
      return;
    }
    failure_ = core::Unavailable(
                   "the value journal cannot write under --state-dir (" +
                   cause.message() +
                   "); changes can no longer be made durable")
                   .WithReason("STORAGE_FAILED");
    status = failure_;
    hook = on_failure_;
    ready.swap(waiters_);
    queue_.clear();
  }
  spdlog::error("{}", status.message());
  if (hook) {  // NOT_SERVING first, then the refusals
    hook(status);
  }
  for (Waiter& w : ready) {
    w.second(status);
  }
}

core::Status ValueJournal::Compact(bool writer_running) {
  uint64_t gen = 0;
  // Under the core's lock: the state (shared values, copied as pointers)
  // and the log switch happen at one instant, so they meet exactly.
  core::PersistedState state = core_->Export([&] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gen = ++next_gen_;
      if (writer_running) {
        Item rotate;
        rotate.kind = ItemKind::kRotate;
        rotate.gen = gen;
        queue_.push_back(std::move(rotate));
        ++appended_;
      }
    }
    wake_.notify_one();
  });
  if (!writer_running) {
    if (core::Status s = OpenLog(gen); !s.ok()) {
      return s;
    }
  }
  std::string data;
  for (const auto& inv : state.invalidations) {
    data += EncodeInvalidation(inv);
  }
  for (const auto& v : state.values) {
    data += EncodeValue(v);
  }
  state = {};
  const std::string tmp = Path(gen, "snap.tmp");
  auto file = env_->NewWritableFile(tmp);
  if (!file.ok()) {
    return file.status();
  }
  core::Status s = file.value()->Append(data);
  if (s.ok()) {
    s = file.value()->Sync();
  }
  if (core::Status closed = file.value()->Close(); s.ok()) {
    s = closed;
  }
  if (s.ok()) {
    s = env_->RenameFile(tmp, Path(gen, "snap"));
  }
  if (s.ok()) {
    s = env_->SyncDir(dir_);
  }
  if (!s.ok()) {
    return s;
  }
  // The new snapshot is durable: everything older is redundant.
  if (auto names = env_->ListDir(dir_); names.ok()) {
    for (const std::string& name : names.value()) {
      uint64_t old = 0;
      std::string ext;
      if (ParseName(name, old, ext) && old < gen) {
        (void)env_->RemoveFile(dir_ + "/" + name);
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  snapshot_bytes_ = data.size();
  spdlog::debug("value journal: snapshot {} ({} bytes)", gen, data.size());
  return {};
}

}  // namespace dogpiled::daemon
