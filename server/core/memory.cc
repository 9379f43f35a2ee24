// The memory budget (semantics.md section 6): every entry and registry
// costs its bookkeeping and key bytes, every stored value its bytes, and
// remembered invalidation marks have a share of their own. Values are
// evicted least recently used first; marks past their share fold into the
// level above (key -> registry -> daemon-wide), which may treat more values
// as invalidated than asked, never fewer.
#include <algorithm>
#include <iterator>
#include <unordered_map>
#include <string>
#include <utility>
#include <vector>

#include "core/coordinator.h"
#include "core/errors.h"
#include "core/validation.h"

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

namespace {

// What a value counts against its tenant's share: its bytes and its key's.
uint64_t ValueBytes(const Entry& entry) {
  return entry.value.size() + entry.key.size();
}

}  // namespace

void Coordinator::DropValue(Entry& entry) {
  if (!entry.has_value) {
    return;
  }
  if (Journaling()) {
    journal_->ValueDropped(entry.registry->name, entry.key);
  }
  stats_.stored_bytes -= ValueBytes(entry);
  value_bytes_ -= entry.value.size();
  entry.value_tenant->stored_bytes -= ValueBytes(entry);
  MaybeDropTenant(std::exchange(entry.value_tenant, nullptr));
  lru_.erase(entry.lru_pos);
  entry.lru_pos = lru_.end();
  entry.has_value = false;
  entry.value.clear();
}

void Coordinator::StoreValue(Entry& entry, Bytes value, double created_time,
                             Token token, Tenant* tenant) {
  if (entry.has_value) {
    stats_.stored_bytes -= ValueBytes(entry);
    value_bytes_ -= entry.value.size();
    entry.value_tenant->stored_bytes -= ValueBytes(entry);
    lru_.erase(entry.lru_pos);
  }
  Tenant* previous = std::exchange(entry.value_tenant, tenant);
  entry.value = std::move(value);
  entry.has_value = true;
  entry.created_time = created_time;
  entry.value_token = token;
  entry.lru_pos = lru_.insert(lru_.begin(), &entry);
  stats_.stored_bytes += ValueBytes(entry);
  value_bytes_ += entry.value.size();
  tenant->stored_bytes += ValueBytes(entry);
  if (previous != tenant) {
    MaybeDropTenant(previous);
  }
  if (Journaling()) {
    journal_->ValueStored(
        {entry.registry->name, entry.key, entry.value, created_time, token});
  }
}

Status Coordinator::MakeRoom(Entry& entry, uint64_t bytes, Tenant* tenant) {
  // The whole budget counts every entry's bookkeeping; a tenant's share
  // counts its values and their keys.
  const uint64_t used =
      UsedBytes() - (entry.has_value ? entry.value.size() : 0);
  const uint64_t need = used + bytes > limits_.memory_budget_bytes
                            ? used + bytes - limits_.memory_budget_bytes
                            : 0;
  const uint64_t replaced =
      entry.has_value && entry.value_tenant == tenant ? ValueBytes(entry) : 0;
  const uint64_t own_kept = tenant->stored_bytes - replaced;
  const uint64_t own_bytes = bytes + entry.key.size();
  const uint64_t own_cap = limits_.tenant_memory_bytes != 0
                               ? limits_.tenant_memory_bytes
                               : limits_.memory_budget_bytes;
  const uint64_t own_need =
      own_kept + own_bytes > own_cap ? own_kept + own_bytes - own_cap : 0;
  if (need == 0 && own_need == 0) {
    return {};
  }
  const int64_t now = clock_->NowMs();
  // What evicting `e` frees of the whole budget: its value, and its entry
  // too when nothing else keeps it.
  const auto frees = [&](const Entry& e) {
    const bool collectable = e.invalidation.remember_until_ms <= now &&
                             e.backoff_until_ms <= now;
    return e.value.size() + (collectable ? EntryCost(e.key) : 0);
  };
  // First make sure enough can go, so a refusal changes nothing. The
  // tenant's own values go first, oldest first; another tenant's only while
  // it keeps more than its fair share, so a flood into one registry cannot
  // empty another tenant's.
  std::vector<Entry*> victims;
  uint64_t freed = 0;
  uint64_t own_freed = 0;
  for (auto it = lru_.rbegin();
       it != lru_.rend() && (freed < need || own_freed < own_need); ++it) {
    Entry* candidate = *it;
    if (candidate != &entry && candidate->value_tenant == tenant &&
        !InUse(*candidate)) {
      victims.push_back(candidate);
      freed += frees(*candidate);
      own_freed += ValueBytes(*candidate);
    }
  }
  if (own_freed < own_need) {
    return LimitReached("value: this tenant's memory share of " +
                            std::to_string(own_cap) +
                            " bytes is full of values in use",
                        std::string(reason::kTenantMemoryQuota), "value", own_cap);
  }
  if (freed < need) {
    const uint64_t share = FairShare(tenant);
    std::unordered_map<Tenant*, uint64_t> left;
    for (auto it = lru_.rbegin(); it != lru_.rend() && freed < need; ++it) {
      Entry* candidate = *it;
      Tenant* owner = candidate->value_tenant;
      if (owner == tenant || candidate == &entry || InUse(*candidate)) {
        continue;
      }
      auto [pos, fresh] = left.try_emplace(owner, owner->stored_bytes);
      if (pos->second <= share) {
        continue;
      }
      victims.push_back(candidate);
      freed += frees(*candidate);
      pos->second -= std::min(pos->second, ValueBytes(*candidate));
    }
  }
  if (freed < need) {
    return CapReached(reason::kMemoryBudget, "value",
                      limits_.memory_budget_bytes,
                      "value: the memory budget of " +
                          std::to_string(limits_.memory_budget_bytes) +
                          " bytes is full of entries in use or within "
                          "other tenants' shares");
  }
  for (Entry* victim : victims) {
    observer_->OnEviction(victim->registry->name, victim->key,
                          ValueBytes(*victim));
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
  // The fold voids more than was asked: near-caches drop that much too
  // (nobody waits for it; no call asked for it).
  if (near_cache_ != nullptr) {
    near_cache_->Invalidate(oldest.entry != nullptr ? registry.name : "", "");
  }
  // Soft first: a hard mark raises the soft one too.
  ApplyInvalidation(into, false, from.soft_token, from.soft_wall, until,
                    target, up);
  if (from.hard_token != 0) {
    ApplyInvalidation(into, true, from.hard_token, from.hard_wall, until,
                      target, up);
  }
  if (Journaling()) {
    // Observable (more values count as invalidated), so followers and a
    // restarted daemon must void as much.
    const std::string name = oldest.entry != nullptr ? registry.name : "";
    journal_->Invalidated({name, "", false, from.soft_token, from.soft_wall});
    if (from.hard_token != 0) {
      journal_->Invalidated({name, "", true, from.hard_token, from.hard_wall});
    }
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
