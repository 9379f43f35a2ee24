#include "service/response_budget.h"

#include <utility>

namespace dogpiled::service {

bool ResponseBudget::Reserve(const std::string& peer, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t& mine = by_peer_[peer];
  // One answer is always allowed, so a value above a limit is still served
  // (to one reader at a time).
  if ((per_connection_ != 0 && mine != 0 && mine + bytes > per_connection_) ||
      (total_limit_ != 0 && total_ != 0 && total_ + bytes > total_limit_)) {
    if (mine == 0) {
      by_peer_.erase(peer);
    }
    return false;
  }
  mine += bytes;
  total_ += bytes;
  return true;
}

bool ResponseBudget::Exhausted(const std::string& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  if (total_limit_ != 0 && total_ >= total_limit_) {
    return true;
  }
  auto it = by_peer_.find(peer);
  return per_connection_ != 0 && it != by_peer_.end() &&
         it->second >= per_connection_;
}

void ResponseBudget::Release(const std::string& peer, uint64_t bytes) {
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

}  // namespace dogpiled::service
