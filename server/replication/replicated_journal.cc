#include "replication/replicated_journal.h"

#include <algorithm>
#include <chrono>

#include "core/errors.h"

namespace dogpiled::replication {

void ReplicatedJournal::ValueStored(const core::PersistedValue& value) {
  std::lock_guard lock(mu_);
  pending_.ValueStored(value);
  Added();
}

void ReplicatedJournal::ValueDropped(const std::string& registry,
                                     const std::string& key) {
  std::lock_guard lock(mu_);
  pending_.ValueDropped(registry, key);
  Added();
}

void ReplicatedJournal::Invalidated(const core::PersistedInvalidation& inv) {
  std::lock_guard lock(mu_);
  pending_.Invalidated(inv);
  Added();
}

void ReplicatedJournal::SessionOpened(const core::PersistedSession& session) {
  std::lock_guard lock(mu_);
  pending_.SessionOpened(session);
  Added();
}

void ReplicatedJournal::SessionEnded(core::SessionId id) {
  std::lock_guard lock(mu_);
  pending_.SessionEnded(id);
  Added();
}

void ReplicatedJournal::Granted(const core::PersistedGrant& grant) {
  std::lock_guard lock(mu_);
  pending_.Granted(grant);
  Added();
}

void ReplicatedJournal::Released(const core::PersistedRelease& release) {
  std::lock_guard lock(mu_);
  pending_.Released(release);
  Added();
}

void ReplicatedJournal::SessionWatching(core::SessionId id) {
  std::lock_guard lock(mu_);
  pending_.SessionWatching(id);
  Added();
}

void ReplicatedJournal::Added() {
  ++appended_;
  if (flush_posted_ || !failure_.ok()) {
    return;
  }
  flush_posted_ = true;
  // The loop thread takes everything that queued up until it runs: one
  // entry for many calls under load, one per call when idle.
  node_->Post([self = shared_from_this()] { self->Flush(); });
}

void ReplicatedJournal::Flush() {
  std::string entry;
  uint64_t upto = 0;
  {
    std::lock_guard lock(mu_);
    flush_posted_ = false;
    entry = pending_.Take();
    upto = appended_;
    if (entry.empty() || !failure_.ok()) {
      return;
    }
    ++entries_;
  }
  node_->Propose(std::move(entry), [self = shared_from_this(),
                                    upto](bool ok) { self->Committed(upto, ok); });
}

void ReplicatedJournal::Committed(uint64_t upto, bool ok) {
  if (!ok) {
    // The lead was lost before the commit, or the log failed: the entry
    // may still commit under the next leader, so nobody is told OK.
    Depose(core::Unavailable("not the leader any more: this change may or "
                             "may not have been committed; retry with the "
                             "same request_id at the new leader")
               .WithReason(std::string(core::reason::kNotLeader)));
    return;
  }
  std::vector<Waiter> ready;
  {
    std::lock_guard lock(mu_);
    committed_ = std::max(committed_, upto);
    ready = TakeWaiters(committed_);
  }
  for (auto& [at, done] : ready) {
    done(core::Status());
  }
}

std::vector<ReplicatedJournal::Waiter> ReplicatedJournal::TakeWaiters(
    uint64_t upto) {
  // Waiters come in record order, so the ready ones are a prefix.
  auto first_waiting = std::find_if(
      waiters_.begin(), waiters_.end(),
      [upto](const Waiter& w) { return w.first > upto; });
  std::vector<Waiter> ready(std::make_move_iterator(waiters_.begin()),
                            std::make_move_iterator(first_waiting));
  waiters_.erase(waiters_.begin(), first_waiting);
  return ready;
}

core::Status ReplicatedJournal::Health() const {
  std::lock_guard lock(mu_);
  return failure_;
}

void ReplicatedJournal::AfterDurable(std::function<void(core::Status)> done) {
  core::Status now;
  {
    std::lock_guard lock(mu_);
    if (failure_.ok() && committed_ < appended_) {
      // A commit proves a majority still follows: no lease needed.
      waiters_.emplace_back(appended_, std::move(done));
      return;
    }
    if (failure_.ok() && NowMs() - confirmed_ms_ > lease_ms_) {
      lease_waiters_.push_back(std::move(done));
      return;
    }
    now = failure_;
  }
  done(now);
}

void ReplicatedJournal::Confirm() {
  std::vector<std::function<void(core::Status)>> ready;
  {
    std::lock_guard lock(mu_);
    confirmed_ms_ = NowMs();
    if (!failure_.ok()) {
      return;
    }
    ready.swap(lease_waiters_);
  }
  for (auto& done : ready) {
    done(core::Status());
  }
}

int64_t ReplicatedJournal::NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void ReplicatedJournal::Depose(const core::Status& why) {
  std::vector<Waiter> failed;
  {
    std::lock_guard lock(mu_);
    if (failure_.ok()) {
      failure_ = why;
    }
    failed.swap(waiters_);
    for (auto& done : lease_waiters_) {
      failed.emplace_back(0, std::move(done));
    }
    lease_waiters_.clear();
  }
  for (auto& [at, done] : failed) {
    done(why);
  }
}

uint64_t ReplicatedJournal::entries_proposed() const {
  std::lock_guard lock(mu_);
  return entries_;
}

}  // namespace dogpiled::replication
