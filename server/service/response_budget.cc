#include "service/response_budget.h"

#include <utility>
#include <vector>

namespace dogpiled::service {

bool ResponseBudget::FitsLocked(const std::string& peer, uint64_t bytes) {
  // One answer is always allowed, so a value above a limit is still served
  // (to one reader at a time).
  auto it = by_peer_.find(peer);
  const uint64_t mine = it == by_peer_.end() ? 0 : it->second;
  return !(per_connection_ != 0 && mine != 0 &&
           mine + bytes > per_connection_) &&
         !(total_limit_ != 0 && total_ != 0 && total_ + bytes > total_limit_);
}

void ResponseBudget::TakeLocked(const std::string& peer, uint64_t bytes) {
  by_peer_[peer] += bytes;
  total_ += bytes;
}

bool ResponseBudget::Reserve(const std::string& peer, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!FitsLocked(peer, bytes)) {
    return false;
  }
  TakeLocked(peer, bytes);
  return true;
}

void ResponseBudget::ReserveOrQueue(const std::string& peer, uint64_t bytes,
                                    std::function<void()> send) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto queue = queued_.find(peer);
    // Behind answers already waiting on this connection, in order.
    if (queue != queued_.end() || !FitsLocked(peer, bytes)) {
      queued_[peer].push_back({bytes, std::move(send)});
      return;
    }
    TakeLocked(peer, bytes);
  }
  send();
}

bool ResponseBudget::Exhausted(const std::string& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  if (total_limit_ != 0 && total_ >= total_limit_) {
    return true;
  }
  if (queued_.count(peer) != 0) {
    return true;
  }
  auto it = by_peer_.find(peer);
  return per_connection_ != 0 && it != by_peer_.end() &&
         it->second >= per_connection_;
}

void ResponseBudget::Release(const std::string& peer, uint64_t bytes) {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = by_peer_.find(peer);
    if (it == by_peer_.end()) {
      return;
    }
    it->second -= bytes;
    total_ -= bytes;
    if (it->second == 0) {
      by_peer_.erase(it);
    }
    // Room was made on this connection and in the total: admit what now
    // fits, oldest first on each connection.
    for (auto q = queued_.begin(); q != queued_.end();) {
      std::deque<Queued>& line = q->second;
      while (!line.empty() && FitsLocked(q->first, line.front().bytes)) {
        TakeLocked(q->first, line.front().bytes);
        ready.push_back(std::move(line.front().send));
        line.pop_front();
      }
      q = line.empty() ? queued_.erase(q) : std::next(q);
    }
  }
  // Outside the lock: sending finishes a call, whose OnDone may run inline
  // and release again.
  for (auto& send : ready) {
    send();
  }
}

Reservation::~Reservation() {
  if (budget_ != nullptr) {
    budget_->Release(peer_, bytes_);
  }
}

bool Reservation::Take(ResponseBudget* budget, std::string peer,
                       uint64_t bytes) {
  if (budget == nullptr || bytes == 0) {
    return true;
  }
  if (!budget->Reserve(peer, bytes)) {
    return false;
  }
  budget_ = budget;
  peer_ = std::move(peer);
  bytes_ = bytes;
  return true;
}

void Reservation::Queue(ResponseBudget* budget, std::string peer,
                        uint64_t bytes, std::function<void()> send) {
  if (budget == nullptr || bytes == 0) {
    send();
    return;
  }
  // Set before queueing: once `send` has run, the call may finish and this
  // reservation be destroyed on another thread.
  budget_ = budget;
  peer_ = peer;
  bytes_ = bytes;
  budget->ReserveOrQueue(peer, bytes, std::move(send));
}

}  // namespace dogpiled::service
