// Tenants: every session belongs to the identity that opened it, and what
// one identity opens, parks, holds and stores is counted against its own
// quotas, so one tenant reaching them leaves the others untouched.
#include <algorithm>
#include <string>

#include "core/coordinator.h"
#include "core/errors.h"
#include "core/validation.h"

namespace dogpiled::core {

Tenant* Coordinator::GetTenant(const std::string& name) {
  Tenant& tenant = tenants_[name];
  tenant.name = name;
  return &tenant;
}

void Coordinator::MaybeDropTenant(Tenant* tenant) {
  if (tenant != nullptr && tenant->sessions == 0 && tenant->waiters == 0 &&
      tenant->grants == 0 && tenant->stored_bytes == 0) {
    tenants_.erase(tenant->name);
  }
}

Status Coordinator::CheckGrantCaps(const Session& session) const {
  const uint64_t held = session.creator_of.size() + session.locks.size();
  if (held >= limits_.max_grants_per_session) {
    return LimitReached("session_id: the session holds " +
                            std::to_string(held) +
                            " locks and creator roles, the cap per session",
                        std::string(reason::kSessionGrantsCap), "session_id",
                        limits_.max_grants_per_session);
  }
  if (session.tenant->grants >= limits_.max_grants_per_tenant) {
    return LimitReached("session_id: this tenant holds " +
                            std::to_string(session.tenant->grants) +
                            " locks and creator roles, its quota",
                        std::string(reason::kTenantGrantsQuota), "session_id",
                        limits_.max_grants_per_tenant);
  }
  return {};
}

uint64_t Coordinator::FairShare(const Tenant* publisher) const {
  uint64_t storing = publisher->stored_bytes == 0 ? 1 : 0;
  for (const auto& [name, tenant] : tenants_) {
    storing += tenant.stored_bytes > 0 ? 1 : 0;
  }
  return limits_.memory_budget_bytes / std::max<uint64_t>(storing, 1);
}

}  // namespace dogpiled::core
