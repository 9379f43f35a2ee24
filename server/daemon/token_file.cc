#include "daemon/token_file.h"

#include <spdlog/spdlog.h>

#include <string>

namespace dogpiled::daemon {

core::StatusOr<std::unique_ptr<TokenFile>> TokenFile::Open(
    const std::string& dir, Env* env) {
  if (core::Status s = env->CreateDir(dir); !s.ok()) {
    return s;
  }
  std::unique_ptr<TokenFile> file(new TokenFile(dir, env));
  if (auto text = env->ReadFile(dir + "/fencing-token"); text.ok()) {
    try {
      file->stored_ = std::stoull(text.value());
    } catch (const std::exception&) {
      return core::Unavailable("state-dir " + dir +
                               ": fencing-token is unreadable");
    }
  }
  // Fail now, not at the first grant, if the folder is not writable.
  if (core::Status s = file->Write(file->stored_); !s.ok()) {
    return s;
  }
  file->durable_ = file->stored_;
  return file;
}

TokenFile::~TokenFile() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
}

core::Status TokenFile::Write(core::Token high_water) {
  const std::string path = dir_ + "/fencing-token";
  const std::string tmp = path + ".tmp";
  auto file = env_->NewWritableFile(tmp);
  if (!file.ok()) {
    return file.status();
  }
  core::Status s = file.value()->Append(std::to_string(high_water) + "\n");
  if (s.ok()) {
    s = file.value()->Sync();
  }
  if (core::Status closed = file.value()->Close(); s.ok()) {
    s = closed;
  }
  if (s.ok()) {
    s = env_->RenameFile(tmp, path);
  }
  if (s.ok()) {
    s = env_->SyncDir(dir_);
  }
  return s;
}

core::Status TokenFile::PersistNow(core::Token high_water) {
  if (core::Status s = Write(high_water); !s.ok()) {
    return s;
  }
  if (high_water > durable_.load()) {
    durable_ = high_water;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!thread_.joinable()) {
    thread_ = std::thread([this] { Run(); });
  }
  return {};
}

void TokenFile::SetFailureHook(std::function<void(const core::Status&)> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  on_failure_ = std::move(hook);
}

void TokenFile::Reserve(core::Token high_water) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (high_water <= requested_) {
      return;
    }
    requested_ = high_water;
  }
  wake_.notify_one();
}

void TokenFile::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [this] {
      return stopping_ || (!failed_ && requested_ > durable_.load());
    });
    if (stopping_) {
      return;
    }
    const core::Token mark = requested_;
    lock.unlock();
    const core::Status s = Write(mark);
    lock.lock();
    if (s.ok()) {
      if (mark > durable_.load()) {
        durable_ = mark;
      }
      continue;
    }
    failed_ = true;
    spdlog::error("fencing-token mark cannot be written: {}; no token above "
                  "{} will be handed out", s.message(), durable_.load());
    if (on_failure_) {
      auto hook = on_failure_;
      lock.unlock();
      hook(s);
      lock.lock();
    }
  }
}

}  // namespace dogpiled::daemon
