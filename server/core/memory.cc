// The memory budget (semantics.md section 6): every entry and registry
// costs its bookkeeping and key bytes, every stored value its bytes, and
// remembered invalidation marks have a share of their own. Values are
// evicted least recently used first; marks past their share fold into the
// level above (key -> registry -> daemon-wide), which may treat more values
// as invalidated than asked, never fewer.
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "core/coordinator.h"
#include "core/errors.h"

namespace dogpiled::core {

uint64_t Coordinator::EntryCost(const std::string& key) const {
  return limits_.entry_overhead_bytes + key.size();
}

uint64_t Coordinator::UsedBytes() const {
  return entries_bytes_ + value_bytes_;
}

uint64_t Coordinator::MarkShare() const {
  return limits_.invalidation_memory_bytes != 0
             ? limits_.invalidation_memory_bytes
             : limits_.memory_budget_bytes / 8;
}

bool Coordinator::InUse(const Entry& entry) const {
  return entry.creator.has_value() || !entry.dogpile_line.empty() ||
         entry.writer_token != 0 || !entry.readers.empty() ||
         !entry.rw_line.empty();
}

void Coordinator::TouchLru(Entry& entry) {
  if (entry.has_value) {
    lru_.splice(lru_.begin(), lru_, entry.lru_pos);
  }
}

void Coordinator::DropValue(Entry& entry) {
  if (!entry.has_value) {
    return;
  }
  if (journal_ != nullptr && !replaying_) {
    journal_->ValueDropped(entry.registry->name, entry.key);
  }
  stats_.stored_bytes -= entry.value.size() + entry.key.size();
  value_bytes_ -= entry.value.size();
  lru_.erase(entry.lru_pos);
  entry.lru_pos = lru_.end();
  entry.has_value = false;
  entry.value.clear();
}

void Coordinator::StoreValue(Entry& entry, Bytes value, double created_time,
                             Token token) {
  if (entry.has_value) {
    stats_.stored_bytes -= entry.value.size() + entry.key.size();
    value_bytes_ -= entry.value.size();
    lru_.erase(entry.lru_pos);
  }
  entry.value = std::move(value);
  entry.has_value = true;
  entry.created_time = created_time;
  entry.value_token = token;
  entry.lru_pos = lru_.insert(lru_.begin(), &entry);
  stats_.stored_bytes += entry.value.size() + entry.key.size();
  value_bytes_ += entry.value.size();
  if (journal_ != nullptr && !replaying_) {
    journal_->ValueStored(
        {entry.registry->name, entry.key, entry.value, created_time, token});
  }
}

Status Coordinator::MakeRoom(Entry& entry, uint64_t bytes) {
  const uint64_t used =
      UsedBytes() - (entry.has_value ? entry.value.size() : 0);
  if (used + bytes <= limits_.memory_budget_bytes) {
    return {};
  }
  const uint64_t need = used + bytes - limits_.memory_budget_bytes;
  // First make sure enough can go, so a refusal changes nothing.
  std::vector<Entry*> victims;
  uint64_t freed = 0;
  const int64_t now = clock_->NowMs();
  for (auto it = lru_.rbegin(); it != lru_.rend() && freed < need; ++it) {
    Entry* candidate = *it;
    if (candidate == &entry || InUse(*candidate)) {
      continue;
    }
    victims.push_back(candidate);
    freed += candidate->value.size();
    const bool collectable =
        candidate->invalidation.remember_until_ms <= now &&
        candidate->backoff_until_ms <= now;
    if (collectable) {
      freed += EntryCost(candidate->key);
    }
  }
  if (freed < need) {
    return CapReached(reason::kMemoryBudget, "value",
                      limits_.memory_budget_bytes,
                      "value: the memory budget of " +
                          std::to_string(limits_.memory_budget_bytes) +
                          " bytes is full of entries in use");
  }
  for (Entry* victim : victims) {
    observer_->OnEviction(victim->registry->name, victim->key,
                          victim->value.size() + victim->key.size());
    DropValue(*victim);
    ++stats_.evictions;
    MaybeCollect(victim);
  }
  return {};
}

void Coordinator::EnforceBudget() {
  // The newest mark is never folded: the call that made it may still hold
  // its entry.
  while (marks_bytes_ > MarkShare() && marks_.size() > 1) {
    FoldOldestMark();
  }
  if (UsedBytes() <= limits_.memory_budget_bytes) {
    return;
  }
  std::vector<Entry*> victims;
  uint64_t used = UsedBytes();
  for (auto it = lru_.rbegin();
       it != lru_.rend() && used > limits_.memory_budget_bytes; ++it) {
    if (!InUse(**it)) {
      victims.push_back(*it);
      used -= (*it)->value.size();
    }
  }
  for (Entry* victim : victims) {
    observer_->OnEviction(victim->registry->name, victim->key,
                          victim->value.size() + victim->key.size());
    DropValue(*victim);
    ++stats_.evictions;
    MaybeCollect(victim);
  }
}

void Coordinator::TrackMark(Invalidation& inv, MarkRef holder) {
  if (inv.fold_pos) {  // marked again: now the newest
    marks_.splice(marks_.end(), marks_, *inv.fold_pos);
    return;
  }
  marks_bytes_ += EntryCost(holder.entry != nullptr ? holder.entry->key
                                                    : holder.registry->name);
  inv.fold_pos = marks_.insert(marks_.end(), holder);
}

void Coordinator::UntrackMark(Invalidation& inv) {
  if (!inv.fold_pos) {
    return;
  }
  const MarkRef& holder = **inv.fold_pos;
  marks_bytes_ -= EntryCost(holder.entry != nullptr ? holder.entry->key
                                                    : holder.registry->name);
  marks_.erase(*inv.fold_pos);
  inv.fold_pos.reset();
}

void Coordinator::FoldOldestMark() {
  const MarkRef oldest = marks_.front();
  Registry& registry = *oldest.registry;
  Invalidation& from = oldest.entry != nullptr ? oldest.entry->invalidation
                                               : registry.invalidation;
  Invalidation& into = oldest.entry != nullptr ? registry.invalidation
                                               : global_invalidation_;
  const int64_t until = from.remember_until_ms;
  const MarkRef up = oldest.entry != nullptr ? MarkRef{&registry, nullptr}
                                             : MarkRef{};
  const TimerTarget target{TimerTarget::Kind::kRegistryHorizon, 0,
                           registry.name, {}};
  // Soft first: a hard mark raises the soft one too.
  ApplyInvalidation(into, false, from.soft_token, from.soft_wall, until,
                    target, up);
  if (from.hard_token != 0) {
    ApplyInvalidation(into, true, from.hard_token, from.hard_wall, until,
                      target, up);
  }
  UntrackMark(from);
  timers_.Cancel(from.timer);
  from.timer = 0;
  from.remember_until_ms = 0;
  if (oldest.entry != nullptr) {
    MaybeCollect(oldest.entry);
  } else {
    MaybeCollectRegistry(&registry);
  }
}

}  // namespace dogpiled::core
