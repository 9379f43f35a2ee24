// Restoring durable state at start-up and exporting it for snapshots.
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/coordinator.h"
#include "core/op.h"
#include "core/validation.h"

namespace dogpiled::core {
namespace {

void ExportMarks(const std::string& registry, const std::string& key,
                 const Invalidation& inv, PersistedState& out) {
  if (inv.hard_token != 0) {
    out.invalidations.push_back({registry, key, true, inv.hard_token,
                                 inv.hard_wall});
  }
  if (inv.soft_token > inv.hard_token) {
    out.invalidations.push_back({registry, key, false, inv.soft_token,
                                 inv.soft_wall});
  }
}

}  // namespace

void Coordinator::Restore(const PersistedState& state) {
  Op op(this);
  replaying_ = true;
  const int64_t now_ms = clock_->NowMs();
  const double now_wall = clock_->WallSeconds();
  // Marks past the horizon are not restored, so neither is any value they
  // voided: a value is never served FRESH again after an invalidation of
  // it was acknowledged, however long the daemon was down.
  std::map<std::pair<std::string, std::string>, Token> forgotten;
  auto voided = [&](const PersistedValue& v) {
    for (const std::string& key : {v.key, std::string()}) {
      auto it = forgotten.find({v.registry, key});
      if (it != forgotten.end() && v.token <= it->second) {
        return true;
      }
    }
    return false;
  };
  for (const PersistedInvalidation& inv : state.invalidations) {
    const int64_t left =
        limits_.invalidation_horizon_ms -
        static_cast<int64_t>((now_wall - inv.wall) * 1000.0);
    last_token_ = std::max(last_token_, inv.mark);
    if (inv.registry.empty()) {  // the daemon-wide mark: kept however old
      ApplyInvalidation(global_invalidation_, inv.hard, inv.mark, inv.wall, 0,
                        {TimerTarget::Kind::kRegistryHorizon, 0, {}, {}},
                        {});
      continue;
    }
    if (left <= 0) {
      Token& mark = forgotten[{inv.registry, inv.key}];
      mark = std::max(mark, inv.mark);
      continue;
    }
    if (!CheckRegistry(inv.registry).ok() ||
        !CheckKeyOrEmpty(inv.key, limits_).ok()) {
      continue;
    }
    if (inv.key.empty()) {
      Registry& registry = GetOrCreateRegistry(inv.registry);
      ApplyInvalidation(registry.invalidation, inv.hard, inv.mark, inv.wall,
                        now_ms + left,
                        {TimerTarget::Kind::kRegistryHorizon, 0,
                         inv.registry, {}},
                        {&registry, nullptr});
    } else {
      Entry& entry = GetOrCreateEntry(inv.registry, inv.key);
      ApplyInvalidation(entry.invalidation, inv.hard, inv.mark, inv.wall,
                        now_ms + left,
                        {TimerTarget::Kind::kEntryHorizon, 0, inv.registry,
                         inv.key},
                        {entry.registry, &entry});
    }
    EnforceBudget();  // marks past their share fold as they come
  }
  // Values come least recently used first. When the budget shrank, the
  // most recent are the ones kept: choose from the newest end, then store
  // oldest first so the LRU order is what it was.
  std::vector<const PersistedValue*> kept;
  uint64_t room = limits_.memory_budget_bytes > UsedBytes()
                      ? limits_.memory_budget_bytes - UsedBytes()
                      : 0;
  for (auto it = state.values.rbegin(); it != state.values.rend(); ++it) {
    const PersistedValue& v = *it;
    last_token_ = std::max(last_token_, v.token);
    const uint64_t cost = v.value.size() + EntryCost(v.key);
    if (voided(v) || !CheckRegistry(v.registry).ok() ||
        !CheckKey(v.key, limits_).ok() ||
        v.value.size() > limits_.max_value_bytes || cost > room ||
        !(v.created_time <=
          now_wall + static_cast<double>(limits_.max_future_skew_ms) / 1000)) {
      continue;
    }
    room -= cost;
    kept.push_back(&v);
  }
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
    const PersistedValue& v = **it;
    Entry& entry = GetOrCreateEntry(v.registry, v.key);
    if (v.token > HardInvalidToken(entry)) {
      // Who published it is not journaled: restored values share one
      // tenant of their own, which no caller's identity can name.
      StoreValue(entry, v.value, v.created_time, v.token,
                 GetTenant(kRestoredTenant));
    }
    MaybeCollect(&entry);
  }
  EnforceBudget();  // the room above left out registries' own cost
  replaying_ = false;
}

PersistedState Coordinator::Export(const std::function<void()>& at_instant) {
  Op op(this);
  PersistedState state;
  const int64_t now = clock_->NowMs();
  ExportMarks("", "", global_invalidation_, state);
  for (const auto& [name, registry] : registries_) {
    if (registry.invalidation.remember_until_ms > now) {
      ExportMarks(name, "", registry.invalidation, state);
    }
    for (const auto& [key, entry] : registry.entries) {
      if (entry.invalidation.remember_until_ms > now) {
        ExportMarks(name, key, entry.invalidation, state);
      }
    }
  }
  // Least recently used first, as Restore expects. Values are shared, not
  // copied: this lock is held for pointer copies only.
  // A value voided by a mark that is not exported (past the horizon, but
  // still in memory while its entry or registry lives) stays behind: once
  // restored without its mark it would be FRESH again.
  auto voided_unexported = [now](const Invalidation& inv, Token token) {
    return inv.remember_until_ms <= now && token <= inv.soft_token;
  };
  state.values.reserve(lru_.size());
  for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
    const Entry& entry = **it;
    if (voided_unexported(entry.invalidation, entry.value_token) ||
        voided_unexported(entry.registry->invalidation, entry.value_token)) {
      continue;
    }
    state.values.push_back({entry.registry->name, entry.key, entry.value,
                            entry.created_time, entry.value_token});
  }
  at_instant();
  return state;
}

}  // namespace dogpiled::core
