#include "src/near_cache.h"

#include <utility>

namespace dogpiled::internal {

NearCache::NearCache(uint64_t max_bytes, Ms max_stale_on_error)
    : max_bytes_(max_bytes), max_stale_on_error_(max_stale_on_error) {}

std::string NearCache::Name(const std::string& registry,
                            const std::string& key) {
  // Registry names never hold '\0', so this cannot collide.
  std::string name = registry;
  name.push_back('\0');
  name += key;
  return name;
}

bool NearCache::Serving(Time now) const {
  return trusted_ != 0 && now < heard_until_ && now < lease_until_;
}

std::optional<NearCache::Hit> NearCache::Lookup(const std::string& registry,
                                                const std::string& key,
                                                int64_t expire_ms, Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Serving(now)) {
    return std::nullopt;
  }
  auto it = entries_.find(Name(registry, key));
  if (it == entries_.end() || !it->second.trusted ||
      it->second.expire_ms != expire_ms ||
      (it->second.fresh_until && now >= *it->second.fresh_until)) {
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return Hit{it->second.value, it->second.created_time};
}

std::optional<NearCache::Hit> NearCache::LookupStale(
    const std::string& registry, const std::string& key, int64_t expire_ms,
    Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (max_stale_on_error_.count() <= 0) {
    return std::nullopt;
  }
  auto it = entries_.find(Name(registry, key));
  if (it == entries_.end() || it->second.expire_ms != expire_ms ||
      (it->second.fresh_until &&
       now >= *it->second.fresh_until + max_stale_on_error_)) {
    return std::nullopt;
  }
  return Hit{it->second.value, it->second.created_time};
}

NearCache::Ticket NearCache::BeginRead(const std::string& registry,
                                       const std::string& key, Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  Ticket ticket;
  ticket.id = next_ticket_++;
  ticket.watch = trusted_;
  ticket.sent = now;
  pending_[ticket.id] = {registry, key, generation_, false};
  return ticket;
}

void NearCache::AbandonRead(const Ticket& ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.erase(ticket.id);
}

void NearCache::EndRead(const Ticket& ticket, const std::string& registry,
                        const std::string& key, int64_t expire_ms,
                        uint64_t registered_watch, int64_t fresh_for_ms,
                        const std::string& value, double created_time) {
  std::lock_guard<std::mutex> lock(mu_);
  auto pending = pending_.find(ticket.id);
  if (pending == pending_.end()) {
    return;
  }
  const bool keep = !pending->second.poisoned &&
                    pending->second.generation == generation_ &&
                    ticket.watch != 0 && registered_watch == ticket.watch &&
                    trusted_ == ticket.watch && fresh_for_ms != 0;
  pending_.erase(pending);
  const uint64_t cost =
      registry.size() + key.size() + value.size() + kEntryOverheadBytes;
  if (!keep || cost > max_bytes_) {
    return;
  }
  const std::string name = Name(registry, key);
  if (auto old = entries_.find(name); old != entries_.end()) {
    Erase(old);
  }
  Entry entry;
  entry.registry = registry;
  entry.key = key;
  entry.value = value;
  entry.created_time = created_time;
  entry.expire_ms = expire_ms;
  if (fresh_for_ms > 0) {
    // Counted from when the read left: never longer than the daemon's.
    entry.fresh_until = ticket.sent + Ms(fresh_for_ms);
  }
  entry.lru = lru_.insert(lru_.begin(), name);
  entries_.emplace(name, std::move(entry));
  bytes_ += cost;
  Evict();
}

void NearCache::Erase(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.registry.size() + it->second.key.size() +
            it->second.value.size() + kEntryOverheadBytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

void NearCache::Evict() {
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    Erase(entries_.find(lru_.back()));
  }
}

void NearCache::Drop(const std::string& registry, const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto in_scope = [&](const std::string& reg, const std::string& k) {
    return registry.empty() ||
           (reg == registry && (key.empty() || k == key));
  };
  for (auto& [id, pending] : pending_) {
    if (in_scope(pending.registry, pending.key)) {
      pending.poisoned = true;
    }
  }
  if (!registry.empty() && !key.empty()) {
    if (auto it = entries_.find(Name(registry, key)); it != entries_.end()) {
      Erase(it);
    }
    return;
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    if (in_scope(it->second.registry, it->second.key)) {
      Erase(it);
    }
    it = next;
  }
}

void NearCache::DropAll() {
  std::lock_guard<std::mutex> lock(mu_);
  ++generation_;  // reads in flight are not kept
  trusted_ = 0;
  if (max_stale_on_error_.count() > 0) {
    for (auto& [name, entry] : entries_) {
      entry.trusted = false;
    }
    return;
  }
  entries_.clear();
  lru_.clear();
  bytes_ = 0;
}

void NearCache::Trust(uint64_t watch) {
  std::lock_guard<std::mutex> lock(mu_);
  trusted_ = watch;
}

uint64_t NearCache::trusted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return trusted_;
}

void NearCache::HeardUntil(Time until) {
  std::lock_guard<std::mutex> lock(mu_);
  heard_until_ = until;
}

void NearCache::LeaseUntil(Time until) {
  std::lock_guard<std::mutex> lock(mu_);
  lease_until_ = until;
}

uint64_t NearCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

size_t NearCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace dogpiled::internal
