// Restoring durable state at start-up and exporting it for snapshots.
#include <algorithm>

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
  for (const PersistedInvalidation& inv : state.invalidations) {
    const int64_t left =
        limits_.invalidation_horizon_ms -
        static_cast<int64_t>((now_wall - inv.wall) * 1000.0);
    if (left <= 0 || !CheckRegistry(inv.registry).ok() ||
        !CheckKeyOrEmpty(inv.key, limits_).ok()) {
      continue;
    }
    last_token_ = std::max(last_token_, inv.mark);
    if (inv.key.empty()) {
      Registry& registry = registries_[inv.registry];
      registry.name = inv.registry;
      ApplyInvalidation(registry.invalidation, inv.hard, inv.mark, inv.wall,
                        now_ms + left,
                        {TimerTarget::Kind::kRegistryHorizon, 0,
                         inv.registry, {}});
    } else {
      Entry& entry = GetOrCreateEntry(inv.registry, inv.key);
      ApplyInvalidation(entry.invalidation, inv.hard, inv.mark, inv.wall,
                        now_ms + left,
                        {TimerTarget::Kind::kEntryHorizon, 0, inv.registry,
                         inv.key});
    }
  }
  for (const PersistedValue& v : state.values) {
    const uint64_t bytes = v.value.size() + v.key.size();
    if (!CheckRegistry(v.registry).ok() || !CheckKey(v.key, limits_).ok() ||
        v.value.size() > limits_.max_value_bytes ||
        stats_.stored_bytes + bytes > limits_.memory_budget_bytes ||
        !(v.created_time <=
          now_wall + static_cast<double>(limits_.max_future_skew_ms) / 1000)) {
      continue;
    }
    last_token_ = std::max(last_token_, v.token);
    Entry& entry = GetOrCreateEntry(v.registry, v.key);
    if (v.token > HardInvalidToken(entry)) {
      // Who published it is not journaled: restored values share one
      // tenant of their own, which no caller's identity can name.
      StoreValue(entry, v.value, v.created_time, v.token,
                 GetTenant(kRestoredTenant));
    }
    MaybeCollect(&entry);
  }
  replaying_ = false;
}

PersistedState Coordinator::Export(const std::function<void()>& at_instant) {
  Op op(this);
  PersistedState state;
  const int64_t now = clock_->NowMs();
  for (const auto& [name, registry] : registries_) {
    if (registry.invalidation.remember_until_ms > now) {
      ExportMarks(name, "", registry.invalidation, state);
    }
    for (const auto& [key, entry] : registry.entries) {
      if (entry.invalidation.remember_until_ms > now) {
        ExportMarks(name, key, entry.invalidation, state);
      }
      if (entry.has_value) {
        state.values.push_back({name, key, entry.value, entry.created_time,
                                entry.value_token});
      }
    }
  }
  at_instant();
  return state;
}

}  // namespace dogpiled::core
